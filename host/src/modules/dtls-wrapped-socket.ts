// python-mbedtls's DTLS socket (the seed's "DTLS client and server"):
// `context.wrapSocket(dgramSocket, serverHostname)` of a DTLS context, one
// DTLSWrappedBuffer (dtls-buffer.ts) pumped through a Node `dgram` socket,
// promise-based. A client wraps, `connect(port, host)`s, `doHandshake()`s,
// then `send()`s and `recv()`s whole datagrams. A server wraps a socket,
// `bind()`s it, and `accept()` resolves [connection, address] on the next
// datagram from a peer without a connection: a wrapped socket bound to that
// peer (its datagrams go to it, its sends go there), with a device session
// of its own, as python-mbedtls's accept connects a socket to the peer. Its
// first doHandshake() throws HelloVerifyRequest (a cookie server: the
// device answered the cookie-less ClientHello and reset the session), and
// `conn.accept()` then hands the same device session on for the peer's
// next ClientHello, as python-mbedtls's `conn.accept()` does.
//
// Retransmission is Mbed TLS's on the device's clock: a wait for the peer
// ends when the buffer's nextTimeout() fires, and the handshake (or read)
// steps again, so the device resends its flight. dev.dtls.connect() and
// createServer() (dtls-socket.ts) are the one-call forms.

import type { RemoteInfo, Socket as UdpSocket } from "node:dgram";
import { ArgumentError, ProtocolError, TimeoutError } from "../base/errors.js";
import { checkBytes } from "../base/util.js";
import { type DTLSInfo, type DTLSWrapOptions, type DTLSWrappedBuffer, HelloVerifyRequest, WantRead } from "./dtls-buffer.js";
import type { PeerAddress } from "./dtls-socket.js";
import { TLSConnectionError } from "./tls-errors.js";

/** How long one call waits for the peer by default. */
const WAIT_MS = 60_000;
/** Peers waiting for accept() at most; datagrams of more are dropped, as UDP would. */
const ACCEPT_BACKLOG = 64;
/** Datagrams kept for a socket that is not reading at most; more are dropped, as UDP would. */
const INBOX_MAX = 1024;

/** What a wrapped socket needs of its DTLS context (dtls.ts's DTLSContext). */
export interface WrappingContext {
  readonly server: boolean;
  wrapBuffers(serverHostname?: string | null, opts?: DTLSWrapOptions): DTLSWrappedBuffer;
}

const peerKey = (p: PeerAddress): string => `${p.address}|${p.port}`;

/** A server's bound socket: the connections by peer, and the peers waiting for accept(). */
class Listener {
  readonly conns = new Map<string, DTLSWrappedSocket>();
  readonly waiting: { peer: PeerAddress; datagrams: Uint8Array[] }[] = [];
  wake: (() => void) | undefined;
  dropped = 0;

  receive(d: Uint8Array, peer: PeerAddress): void {
    const key = peerKey(peer);
    const conn = this.conns.get(key);
    if (conn) {
      conn._receive(d);
      return;
    }
    const w = this.waiting.find((x) => peerKey(x.peer) === key);
    if (w) w.datagrams.push(d);
    else if (this.waiting.length < ACCEPT_BACKLOG) this.waiting.push({ peer, datagrams: [d] });
    else this.dropped++;
    this.wake?.();
  }
}

/**
 * A DTLS session of the device over a dgram socket (python-mbedtls's
 * `TLSWrappedSocket` of a DTLS context). A server's wrapped socket only
 * accepts; its connections (from `accept()`) and a client's run sessions.
 */
export class DTLSWrappedSocket implements AsyncDisposable {
  /** The dgram socket (a server's connections share their server's). */
  readonly socket: UdpSocket;
  readonly context: WrappingContext;
  readonly #opts: DTLSWrapOptions;
  #buffer: DTLSWrappedBuffer | undefined;
  /** A server connection's peer (its sends go there). */
  readonly #peer: PeerAddress | undefined;
  /** A server's listening side, for the bound socket and its connections. */
  readonly #listener: Listener | undefined;
  #inbox: Uint8Array[] = [];
  #wake: (() => void) | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #rest: Uint8Array = new Uint8Array(0);
  #established = false;
  #helloVerified = false;
  #closed = false;
  readonly #onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    const d = Uint8Array.from(msg);
    if (this.#listener) this.#listener.receive(d, { address: rinfo.address, port: rinfo.port });
    else this._receive(d);
  };
  /** A UDP error (ICMP port unreachable while the peer is away, ...) is no failure of the session: DTLS times out instead. */
  readonly #onError = (): void => {};

