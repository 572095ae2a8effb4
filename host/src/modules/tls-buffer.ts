// A TLS session on the device (spec.md 7.12) as python-mbedtls's
// TLSWrappedBuffer: sans-I/O. Bytes from the network go in with
// receiveFromNetwork() (kept on the host, fed to the device's input ring as
// it takes them), bytes for the network come out with peekOutgoing() /
// consumeOutgoing() (taken from the device's output ring after every step).
// doHandshake(), read() and write() answer WantRead / WantWrite as typed
// results: WantRead means "bring more bytes from the network".
//
// TLSWrappedSocket pumps one between a net.Socket and the device.

import type { Socket } from "node:net";
import { ArgumentError, DeviceError, ProtocolError, TimeoutError } from "../base/errors.js";
import { Op, TlsState } from "../base/protocol.generated.js";
import { checkBytes } from "../base/util.js";
import { atLeast, type CallOptions, type SessionContext } from "../session/context.js";
import { DeviceObject, type HandleHolder } from "../session/device-object.js";
import { TLSConnectionError, tlsError } from "./tls-errors.js";
import { TLSSession } from "./tls-session.js";

/** The session needs bytes from the network before it can go on. */
export const WantRead = Object.freeze({ want: "read" as const });
/** The session has bytes for the network to hand out first (with the SDK's buffering it does not stay so). */
export const WantWrite = Object.freeze({ want: "write" as const });
export type Want = typeof WantRead | typeof WantWrite;

/** What the device says of a session (tls_info). */
export interface TLSInfo {
  established: boolean;
  /** "TLSv1.2", "TLSv1.3"; undefined before the handshake is over. */
  version: string | undefined;
  /** Mbed TLS's cipher suite name, e.g. "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384". */
  cipher: string | undefined;
  /** Its IANA number. */
  cipherId: number | undefined;
  /** The ALPN protocol agreed on. */
  alpnProtocol: string | undefined;
  /** The peer certificate's verify flags as Mbed TLS's bits (0: valid), undefined when not known yet. */
  verifyBits: number | undefined;
  /** The peer's certificate (DER), when it fits an answer. */
  peerCertificate: Uint8Array | undefined;
  /** Output bytes waiting on the device. */
  pending: number;
  /** Bytes of each of the session's rings on the device. */
  ring: number;
  /** The Mbed TLS error that failed the session, 0 while it lives. */
  fatal: number;
  /** The fatal alert the peer sent (RFC 8446 AlertDescription), if it sent one. */
  alert: number | undefined;
  /** The post-handshake message Mbed TLS refused (HandshakeType; 24: KeyUpdate), if one ended the session. */
  refusedHandshake: number | undefined;
  /** Network bytes on the device that make no whole record yet. */
  inPending: number;
  /** Heap bytes the session holds on the device (its object, rings, Mbed TLS's context, buffers and handshake state). */
  heap: number;
  /** The handshake resumed a saved session (a ticket or session id), so the server's certificate was not sent again. */
  resumed: boolean;
}

/** Options of a wrapped session. */
export interface TLSWrapOptions {
  /** The whole handshake must be over within this many ms (default 60 s), else TimeoutError; the device's own steps count too. */
  handshakeTimeoutMs?: number;
  /** A client session saved earlier (`session()`) to resume; the device refuses one it did not seal (AuthFailedError) or whose version the configuration does not allow (BadArgumentError) on the first doHandshake(), and the next one is a full handshake. */
  session?: TLSSession | undefined;
}

/**
 * Bytes a record adds to its plaintext at most among the suites the device
 * has: header 5, explicit IV 16, MAC 48 (SHA-384), CBC padding up to 16;
 * AEAD suites add 5 + 8 + 16 (TLS 1.2) or 5 + 1 + 16 (TLS 1.3).
 */
const RECORD_EXPANSION_MAX = 85;
/** A handshake step runs the device's public-key operations: seconds on a microcontroller. */
const HANDSHAKE_TIMEOUT_MS = 60_000;

export function uint(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new ProtocolError(`${what} is not an unsigned integer`);
  return v;
}

function optional<T>(v: unknown, check: (x: unknown) => x is T, what: string): T | undefined {
  if (v === null || v === undefined) return undefined;
  if (!check(v)) throw new ProtocolError(`tls_info: "${what}" has the wrong type`);
  return v;
}

