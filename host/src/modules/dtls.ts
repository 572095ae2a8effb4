// dev.dtls: DTLS 1.2 with the handshake, the record layer and the
// retransmission timer on the device (spec.md 7.13), python-mbedtls's
// DTLSConfiguration with ClientContext / ServerContext in TypeScript style.
// A DTLSConfiguration is a TLSConfiguration's options (TLS 1.2 only: Mbed
// TLS 3.6 has no DTLS 1.3) plus the datagram ones; a context made from it is
// a TLS context of transport "datagram" on the device (tls.ts's TLSContext),
// whose sessions wrap datagram buffers (DTLSWrappedBuffer, dtls-buffer.ts).
//
//   const ctx = dev.dtls.ClientContext(new dev.dtls.DTLSConfiguration({ preSharedKey: ["id", key] }));
//   const dtls = ctx.wrapBuffers();
//   await dtls.doHandshake(); for (const d of dtls.takeDatagrams()) socket.send(d);
//
// dev.dtls.connect() / createServer() (dtls-socket.ts) run them over a
// dgram socket.

import type { Socket as UdpSocket } from "node:dgram";
import { ArgumentError } from "../base/errors.js";
import type { SessionContext } from "../session/context.js";
import type { HandleHolder } from "../session/device-object.js";
import { type DTLSWrapOptions, DTLSWrappedBuffer } from "./dtls-buffer.js";
import {
  connectDatagram,
  type DatagramConnectOptions,
  type DTLSClientSession,
  DTLSServer,
  type DTLSServerOptions,
  type DTLSSession,
} from "./dtls-socket.js";
import { DTLSWrappedSocket } from "./dtls-wrapped-socket.js";
import { sessionHostname, TLSConfiguration, type TLSConfigurationOptions, TLSContext, type TLSVersion } from "./tls.js";
import type { TrustStoreClass } from "./x509-trust.js";

/** DTLS versions by python-mbedtls's names ("DTLSv1.2" is TLS 1.2's twin; "TLSv1.2" means the same here). */
export type DTLSVersion = "DTLSv1.2";

/** Connection ID lengths a configuration may ask for (RFC 9146; MBEDTLS_SSL_CID_IN_LEN_MAX). */
export const CID_MAX = 32;

/**
 * python-mbedtls's DTLSConfiguration fields, camelCase: TLSConfiguration's
 * (without the TLS 1.3 ones) and the datagram ones. Every field is optional.
 * `resumption` (TLSConfiguration's): a client asks for DTLS 1.2 session
 * tickets and its sessions can be saved (`session()`) and offered again
 * (`wrapBuffers(name, { session })`, `connect({ session })`); a server
 * issues tickets under ticket keys of its own, valid `ticketLifetime` s.
 */
export interface DTLSConfigurationOptions
  extends Omit<TLSConfigurationOptions, "lowestSupportedVersion" | "highestSupportedVersion" | "tls13KeyExchangeModes"> {
  /** "DTLSv1.2" (the default and the only one: "TLSv1.3" reaches the device, which refuses it as unsupported_algorithm). */
  lowestSupportedVersion?: DTLSVersion | TLSVersion;
  highestSupportedVersion?: DTLSVersion | TLSVersion;
  /** Drop records seen before (RFC 6347 4.1.2.6; default true). */
  antiReplay?: boolean;
  /** Mbed TLS's first retransmission delay in ms (default 1000); it doubles up to handshakeTimeoutMax. */
  handshakeTimeoutMin?: number;
  /** The retransmission delay after which the handshake fails (MBEDTLS_ERR_SSL_TIMEOUT; default 60000 ms). */
  handshakeTimeoutMax?: number;
  /** A server answers a ClientHello without a valid cookie with HelloVerifyRequest (default true; RFC 6347 4.2.1). */
  cookies?: boolean;
  /** Bytes of the own Connection ID offered (RFC 9146; 0 to 32, default 0: none). */
  cid?: number;
  /** The largest datagram a session sends (mbedtls_ssl_set_mtu, 64 up to `dev.info.dtls.datagramMax`, 2046 B); default that largest datagram. */
  mtu?: number;
  /** The session fails at the record that makes this many failing authentication (Mbed TLS's bad-MAC limit: 2 fails at the second); default 0: such records are dropped, never counted against it. */
  badMacLimit?: number;
}

const TLS_NAMES: Record<string, TLSVersion> = { "DTLSv1.2": "TLSv1.2", "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3" };

function tlsVersion(v: DTLSVersion | TLSVersion | undefined): TLSVersion | undefined {
  if (v === undefined) return undefined;
  const t = TLS_NAMES[v];
  if (t === undefined) throw new ArgumentError(`unknown DTLS version ${JSON.stringify(v)}`);
  return t;
}

function checkUint(v: number | undefined, min: number, max: number, what: string): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= min && v <= max))
    throw new ArgumentError(`${what}: an integer from ${min} to ${max}`);
}

