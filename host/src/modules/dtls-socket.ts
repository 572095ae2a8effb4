// The dgram layer of dev.dtls (issue 18): `dev.dtls.connect()` and
// `dev.dtls.createServer()` run DTLS sessions of the device (dtls-buffer.ts,
// sans-I/O) over Node `dgram` sockets and hand out message-oriented
// sessions: `send(datagram)`, 'message' events (or `for await`), `close()`.
// One send is one record is one UDP datagram, and each record the peer sent
// is one message: nothing is merged or split.
//
// Retransmission: every step answer of a datagram session says when the
// device's DTLS timer expires (`nextTimeout()`); the session sets a
// setTimeout for it and steps again then (Mbed TLS resends its last flight),
// no polling.
//
// A server (RFC 6347 §4.2.1, RFC 9146 §6) demultiplexes what arrives on its
// one socket: a record of content type tls12_cid (25) by the Connection ID
// in its header (bytes 11 .. 11 + the configuration's CID length), anything
// else by the source address. A ClientHello from an unknown address goes to
// the server's one "acceptor" session: with cookies the device answers it
// with a HelloVerifyRequest and resets the acceptor, so a flood of
// ClientHellos without a cookie costs no device session; a ClientHello with
// a valid cookie makes the acceptor that peer's session (a new acceptor is
// made for the next peer, and freed again after acceptorIdleMs without
// ClientHellos). A session whose peer's address changed (NAT rebinding,
// with CID) answers the new address only once a record from there was
// authenticated by Mbed TLS (a message came out of it); before that the
// replies go to the old one.
//
// Device calls of one session run one after another (#step), reads and
// writes on the same chain.

import { randomBytes } from "node:crypto";
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { EventEmitter } from "node:events";
import { isIP } from "node:net";
import { ArgumentError, MbedlinkError, ProtocolError, TimeoutError } from "../base/errors.js";
import { checkBytes } from "../base/util.js";
import { type DTLSInfo, type DTLSWrapOptions, type DTLSWrappedBuffer, HelloVerifyRequest, WantRead } from "./dtls-buffer.js";
import { TLSConnectionError } from "./tls-errors.js";
import type { TLSSession } from "./tls-session.js";

/** What this layer needs of a DTLS context (dtls.ts's DTLSContext, kept structural so the files do not import each other). */
export interface DatagramContext {
  readonly server: boolean;
  readonly ready: Promise<void>;
  readonly configuration: { readonly options: { readonly cid?: number | undefined; readonly antiReplay?: boolean | undefined } };
  wrapBuffers(serverHostname?: string | null, opts?: DTLSWrapOptions): DTLSWrappedBuffer;
  close(): Promise<void>;
}

/** A UDP peer. */
export interface PeerAddress {
  address: string;
  port: number;
}

/** Options of the client side of dev.dtls.connect() that this layer takes (the configuration's are dtls.ts's). */
export interface DatagramConnectOptions {
  /** Default "localhost". */
  host?: string | undefined;
  port?: number | undefined;
  /** A dgram socket to run the session over (kept open at close when given); else one is made and bound to an ephemeral port. */
  socket?: UdpSocket | undefined;
  /** The server's name (SNI, and what its certificate must carry). */
  servername?: string | null | undefined;
  /** The whole handshake must be over within this many ms (TimeoutError); default the context's. */
  handshakeTimeoutMs?: number | undefined;
  /** A session saved earlier (`session()`) to resume (the configuration has `resumption`). */
  session?: TLSSession | undefined;
}

/** Options of dev.dtls.createServer(). */
export interface DTLSServerOptions {
  /** Each session's handshake must be over within this many ms, else it is freed and 'sessionError' says why; default the context's. */
  handshakeTimeoutMs?: number;
  /** How long the acceptor session stays after the last ClientHello from an unknown address (default 2000 ms); 0: freed at once. */
  acceptorIdleMs?: number;
  /** ClientHellos from unknown addresses waiting for the acceptor at most (default 64); more are dropped, as UDP would. */
  acceptQueue?: number;
  /** A session with no message either way for this many ms is closed (close_notify; default 0: never). A peer gone without close_notify otherwise keeps its device session. */
  idleTimeoutMs?: number;
  /** The socket's family (default "udp4"; "udp6" to listen on an IPv6 address). */
  type?: "udp4" | "udp6";
}

/** The cipher suite of a session: Mbed TLS's name and the IANA number. */
export interface DatagramCipher {
  name: string;
  id: number;
}