const isString = (x: unknown): x is string => typeof x === "string";
const isNumber = (x: unknown): x is number => typeof x === "number";
const isBytes = (x: unknown): x is Uint8Array => x instanceof Uint8Array;

export function parseInfo(r: unknown): TLSInfo {
  if (typeof r !== "object" || r === null || Array.isArray(r) || r instanceof Uint8Array) throw new ProtocolError("tls_info: not a map");
  const m = r as Record<string, unknown>;
  if (typeof m.established !== "boolean" || typeof m.fatal !== "number") throw new ProtocolError("tls_info: malformed map");
  return {
    established: m.established,
    version: optional(m.version, isString, "version"),
    cipher: optional(m.suite, isString, "suite"),
    cipherId: optional(m.suite_id, isNumber, "suite_id"),
    alpnProtocol: optional(m.alpn, isString, "alpn"),
    verifyBits: optional(m.verify_flags, isNumber, "verify_flags"),
    peerCertificate: optional(m.peer_cert, isBytes, "peer_cert"),
    pending: uint(m.pending, "tls_info: pending"),
    ring: uint(m.ring, "tls_info: ring"),
    fatal: m.fatal,
    alert: optional(m.alert, isNumber, "alert"),
    refusedHandshake: optional(m.refused_hs, isNumber, "refused_hs"),
    inPending: m.in_pending === undefined ? 0 : uint(m.in_pending, "tls_info: in_pending"),
    heap: m.heap === undefined ? 0 : uint(m.heap, "tls_info: heap"),
    resumed: m.resumed === true,
  };
}

/** [state, ...] of a step's answer: the state, and the last item (output bytes pending). */
export function stepResult(r: unknown, op: string, n: number): StepAnswer {
  if (!Array.isArray(r) || r.length !== n) throw new ProtocolError(`${op}: the answer is not a ${n}-item array`);
  const state = uint(r[0], `${op}: state`);
  if (!(Object.values(TlsState) as number[]).includes(state)) throw new ProtocolError(`${op}: unknown state ${state}`);
  return { state, items: r, pending: uint(r[n - 1], `${op}: pending`) };
}

/** The session object on the device (a handle of type TLS session, never swapped out; dtls-buffer.ts's too). */
export class SessionObject extends DeviceObject {
  constructor(ctx: SessionContext, context: HandleHolder, serverHostname: string | null) {
    super(ctx, { pinned: true });
    this.track(this.open((h, confHandle) => ctx.call(Op.tlsNew, [h, confHandle, serverHostname]), context));
  }

  protected get what(): string {
    return "TLS session";
  }

  /** Sends `op` with the handle first. */
  call(op: number, args: readonly unknown[], opts: CallOptions = {}): Promise<unknown> {
    return this.use((h) => this.ctx.call(op, [h, ...args], opts));
  }
}

/** A step's answer as the step loop sees it. */
export interface StepAnswer {
  state: number;
  items: unknown[];
  pending: number;
}

/**
 * What TLSWrappedBuffer and dtls-buffer.ts's DTLSWrappedBuffer share: the
 * session on the device, the step loop (feed what the device takes, step,
 * take its output), what the handshake agreed on, and the typed error of a
 * failed step. Each kind moves its own network units (bytes here, whole
 * datagrams there).
 */
export abstract class WrappedSession<I extends TLSInfo> implements AsyncDisposable {
  readonly serverHostname: string | null;
  /** The whole handshake must be over within this many ms (TimeoutError). */
  readonly handshakeTimeoutMs: number;
  protected readonly ctx: SessionContext;
  protected readonly device: SessionObject;
  /** tls_info once the handshake is over. */
  protected agreed: I | undefined;
  #handshakeStart: number | undefined;
  /** tls_session_set of a session to resume, until the first handshake step reports how it went. */
  #offered: Promise<unknown> | undefined;
  /** The last session saved, and whether the device has a newer one (a handshake or a ticket since). */
  #saved: TLSSession | undefined;
  #newer = false;

