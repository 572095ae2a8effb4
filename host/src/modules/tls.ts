// dev.tls: TLS with the handshake and the record layer on the device
// (spec.md 7.12), python-mbedtls's mbedtls.tls in TypeScript style. The host
// only moves bytes: a TLSConfiguration (plain options) becomes a device
// configuration when a ClientContext or ServerContext is made from it, and
// each context wraps buffers (TLSWrappedBuffer, tls-buffer.ts: sans-I/O) or
// a net.Socket (TLSWrappedSocket) into sessions.
//
//   const trust = new dev.tls.TrustStore(); await trust.add(caCrt);
//   const ctx = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust }));
//   const tls = ctx.wrapSocket(socket, "server.example");
//   await tls.doHandshake(); await tls.send(utf8("GET / HTTP/1.0\r\n\r\n"));

import { isIP, Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { ArgumentError } from "../base/errors.js";
import { Op, TlsVerify } from "../base/protocol.generated.js";
import type { SessionContext } from "../session/context.js";
import { DeviceObject, type HandleHolder } from "../session/device-object.js";
import { PkKey } from "./pk-key.js";
import { type TLSWrapOptions, TLSWrappedBuffer, TLSWrappedSocket } from "./tls-buffer.js";
import { networkSocket, serveTLS, TLSStream, type TLSStreamOptions } from "./tls-stream.js";
import { CRT } from "./x509-crt.js";
import { TrustStore, type TrustStoreClass, trustStoreClass } from "./x509-trust.js";

/** TLS versions by python-mbedtls's names. */
export type TLSVersion = "TLSv1.2" | "TLSv1.3";
const VERSIONS: Record<TLSVersion, number> = { "TLSv1.2": 0x0303, "TLSv1.3": 0x0304 };

/** Record sizes a client may ask the server for (max_fragment_length), 0 for none. */
export type MaxFragmentLength = 0 | 512 | 1024 | 2048 | 4096;

/** python-mbedtls's TLSConfiguration fields, camelCase. Every field is optional. */
export interface TLSConfigurationOptions {
  /** Check the peer's certificate against `trustStore` (default: true for a client, false for a server, which then asks for no client certificate). */
  validateCertificates?: boolean;
  /** The own certificate chain, leaf first, and the leaf's key (it may be non-exportable: it signs on the device). */
  certificateChain?: readonly [CRT | readonly CRT[], PkKey];
  /** CA certificates the peer's chain must lead to. */
  trustStore?: TrustStore;
  /** Cipher suites by IANA number (e.g. 0xc02b); default: Mbed TLS's list. */
  ciphers?: readonly number[];
  /** ALPN protocols offered (client) or accepted (server), in preference order. */
  innerProtocols?: readonly string[];
  lowestSupportedVersion?: TLSVersion;
  highestSupportedVersion?: TLSVersion;
  /** One pre-shared key: [identity, key]. */
  preSharedKey?: readonly [string | Uint8Array, Uint8Array];
  /** The record size a client asks for; default: what the device's input buffer takes (below 16 KiB). */
  maxFragmentLength?: MaxFragmentLength;
  /**
   * Session resumption (default off): a client asks for tickets (TLS 1.2
   * and 1.3) and its sessions can be saved (`session()` on a wrapped
   * buffer) and offered again (`wrapBuffers(name, { session })`); a server
   * issues tickets under ticket keys of its own on the device (AES-256-GCM,
   * about 1.4 KB of device heap per configuration).
   */
  resumption?: boolean;
  /** A resuming server's ticket lifetime in seconds (1 to 604800; default 7200); its ticket keys rotate as often. */
  ticketLifetime?: number;
  /** The whole handshake of a session made from this must be over within this many ms (default 60 s), else TimeoutError. */
  handshakeTimeoutMs?: number;
}

/** An immutable TLS configuration (python-mbedtls's `TLSConfiguration`); nothing is on the device until a context is made. */
export class TLSConfiguration {
  readonly options: Readonly<TLSConfigurationOptions>;

  constructor(options: TLSConfigurationOptions = {}) {
    const o = { ...options };
    if (o.certificateChain !== undefined) {
      const [chain, key] = o.certificateChain;
      const list = Array.isArray(chain) ? [...(chain as readonly CRT[])] : [chain as CRT];
      if (list.length === 0 || list.some((c) => !(c instanceof CRT))) throw new ArgumentError("certificateChain: [CRT or CRT[], key]");
      if (!(key instanceof PkKey)) throw new ArgumentError("certificateChain: the second item is the leaf's key (dev.pk.ECC / RSA)");
      o.certificateChain = [list, key];
    }
    if (o.trustStore !== undefined && !(o.trustStore instanceof TrustStore)) throw new ArgumentError("trustStore: a dev.tls.TrustStore");
    for (const v of [o.lowestSupportedVersion, o.highestSupportedVersion])
      if (v !== undefined && VERSIONS[v] === undefined) throw new ArgumentError(`unknown TLS version ${JSON.stringify(v)}`);
    if (o.innerProtocols?.some((p) => typeof p !== "string" || p.length === 0))
      throw new ArgumentError("innerProtocols: non-empty strings");
    if (o.ciphers?.some((c) => !Number.isInteger(c) || c <= 0 || c > 0xffff)) throw new ArgumentError("ciphers: IANA cipher suite numbers");
    const lifetime = o.ticketLifetime;
    if (lifetime !== undefined && !(o.resumption && Number.isInteger(lifetime) && lifetime > 0 && lifetime <= 604800))
      throw new ArgumentError("ticketLifetime: 1 to 604800 seconds, with resumption");
    if (o.handshakeTimeoutMs !== undefined && !(Number.isFinite(o.handshakeTimeoutMs) && o.handshakeTimeoutMs > 0))
      throw new ArgumentError("handshakeTimeoutMs: a positive number of ms");
    this.options = Object.freeze(o);
  }

  /** A copy with some options replaced (python-mbedtls's `update`). */
  update(changes: TLSConfigurationOptions): TLSConfiguration {
    return new TLSConfiguration({ ...this.options, ...changes });
  }
}

/** Runs `fn` with the handles of `objs` (each kept resident meanwhile). */
export function withHandlesOf<T>(ctx: SessionContext, objs: readonly HandleHolder[], fn: (handles: number[]) => Promise<T>): Promise<T> {
  return objs.reduceRight<(hs: number[]) => Promise<T>>((next, obj) => (hs) => obj._use(ctx, (h) => next([...hs, h])), fn)([]);
}

function confMap(o: TLSConfigurationOptions, server: boolean, handles: number[]): Record<string, unknown> {
  const m: Record<string, unknown> = { server };
  let i = 0;
  if (o.trustStore) m.trust = handles[i++];
  if (o.certificateChain) {
    const chain = o.certificateChain[0] as readonly CRT[];
    m.chain = handles.slice(i, i + chain.length);
    i += chain.length;
    m.key = handles[i++];
  }
  const validate = o.validateCertificates ?? !server;
  m.verify = validate ? TlsVerify.required : TlsVerify.none;
  if (o.lowestSupportedVersion) m.min_version = VERSIONS[o.lowestSupportedVersion];
  if (o.highestSupportedVersion) m.max_version = VERSIONS[o.highestSupportedVersion];
  if (o.innerProtocols?.length) m.alpn = [...o.innerProtocols];
  if (o.ciphers?.length) m.suites = [...o.ciphers];
  if (o.maxFragmentLength !== undefined) m.mfl = o.maxFragmentLength;
  if (o.resumption) m.resumption = true;
  if (o.ticketLifetime !== undefined && server) m.ticket_lifetime = o.ticketLifetime;
  if (o.preSharedKey) {
    const [id, key] = o.preSharedKey;
    m.psk = [typeof id === "string" ? new TextEncoder().encode(id) : Uint8Array.from(id), Uint8Array.from(key)];
  }
  return m;
}

/** A configuration on the device, client or server (python-mbedtls's `ClientContext` / `ServerContext`). */
export class TLSContext extends DeviceObject {
  readonly configuration: TLSConfiguration;
  readonly server: boolean;
  /** Resolves once the device has the configuration; rejects with its refusal. */
  readonly ready: Promise<void>;

  /** @internal Made by `dev.tls.ClientContext(conf)` / `ServerContext(conf)`. */
  constructor(ctx: SessionContext, configuration: TLSConfiguration, server: boolean) {
    super(ctx, { pinned: true });
    if (!(configuration instanceof TLSConfiguration)) throw new ArgumentError("expected a TLSConfiguration");
    this.configuration = configuration;
    this.server = server;
    const o = configuration.options;
    const holders: HandleHolder[] = [];
    if (o.trustStore) holders.push(o.trustStore);
    if (o.certificateChain) holders.push(...(o.certificateChain[0] as readonly CRT[]), o.certificateChain[1]);
    const created = this.open((h) => withHandlesOf(ctx, holders, (hs) => ctx.call(Op.tlsConfNew, [h, confMap(o, server, hs)])));
    this.ready = created.then(() => {});
    this.ready.catch(() => {});
  }

  protected get what(): string {
    return `TLS ${this.server ? "server" : "client"} configuration`;
  }

  /**
   * A session that reads from and writes to buffers the caller moves
   * (python-mbedtls's `wrap_buffers`). `serverHostname`: the server's name
   * (SNI, and what its certificate must carry); a client that validates
   * certificates needs it. `opts.handshakeTimeoutMs` overrides the
   * configuration's.
   */
  wrapBuffers(serverHostname?: string | null, opts: TLSWrapOptions = {}): TLSWrappedBuffer {
    if (serverHostname !== undefined && serverHostname !== null && (typeof serverHostname !== "string" || serverHostname.length === 0))
      throw new ArgumentError("serverHostname: a non-empty string or null");
    const validates = this.configuration.options.validateCertificates ?? !this.server;
    if (!this.server && validates && !serverHostname)
      throw new ArgumentError("a client that validates certificates needs serverHostname (the name the certificate must carry)");
    const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? this.configuration.options.handshakeTimeoutMs;
    if (opts.session !== undefined && (this.server || !this.configuration.options.resumption))
      throw new ArgumentError("session: only a client context whose configuration has resumption resumes one");
    const session = opts.session;
    return new TLSWrappedBuffer(this.ctx, this, this.server ? null : (serverHostname ?? null), { handshakeTimeoutMs, session });
  }

  /** A session over a connected `net.Socket` (python-mbedtls's `wrap_socket`). */
  wrapSocket(socket: Socket, serverHostname?: string | null, opts: TLSWrapOptions = {}): TLSWrappedSocket {
    return new TLSWrappedSocket(this.wrapBuffers(serverHostname, opts), socket);
  }

  /**
   * A session over a network stream (a `net.Socket`, connected or
   * connecting) as a Node `Duplex` that behaves like `tls.TLSSocket`
   * (tls-stream.ts); the handshake starts at once. On a server context
   * `serverHostname` is left out.
   */
  wrapStream(socket: Duplex, serverHostname?: string | null, opts: TLSStreamOptions = {}): TLSStream {
    return new TLSStream(this.wrapBuffers(serverHostname, opts), socket, this, false, opts);
  }
}

/** `dev.tls.connect()`'s options: where to connect, the server's name, and the configuration (a context, a TLSConfiguration or its options inline). */
export interface ConnectOptions extends TLSConfigurationOptions, TLSStreamOptions {
  /** A socket to run TLS over (connected or connecting); else a TCP connection to `host`:`port` is made. */
  socket?: Duplex;
  /** Default "localhost". */
  host?: string;
  port?: number;
  /** The server's name (SNI, and what its certificate must carry); default: `host` when it is a name. null skips the check (validation off only). */
  servername?: string | null;
  /** A client context to make the session over (kept open: many connections may share it). */
  context?: TLSContext;
  /** A configuration for a client context made for this connection alone (freed with it); else the TLSConfiguration options given inline. */
  configuration?: TLSConfiguration;
}

/** `dev.tls`. */
export class TLSModule {
  /** Trust stores (the same class as `dev.x509.TrustStore`). */
  readonly TrustStore: TrustStoreClass;
  /** `new dev.tls.TLSConfiguration({...})`. */
  readonly TLSConfiguration = TLSConfiguration;

  /** @internal */
  constructor(private readonly ctx: SessionContext) {
    this.TrustStore = trustStoreClass(ctx);
  }

  /** A client configuration on the device. */
  ClientContext(configuration: TLSConfiguration): TLSContext {
    return new TLSContext(this.ctx, configuration, false);
  }

  /** A server configuration on the device (needs `certificateChain` or `preSharedKey`). */
  ServerContext(configuration: TLSConfiguration): TLSContext {
    return new TLSContext(this.ctx, configuration, true);
  }

  /**
   * A TLS client session over a new TCP connection or `socket`, as a Node
   * `Duplex` (Node's `tls.connect` in shape): usable as `https.request`'s
   * `createConnection`. 'secureConnect' once the handshake is over; errors
   * as 'error' events.
   */
  connect(options: ConnectOptions, onSecureConnect?: () => void): TLSStream {
    const { socket, host, port, servername, context, configuration, allowHalfOpen, ...rest } = options;
    if (context !== undefined && (!(context instanceof TLSContext) || context.server))
      throw new ArgumentError("context: a client TLSContext");
    const name = servername !== undefined ? servername : host !== undefined && isIP(host) === 0 ? host : undefined;
    const ctx = context ?? this.ClientContext(configuration ?? new TLSConfiguration(rest));
    let buffer: TLSWrappedBuffer;
    try {
      buffer = ctx.wrapBuffers(name, rest); // the session's options (handshakeTimeoutMs, ...)
    } catch (e) {
      if (context === undefined) void ctx.close().catch(() => {});
      throw e;
    }
    const opts: TLSStreamOptions = allowHalfOpen === undefined ? {} : { allowHalfOpen };
    const stream = new TLSStream(buffer, networkSocket({ socket, host, port }), ctx, context === undefined, opts);
    if (onSecureConnect) stream.once("secureConnect", onSecureConnect);
    return stream;
  }

  /**
   * A `net.Server` whose connections the device answers as a TLS server
   * (Node's `tls.createServer` in shape): 'secureConnection' with each
   * TLSStream once its handshake is over, 'tlsClientError' for one that
   * failed before. Given a TLSConfiguration, the server makes its own
   * ServerContext and frees it when it closes.
   */
  createServer(config: TLSContext | TLSConfiguration, onSecureConnection?: (stream: TLSStream) => void): Server {
    const owned = config instanceof TLSConfiguration;
    const ctx = owned ? this.ServerContext(config) : config;
    if (!(ctx instanceof TLSContext) || !ctx.server) throw new ArgumentError("createServer(): a server TLSContext or a TLSConfiguration");
    const server = serveTLS(new Server(), (s) => ctx.wrapStream(s), owned ? ctx : undefined);
    if (onSecureConnection) server.on("secureConnection", onSecureConnection);
    return server;
  }
}
