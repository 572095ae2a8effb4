// A DTLS 1.2 session on the device (spec.md 7.13) as python-mbedtls's
// TLSWrappedBuffer over datagrams: sans-I/O. Datagrams from the network go in
// whole with receiveFromNetwork() (kept on the host, fed one per tls_feed as
// the device's input queue takes them), datagrams for the network come out
// whole with takeDatagrams() (or peekOutgoing() / consumeOutgoing() over the
// next one). Nothing here merges or splits a datagram.
//
// Retransmission is Mbed TLS's, on the device's clock: every step answer of a
// datagram session ends with the milliseconds until the timer fires
// (nextTimeout()); the caller steps again (doHandshake()) when it does, and
// whatever Mbed TLS resent is in takeDatagrams(). A cookie server answers a
// ClientHello without a valid cookie with HelloVerifyRequest: the request is
// in takeDatagrams(), the device has reset the session, and the next
// ClientHello needs setCookieParam() (the peer's address) again.
//
// dtls-socket.ts pumps these between a dgram socket and the device.

import { ArgumentError, CryptoError, ProtocolError, TooLargeError } from "../base/errors.js";
import { Op, Status, TlsState } from "../base/protocol.generated.js";
import { checkBytes } from "../base/util.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import type { HandleHolder } from "../session/device-object.js";
import {
  parseInfo,
  type StepAnswer,
  stepResult,
  type TLSInfo,
  uint,
  type Want,
  WantRead,
  WantWrite,
  WrappedSession,
} from "./tls-buffer.js";
import { TLSHandshakeError } from "./tls-errors.js";
import type { TLSSession } from "./tls-session.js";

export { type Want, WantRead, WantWrite };

/** MBEDTLS_ERR_SSL_HELLO_VERIFY_REQUIRED. */
const HELLO_VERIFY_REQUIRED = -0x6a80;
/** MBEDTLS_ERR_SSL_TIMEOUT: a handshake step found the retransmission timer past handshakeTimeoutMax. */
const SSL_TIMEOUT = -0x6800;

/** Mbed TLS's own handshake timeout as a TLSHandshakeError that names it (tls-errors.ts's reasons are TLS's); other errors as they are. */
function retransmissionsOver(e: unknown): unknown {
  return e instanceof CryptoError && e.mbedtlsCode === SSL_TIMEOUT && !(e instanceof TLSHandshakeError)
    ? new TLSHandshakeError(e, "no answer from the peer: Mbed TLS's retransmissions reached handshakeTimeoutMax")
    : e;
}

/**
 * A cookie server's answer to a ClientHello without a valid cookie
 * (python-mbedtls's exception of this name, a TLSError; Mbed TLS's
 * MBEDTLS_ERR_SSL_HELLO_VERIFY_REQUIRED): the HelloVerifyRequest datagram
 * is in takeDatagrams() and the device has reset the session for the
 * client's next ClientHello (setCookieParam() again). The buffer's
 * doHandshake() resolves with the class itself, a result as WantRead is;
 * DTLSWrappedSocket's doHandshake() throws an instance, as python-mbedtls
 * raises it.
 */
export class HelloVerifyRequest extends CryptoError {
  override name = "HelloVerifyRequest";
  constructor() {
    super(
      Status.cryptoError,
      HELLO_VERIFY_REQUIRED,
      "HelloVerifyRequest sent: the client's next ClientHello carries the cookie (setCookieParam(), then doHandshake() again)",
      "tls_handshake_step",
    );
  }
}

/** Steps in a row that the timer's "expired now" (0) may ask for within one call (each resends a flight and at least doubles the timer). */
const EXPIRED_STEPS_MAX = 4;