/** An immutable DTLS configuration (python-mbedtls's `DTLSConfiguration`); nothing is on the device until a context is made. */
export class DTLSConfiguration {
  readonly options: Readonly<DTLSConfigurationOptions>;
  /** @internal The TLS options checked by TLSConfiguration. */
  readonly _tls: TLSConfiguration;

  constructor(options: DTLSConfigurationOptions = {}) {
    const o = { ...options };
    const {
      antiReplay,
      handshakeTimeoutMin,
      handshakeTimeoutMax,
      cookies,
      cid,
      mtu,
      badMacLimit,
      lowestSupportedVersion,
      highestSupportedVersion,
      ...tls
    } = o;
    for (const [v, what] of [
      [antiReplay, "antiReplay"],
      [cookies, "cookies"],
    ] as const)
      if (v !== undefined && typeof v !== "boolean") throw new ArgumentError(`${what}: true or false`);
    checkUint(handshakeTimeoutMin, 1, 0xffffffff, "handshakeTimeoutMin");
    checkUint(handshakeTimeoutMax, 1, 0xffffffff, "handshakeTimeoutMax");
    if ((handshakeTimeoutMin ?? 1000) > (handshakeTimeoutMax ?? 60000))
      throw new ArgumentError("handshakeTimeoutMin: at most handshakeTimeoutMax (defaults 1000 and 60000 ms)");
    checkUint(cid, 0, CID_MAX, "cid");
    checkUint(mtu, 64, 65535, "mtu");
    checkUint(badMacLimit, 0, 0xffffffff, "badMacLimit");
    const lowest = tlsVersion(lowestSupportedVersion);
    const highest = tlsVersion(highestSupportedVersion);
    this._tls = new TLSConfiguration({
      ...tls,
      ...(lowest && { lowestSupportedVersion: lowest }),
      ...(highest && { highestSupportedVersion: highest }),
    });
    this.options = Object.freeze(o);
  }

  /** A copy with some options replaced (python-mbedtls's `update`). */
  update(changes: DTLSConfigurationOptions): DTLSConfiguration {
    return new DTLSConfiguration({ ...this.options, ...changes });
  }

  /** @internal tls-conf's datagram entries (spec.md 7.13). */
  _datagramMap(server: boolean): Record<string, unknown> {
    const o = this.options;
    const m: Record<string, unknown> = { transport: "datagram" };
    if (o.antiReplay !== undefined) m.anti_replay = o.antiReplay;
    if (o.handshakeTimeoutMin !== undefined || o.handshakeTimeoutMax !== undefined)
      m.hs_timeout = [o.handshakeTimeoutMin ?? 1000, o.handshakeTimeoutMax ?? 60000];
    if (server && o.cookies !== undefined) m.cookies = o.cookies;
    if (o.cid !== undefined) m.cid = o.cid;
    if (o.badMacLimit !== undefined) m.badmac_limit = o.badMacLimit;
    return m;
  }
}

/** `dev.dtls.connect()`'s options: where to connect (dtls-socket.ts) and the configuration (a context, a DTLSConfiguration or its options inline). */
export interface DTLSConnectOptions extends DTLSConfigurationOptions, DatagramConnectOptions {
  /** A client context to make the session over (kept open: many sessions may share it). */
  context?: DTLSContext;
  /** A configuration for a client context made for this session alone (freed with it). */
  configuration?: DTLSConfiguration;
}

/** A DTLS configuration on the device, client or server (python-mbedtls's `ClientContext` / `ServerContext` of a `DTLSConfiguration`). */
export class DTLSContext implements HandleHolder, AsyncDisposable {
  readonly configuration: DTLSConfiguration;
  readonly server: boolean;
  /** Resolves once the device has the configuration; rejects with its refusal (e.g. UnsupportedAlgorithmError for TLS 1.3). */
  readonly ready: Promise<void>;
  readonly #ctx: SessionContext;
  readonly #conf: TLSContext;

  /** @internal Made by `dev.dtls.ClientContext(conf)` / `ServerContext(conf)`. */
  constructor(ctx: SessionContext, configuration: DTLSConfiguration, server: boolean) {
    if (!(configuration instanceof DTLSConfiguration)) throw new ArgumentError("expected a DTLSConfiguration");
    this.#ctx = ctx;
    this.configuration = configuration;
    this.server = server;
    this.#conf = new TLSContext(ctx, configuration._tls, server, configuration._datagramMap(server));
    this.ready = this.#conf.ready;
  }

  /** The device handle of the configuration. */
  get handle(): number {
    return this.#conf.handle;
  }

  /** @internal */
  _use<T>(session: Parameters<HandleHolder["_use"]>[0], fn: (handle: number) => Promise<T>): Promise<T> {
    return this.#conf._use(session, fn);
  }