  constructor(
    ctx: SessionContext,
    readonly context: HandleHolder,
    serverHostname: string | null,
    handshakeTimeoutMs: number | undefined,
    session?: TLSSession,
  ) {
    const timeout = handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    if (!Number.isFinite(timeout) || timeout <= 0) throw new ArgumentError("handshakeTimeoutMs: a positive number of ms");
    if (session !== undefined && !(session instanceof TLSSession)) throw new ArgumentError("session: a TLSSession");
    this.handshakeTimeoutMs = timeout;
    this.ctx = ctx;
    this.serverHostname = serverHostname;
    this.device = new SessionObject(ctx, context, serverHostname);
    if (session !== undefined) {
      this.#offered = this.device.call(Op.tlsSessionSet, [session._blob]);
      this.#offered.catch(() => {});
    }
  }

  /** The device handle of the session. */
  get handle(): number {
    return this.device.handle;
  }

  /** Frees the session on the device (its configuration stays while its context lives). */
  close(): Promise<void> {
    return this.device.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The device's description of the session. */
  abstract info(opts?: CallOptions): Promise<I>;
  /** Feeds queued network input until the device takes no more; whether any went in. */
  protected abstract feed(): Promise<boolean>;
  /** Takes `pending` output bytes from the device. */
  protected abstract take(pending: number): Promise<void>;
  /** Network input is queued on the host. */
  protected abstract get hasInput(): boolean;
  /** A step's answer of `n` items (a datagram session's has its timer after them). */
  protected abstract answer(r: unknown, op: string, n: number): StepAnswer;

  /** Whether to step again though no input came (`round`: steps so far in this call). */
  protected stepAgain(_r: StepAnswer, _round: number): boolean {
    return false;
  }

  /** A handshake or a TLS 1.3 ticket came: the device has a newer session to save. */
  protected onTicket(): void {
    this.#newer = true;
  }

  /** The device's answer to the session offered (tls_session_set), awaited by the first handshake step. */
  protected async offered(): Promise<void> {
    const offered = this.#offered;
    this.#offered = undefined;
    await offered;
  }

  /**
   * The session to resume later (a client whose configuration has
   * `resumption`): saved by the device after the handshake (TLS 1.2, DTLS
   * 1.2) or a ticket (TLS 1.3: tickets arrive with the first read after the
   * handshake), sealed; nothing of it stays on the device. The same
   * TLSSession again until a newer one came.
   */
  async session(opts: CallOptions = {}): Promise<TLSSession> {
    if (this.#saved !== undefined && !this.#newer) return this.#saved;
    const blob = await this.device.call(Op.tlsSessionGet, [], opts);
    if (!(blob instanceof Uint8Array)) throw new ProtocolError("tls_session_get: not a byte string");
    this.#newer = false;
    this.#saved = TLSSession._fromDevice(blob);
    return this.#saved;
  }

  /** Starts the handshake's clock at the first call; TimeoutError once handshakeTimeoutMs is over. */
  protected handshakeClock(what: string): void {
    this.#handshakeStart ??= Date.now();
    if (this.handshakeTimeLeft() <= 0) throw new TimeoutError(`the ${what} handshake was not over within ${this.handshakeTimeoutMs} ms`);
  }

  /** Runs a handshake step; "done" (the agreement read from tls_info) or what `other` makes of another state. */
  protected handshakeStep<T>(opts: CallOptions, other: (state: number) => T | undefined = () => undefined): Promise<"done" | T | Want> {
    return this.loop(Op.tlsHandshakeStep, [], 2, atLeast(this.ctx, opts, HANDSHAKE_TIMEOUT_MS), async ({ state }) => {
      if (state !== TlsState.done) return other(state);
      this.agreed = await this.info();
      this.onTicket(); // a handshake is a session to save too
      return "done" as const;
    });
  }

  /**
   * Ms left for the handshake (handshakeTimeoutMs from the first doHandshake();
   * all of it before that, Infinity once it is over): what a wait for the
   * peer may take.
   */
  handshakeTimeLeft(): number {
    if (this.agreed?.established) return Number.POSITIVE_INFINITY;
    return this.#handshakeStart === undefined ? this.handshakeTimeoutMs : this.#handshakeStart + this.handshakeTimeoutMs - Date.now();
  }

  /** Sends close_notify (its record lands in the output). */
  async shutdown(opts: CallOptions = {}): Promise<void> {
    await this.loop(Op.tlsCloseNotify, [], 2, opts, async ({ state }) => (state === TlsState.done ? true : undefined));
  }

  /** The ALPN protocol agreed on in the handshake (python-mbedtls's `negotiated_protocol`). */
  negotiatedProtocol(): string | undefined {
    return this.agreed?.alpnProtocol;
  }

  /** "TLSv1.2" or "TLSv1.3" ("DTLSv1.2") after the handshake. */
  negotiatedTlsVersion(): string | undefined {
    return this.agreed?.version;
  }

  /** The cipher suite after the handshake: [Mbed TLS's name, IANA number]. */
  cipher(): [string, number] | undefined {
    const i = this.agreed;
    return i?.cipher !== undefined && i.cipherId !== undefined ? [i.cipher, i.cipherId] : undefined;
  }

  /** The peer's certificate (DER) after the handshake, when it fits an answer. */
  peerCertificate(): Uint8Array | undefined {
    return this.agreed?.peerCertificate;
  }

  /**
   * Feeds what the device takes, runs `op`, takes its output; again while
   * the session wants to write (its output is taken now), wants to read and
   * more input is at hand, or stepAgain() says so. `done` maps a settled
   * step to the result, undefined to go on.
   */
  protected async loop<T>(
    op: number,
    args: readonly unknown[],
    n: number,
    opts: CallOptions,
    done: (r: StepAnswer) => Promise<T | undefined>,
  ): Promise<T | Want> {
    for (let round = 0; ; round++) {
      const fed = await this.feed();
      let r: StepAnswer;
      try {
        r = this.answer(await this.device.call(op, args, opts), `op ${op}`, n);
      } catch (e) {
        throw await this.failed(e);
      }
      await this.take(r.pending);
      const out = await done(r);
      if (out !== undefined) return out;
      if (r.state === TlsState.ticket) {
        this.onTicket(); // a TLS 1.3 ticket came: session() saves it; read or write again
        continue;
      }
      if (r.state === TlsState.wantWrite) {
        if (r.pending === 0) return WantWrite; // nothing was taken: stepping again would change nothing
        continue;
      }
      if (r.state === TlsState.closed) return WantRead;
      if (!fed && !this.hasInput && !this.stepAgain(r, round)) return WantRead;
    }
  }

  /** The error a failed step throws, typed by the reason tls_info gives (tls-errors.ts); the alert taken first. */
  private async failed(e: unknown): Promise<unknown> {
    if (!(e instanceof DeviceError)) return e;
    try {
      const info = await this.info();
      await this.take(info.pending);
      return tlsError(e, { verifyBits: info.verifyBits, alert: info.alert, refusedHandshake: info.refusedHandshake });
    } catch {
      return e; // the original error says enough
    }
  }
}

/** A TLS session on the device over buffers the caller moves (python-mbedtls's `TLSWrappedBuffer`). */
export class TLSWrappedBuffer extends WrappedSession<TLSInfo> {
  #incoming: Uint8Array[] = [];
  #outgoing: Uint8Array[] = [];
  #outLength = 0;

  /** @internal Made by `context.wrapBuffers()`. */
  constructor(ctx: SessionContext, context: HandleHolder, serverHostname: string | null, opts: TLSWrapOptions = {}) {
    super(ctx, context, serverHostname, opts.handshakeTimeoutMs, opts.session);
  }

  /** Queues bytes from the network; the device gets them as its ring takes them. */
  receiveFromNetwork(data: Uint8Array): void {
    const d = checkBytes(data, "receiveFromNetwork()");
    if (d.length > 0) this.#incoming.push(Uint8Array.from(d));
  }

  /** Bytes waiting for the network (the first `max`), not consumed. */
  peekOutgoing(max = Number.POSITIVE_INFINITY): Uint8Array {
    const all = this.#outgoing.length === 1 ? (this.#outgoing[0] as Uint8Array) : Buffer.concat(this.#outgoing);
    this.#outgoing = all.length > 0 ? [all] : [];
    return all.subarray(0, Math.min(max, all.length));
  }

  /** Drops the first `n` bytes waiting for the network (they were sent). */
  consumeOutgoing(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.#outLength)
      throw new ArgumentError(`consumeOutgoing(${n}): ${this.#outLength} bytes wait`);
    const all = this.peekOutgoing();
    this.#outgoing = n < all.length ? [all.subarray(n)] : [];
    this.#outLength -= n;
  }

  /** Bytes waiting for the network. */
  get outgoingLength(): number {
    return this.#outLength;
  }

  /** Bytes received from the network that the device has not taken yet. */
  get incomingLength(): number {
    return this.#incoming.reduce((n, b) => n + b.length, 0);
  }

  /**
   * Runs the handshake as far as the bytes at hand allow: "done", or
   * WantRead (send what peekOutgoing() holds, bring more bytes from the
   * network, call again). A failure throws Mbed TLS's error typed by its
   * reason (tls-errors.ts: TLSCertificateError naming the verify flags,
   * TLSAlertError the peer's alert, TLSHandshakeError Mbed TLS's reason);
   * Mbed TLS's alert is then in peekOutgoing(). A call after
   * `handshakeTimeoutMs` since the first one throws TimeoutError.
   */
  async doHandshake(opts: CallOptions = {}): Promise<"done" | Want> {
    this.handshakeClock("TLS");
    await this.offered();
    return this.handshakeStep(opts);
  }

  /**
   * The network reached the end of its stream: throws TLSConnectionError
   * when that cut the handshake or a record short (the device holds part of
   * one), resolves when it fell between records (whether a missing
   * close_notify matters is the caller's call).
   */
  async networkEnded(opts: CallOptions = {}): Promise<void> {
    const info = await this.info(opts);
    if (info.fatal !== 0) return;
    if (!info.established) throw new TLSConnectionError("the peer closed the connection before the handshake was over");
    const held = info.inPending + this.incomingLength;
    if (held > 0) throw new TLSConnectionError(`the peer closed the connection in the middle of a record (${held} bytes of it came)`);
  }

  /** Application data (at most `max` bytes, default the device's largest record); an empty array once the peer sent close_notify; WantRead when more network bytes are needed. */
  async read(max = this.ctx.tls.inRecord || 16384, opts: CallOptions = {}): Promise<Uint8Array | Want> {
    if (!Number.isInteger(max) || max < 1) throw new ArgumentError("read(max): max is a positive integer");
    return this.loop(Op.tlsRead, [Math.min(max, this.ctx.streamChunk)], 3, opts, async ({ state, items }) => {
      if (state === TlsState.closed) return new Uint8Array(0);
      const data = items[1];
      if (!(data instanceof Uint8Array)) throw new ProtocolError("tls_read: data is not a byte string");
      return state === TlsState.done && data.length > 0 ? data : undefined;
    });
  }

  /**
   * Encrypts as much of `data` as whole records carry now; resolves with the
   * bytes written (its ciphertext is in peekOutgoing()). One call sends at
   * most what the device's output ring takes as one record (so no request
   * carries bytes the device would refuse), and less while the line loses
   * frames (streamChunk).
   */
  async write(data: Uint8Array, opts: CallOptions = {}): Promise<number | Want> {
    const d = checkBytes(data, "write()").subarray(0, Math.min(this.ctx.streamChunk, this.writePiece()));
    return this.loop(Op.tlsWrite, [d], 3, opts, async ({ state, items }) =>
      state === TlsState.done ? uint(items[1], "tls_write: written") : undefined,
    );
  }

  /** Plaintext bytes one tls_write is given: the output ring less a record's largest expansion, or the request size from firmware that does not say its ring. */
  private writePiece(): number {
    const ring = this.ctx.tls.ring;
    return ring > RECORD_EXPANSION_MAX ? ring - RECORD_EXPANSION_MAX : this.ctx.chunkSize;
  }

  /** Writes all of `data`, record after record. */
  async writeAll(data: Uint8Array, opts: CallOptions = {}): Promise<void> {
    for (let off = 0; off < data.length; ) {
      const n = await this.write(data.subarray(off), opts);
      if (typeof n !== "number") throw new ProtocolError("tls_write: no room after the output was taken");
      off += n;
    }
  }

  /** The device's description of the session. */
  async info(opts: CallOptions = {}): Promise<TLSInfo> {
    return parseInfo(await this.device.call(Op.tlsInfo, [], opts));
  }

  protected get hasInput(): boolean {
    return this.#incoming.length > 0;
  }

  protected answer(r: unknown, op: string, n: number): StepAnswer {
    return stepResult(r, op, n);
  }

  /** Feeds queued network bytes until the device's ring is full; whether any went in. */
  protected async feed(): Promise<boolean> {
    let any = false;
    while (this.#incoming.length > 0) {
      const head = this.#incoming[0] as Uint8Array;
      const piece = head.subarray(0, this.ctx.streamChunk);
      const took = uint(await this.device.call(Op.tlsFeed, [piece]), "tls_feed: result");
      if (took > piece.length) throw new ProtocolError("tls_feed: took more than it was given");
      any ||= took > 0;
      if (took === head.length) this.#incoming.shift();
      else this.#incoming[0] = head.subarray(took);
      if (took < piece.length) break;
    }
    return any;
  }

  /** Takes `pending` output bytes from the device. */
  protected async take(pending: number): Promise<void> {
    while (pending > 0) {
      const want = Math.min(pending, this.ctx.streamChunk);
      const r = await this.device.call(Op.tlsTake, [want]);
      if (!(r instanceof Uint8Array) || r.length > want) throw new ProtocolError("tls_take: not the bytes asked for");
      if (r.length === 0) break;
      this.#outgoing.push(r);
      this.#outLength += r.length;
      pending -= r.length;
    }
  }
}

/**
 * A TLSWrappedBuffer pumped through a connected net.Socket (python-mbedtls's
 * `TLSWrappedSocket`): what arrives is fed to the session, what the session
 * writes is sent. Every wait for the peer ends after `timeoutMs`.
 */
export class TLSWrappedSocket {
  readonly buffer: TLSWrappedBuffer;
  readonly socket: Socket;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  /** @internal Made by `context.wrapSocket()`. */
  constructor(buffer: TLSWrappedBuffer, socket: Socket) {
    this.buffer = buffer;
    this.socket = socket;
    socket.on("data", (d: Buffer) => {
      buffer.receiveFromNetwork(d);
      this.#wake?.();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake?.();
    });
    socket.on("error", (e) => {
      this.#error = e;
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wake?.();
    });
  }

  /** Runs the handshake to its end, within `timeoutMs` and the buffer's handshakeTimeoutMs (TimeoutError). */
  async doHandshake(timeoutMs = HANDSHAKE_TIMEOUT_MS): Promise<void> {
    while ((await this.flushAfter(this.buffer.doHandshake())) !== "done")
      await this.waitForPeer(Math.max(0, Math.min(timeoutMs, this.buffer.handshakeTimeLeft())), "the handshake");
  }

  /** Sends all of `data`. */
  async send(data: Uint8Array): Promise<void> {
    for (let off = 0; off < data.length; ) {
      const n = await this.flushAfter(this.buffer.write(data.subarray(off)));
      if (typeof n !== "number") throw new ProtocolError("tls_write: no room after the output was taken");
      off += n;
    }
  }

  /** Up to `max` bytes of application data; empty once the peer closed. */
  async recv(max = 16384, timeoutMs = HANDSHAKE_TIMEOUT_MS): Promise<Uint8Array> {
    for (;;) {
      const r = await this.flushAfter(this.buffer.read(max));
      if (r instanceof Uint8Array) return r;
      if (this.#ended && this.buffer.incomingLength === 0) {
        await this.buffer.networkEnded(); // a record cut short is TLSConnectionError
        return new Uint8Array(0);
      }
      await this.waitForPeer(timeoutMs, "data");
    }
  }

  /** Sends close_notify and ends the socket's writing side. */
  async shutdown(): Promise<void> {
    await this.flushAfter(this.buffer.shutdown());
    this.socket.end();
  }

  /** Frees the device session and destroys the socket. */
  async close(): Promise<void> {
    this.socket.destroy();
    await this.buffer.close();
  }

  /** Sends what the session wrote, whether `p` settles or fails (a failed handshake's alert goes out too). */
  private async flushAfter<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } finally {
      const out = this.buffer.peekOutgoing();
      if (out.length > 0 && !this.socket.destroyed) {
        this.socket.write(Uint8Array.from(out));
        this.buffer.consumeOutgoing(out.length);
      }
    }
  }

  private waitForPeer(timeoutMs: number, what: string): Promise<void> {
    if (this.#error) return Promise.reject(new TLSConnectionError(`the connection to the peer failed: ${this.#error.message}`));
    if (this.buffer.incomingLength > 0) return Promise.resolve();
    if (this.#ended) return Promise.reject(new TLSConnectionError(`the peer closed the connection before ${what} was over`));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        reject(new TimeoutError(`no bytes from the peer for ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }
}