/** What the device says of a DTLS session (tls_info). */
export interface DTLSInfo extends TLSInfo {
  /** "datagram" (a session of a DTLS configuration). */
  transport: "stream" | "datagram";
  /** The own Connection ID in use (RFC 9146), undefined when none. */
  cid: Uint8Array | undefined;
  /** The peer's Connection ID once the handshake agreed on one. */
  peerCid: Uint8Array | undefined;
  /** The datagram size Mbed TLS keeps to (dtls_setup's mtu), undefined when none was set. */
  mtu: number | undefined;
  /** Records that failed authentication and were dropped (counted against badMacLimit). */
  badMacSeen: number;
}

/** Options of a wrapped DTLS session. */
export interface DTLSWrapOptions {
  /** The whole handshake must be over within this many ms (default 60 s), else doHandshake() throws TimeoutError; Mbed TLS's own limit is handshakeTimeoutMax. */
  handshakeTimeoutMs?: number | undefined;
  /** The largest datagram the session sends (64 up to the device's record size; mbedtls_ssl_set_mtu), default the configuration's `mtu`. */
  mtu?: number | undefined;
  /** The own Connection ID's bytes (as many as the configuration's `cid`); default random bytes from the device. */
  cid?: Uint8Array | undefined;
  /** A DTLS client session saved earlier (`session()`) to resume (a client context whose configuration has `resumption`); the device refuses one it did not seal (AuthFailedError) or a TLS one (BadArgumentError) at the first doHandshake(). */
  session?: TLSSession | undefined;
}

const isBytes = (x: unknown): x is Uint8Array => x instanceof Uint8Array;

function parseDtlsInfo(r: unknown): DTLSInfo {
  const m = r as Record<string, unknown>;
  const bytes = (v: unknown, what: string): Uint8Array | undefined => {
    if (v === undefined || v === null) return undefined;
    if (!isBytes(v)) throw new ProtocolError(`tls_info: "${what}" is not a byte string`);
    return v;
  };
  const info = parseInfo(r);
  return {
    ...info,
    transport: m.transport === "datagram" ? "datagram" : "stream",
    cid: bytes(m.cid, "cid"),
    peerCid: bytes(m.peer_cid, "peer_cid"),
    mtu: m.mtu === undefined || m.mtu === null ? undefined : uint(m.mtu, "tls_info: mtu"),
    badMacSeen: m.badmac_seen === undefined ? 0 : uint(m.badmac_seen, "tls_info: badmac_seen"),
  };
}

/** A DTLS 1.2 session on the device over datagrams the caller moves (python-mbedtls's `TLSWrappedBuffer` of a `DTLSConfiguration`). */
export class DTLSWrappedBuffer extends WrappedSession<DTLSInfo> {
  readonly #mtu: number | undefined;
  readonly #cid: Uint8Array | undefined;
  #incoming: Uint8Array[] = [];
  #outgoing: Uint8Array[] = [];
  #dropped = 0;
  /** dtls_setup calls not awaited yet (a failure surfaces at the next step). */
  #setup: Promise<unknown> | undefined;
  /** The last step's timer and when its answer came (Date.now()). */
  #timer: { ms: number; at: number } | undefined;