  /** Frees the configuration's handle (the device keeps it while sessions over it live). */
  close(): Promise<void> {
    return this.#conf.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * A session over datagrams the caller moves (python-mbedtls's
   * `wrap_buffers`). `serverHostname`: the server's name (SNI, and what its
   * certificate must carry); a client that validates certificates needs it.
   */
  wrapBuffers(serverHostname?: string | null, opts: DTLSWrapOptions = {}): DTLSWrappedBuffer {
    const name = sessionHostname(serverHostname, this.server, this.configuration.options.validateCertificates);
    if (opts.session !== undefined && (this.server || !this.configuration.options.resumption))
      throw new ArgumentError("session: only a client context whose configuration has resumption resumes one");
    const mtu = opts.mtu ?? this.configuration.options.mtu;
    const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? this.configuration.options.handshakeTimeoutMs;
    return new DTLSWrappedBuffer(this.#ctx, this, name, { ...opts, mtu, handshakeTimeoutMs });
  }

  /**
   * A session over a dgram socket (python-mbedtls's `wrap_socket` of a
   * DTLS context; dtls-wrapped-socket.ts). A client's: `connect(port,
   * host)`, `doHandshake()`, `send()`, `recv()`. A server's: `bind()`, then
   * `accept()` gives [connection, address] per peer, each connection a
   * session of its own (`setCookieParam()`, `doHandshake()`, which throws
   * HelloVerifyRequest on a cookie-less ClientHello, then `accept()` on it).
   */
  wrapSocket(socket: UdpSocket, serverHostname?: string | null, opts: DTLSWrapOptions = {}): DTLSWrappedSocket {
    return new DTLSWrappedSocket(this, socket, serverHostname, opts);
  }
}

/** `dev.dtls` (dev.dtls.connect / createServer: dtls-socket.ts). */
export class DTLSModule {
  /** Trust stores (the same class as `dev.tls.TrustStore`). */
  readonly TrustStore: TrustStoreClass;
  /** `new dev.dtls.DTLSConfiguration({...})`. */
  readonly DTLSConfiguration = DTLSConfiguration;

  /** @internal */
  constructor(
    protected readonly ctx: SessionContext,
    trustStore: TrustStoreClass,
  ) {
    this.TrustStore = trustStore;
  }

  /** A DTLS client configuration on the device. */
  ClientContext(configuration: DTLSConfiguration): DTLSContext {
    return new DTLSContext(this.ctx, configuration, false);
  }

  /** A DTLS server configuration on the device (needs `certificateChain`, `sniCertificates`, `preSharedKey` or `preSharedKeyStore`). */
  ServerContext(configuration: DTLSConfiguration): DTLSContext {
    return new DTLSContext(this.ctx, configuration, true);
  }

  /**
   * A DTLS client session over a new dgram socket (or `options.socket`) to
   * `host`:`port`: resolves once the handshake is over (retransmissions on
   * the device's timer) with a message-oriented session (`send(datagram)`,
   * 'message', `close()`, `for await`; dtls-socket.ts); rejects with the
   * handshake's typed failure (TimeoutError after handshakeTimeoutMs,
   * TooManyHandlesError at the session limit, TLSHandshakeError...). The
   * configuration: a client `context` (kept open), a `configuration`, or
   * the DTLSConfiguration options inline (a context made for the session
   * alone, freed with it).
   */
  async connect(options: DTLSConnectOptions): Promise<DTLSClientSession> {
    const { host, port, socket, servername, handshakeTimeoutMs, context, configuration, session, ...rest } = options;
    if (context !== undefined && (!(context instanceof DTLSContext) || context.server))
      throw new ArgumentError("context: a client DTLSContext");
    const ctx = context ?? this.ClientContext(configuration ?? new DTLSConfiguration(rest));
    return connectDatagram(ctx, context === undefined, { host, port, socket, servername, handshakeTimeoutMs, session });
  }

  /**
   * A DTLS server of the device on a UDP socket (`await server.listen(port,
   * host)`): one session per peer, by address and, with `cid`, by the
   * Connection ID of its records (a peer whose address changed stays the
   * same session); HelloVerifyRequest answered for the user through one
   * acceptor session. `onSession` (the 'session' event) gets each session
   * once its handshake is over. Given a DTLSConfiguration, the server makes
   * its own ServerContext and frees it when it closes.
   */
  createServer(
    config: DTLSContext | DTLSConfiguration,
    onSession?: (session: DTLSSession) => void,
    options: DTLSServerOptions = {},
  ): DTLSServer {
    const owned = config instanceof DTLSConfiguration;
    const ctx = owned ? this.ServerContext(config) : config;
    if (!(ctx instanceof DTLSContext) || !ctx.server)
      throw new ArgumentError("createServer(): a server DTLSContext or a DTLSConfiguration");
    return new DTLSServer(ctx, owned, onSession, options);
  }
}
