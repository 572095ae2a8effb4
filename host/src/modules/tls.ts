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
import { ArgumentError, ProtocolError } from "../base/errors.js";
import { Op, TlsVerify } from "../base/protocol.generated.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { DeviceObject, type HandleHolder } from "../session/device-object.js";
import { SymmetricKey } from "./keys.js";
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

/** TLS 1.3 key exchange modes: "psk" (the key alone, no (EC)DHE), "pskEphemeral" (PSK with ECDHE), "ephemeral" (ECDHE with certificates). */
export type TLS13KeyExchangeMode = "psk" | "pskEphemeral" | "ephemeral";
const KEX_MODES: Record<TLS13KeyExchangeMode, string> = { psk: "psk", pskEphemeral: "psk_ephemeral", ephemeral: "ephemeral" };

/** A pre-shared key: its bytes, or a device-held key (its bytes never leave the device). */
export type PreSharedKey = Uint8Array | SymmetricKey;
/** A certificate chain (leaf first) and the leaf's key. */
export type CertificateChain = readonly [CRT | readonly CRT[], PkKey];

/** Entries of a server's PSK store (`tls_conf_new`'s psk_store: at most 16). */
export const PSK_STORE_MAX = 16;
/** Host names a server has its own chain for (`sni`: at most 4). */
export const SNI_MAX = 4;
/** Bytes of a PSK identity, and of a key in a PSK store (Mbed TLS's MBEDTLS_PSK_MAX_LEN). */
const PSK_ID_MAX = 128;
const PSK_STORE_KEY_MAX = 32;