const CONTENT_HANDSHAKE = 22;
const CONTENT_TLS12_CID = 25;
const HANDSHAKE_CLIENT_HELLO = 1;
/** DTLS record header without CID: type, version, epoch, sequence number, length. */
const RECORD_HEADER = 13;
/** DTLS handshake header: type, length, message_seq, fragment_offset, fragment_length. */
const HANDSHAKE_HEADER = 12;
/** Where the CID of a tls12_cid record starts (RFC 9146 §4: after the sequence number). */
const CID_OFFSET = 11;
/** Messages kept for a session nobody listens to yet ('message' listener or iterator); more are dropped, as UDP would. */
const BACKLOG_MAX = 1024;
/** Datagrams waiting for a session's device steps at most; more are dropped, as UDP would. */
const INBOX_MAX = 4096;

const peerKey = (p: PeerAddress): string => `${p.address.includes(":") ? `[${p.address}]` : p.address}:${p.port}`;
const samePeer = (a: PeerAddress, b: PeerAddress): boolean => a.address === b.address && a.port === b.port;
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

/** An IPv6 address as its 16 bytes (a zone id is dropped; an embedded IPv4 tail is taken). */
function ipv6Bytes(address: string): Uint8Array {
  let a = address.split("%")[0] as string;
  const out = new Uint8Array(16);
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const [x, y, z, w] = (v4[1] as string).split(".").map(Number) as [number, number, number, number];
    a = `${a.slice(0, v4.index)}${((x << 8) | y).toString(16)}:${((z << 8) | w).toString(16)}`;
  }
  const [head, tail] = a.includes("::") ? (a.split("::") as [string, string]) : [a, undefined];
  const groups = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** The transport id the device's cookie binds (dtls_setup's peer): the address's bytes (4 or 16) and the port, big-endian. */
export function transportId(p: PeerAddress): Uint8Array {
  const ip = isIP(p.address) === 4 ? Uint8Array.from(p.address.split(".").map(Number)) : ipv6Bytes(p.address);
  const out = new Uint8Array(ip.length + 2);
  out.set(ip);
  out[ip.length] = p.port >> 8;
  out[ip.length + 1] = p.port & 0xff;
  return out;
}

const uint24 = (d: Uint8Array, at: number): number => ((d[at] ?? 0) << 16) | ((d[at + 1] ?? 0) << 8) | (d[at + 2] ?? 0);

/**
 * A whole DTLS 1.2 ClientHello in epoch 0, in one fragment (what only the
 * acceptor takes from an unknown address). A ClientHello in fragments is
 * not taken before the cookie exchange, as OpenSSL's DTLSv1_listen does not:
 * its reassembly would be state a spoofed address could make the server keep.
 */
export function isClientHello(d: Uint8Array): boolean {
  if (d.length < RECORD_HEADER + HANDSHAKE_HEADER || d[0] !== CONTENT_HANDSHAKE || d[3] !== 0 || d[4] !== 0) return false;
  const h = RECORD_HEADER;
  return d[h] === HANDSHAKE_CLIENT_HELLO && uint24(d, h + 6) === 0 && uint24(d, h + 9) === uint24(d, h + 1);
}

/** The CID of a tls12_cid record whose CIDs are `cidLen` bytes, or undefined. */
export function recordCid(d: Uint8Array, cidLen: number): string | undefined {
  if (cidLen === 0 || d[0] !== CONTENT_TLS12_CID || d.length < RECORD_HEADER + cidLen) return undefined;
  return hex(d.subarray(CID_OFFSET, CID_OFFSET + cidLen));
}

/** How a session reaches the network: its socket, and its server's tables. */
interface SessionLink {
  /** Whether the peer may move to the address of a record that authenticated (a server with CID and anti-replay). */
  readonly follows: boolean;
  send(datagram: Uint8Array, to: PeerAddress): void;
  /** The handshake is over (a server registers the CID and calls onSession). */
  established(session: DTLSSession): void;
  /** A record from `to` was authenticated: the peer moved there from `from`. */
  moved(session: DTLSSession, from: PeerAddress): void;
  /** The session is over (its device session is freed). */
  ended(session: DTLSSession): Promise<void>;
}

/**
 * A DTLS session of the device with one peer: `send(datagram)`, 'message'
 * (one Uint8Array per record the peer sent), 'connect' after the handshake,
 * 'close' at the end, 'error' (only when listened to; the failure is also
 * `ready`'s rejection and the iterator's throw). `for await (const m of
 * session)` reads messages until the session ends.
 */
