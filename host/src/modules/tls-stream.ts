// A TLS session on the device as a Node Duplex (issue 17, slice 3): what
// `dev.tls.connect()`, `context.wrapStream()` and `dev.tls.createServer()`
// hand out. It behaves like Node's tls.TLSSocket as far as stream consumers
// and `https.request({ createConnection })` need: 'secureConnect' (client) /
// 'secure' (both) after the handshake, decrypted bytes as 'data' /
// 'readable', `end()` sends close_notify and ends the socket, `destroy()`
// frees the device session before 'close', failures arrive as 'error' with
// the SDK's typed errors. After the handshake: `alpnProtocol`,
// `getProtocol()`, `getCipher()`, `getPeerCertificate()`, `authorized`,
// `authorizationError`.
//
// Backpressure both ways: the network socket is read (paused mode) only
// while the handshake or a consumer that wants data needs bytes, so a
// consumer that does not read leaves the peer's bytes in the kernel; a
// write is acknowledged only once the device has encrypted it and the
// socket took the records without asking for 'drain'.
//
// Device calls of one session run one after another (#step): the read pump
// and the writer queue on the same chain.

import { createHash, X509Certificate } from "node:crypto";
import { connect as netConnect, type Server, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { ArgumentError, ProtocolError, TimeoutError } from "../base/errors.js";
import type { TLSWrapOptions, TLSWrappedBuffer } from "./tls-buffer.js";
import { TLSConnectionError } from "./tls-errors.js";
import type { TLSSession } from "./tls-session.js";
import { verifyFlagNames } from "./x509-trust.js";

/** Plaintext bytes asked of the device per read (the answer's size caps it further). */
const READ_MAX = 16384;
/** How long a closing stream lets the socket flush its last records (close_notify) before destroying it. */
const FLUSH_GRACE_MS = 5000;

/** What a stream needs of its TLS context (tls.ts's TLSContext, kept structural so the files do not import each other). */
export interface StreamContext {
  readonly server: boolean;
  /** Resolves once the device has the configuration; rejects with its refusal. */
  readonly ready: Promise<void>;
  readonly configuration: { readonly options: { readonly validateCertificates?: boolean | undefined } };
  close(): Promise<void>;
}

/** Options of a stream: its session's (the handshake's timeout, ...) and the stream's own. */
export interface TLSStreamOptions extends TLSWrapOptions {
  /** Keep the writable side open after the peer ended (default false, as Node's TLS sockets). */
  allowHalfOpen?: boolean;
}

/** The peer's certificate in Node's shape (a subset of tls.PeerCertificate), with the DER in `raw`. */
export interface PeerCertificate {
  raw: Buffer;
  subject: Record<string, string>;
  issuer: Record<string, string>;
  subjectaltname: string | undefined;
  valid_from: string;
  valid_to: string;
  serialNumber: string;
  fingerprint: string;
  fingerprint256: string;
  fingerprint512: string;
  /** Node's parsed certificate. */
  x509: X509Certificate;
}

/** What getCipher() answers (Node's tls.CipherNameAndProtocol, plus the IANA number). */
export interface CipherInfo {
  /** Mbed TLS's name, e.g. "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384". */
  name: string;
  /** The IANA (RFC) name, e.g. "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", as Node's `standardName`. */
  standardName: string;
  version: string;
  id: number;
}

/** "CN=a\nO=b" (X509Certificate's form) as { CN: "a", O: "b" }. */
function nameFields(dn: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of dn.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

const colonHex = (b: Buffer) => (b.toString("hex").toUpperCase().match(/../g) ?? []).join(":");

function peerCertificateOf(der: Uint8Array): PeerCertificate {
  const raw = Buffer.from(der);
  const x509 = new X509Certificate(raw);
  return {
    raw,
    subject: nameFields(x509.subject),
    issuer: nameFields(x509.issuer),
    subjectaltname: x509.subjectAltName,
    valid_from: x509.validFrom,
    valid_to: x509.validTo,
    serialNumber: x509.serialNumber,
    fingerprint: colonHex(createHash("sha1").update(raw).digest()),
    fingerprint256: colonHex(createHash("sha256").update(raw).digest()),
    fingerprint512: colonHex(createHash("sha512").update(raw).digest()),
    x509,
  };
}

/** Mbed TLS's suite name as the IANA one: "TLS1-3-AES-128-GCM-SHA256" -> "TLS_AES_128_GCM_SHA256". */
function standardSuiteName(mbedName: string): string {
  return mbedName.replace(/^TLS1-3-/, "TLS-").replaceAll("-", "_");
}

/** A TLS session on the device over a network stream, as a Node Duplex (see the file's head). */
export class TLSStream extends Duplex {
  /** Node's marker of a TLS socket. */
  readonly encrypted = true;
  /** The ALPN protocol agreed on, false when none (after the handshake). */
  alpnProtocol: string | false = false;
  /** The peer's certificate was verified against the trust store (a validating configuration whose handshake succeeded). */
  authorized = false;
  /** Why `authorized` is false, once the handshake is over. */
  authorizationError: string | undefined;
  /** The server name the client asked for (null on a server, or a client that skips the name check). */
  readonly servername: string | null;
  /** The network stream under the session. */
  readonly socket: Duplex;
  readonly #buffer: TLSWrappedBuffer;
  readonly #context: StreamContext;
  readonly #ownsContext: boolean;
  #chain: Promise<unknown> = Promise.resolve();
  /** Settles when the handshake is over (rejects when it failed). */
  readonly #handshaken: Promise<void>;
  #secure = false;
  #resumed = false;
  #version: string | undefined;
  #cipher: CipherInfo | undefined;
  #peerCertificate: PeerCertificate | undefined;
  #socketEnded = false;
  #waiters = new Set<() => void>();
  #wantData = false;
  #pumping = false;

  /** @internal Made by `context.wrapStream()`, `dev.tls.connect()` and `dev.tls.createServer()`. */
  constructor(buffer: TLSWrappedBuffer, socket: Duplex, context: StreamContext, ownsContext: boolean, opts: TLSStreamOptions = {}) {
    super({ allowHalfOpen: opts.allowHalfOpen ?? false });
    this.#buffer = buffer;
    this.socket = socket;
    this.#context = context;
    this.#ownsContext = ownsContext;
    this.servername = buffer.serverHostname;
    const wake = () => {
      for (const w of [...this.#waiters]) w();
    };
    socket.on("readable", wake);
    socket.on("end", () => {
      this.#socketEnded = true;
      wake();
    });
    socket.on("close", () => {
      wake();
      // A socket gone under a stream that is done writing (or reading) ends the stream too, read or not.
      if (!this.destroyed && (this.writableFinished || this.readableEnded)) this.destroy();
    });
    socket.on("drain", wake);
    socket.on("error", (e: Error) => this.destroy(e));
    socket.on("timeout", () => this.emit("timeout"));
    this.#handshaken = this.#handshake();
    this.#handshaken.catch((e: unknown) => this.destroy(e instanceof Error ? e : new Error(String(e))));
  }

  /** Whether the handshake is over. */
  get secure(): boolean {
    return this.#secure;
  }

  /** "TLSv1.2" or "TLSv1.3" once the handshake is over, else null (Node's getProtocol). */
  getProtocol(): string | null {
    return this.#version ?? null;
  }

  /** The agreed cipher suite (Node's getCipher), undefined before the handshake. */
  getCipher(): CipherInfo | undefined {
    return this.#cipher;
  }

  /** The peer's certificate (DER in `raw`), null when it sent none (PSK) or before the handshake. */
  getPeerCertificate(): PeerCertificate | null {
    return this.#peerCertificate ?? null;
  }

  /** Whether the handshake resumed a saved session (Node's isSessionReused). */
  isSessionReused(): boolean {
    return this.#resumed;
  }

  /**
   * The session to resume later with `dev.tls.connect({ session })` (a
   * client whose configuration has `resumption`), sealed by the device
   * (TLSWrappedBuffer.session()); in TLS 1.3 the server's ticket comes
   * with the first data read after the handshake.
   */
  session(): Promise<TLSSession> {
    return this.#step(() => this.#buffer.session());
  }

  /** The device session (for tls_info and the like). */
  get buffer(): TLSWrappedBuffer {
    return this.#buffer;
  }

  // net.Socket's methods consumers call (http's agents, timeouts), passed to the network socket when it has them.

  setTimeout(ms: number, callback?: () => void): this {
    (this.socket as Partial<Socket>).setTimeout?.(ms);
    if (callback) this.once("timeout", callback);
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    (this.socket as Partial<Socket>).setNoDelay?.(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, initialDelay?: number): this {
    (this.socket as Partial<Socket>).setKeepAlive?.(enable, initialDelay);
    return this;
  }

  ref(): this {
    (this.socket as Partial<Socket>).ref?.();
    return this;
  }

  unref(): this {
    (this.socket as Partial<Socket>).unref?.();
    return this;
  }

  get remoteAddress(): string | undefined {
    return (this.socket as Partial<Socket>).remoteAddress;
  }

  get remotePort(): number | undefined {
    return (this.socket as Partial<Socket>).remotePort;
  }

  get localAddress(): string | undefined {
    return (this.socket as Partial<Socket>).localAddress;
  }

  get localPort(): number | undefined {
    return (this.socket as Partial<Socket>).localPort;
  }

  /** net.Socket's: ends the writable side (close_notify) and destroys the stream once it is flushed. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once("finish", () => this.destroy());
  }

  override _read(): void {
    this.#wantData = true;
    void this.#pump();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#send(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#finish().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const s = this.socket;
    if (error || !s.writableEnded || s.writableFinished) s.destroy();
    else {
      const t = setTimeout(() => s.destroy(), FLUSH_GRACE_MS);
      s.once("finish", () => {
        clearTimeout(t);
        s.destroy();
      });
    }
    for (const w of [...this.#waiters]) w();
    // Steps already queued end first (#step refuses new ones now), then the device session goes.
    const freed = this.#chain.then(() => this.#buffer.close()).then(() => (this.#ownsContext ? this.#context.close() : undefined));
    freed.then(
      () => callback(error),
      () => callback(error),
    );
  }

  /** Runs one device step of this session after the ones before it, then sends what it wrote. */
  #step<T>(fn: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.destroyed) throw new TLSConnectionError("the TLS stream was destroyed");
      let r: T;
      try {
        r = await fn();
      } catch (e) {
        this.#flush(false); // the alert of a failed step, if the socket still takes it; the step's error stands
        throw e;
      }
      this.#flush(true);
      return r;
    };
    const p = this.#chain.then(run);
    this.#chain = p.catch(() => {});
    return p;
  }

  /**
   * Hands what the session wrote for the network to the socket. Records
   * after the socket's end() are dropped (nothing more is meant to go);
   * with `strict`, records for a socket already destroyed fail the step.
   */
  #flush(strict: boolean): void {
    const out = this.#buffer.peekOutgoing();
    if (out.length === 0) return;
    this.#buffer.consumeOutgoing(out.length);
    if (this.socket.writable) this.socket.write(Buffer.from(out));
    else if (strict && this.socket.destroyed)
      throw new TLSConnectionError(`the connection closed: ${out.length} bytes of TLS records were not sent`);
  }

  /** Waits for a socket event (readable, end, close, drain), for the stream's destruction, or until `deadline`. */
  #event(deadline: number, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer =
        deadline === Number.POSITIVE_INFINITY
          ? undefined
          : setTimeout(
              () => {
                this.#waiters.delete(done);
                reject(
                  new TimeoutError(`the TLS handshake was not over within ${this.#buffer.handshakeTimeoutMs} ms (waiting for ${what})`),
                );
              },
              Math.max(0, deadline - Date.now()),
            );
      this.#waiters.add(done);
    });
  }

  /** Moves what the socket has to the session: true when bytes came, false at the end of the stream. */
  async #fromNetwork(deadline: number, what: string): Promise<boolean> {
    for (;;) {
      if (this.destroyed) throw new TLSConnectionError("the TLS stream was destroyed");
      const chunk: unknown = this.socket.destroyed ? null : this.socket.read();
      if (chunk instanceof Uint8Array) {
        this.#buffer.receiveFromNetwork(chunk);
        return true;
      }
      if (typeof chunk === "string") throw new ArgumentError("the network socket has an encoding set: TLS needs bytes");
      if (this.#socketEnded || this.socket.destroyed) return false;
      await this.#event(deadline, what);
    }
  }

  async #handshake(): Promise<void> {
    await this.#context.ready;
    const s = this.socket as Partial<Socket>;
    while (s.connecting) await this.#connected(Date.now() + this.#buffer.handshakeTimeoutMs);
    for (;;) {
      const r = await this.#step(() => this.#buffer.doHandshake());
      if (r === "done") break;
      if (typeof r !== "object" || r.want !== "read") throw new ProtocolError("tls_handshake_step: want_write with nothing to send");
      if (!(await this.#fromNetwork(Date.now() + this.#buffer.handshakeTimeLeft(), "the peer")))
        throw new TLSConnectionError("the peer closed the connection before the handshake was over");
    }
    const info = await this.#step(() => this.#buffer.info());
    this.#version = info.version;
    this.#resumed = info.resumed;
    if (info.cipher !== undefined && info.cipherId !== undefined)
      this.#cipher = { name: info.cipher, standardName: standardSuiteName(info.cipher), version: info.version ?? "", id: info.cipherId };
    this.alpnProtocol = info.alpnProtocol ?? false;
    if (info.peerCertificate) this.#peerCertificate = peerCertificateOf(info.peerCertificate);
    const validates = this.#context.configuration.options.validateCertificates ?? !this.#context.server;
    this.authorized = validates && info.verifyBits === 0;
    if (!this.authorized)
      this.authorizationError =
        info.verifyBits !== undefined && info.verifyBits !== 0
          ? verifyFlagNames(info.verifyBits).join(", ")
          : "the configuration does not validate the peer's certificate";
    this.#secure = true;
    this.emit("secure");
    if (!this.#context.server) this.emit("secureConnect");
  }

  /** Waits for a connecting socket's 'connect' (its failure destroys the stream through 'error'). */
  #connected(deadline: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new TimeoutError(`no TCP connection within ${this.#buffer.handshakeTimeoutMs} ms`)),
        deadline - Date.now(),
      );
      const settle = () => {
        clearTimeout(timer);
        this.socket.off("connect", settle);
        this.socket.off("close", settle);
        if (this.socket.destroyed) reject(new TLSConnectionError("the connection closed before it was made"));
        else resolve();
      };
      this.socket.once("connect", settle);
      this.socket.once("close", settle);
    });
  }

  /** Reads application data while the consumer wants it; stops when push() says enough (the next _read starts again). */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      await this.#handshaken;
      while (this.#wantData && !this.destroyed) {
        const r = await this.#step(() => this.#buffer.read(READ_MAX));
        if (r instanceof Uint8Array) {
          if (r.length === 0) {
            this.push(null); // close_notify
            return;
          }
          if (!this.push(r)) this.#wantData = false;
          continue;
        }
        if (r.want !== "read") throw new ProtocolError("tls_read: want_write with nothing to send");
        if (!(await this.#fromNetwork(Number.POSITIVE_INFINITY, "a read"))) {
          // The peer closed without close_notify: between records the end, as Node's TLS sockets take it; within one TLSConnectionError.
          await this.#step(() => this.#buffer.networkEnded());
          this.push(null);
          return;
        }
      }
    } catch (e) {
      this.destroy(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.#pumping = false;
    }
  }

  /** Encrypts `data` record by record, each step's records to the socket, waiting for 'drain' when the socket asks. */
  async #send(data: Uint8Array): Promise<void> {
    await this.#handshaken;
    for (let off = 0; off < data.length; ) {
      const n = await this.#step(() => this.#buffer.write(data.subarray(off)));
      if (typeof n !== "number") throw new ProtocolError("tls_write: no room after the output was taken");
      off += n;
      while (this.socket.writableNeedDrain && !this.socket.destroyed && !this.destroyed)
        await this.#event(Number.POSITIVE_INFINITY, "a write");
    }
  }

  /** end(): close_notify, then the socket's end. */
  async #finish(): Promise<void> {
    await this.#handshaken;
    if (this.socket.writable) {
      await this.#step(() => this.#buffer.shutdown());
      this.socket.end();
    }
  }
}

/** The server side of dev.tls.createServer(): each accepted socket wrapped, 'secureConnection' once its handshake is over. */
export function serveTLS(server: Server, wrap: (socket: Socket) => TLSStream, owned?: StreamContext): Server {
  server.on("connection", (socket: Socket) => {
    const tls = wrap(socket);
    const early = (e: Error) => server.emit("tlsClientError", e, tls);
    tls.on("error", early);
    tls.once("secure", () => {
      tls.off("error", early);
      server.emit("secureConnection", tls);
    });
  });
  if (owned) server.once("close", () => void owned.close().catch(() => {}));
  return server;
}

/** A connected or connecting socket: `socket`, or a new TCP connection to host:port. */
export function networkSocket(o: { socket?: Duplex | undefined; host?: string | undefined; port?: number | undefined }): Duplex {
  if (o.socket !== undefined) return o.socket;
  if (o.port === undefined || !Number.isInteger(o.port) || o.port <= 0 || o.port > 65535)
    throw new ArgumentError("connect(): a socket, or a port (and host)");
  return netConnect({ host: o.host ?? "localhost", port: o.port });
}