/** python-mbedtls's TLSConfiguration fields, camelCase. Every field is optional. */
export interface TLSConfigurationOptions {
  /** Check the peer's certificate against `trustStore` (default: true for a client, false for a server, which then asks for no client certificate). */
  validateCertificates?: boolean;
  /** The own certificate chain, leaf first, and the leaf's key (it may be non-exportable: it signs on the device). */
  certificateChain?: CertificateChain;
  /** CA certificates the peer's chain must lead to. */
  trustStore?: TrustStore;
  /** Cipher suites by IANA number (e.g. 0xc02b); default: Mbed TLS's list. */
  ciphers?: readonly number[];
  /** ALPN protocols offered (client) or accepted (server), in preference order. */
  innerProtocols?: readonly string[];
  lowestSupportedVersion?: TLSVersion;
  highestSupportedVersion?: TLSVersion;
  /** One pre-shared key: [identity, key]; the key may be a device SymmetricKey (imported, or loaded from a slot). */
  preSharedKey?: readonly [string | Uint8Array, PreSharedKey];
  /**
   * A server's pre-shared keys by identity (python-mbedtls's
   * `pre_shared_key_store`), at most 16, keys of 1 to 32 bytes: the device
   * picks the key by the identity the client names. An unknown identity
   * fails the handshake (TLS 1.2: unknown_psk_identity; TLS 1.3: no PSK is
   * agreed, so a server without a certificate fails).
   */
  preSharedKeyStore?: ReadonlyMap<string | Uint8Array, PreSharedKey> | Readonly<Record<string, PreSharedKey>>;
  /**
   * A server's certificate chains by host name (SNI), at most 4: a client
   * naming one gets its chain; any other name gets `certificateChain`, or
   * without one the handshake fails with an unrecognized_name alert. Names
   * compare case-insensitively, exactly (no wildcards).
   */
  sniCertificates?: ReadonlyMap<string, CertificateChain> | Readonly<Record<string, CertificateChain>>;
  /** TLS 1.3 key exchange modes offered (client) or accepted (server); default all three. ["psk"]: pure PSK, no ECDHE. */
  tls13KeyExchangeModes?: readonly TLS13KeyExchangeMode[];
  /** The record size a client asks for; default: what the device's input buffer takes (below 16 KiB). */
  maxFragmentLength?: MaxFragmentLength;
  /**
   * Session resumption (default off): a client asks for tickets (TLS 1.2
   * and 1.3) and its sessions can be saved (`session()` on a wrapped
   * buffer) and offered again (`wrapBuffers(name, { session })`); a server
   * issues tickets under ticket keys of its own on the device (AES-256-GCM,
   * about 1.6 KB of device heap per configuration).
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
    if (o.certificateChain !== undefined) o.certificateChain = checkChain(o.certificateChain, "certificateChain");
    if (o.preSharedKey !== undefined) {
      if (!Array.isArray(o.preSharedKey) || o.preSharedKey.length !== 2) throw new ArgumentError("preSharedKey: [identity, key]");
      checkPsk(o.preSharedKey[0], o.preSharedKey[1], 64, "preSharedKey");
    }
    if (o.preSharedKeyStore !== undefined) {
      const store = new Map(entriesOf(o.preSharedKeyStore, "preSharedKeyStore"));
      if (store.size === 0 || store.size > PSK_STORE_MAX) throw new ArgumentError(`preSharedKeyStore: 1 to ${PSK_STORE_MAX} identities`);
      const seen = new Set<string>();
      for (const [id, key] of store) {
        const hexId = Buffer.from(checkPsk(id, key, PSK_STORE_KEY_MAX, "preSharedKeyStore")).toString("hex");
        if (seen.has(hexId)) throw new ArgumentError("preSharedKeyStore: an identity twice");
        seen.add(hexId);
      }
      o.preSharedKeyStore = store;
    }
    if (o.sniCertificates !== undefined) {
      const sni = new Map<string, CertificateChain>();
      for (const [name, chain] of entriesOf(o.sniCertificates, "sniCertificates")) {
        if (typeof name !== "string" || name.length === 0 || new TextEncoder().encode(name).length > 255)
          throw new ArgumentError("sniCertificates: host names of 1 to 255 bytes");
        if ([...sni.keys()].some((n) => n.toLowerCase() === name.toLowerCase())) throw new ArgumentError(`sniCertificates: ${name} twice`);
        sni.set(name, checkChain(chain, `sniCertificates[${JSON.stringify(name)}]`));
      }
      if (sni.size === 0 || sni.size > SNI_MAX) throw new ArgumentError(`sniCertificates: 1 to ${SNI_MAX} host names`);
      o.sniCertificates = sni;
    }
    if (o.tls13KeyExchangeModes?.some((m) => KEX_MODES[m] === undefined) || o.tls13KeyExchangeModes?.length === 0)
      throw new ArgumentError('tls13KeyExchangeModes: one or more of "psk", "pskEphemeral", "ephemeral"');
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

const utf8 = (s: string | Uint8Array): Uint8Array => (typeof s === "string" ? new TextEncoder().encode(s) : Uint8Array.from(s));

/** A chain option as [CRT[], key], checked. */
function checkChain(value: CertificateChain, what: string): CertificateChain {
  if (!Array.isArray(value) || value.length !== 2) throw new ArgumentError(`${what}: [CRT or CRT[], key]`);
  const [chain, key] = value;
  const list = Array.isArray(chain) ? [...(chain as readonly CRT[])] : [chain as CRT];
  if (list.length === 0 || list.some((c) => !(c instanceof CRT))) throw new ArgumentError(`${what}: [CRT or CRT[], key]`);
  if (!(key instanceof PkKey)) throw new ArgumentError(`${what}: the second item is the leaf's key (dev.pk.ECC / RSA)`);
  return [list, key];
}

/** A PSK identity and key, checked; the identity's bytes. */
function checkPsk(id: unknown, key: unknown, keyMax: number, what: string): Uint8Array {
  if (typeof id !== "string" && !(id instanceof Uint8Array)) throw new ArgumentError(`${what}: an identity is a string or bytes`);
  const idBytes = utf8(id);
  if (idBytes.length === 0 || idBytes.length > PSK_ID_MAX) throw new ArgumentError(`${what}: an identity has 1 to ${PSK_ID_MAX} bytes`);
  const size = key instanceof SymmetricKey ? key.size : key instanceof Uint8Array ? key.length : -1;
  if (size < 1 || size > keyMax) throw new ArgumentError(`${what}: a key is 1 to ${keyMax} bytes or a SymmetricKey that size`);
  return idBytes;
}

function entriesOf<K, V>(m: ReadonlyMap<K, V> | Readonly<Record<string, V>>, what: string): [K | string, V][] {
  if (m instanceof Map) return [...m.entries()];
  if (typeof m !== "object" || m === null) throw new ArgumentError(`${what}: a Map or a record`);
  return Object.entries(m);
}

/** The objects whose handles a configuration names, in the order confMap takes them. */
function holdersOf(o: TLSConfigurationOptions): HandleHolder[] {
  const holders: HandleHolder[] = [];
  const chain = (c: CertificateChain) => holders.push(...(c[0] as readonly CRT[]), c[1]);
  if (o.trustStore) holders.push(o.trustStore);
  if (o.certificateChain) chain(o.certificateChain);
  for (const c of (o.sniCertificates as Map<string, CertificateChain> | undefined)?.values() ?? []) chain(c);
  const keys = [o.preSharedKey?.[1], ...((o.preSharedKeyStore as Map<unknown, PreSharedKey> | undefined)?.values() ?? [])];
  for (const k of keys) if (k instanceof SymmetricKey) holders.push(k);
  return holders;
}

function confMap(o: TLSConfigurationOptions, server: boolean, handles: number[]): Record<string, unknown> {
  const m: Record<string, unknown> = { server };
  let i = 0;
  const chain = (c: CertificateChain): [number[], number] => {
    const n = (c[0] as readonly CRT[]).length;
    i += n + 1;
    return [handles.slice(i - n - 1, i - 1), handles[i - 1] as number];
  };
  const key = (k: PreSharedKey): Uint8Array | number => (k instanceof SymmetricKey ? (handles[i++] as number) : Uint8Array.from(k));
  if (o.trustStore) m.trust = handles[i++];
  if (o.certificateChain) [m.chain, m.key] = chain(o.certificateChain);
  const sni = o.sniCertificates as Map<string, CertificateChain> | undefined;
  if (sni) m.sni = [...sni].map(([name, c]) => [name, ...chain(c)]);
  if (o.preSharedKey) m.psk = [utf8(o.preSharedKey[0]), key(o.preSharedKey[1])];
  const store = o.preSharedKeyStore as Map<string | Uint8Array, PreSharedKey> | undefined;
  if (store) m.psk_store = [...store].map(([id, k]) => [utf8(id), key(k)]);
  if (o.tls13KeyExchangeModes) m.tls13_kex = o.tls13KeyExchangeModes.map((x) => KEX_MODES[x]);
  const validate = o.validateCertificates ?? !server;
  m.verify = validate ? TlsVerify.required : TlsVerify.none;
  if (o.lowestSupportedVersion) m.min_version = VERSIONS[o.lowestSupportedVersion];
  if (o.highestSupportedVersion) m.max_version = VERSIONS[o.highestSupportedVersion];
  if (o.innerProtocols?.length) m.alpn = [...o.innerProtocols];
  if (o.ciphers?.length) m.suites = [...o.ciphers];
  if (o.maxFragmentLength !== undefined) m.mfl = o.maxFragmentLength;
  if (o.resumption) m.resumption = true;
  if (o.ticketLifetime !== undefined && server) m.ticket_lifetime = o.ticketLifetime;
  return m;
}

/**
 * A session's server name (SNI, and what the server's certificate must
 * carry), checked: a client that validates certificates (`validate`,
 * default true for a client) needs one; a server's sessions have none.
 */
export function sessionHostname(serverHostname: string | null | undefined, server: boolean, validate: boolean | undefined): string | null {
  if (serverHostname !== undefined && serverHostname !== null && (typeof serverHostname !== "string" || serverHostname.length === 0))
    throw new ArgumentError("serverHostname: a non-empty string or null");
  if (!server && (validate ?? true) && !serverHostname)
    throw new ArgumentError("a client that validates certificates needs serverHostname (the name the certificate must carry)");
  return server ? null : (serverHostname ?? null);
}

/** A configuration on the device, client or server (python-mbedtls's `ClientContext` / `ServerContext`). */
export class TLSContext extends DeviceObject {
  readonly configuration: TLSConfiguration;
  readonly server: boolean;
  /** Resolves once the device has the configuration; rejects with its refusal. */
  readonly ready: Promise<void>;
  /** tls-conf entries of a datagram configuration (dtls.ts's DTLSContext), added to the TLS ones. */
  readonly #datagram: Readonly<Record<string, unknown>> | undefined;