export class DTLSSession extends EventEmitter implements AsyncIterable<Uint8Array>, AsyncDisposable {
  /** The device session. */
  readonly buffer: DTLSWrappedBuffer;
  /** Resolves once the handshake is over; rejects with its failure (typed: TimeoutError, TLSHandshakeError, TooManyHandlesError...). */
  readonly ready: Promise<void>;
  /** "DTLSv1.2" after the handshake. */
  version: string | undefined;
  /** The agreed cipher suite after the handshake. */
  cipher: DatagramCipher | undefined;
  /** This side's Connection ID (what the peer puts in its records), undefined when CID is not in use. */
  cid: Uint8Array | undefined;
  /** The peer's Connection ID (what this side puts in its records), undefined when CID is not in use. */
  peerCid: Uint8Array | undefined;
  /** The MTU the device was given for this session, undefined when none was set. */
  mtu: number | undefined;
  /** The peer's certificate (DER), when it sent one. */
  peerCertificate: Uint8Array | undefined;
  /** The handshake resumed a saved session (a ticket or session id). */
  resumed = false;
  /** Datagrams from the network this session dropped because its queue was full. */
  dropped = 0;
  readonly #link: SessionLink;
  #peer: PeerAddress;
  #state: "handshake" | "open" | "closing" | "closed" = "handshake";
  #chain: Promise<unknown> = Promise.resolve();
  #inbox: { d: Uint8Array; from: PeerAddress }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #timerDue = false;
  #wake: (() => void) | undefined;
  #error: Error | undefined;
  #closing: Promise<void> | undefined;
  #ended: Promise<void> | undefined;
  #backlog: Uint8Array[] = [];
  #idleMs = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  #resolveReady!: () => void;
  #rejectReady!: (e: Error) => void;