  /** @internal Made by `context.wrapBuffers()` (dtls.ts). */
  constructor(ctx: SessionContext, context: HandleHolder, serverHostname: string | null, opts: DTLSWrapOptions = {}) {
    if (opts.mtu !== undefined && !(Number.isInteger(opts.mtu) && opts.mtu >= 64 && opts.mtu <= 65535))
      throw new ArgumentError("mtu: an integer of at least 64");
    if (opts.cid !== undefined) checkBytes(opts.cid, "cid");
    super(ctx, context, serverHostname, opts.handshakeTimeoutMs, opts.session);
    this.#mtu = opts.mtu;
    this.#cid = opts.cid === undefined ? undefined : Uint8Array.from(opts.cid);
    if (this.#mtu !== undefined || this.#cid !== undefined) this.setup(null);
  }

  /**
   * The client's transport identity (python-mbedtls's `setcookieparam`; e.g.
   * its address and port as bytes): a cookie server's cookie is bound to it.
   * Needed before the first doHandshake() of a cookie server, and again
   * after each HelloVerifyRequest (the device reset the session). A refusal
   * surfaces here (the promise; awaiting it is optional) and at the next
   * doHandshake().
   */
  setCookieParam(peer: Uint8Array): Promise<void> {
    const p = checkBytes(peer, "setCookieParam()");
    if (p.length === 0) throw new ArgumentError("setCookieParam(): the peer's transport id is not empty");
    return this.setup(Uint8Array.from(p));
  }

  /** Queues one datagram from the network (whole: the device takes it whole or not yet). */
  receiveFromNetwork(datagram: Uint8Array): void {
    const d = checkBytes(datagram, "receiveFromNetwork()");
    if (d.length === 0) return;
    if (d.length > this.ctx.chunkSize) {
      this.#dropped++; // no request carries it: lost as on a link with a smaller MTU
      return;
    }
    this.#incoming.push(Uint8Array.from(d));
  }

  /** Datagrams from the network dropped because they were larger than one request carries or the device takes. */
  get droppedDatagrams(): number {
    return this.#dropped;
  }

  /** Datagrams received that the device has not taken yet. */
  get incomingCount(): number {
    return this.#incoming.length;
  }

  /** The datagrams waiting for the network, in order; they are the caller's now. */
  takeDatagrams(): Uint8Array[] {
    const out = this.#outgoing;
    this.#outgoing = [];
    return out;
  }

  /** The next datagram waiting for the network (empty when none), not consumed. */
  peekOutgoing(): Uint8Array {
    return this.#outgoing[0] ?? new Uint8Array(0);
  }

  /** Drops the next datagram waiting for the network (it was sent): `n` is its length. */
  consumeOutgoing(n: number): void {
    const next = this.#outgoing[0];
    if (n === 0 && next === undefined) return;
    if (next === undefined || n !== next.length)
      throw new ArgumentError(`consumeOutgoing(${n}): the next datagram has ${next?.length ?? 0} bytes (datagrams go whole)`);
    this.#outgoing.shift();
  }

  /** Datagrams waiting for the network. */
  get outgoingCount(): number {
    return this.#outgoing.length;
  }

  /**
   * Ms until the device's retransmission timer fires, from the last step's
   * answer (0: it has: call doHandshake() again), null when none is armed.
   */
  nextTimeout(): number | null {
    const t = this.#timer;
    return t === undefined ? null : Math.max(0, t.ms - (Date.now() - t.at));
  }

  /**
   * Runs the handshake as far as the datagrams at hand allow: "done";
   * WantRead (send takeDatagrams(), wait for a datagram or nextTimeout(),
   * call again); or, on a cookie server, HelloVerifyRequest (send it; the
   * session waits for the next ClientHello, after setCookieParam()). A
   * failure throws Mbed TLS's error typed as dev.tls's (TLSHandshakeError,
   * TLSAlertError, TLSCertificateError; Mbed TLS's own MBEDTLS_ERR_SSL_TIMEOUT
   * once its retransmissions reach handshakeTimeoutMax is a TLSHandshakeError
   * of code -0x6800); its alert is in takeDatagrams(). A
   * call after `handshakeTimeoutMs` since the first one throws TimeoutError.
   */
  async doHandshake(opts: CallOptions = {}): Promise<"done" | Want | typeof HelloVerifyRequest> {
    this.handshakeClock("DTLS");
    await this.offered();
    await this.setupDone();
    try {
      return await this.handshakeStep(opts, (state) => (state === TlsState.helloVerify ? HelloVerifyRequest : undefined));
    } catch (e) {
      throw retransmissionsOver(e);
    }
  }

  /** The next datagram of application data (empty once the peer sent close_notify); WantRead when none is at hand. */
  async read(opts: CallOptions = {}): Promise<Uint8Array | Want> {
    await this.setupDone();
    return this.loop(Op.tlsRead, [this.ctx.chunkSize], 3, opts, async ({ state, items }) => {
      if (state === TlsState.closed) return new Uint8Array(0);
      const data = items[1];
      if (!(data instanceof Uint8Array)) throw new ProtocolError("tls_read: data is not a byte string");
      return state === TlsState.done && data.length > 0 ? data : undefined;
    });
  }

  /** Sends `datagram` as one record (its datagram lands in takeDatagrams()); resolves with its length. */
  async write(datagram: Uint8Array, opts: CallOptions = {}): Promise<number> {
    const d = checkBytes(datagram, "write()");
    if (d.length > this.ctx.chunkSize) throw new ArgumentError(`write(): ${d.length} bytes; one request carries ${this.ctx.chunkSize}`);
    const r = await this.loop(Op.tlsWrite, [d], 3, opts, async ({ state, items }) =>
      state === TlsState.done ? uint(items[1], "tls_write: written") : undefined,
    );
    if (typeof r !== "number") throw new ProtocolError("tls_write: no room after the output was taken");
    if (r !== d.length) throw new ProtocolError(`tls_write: ${r} of a ${d.length}-byte datagram written`);
    return r;
  }

  /** The device's description of the session. */
  async info(opts: CallOptions = {}): Promise<DTLSInfo> {
    return parseDtlsInfo(await this.device.call(Op.tlsInfo, [], opts));
  }

  /** dtls_setup with `peer` and the session's mtu and cid, awaited by the next step. */
  private setup(peer: Uint8Array | null): Promise<void> {
    const prev = this.#setup ?? Promise.resolve();
    const next = prev.then(async () => {
      await this.device.call(Op.dtlsSetup, [peer, this.#mtu ?? null, this.#cid ?? null]);
    });
    next.catch(() => {});
    this.#setup = next;
    return next;
  }

  private async setupDone(): Promise<void> {
    const setup = this.#setup;
    this.#setup = undefined;
    await setup;
  }

  protected get hasInput(): boolean {
    return this.#incoming.length > 0;
  }

  /** The stream items, then `timer` (ms until the retransmission timer fires, null when none is armed). */
  protected answer(r: unknown, op: string, n: number): StepAnswer {
    if (!Array.isArray(r) || r.length !== n + 1) throw new ProtocolError(`${op}: the answer is not a ${n + 1}-item array`);
    const t = r[n];
    this.#timer = t === null ? undefined : { ms: uint(t, `${op}: timer`), at: Date.now() };
    return stepResult(r.slice(0, n), op, n);
  }

  /** The timer has just expired (0): step again, so Mbed TLS resends its flight. */
  protected override stepAgain(_r: StepAnswer, round: number): boolean {
    return this.#timer?.ms === 0 && round < EXPIRED_STEPS_MAX;
  }

  /** Feeds queued datagrams until the device's queue is full; whether any went in. */
  protected async feed(): Promise<boolean> {
    let any = false;
    for (let head = this.#incoming[0]; head !== undefined; head = this.#incoming[0]) {
      let took: number;
      try {
        took = uint(await this.device.call(Op.tlsFeed, [head]), "tls_feed: result");
      } catch (e) {
        if (!(e instanceof TooLargeError)) throw e;
        this.#incoming.shift(); // longer than the device takes (hello's dtls.datagram_max): lost, as UDP loses it
        this.#dropped++;
        continue;
      }
      if (took === 0) break; // the input queue is full: step first
      if (took !== head.length) throw new ProtocolError(`tls_feed: took ${took} bytes of a ${head.length}-byte datagram`);
      this.#incoming.shift();
      any = true;
    }
    return any;
  }

  /** Takes the datagrams holding `pending` output bytes from the device. */
  protected async take(pending: number): Promise<void> {
    while (pending > 0) {
      const r = await this.device.call(Op.tlsTake, [this.ctx.chunkSize]);
      if (!(r instanceof Uint8Array)) throw new ProtocolError("tls_take: not a byte string");
      if (r.length === 0) break;
      this.#outgoing.push(r);
      pending -= r.length;
    }
  }
}