  /** @internal Made by `dev.tls.ClientContext(conf)` / `ServerContext(conf)`, and by dtls.ts with `datagram`. */
  constructor(ctx: SessionContext, configuration: TLSConfiguration, server: boolean, datagram?: Readonly<Record<string, unknown>>) {
    super(ctx, { pinned: true });
    if (!(configuration instanceof TLSConfiguration)) throw new ArgumentError("expected a TLSConfiguration");
    this.configuration = configuration;
    this.server = server;
    this.#datagram = datagram;
    const o = configuration.options;
    const map = (hs: number[]) => ({ ...confMap(o, server, hs), ...datagram });
    const created = this.open((h) => withHandlesOf(ctx, holdersOf(o), (hs) => ctx.call(Op.tlsConfNew, [h, map(hs)])));
    this.ready = created.then(() => {});
    this.ready.catch(() => {});
  }

  protected get what(): string {
    return `${this.#datagram ? "DTLS" : "TLS"} ${this.server ? "server" : "client"} configuration`;
  }

  /**
   * A session that reads from and writes to buffers the caller moves
   * (python-mbedtls's `wrap_buffers`). `serverHostname`: the server's name
   * (SNI, and what its certificate must carry); a client that validates
   * certificates needs it. `opts.handshakeTimeoutMs` overrides the
   * configuration's.
   */
  wrapBuffers(serverHostname?: string | null, opts: TLSWrapOptions = {}): TLSWrappedBuffer {
    const name = sessionHostname(serverHostname, this.server, this.configuration.options.validateCertificates);
    const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? this.configuration.options.handshakeTimeoutMs;
    if (opts.session !== undefined && (this.server || !this.configuration.options.resumption))
      throw new ArgumentError("session: only a client context whose configuration has resumption resumes one");
    const session = opts.session;
    return new TLSWrappedBuffer(this.ctx, this, name, { handshakeTimeoutMs, session });
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

/** A cipher suite the device offers: Mbed TLS's name (e.g. "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256") and its IANA number (0xc02b). */
export interface CipherSuite {
  name: string;
  id: number;
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

  /** A server configuration on the device (needs `certificateChain`, `sniCertificates`, `preSharedKey` or `preSharedKeyStore`). */
  ServerContext(configuration: TLSConfiguration): TLSContext {
    return new TLSContext(this.ctx, configuration, true);
  }

  /**
   * The cipher suites the device offers, in its order of preference
   * (python-mbedtls's `ciphers_available`): Mbed TLS's name and the IANA
   * number that `ciphers` takes.
   */
  async ciphersAvailable(opts: CallOptions = {}): Promise<CipherSuite[]> {
    const suites: CipherSuite[] = [];
    for (;;) {
      const r = await this.ctx.call(Op.tlsCiphersuites, [suites.length], opts);
      if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== "number" || !Array.isArray(r[1]))
        throw new ProtocolError("tls_ciphersuites: not [total, entries]");
      const [total, page] = r as [number, unknown[]];
      for (const e of page) {
        if (!Array.isArray(e) || typeof e[0] !== "number" || typeof e[1] !== "string")
          throw new ProtocolError("tls_ciphersuites: not [id, name]");
        suites.push({ id: e[0], name: e[1] });
      }
      if (suites.length >= total) return suites;
      if (page.length === 0) throw new ProtocolError("tls_ciphersuites: an empty page before the last suite");
    }
  }

  /**
   * A TLS client session over a new TCP connection or `socket`, as a Node
   * `Duplex` (Node's `tls.connect` in shape): usable as `https.request`'s
   * `createConnection`. 'secureConnect' once the handshake is over; errors
   * as 'error' events.
   */
  connect(options: ConnectOptions, onSecureConnect?: () => void): TLSStream {
    const { socket, host, port, servername, context, configuration, allowHalfOpen, session, ...rest } = options;
    if (context !== undefined && (!(context instanceof TLSContext) || context.server))
      throw new ArgumentError("context: a client TLSContext");
    const name = servername !== undefined ? servername : host !== undefined && isIP(host) === 0 ? host : undefined;
    const ctx = context ?? this.ClientContext(configuration ?? new TLSConfiguration(rest));
    let buffer: TLSWrappedBuffer;
    try {
      buffer = ctx.wrapBuffers(name, { ...rest, session }); // the session's options (handshakeTimeoutMs, ...)
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