  /** @internal Made by dev.dtls.connect() and by a DTLSServer. */
  constructor(buffer: DTLSWrappedBuffer, peer: PeerAddress, link: SessionLink) {
    super();
    this.buffer = buffer;
    this.#peer = { address: peer.address, port: peer.port };
    this.#link = link;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => {});
    this.on("newListener", (event: string) => {
      if (event === "message") setImmediate(() => this.#drainBacklog());
    });
    void this.#run();
  }

  /** The peer's address: where this session's datagrams go. */
  get remoteAddress(): string {
    return this.#peer.address;
  }

  get remotePort(): number {
    return this.#peer.port;
  }

  /** Whether the handshake is over and the session not closed. */
  get established(): boolean {
    return this.#state === "open";
  }

  /** Whether the session is over (closed, or failed). */
  get closed(): boolean {
    return this.#state === "closed";
  }

  /** Why the session failed, if it did. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** The device's description of the session now (tls_info). */
  info(): Promise<DTLSInfo> {
    return this.#step(() => this.buffer.info());
  }

  /** The session to resume later (a client whose configuration has `resumption`; DTLSWrappedBuffer's session()). */
  session(): Promise<TLSSession> {
    return this.#step(() => this.buffer.session());
  }

  /**
   * Sends one datagram (one record, one UDP datagram; its size at most what
   * one record of the session carries, else the device's BadArgumentError).
   * Waits for the handshake first.
   */
  async send(datagram: Uint8Array): Promise<void> {
    const d = Uint8Array.from(checkBytes(datagram, "send()"));
    if (d.length === 0) throw new ArgumentError("send(): a datagram of one byte or more (an empty record is not delivered as a message)");
    await this.ready;
    if (this.#state !== "open") throw new TLSConnectionError("the DTLS session is closed");
    const n = await this.#step(() => this.buffer.write(d));
    this.#touch();
    if (n !== d.length) throw new ProtocolError(`tls_write: ${String(n)} of a ${d.length}-byte datagram written`);
  }

  /**
   * 'timeout' after `ms` without a message either way once the handshake is
   * over (Node's socket.setTimeout; 0 turns it off); the session stays open
   * unless the listener closes it. A DTLSServer's `idleTimeoutMs` closes
   * its sessions so.
   */
  setTimeout(ms: number, callback?: () => void): this {
    if (!Number.isFinite(ms) || ms < 0) throw new ArgumentError("setTimeout(ms): 0 or more ms");
    this.#idleMs = ms;
    if (callback) this.once("timeout", callback);
    this.#touch();
    return this;
  }

  /** Restarts the idle timer (a message went either way). */
  #touch(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#idleMs === 0 || this.#state !== "open") return;
    this.#idleTimer = setTimeout(() => this.emit("timeout"), this.#idleMs);
  }

  /** Sends close_notify (after the handshake) and frees the device session; 'close' follows. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const open = this.#state === "open";
      if (this.#state !== "closed") this.#state = "closing";
      this.#wake?.();
      if (open) await this.#step(() => this.buffer.shutdown()).catch(() => {});
      await this.#end(undefined);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Messages until the session ends; throws the session's failure. */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const queue: Uint8Array[] = [];
    let waiter: { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: Error) => void } | undefined;
    const settle = () => {
      if (!waiter) return;
      const w = waiter;
      if (queue.length > 0) w.resolve({ value: queue.shift() as Uint8Array, done: false });
      else if (this.#state === "closed") this.#error ? w.reject(this.#error) : w.resolve({ value: undefined, done: true });
      else return;
      waiter = undefined;
    };
    const onMessage = (m: Uint8Array) => {
      queue.push(m);
      settle();
    };
    const stop = () => {
      this.off("message", onMessage);
      this.off("close", settle);
    };
    this.on("message", onMessage);
    this.on("close", settle);
    return {
      next: () =>
        new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
          waiter = { resolve, reject };
          settle();
        }).then((r) => {
          if (r.done) stop();
          return r;
        }),
      return: async () => {
        stop();
        return { value: undefined, done: true };
      },
    };
  }

  /** @internal A datagram from the network for this session (from `from`). */
  _receive(datagram: Uint8Array, from: PeerAddress): void {
    if (this.#state === "closed" || this.#state === "closing") return;
    if (this.#inbox.length >= INBOX_MAX) {
      this.dropped++;
      return;
    }
    this.#inbox.push({ d: datagram, from: { address: from.address, port: from.port } });
    this.#wake?.();
  }

  /** @internal The peer's address (a client whose socket was rebound keeps its server). */
  get _peer(): PeerAddress {
    return this.#peer;
  }

  /** Runs one device step of this session after the ones before it, sends what it wrote, and sets the retransmission timer. */
  #step<T>(fn: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#state === "closed") throw new TLSConnectionError("the DTLS session is closed");
      try {
        return await fn();
      } finally {
        // what the step wrote goes out even when it failed (a fatal alert)
        for (const d of this.buffer.takeDatagrams()) this.#link.send(d, this.#peer);
        this.#arm(this.buffer.nextTimeout());
      }
    };
    const p = this.#chain.then(run);
    this.#chain = p.catch(() => {});
    return p;
  }

  /** Steps again when the device's timer expires (`ms` from now; null: no timer). */
  #arm(ms: number | null): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (ms === null || this.#state === "closed") return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = true;
      this.#wake?.();
    }, ms);
  }

  /** Waits for a datagram, the timer, close(), or `deadline` (TimeoutError). */
  #wait(deadline: number): Promise<void> {
    if (this.#inbox.length > 0 || this.#timerDue || this.#state === "closing" || this.#state === "closed") return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer =
        deadline === Number.POSITIVE_INFINITY
          ? undefined
          : setTimeout(
              () => {
                this.#wake = undefined;
                reject(new TimeoutError(`the DTLS handshake was not over within ${this.buffer.handshakeTimeoutMs} ms`));
              },
              Math.max(0, deadline - Date.now()),
            );
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  async #run(): Promise<void> {
    try {
      await this.#handshake();
      while (this.#state === "open") {
        const item = this.#inbox[0];
        if (item === undefined && !this.#timerDue) {
          await this.#wait(Number.POSITIVE_INFINITY);
          continue;
        }
        this.#timerDue = false;
        // Datagrams from the peer's address go in together; one from another address alone, so what comes out of it is known to be its.
        const n =
          item === undefined ? 0 : samePeer(item.from, this.#peer) ? this.#inbox.findIndex((x) => !samePeer(x.from, this.#peer)) : 1;
        for (const { d } of this.#inbox.splice(0, n < 0 ? this.#inbox.length : n)) this.buffer.receiveFromNetwork(d);
        if (await this.#readAll(item?.from)) {
          // the peer sent close_notify: nothing more to send
          this.#state = "closing";
          this.#closing ??= this.#end(undefined);
          return;
        }
      }
    } catch (e) {
      await this.#end(e instanceof Error ? e : new MbedlinkError(String(e)));
    }
  }

  async #handshake(): Promise<void> {
    const deadline = Date.now() + this.buffer.handshakeTimeoutMs;
    for (;;) {
      if (this.#state !== "handshake") throw new TLSConnectionError("the DTLS session was closed during the handshake");
      this.#timerDue = false;
      for (const { d } of this.#inbox.splice(0)) this.buffer.receiveFromNetwork(d);
      const r = await this.#step(() => this.buffer.doHandshake());
      if (r === "done") break;
      if (r !== WantRead) throw new ProtocolError("tls_handshake_step: neither done nor want_read");
      await this.#wait(deadline);
    }
    const info = await this.#step(() => this.buffer.info());
    this.version = info.version;
    if (info.cipher !== undefined && info.cipherId !== undefined) this.cipher = { name: info.cipher, id: info.cipherId };
    this.cid = info.cid ?? undefined;
    this.peerCid = info.peerCid ?? undefined;
    this.mtu = info.mtu ?? undefined;
    this.peerCertificate = info.peerCertificate;
    this.resumed = info.resumed;
    if (this.#state !== "handshake") throw new TLSConnectionError("the DTLS session was closed during the handshake");
    this.#state = "open";
    this.#link.established(this);
    this.#resolveReady();
    this.#touch();
    this.emit("connect");
  }

  /**
   * Reads every record the device has (one message each). The first message
   * out of a datagram from another address moves the peer there (it was
   * authenticated). True when the peer sent close_notify.
   */
  async #readAll(from: PeerAddress | undefined): Promise<boolean> {
    for (;;) {
      const r = await this.#step(() => this.buffer.read());
      if (!(r instanceof Uint8Array)) {
        if (r !== WantRead) throw new ProtocolError("tls_read: neither data nor want_read");
        return false;
      }
      if (r.length === 0) return true;
      if (from && this.#link.follows && !samePeer(from, this.#peer)) {
        const old = this.#peer;
        this.#peer = { address: from.address, port: from.port };
        this.#link.moved(this, old);
      }
      this.#deliver(r);
    }
  }

  #deliver(m: Uint8Array): void {
    this.#touch();
    if (this.listenerCount("message") > 0 && this.#backlog.length === 0) this.emit("message", m);
    else if (this.#backlog.length < BACKLOG_MAX) this.#backlog.push(m);
    else this.dropped++;
  }

  #drainBacklog(): void {
    while (this.#backlog.length > 0 && this.listenerCount("message") > 0) this.emit("message", this.#backlog.shift());
  }

  /** The end: the timer stopped, the device session freed after the steps queued, 'error' (if listened to) and 'close'. */
  #end(error: Error | undefined): Promise<void> {
    if (this.#ended === undefined) this.#error = error;
    this.#ended ??= this.#free();
    return this.#ended;
  }

  async #free(): Promise<void> {
    this.#state = "closed";
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#idleTimer);
    this.#wake?.();
    await this.#chain;
    await this.buffer.close().catch(() => {});
    await this.#link.ended(this).catch(() => {});
    this.#rejectReady(this.#error ?? new TLSConnectionError("the DTLS session was closed before its handshake was over"));
    if (this.#error && this.listenerCount("error") > 0) this.emit("error", this.#error);
    this.emit("close", this.#error !== undefined);
  }
}

/** A client session's network: its dgram socket (replaced by rebind()) and the server's address. */
class ClientLink implements SessionLink {
  session: DTLSSession | undefined;
  readonly follows = false;

  constructor(
    public socket: UdpSocket,
    public ownsSocket: boolean,
    readonly server: PeerAddress,
    readonly onEnd: () => Promise<void>,
  ) {
    this.attach(socket, ownsSocket);
  }

  readonly onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (samePeer(rinfo, this.server)) this.session?._receive(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), rinfo);
  };

  /** A UDP error (ICMP port unreachable while the peer is away, ...) is no session's failure: DTLS times out instead. */
  readonly onError = (): void => {};

  send(datagram: Uint8Array, to: PeerAddress): void {
    this.socket.send(datagram, to.port, to.address, () => {});
  }

  established(): void {}

  moved(): void {}

  async ended(): Promise<void> {
    this.detach();
    await this.onEnd();
  }

  attach(socket: UdpSocket, owns: boolean): void {
    this.socket = socket;
    this.ownsSocket = owns;
    socket.on("message", this.onMessage);
    socket.on("error", this.onError);
  }

  /** Stops listening on the socket, closing it if the session made it ('error' stays handled for a late one). */
  detach(): void {
    this.socket.off("message", this.onMessage);
    if (this.ownsSocket) {
      try {
        this.socket.close();
      } catch {
        // already closed
      }
    }
  }
}

/** A client session (dev.dtls.connect()): its dgram socket, which `rebind()` replaces. */
export class DTLSClientSession extends DTLSSession {
  readonly #link: ClientLink;

  /** @internal Made by dev.dtls.connect(). */
  constructor(buffer: DTLSWrappedBuffer, link: ClientLink) {
    super(buffer, link.server, link);
    this.#link = link;
    link.session = this;
  }

  /** The dgram socket the session runs over now. */
  get socket(): UdpSocket {
    return this.#link.socket;
  }

  /**
   * Moves the session to another dgram socket (default: a new one bound to
   * an ephemeral port, as when a NAT maps the client anew); the old one is
   * closed if the session made it. With CID the server finds the session by
   * its CID and answers the new address once a record from there
   * authenticated; without, the server does not know the new address and
   * nothing comes back.
   */
  async rebind(socket?: UdpSocket): Promise<void> {
    if (this.closed) throw new TLSConnectionError("the DTLS session is closed");
    const next = socket ?? (await boundSocket(this.#link.server.address));
    this.#link.detach();
    this.#link.attach(next, socket === undefined);
  }
}

/** A new dgram socket for talking to `address` (udp4 or udp6 by its family), bound to an ephemeral port. */
async function boundSocket(address: string): Promise<UdpSocket> {
  const s = createSocket(isIP(address) === 6 ? "udp6" : "udp4");
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.bind(0, () => {
      s.off("error", reject);
      resolve();
    });
  });
  return s;
}

/**
 * dev.dtls.connect() over `ctx` (a client context, closed with the session
 * when `owned`): resolves the host, binds a socket (or takes `opts.socket`),
 * runs the handshake; resolves with the session once it is over, rejects
 * with the handshake's failure (the device session, the socket made and an
 * owned context freed).
 */
export async function connectDatagram(ctx: DatagramContext, owned: boolean, opts: DatagramConnectOptions): Promise<DTLSClientSession> {
  const onEnd = async () => {
    if (owned) await ctx.close();
  };
  let link: ClientLink | undefined;
  let buffer: DTLSWrappedBuffer | undefined;
  try {
    if (ctx.server) throw new ArgumentError("connect(): a client context");
    const { port } = opts;
    if (port === undefined || !Number.isInteger(port) || port <= 0 || port > 65535) throw new ArgumentError("connect(): port 1 to 65535");
    const host = opts.host ?? "localhost";
    const name = opts.servername !== undefined ? opts.servername : isIP(host) === 0 ? host : null;
    const address = isIP(host) !== 0 ? host : (await lookup(host)).address;
    link = new ClientLink(opts.socket ?? (await boundSocket(address)), opts.socket === undefined, { address, port }, onEnd);
    buffer = ctx.wrapBuffers(name, { handshakeTimeoutMs: opts.handshakeTimeoutMs, session: opts.session });
  } catch (e) {
    link?.detach();
    await onEnd().catch(() => {});
    throw e;
  }
  const session = new DTLSClientSession(buffer, link);
  await session.ready;
  return session;
}

/** The server's acceptor session (see the file's head) and the CID it was given. */
interface Acceptor {
  buffer: DTLSWrappedBuffer;
  cid: Uint8Array | undefined;
}

/**
 * A DTLS server of the device on one UDP socket (dev.dtls.createServer()):
 * one DTLSSession per peer, found by the CID of its records or by its
 * address; 'session' with each once its handshake is over (onSession),
 * 'sessionError' (error, peer address) for a peer whose handshake failed or
 * could not get a device session (TooManyHandlesError at the session limit;
 * the other sessions go on), 'close' after close().
 */
export class DTLSServer extends EventEmitter {
  /** The UDP socket the server listens on. */
  readonly socket: UdpSocket;
  /** ClientHellos that came from addresses without a session (each is answered, or counted in `dropped`). */
  clientHellos = 0;
  /** Datagrams dropped: from unknown addresses and not a ClientHello, ClientHellos over the accept queue or replaced by a newer one from the same address. */
  dropped = 0;
  /** HelloVerifyRequests sent (ClientHellos without a valid cookie). */
  helloVerifies = 0;
  readonly #ctx: DatagramContext;
  readonly #owned: boolean;
  readonly #cidLen: number;
  readonly #handshakeTimeoutMs: number | undefined;
  readonly #acceptorIdleMs: number;
  readonly #queueMax: number;
  readonly #idleTimeoutMs: number;
  readonly #byAddr = new Map<string, DTLSSession>();
  readonly #byCid = new Map<string, DTLSSession>();
  readonly #live = new Set<DTLSSession>();
  readonly #pending = new Map<string, { d: Uint8Array; from: PeerAddress }>();
  #accepting: Promise<void> | undefined;
  #acceptor: Acceptor | undefined;
  #idle: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  readonly #link: SessionLink;

  /** @internal Made by dev.dtls.createServer(). */
  constructor(ctx: DatagramContext, owned: boolean, onSession?: (session: DTLSSession) => void, opts: DTLSServerOptions = {}) {
    super();
    if (!ctx.server) throw new ArgumentError("createServer(): a server context");
    const cid = ctx.configuration.options.cid ?? 0;
    const idle = opts.acceptorIdleMs ?? 2000;
    const queue = opts.acceptQueue ?? 64;
    if (!Number.isFinite(idle) || idle < 0) throw new ArgumentError("acceptorIdleMs: 0 or more ms");
    if (!Number.isInteger(queue) || queue < 1) throw new ArgumentError("acceptQueue: 1 or more ClientHellos");
    const idleTimeout = opts.idleTimeoutMs ?? 0;
    if (!Number.isFinite(idleTimeout) || idleTimeout < 0) throw new ArgumentError("idleTimeoutMs: 0 or more ms");
    this.#idleTimeoutMs = idleTimeout;
    this.#ctx = ctx;
    this.#owned = owned;
    this.#cidLen = cid;
    this.#handshakeTimeoutMs = opts.handshakeTimeoutMs;
    this.#acceptorIdleMs = idle;
    this.#queueMax = queue;
    this.#link = {
      // RFC 9146 §6: only a record newer than any before may move the peer; without anti-replay an old one replayed from elsewhere would
      follows: cid > 0 && ctx.configuration.options.antiReplay !== false,
      send: (d, to) => this.socket.send(d, to.port, to.address, () => {}),
      established: (s) => {
        if (this.#cidLen > 0 && s.cid !== undefined) this.#byCid.set(hex(s.cid), s);
        this.emit("session", s);
      },
      moved: (s, from) => {
        if (this.#byAddr.get(peerKey(from)) === s) this.#byAddr.delete(peerKey(from));
        this.#byAddr.set(peerKey(s._peer), s);
      },
      ended: async (s) => {
        this.#live.delete(s);
        for (const m of [this.#byAddr, this.#byCid]) for (const [k, v] of m) if (v === s) m.delete(k);
      },
    };
    this.socket = createSocket(opts.type ?? "udp4");
    this.socket.on("message", (msg: Buffer, rinfo: RemoteInfo) => this.#onMessage(msg, rinfo));
    this.socket.on("error", (e: Error) => {
      if (this.listenerCount("error") > 0) this.emit("error", e);
    });
    if (onSession) this.on("session", onSession);
  }

  /** Binds the socket (default: an ephemeral port on 127.0.0.1); resolves with its address. */
  async listen(port = 0, host = "127.0.0.1"): Promise<PeerAddress> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once("error", reject);
      this.socket.bind(port, host, () => {
        this.socket.off("error", reject);
        resolve();
      });
    });
    return this.address();
  }

  /** The bound address. */
  address(): PeerAddress {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  /** The sessions alive (handshaking or established), the acceptor not counted. */
  get sessions(): DTLSSession[] {
    return [...this.#live];
  }

  /** Whether the acceptor session exists on the device now. */
  get acceptorLive(): boolean {
    return this.#acceptor !== undefined;
  }

  /** Closes every session (close_notify), frees the acceptor, closes the socket (and the context the server made). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#idle);
      this.#pending.clear();
      await this.#accepting;
      await Promise.all([...this.#live].map((s) => s.close()));
      await this.#freeAcceptor();
      await new Promise<void>((resolve) => {
        try {
          this.socket.close(() => resolve());
        } catch {
          resolve(); // never bound
        }
      });
      if (this.#owned) await this.#ctx.close().catch(() => {});
      this.emit("close");
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    const d = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
    const from = { address: rinfo.address, port: rinfo.port };
    const cid = recordCid(d, this.#cidLen);
    const s = (cid !== undefined ? this.#byCid.get(cid) : undefined) ?? this.#byAddr.get(peerKey(from));
    if (s) s._receive(d, from);
    else if (this.#closing || !isClientHello(d)) this.dropped++;
    else this.#admit(d, from);
  }

  /** Queues a ClientHello from an unknown address for the acceptor (the latest one per address). */
  #admit(d: Uint8Array, from: PeerAddress): void {
    const key = peerKey(from);
    this.clientHellos++;
    if (this.#pending.has(key))
      this.dropped++; // the newer ClientHello of that address replaces the one waiting
    else if (this.#pending.size >= this.#queueMax) {
      this.dropped++;
      return;
    }
    this.#pending.set(key, { d: Uint8Array.from(d), from });
    clearTimeout(this.#idle);
    if (this.#accepting === undefined) this.#startAccepting();
  }

  #startAccepting(): void {
    this.#accepting = this.#accept().finally(() => {
      this.#accepting = undefined;
      if (this.#pending.size > 0 && !this.#closing) this.#startAccepting();
      else this.#idleAcceptor();
    });
  }

  /** Hands the queued ClientHellos to the acceptor one by one. */
  async #accept(): Promise<void> {
    for (const [key, { d, from }] of this.#pending) {
      this.#pending.delete(key);
      if (this.#closing) return;
      const known = this.#byAddr.get(key);
      if (known) known._receive(d, from);
      else await this.#offer(d, from);
    }
  }

  /** One ClientHello from an unknown address to the acceptor: HelloVerifyRequest, or the acceptor becomes that peer's session. */
  async #offer(d: Uint8Array, from: PeerAddress): Promise<void> {
    let acceptor: Acceptor | undefined;
    let r: unknown;
    try {
      acceptor = await this.#acceptorFor();
      await acceptor.buffer.setCookieParam(transportId(from));
      acceptor.buffer.receiveFromNetwork(d);
      r = await acceptor.buffer.doHandshake();
      if (r !== HelloVerifyRequest && r !== WantRead) throw new ProtocolError("tls_handshake_step: a handshake done on one ClientHello");
    } catch (e) {
      this.#acceptor = undefined;
      if (acceptor) {
        for (const out of acceptor.buffer.takeDatagrams()) this.#link.send(out, from); // its alert
        await acceptor.buffer.close().catch(() => {});
      }
      this.#sessionError(e, from);
      return;
    }
    const out = acceptor.buffer.takeDatagrams();
    for (const o of out) this.#link.send(o, from);
    if (r === HelloVerifyRequest) {
      this.helloVerifies++; // the device reset the acceptor for the next ClientHello
      return;
    }
    if (out.length === 0) {
      // Nothing answered (not a ClientHello Mbed TLS could take whole): the acceptor may hold part of one, so it goes.
      this.dropped++;
      this.#acceptor = undefined;
      await acceptor.buffer.close().catch(() => {});
      return;
    }
    // A valid cookie (or a configuration without cookies): the acceptor is this peer's session now.
    this.#acceptor = undefined;
    const session = new DTLSSession(acceptor.buffer, from, this.#link);
    if (this.#idleTimeoutMs > 0) session.setTimeout(this.#idleTimeoutMs, () => void session.close());
    this.#live.add(session);
    this.#byAddr.set(peerKey(from), session);
    if (acceptor.cid !== undefined) this.#byCid.set(hex(acceptor.cid), session);
    session.ready.catch((e: unknown) => this.#sessionError(e, from));
  }

  /**
   * The acceptor: a session of the server's context with a CID no live
   * session has. One that has waited longer than half its handshake time
   * (the buffer counts it from its first ClientHello) is replaced, so the
   * peer it ends up with gets the whole handshake time.
   */
  async #acceptorFor(): Promise<Acceptor> {
    const old = this.#acceptor;
    if (old !== undefined && old.buffer.handshakeTimeLeft() >= old.buffer.handshakeTimeoutMs / 2) return old;
    if (old !== undefined) await old.buffer.close().catch(() => {});
    let cid: Uint8Array | undefined;
    if (this.#cidLen > 0)
      do cid = randomBytes(this.#cidLen);
      while (this.#byCid.has(hex(cid)));
    const buffer = this.#ctx.wrapBuffers(null, { handshakeTimeoutMs: this.#handshakeTimeoutMs, cid });
    this.#acceptor = { buffer, cid };
    return this.#acceptor;
  }

  #sessionError(e: unknown, from: PeerAddress): void {
    if (this.listenerCount("sessionError") > 0) this.emit("sessionError", e instanceof Error ? e : new MbedlinkError(String(e)), from);
  }

  /** Frees the acceptor after acceptorIdleMs without ClientHellos from unknown addresses. */
  #idleAcceptor(): void {
    clearTimeout(this.#idle);
    if (this.#acceptor === undefined || this.#closing) return;
    this.#idle = setTimeout(() => void this.#freeAcceptor(), this.#acceptorIdleMs);
  }

  async #freeAcceptor(): Promise<void> {
    const a = this.#acceptor;
    if (a === undefined || this.#accepting) return;
    this.#acceptor = undefined;
    await a.buffer.close().catch(() => {});
  }
}