  /** @internal Made by `context.wrapSocket()` (dtls.ts) and by accept(). */
  constructor(
    context: WrappingContext,
    socket: UdpSocket,
    serverHostname: string | null | undefined,
    opts: DTLSWrapOptions = {},
    conn?: { buffer: DTLSWrappedBuffer; peer: PeerAddress; listener: Listener },
  ) {
    this.context = context;
    this.socket = socket;
    this.#opts = opts;
    if (conn) {
      this.#buffer = conn.buffer;
      this.#peer = conn.peer;
      this.#listener = conn.listener;
      conn.listener.conns.set(peerKey(conn.peer), this);
      return;
    }
    if (context.server) {
      this.#listener = new Listener();
      this.#listener.wake = () => this.#wake?.();
    } else this.#buffer = context.wrapBuffers(serverHostname, opts);
    socket.on("message", this.#onMessage);
    socket.on("error", this.#onError);
  }

  /** The session (undefined on a server's listening socket, and on a connection that accept() handed on). */
  get buffer(): DTLSWrappedBuffer | undefined {
    return this.#buffer;
  }

  /** A server connection's peer. */
  get remoteAddress(): PeerAddress | undefined {
    return this.#peer;
  }

  /** Binds the socket (a server's; default an ephemeral port on every interface); resolves with its address. */
  bind(port = 0, address?: string): Promise<PeerAddress> {
    return new Promise((resolve, reject) => {
      this.socket.once("error", reject);
      this.socket.bind(port, address, () => {
        this.socket.off("error", reject);
        const a = this.socket.address();
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  /** Connects the socket to the server (a client's): its datagrams go there, and only the server's come in. */
  connect(port: number, host = "localhost"): Promise<void> {
    if (this.context.server) throw new ArgumentError("connect(): a client's socket (a server's accept()s)");
    return new Promise((resolve, reject) => {
      this.socket.once("error", reject);
      this.socket.connect(port, host, () => {
        this.socket.off("error", reject);
        resolve();
      });
    });
  }

  /**
   * The next peer: resolves once a datagram came from an address without a
   * connection, with a connection bound to it (a new device session) and
   * the address. On a connection whose doHandshake() threw
   * HelloVerifyRequest: once the peer's next datagram came, a connection
   * with the same device session (this one is spent), as python-mbedtls's
   * `conn.accept()`. TimeoutError after `timeoutMs`.
   */
  async accept(timeoutMs = WAIT_MS): Promise<[DTLSWrappedSocket, PeerAddress]> {
    const l = this.#listener;
    if (l === undefined) throw new ArgumentError("accept(): a server's socket (a client connect()s)");
    if (this.#peer === undefined) {
      await this.#until(() => l.waiting.length > 0, Date.now() + timeoutMs, "a datagram");
      const { peer, datagrams } = l.waiting.shift() as { peer: PeerAddress; datagrams: Uint8Array[] };
      const conn = new DTLSWrappedSocket(this.context, this.socket, null, this.#opts, {
        buffer: this.context.wrapBuffers(null, this.#opts),
        peer,
        listener: l,
      });
      conn.#inbox = datagrams;
      return [conn, peer];
    }
    if (!this.#helloVerified || this.#buffer === undefined)
      throw new ArgumentError("accept() on a connection: after its doHandshake() threw HelloVerifyRequest");
    await this.#until(() => this.#inbox.length > 0, Date.now() + timeoutMs, "the peer's next datagram");
    const conn = new DTLSWrappedSocket(this.context, this.socket, null, this.#opts, {
      buffer: this.#buffer,
      peer: this.#peer,
      listener: l,
    });
    conn.#inbox = this.#inbox.splice(0);
    this.#buffer = undefined;
    this.#closed = true;
    return [conn, this.#peer];
  }

  /**
   * The client's transport identity, e.g. its address as bytes
   * (python-mbedtls's `setcookieparam`): the cookie is bound to it. A
   * server connection sets it before each doHandshake() after accept().
   */
  setCookieParam(param: Uint8Array): Promise<void> {
    return this.#session().setCookieParam(param);
  }

  /**
   * Runs the handshake to its end, stepping again whenever the device's
   * retransmission timer fires. Throws HelloVerifyRequest on a cookie
   * server's first ClientHello (then `accept()` on this connection), the
   * handshake's typed failure (TLSHandshakeError, TLSAlertError, ...), or
   * TimeoutError when it is not over within `timeoutMs` (and the buffer's
   * handshakeTimeoutMs).
   */
  async doHandshake(timeoutMs = WAIT_MS): Promise<void> {
    const buffer = this.#session();
    this.#helloVerified = false;
    const deadline = Date.now() + Math.min(timeoutMs, buffer.handshakeTimeLeft());
    for (;;) {
      const r = await this.#step((b) => b.doHandshake());
      if (r === "done") {
        this.#established = true;
        return;
      }
      if (r === HelloVerifyRequest) {
        this.#helloVerified = true;
        throw new HelloVerifyRequest();
      }
      if (r !== WantRead) throw new ProtocolError("tls_handshake_step: neither done, WantRead nor HelloVerifyRequest");
      await this.#untilInput(deadline, "the handshake");
    }
  }

  /** Sends `datagram` as one record in one UDP datagram; resolves with its length (python-mbedtls's `send`). */
  async send(datagram: Uint8Array): Promise<number> {
    const d = Uint8Array.from(checkBytes(datagram, "send()"));
    return this.#step((b) => b.write(d));
  }

  /**
   * The next datagram of application data, whole (empty once the peer sent
   * close_notify). With `bufsize`, at most that many bytes, the rest of the
   * datagram at the next recv(), as mbedtls_ssl_read() gives it.
   * TimeoutError after `timeoutMs` without one.
   */
  async recv(bufsize = Number.POSITIVE_INFINITY, timeoutMs = WAIT_MS): Promise<Uint8Array> {
    if (!(bufsize >= 1)) throw new ArgumentError("recv(bufsize): bufsize is 1 or more");
    if (this.#rest.length === 0) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = await this.#step((b) => b.read());
        if (r instanceof Uint8Array) {
          if (r.length === 0) return r;
          this.#rest = r;
          break;
        }
        await this.#untilInput(deadline, "a datagram");
      }
    }
    const out = this.#rest.subarray(0, Math.min(bufsize, this.#rest.length));
    this.#rest = this.#rest.subarray(out.length);
    return out;
  }

  /** Sends close_notify. */
  async shutdown(): Promise<void> {
    await this.#step((b) => b.shutdown());
  }

  /** The device's description of the session. */
  info(): Promise<DTLSInfo> {
    return this.#step((b) => b.info());
  }

  /**
   * Sends close_notify (an established session), frees the device session
   * and stops reading: a client's and a server's bound socket close their
   * dgram socket (a server's connections with it), a connection leaves its
   * server's socket open.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#established) await this.shutdown().catch(() => {});
    this.#closed = true;
    this.#wake?.();
    const buffer = this.#buffer;
    this.#buffer = undefined;
    await buffer?.close().catch(() => {});
    const l = this.#listener;
    if (this.#peer !== undefined && l !== undefined) {
      if (l.conns.get(peerKey(this.#peer)) === this) l.conns.delete(peerKey(this.#peer));
      return;
    }
    if (l) await Promise.all([...l.conns.values()].map((c) => c.close()));
    this.socket.off("message", this.#onMessage);
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal A datagram from the peer. */
  _receive(d: Uint8Array): void {
    if (this.#closed || this.#inbox.length >= INBOX_MAX) return;
    this.#inbox.push(d);
    this.#wake?.();
  }

  #session(): DTLSWrappedBuffer {
    if (this.#buffer === undefined)
      throw new ArgumentError(
        this.#listener && this.#peer === undefined
          ? "a server's socket runs no session: accept() gives one per peer"
          : "the DTLS session is closed (or handed on by accept())",
      );
    return this.#buffer;
  }

  /** Feeds the datagrams received, runs `fn` after the calls before it, and sends what the session wrote (a failure's alert too). */
  #step<T>(fn: (b: DTLSWrappedBuffer) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const b = this.#session();
      for (const d of this.#inbox.splice(0)) b.receiveFromNetwork(d);
      try {
        return await fn(b);
      } finally {
        for (const d of b.takeDatagrams()) {
          if (this.#peer) this.socket.send(d, this.#peer.port, this.#peer.address, () => {});
          else this.socket.send(d, () => {});
        }
      }
    };
    const p = this.#chain.then(run);
    this.#chain = p.catch(() => {});
    return p;
  }

  /** Waits for a datagram or the device's retransmission timer (then the session steps again); TimeoutError at `deadline`. */
  #untilInput(deadline: number, what: string): Promise<void> {
    const timer = this.#buffer?.nextTimeout() ?? null;
    return this.#until(() => this.#inbox.length > 0, deadline, what, timer === null ? Number.POSITIVE_INFINITY : Date.now() + timer);
  }

  /** Waits until `ready()` (checked at each datagram) or `timerDue`; TimeoutError at `deadline`, TLSConnectionError once closed. */
  #until(ready: () => boolean, deadline: number, what: string, timerDue = Number.POSITIVE_INFINITY): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let t: NodeJS.Timeout | undefined;
      const check = (): void => {
        const now = Date.now();
        clearTimeout(t);
        if (this.#closed) reject(new TLSConnectionError(`the DTLS socket was closed waiting for ${what}`));
        else if (ready() || now >= timerDue) resolve();
        else if (now >= deadline) reject(new TimeoutError(`nothing from the peer in time, waiting for ${what}`));
        else {
          t = setTimeout(check, Math.max(1, Math.min(deadline, timerDue) - now));
          return;
        }
        this.#wake = undefined;
      };
      this.#wake = check;
      check();
    });
  }
}
