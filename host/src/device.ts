// Device: one session with an mbedlink device. Runs hello at open (and again
// after a device reset, before any further call is served), exposes the
// device identity, sys ops and the crypto modules.
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { ArgumentError, DisconnectedError, ProtocolError, TimeoutError } from "./base/errors.js";
import { Limits, Op, PROTOCOL_VERSION } from "./base/protocol.generated.js";
import { camelKeys, hex } from "./base/util.js";
import type { LinkCounters, SerialOptions, Transport } from "./link/transport.js";
import { SerialTransport } from "./link/transport.js";
import { CipherModule } from "./modules/cipher.js";
import { CmacModule } from "./modules/cmac.js";
import { DTLSModule } from "./modules/dtls.js";
import { HashModule, hashNameOf } from "./modules/hash.js";
import { HkdfModule } from "./modules/hkdf.js";
import { HmacModule } from "./modules/hmac.js";
import { KdfModule } from "./modules/kdf.js";
import { KeysModule } from "./modules/keys.js";
import { KeyWrapModule } from "./modules/keywrap.js";
import { MpiModule } from "./modules/mpi.js";
import { PkModule } from "./modules/pk.js";
import { RandomModule } from "./modules/random.js";
import { SlotsModule } from "./modules/slots.js";
import { TLSModule } from "./modules/tls.js";
import { X509Module } from "./modules/x509.js";
import type { CallOptions, ResetInfo, SessionEventMap } from "./rpc/rpc.js";
import { DEFAULT_TIMEOUT_MS, Rpc } from "./rpc/rpc.js";
import { RpcSession, type SessionContext, type TLSLimits } from "./session/context.js";

/** The device identity and limits, from hello. */
export interface DeviceInfo {
  protocolVersion: number;
  firmwareVersion: string;
  /** e.g. "3.6.6" */
  mbedtlsVersion: string;
  board: string;
  /** Largest frame body (CBOR + CRC) the device accepts and sends. */
  mtu: number;
  /** Requests the host keeps in flight at most. */
  window: number;
  maxHandles: number;
  heapSize: number;
  heapUsed: number;
  heapPeak: number;
  /** 8 random bytes per boot, as hex. */
  bootId: string;
  /** The device's own description of its entropy source. */
  entropy: string;
  /** Names of the compiled-in digests (ids.json names; "alg<N>" for ids this SDK does not know). */
  hashes: string[];
  /** Where key slots live: "file", "semihosting-file", "flash" or "volatile". */
  keyStore: string;
  /** Whether slots survive a restart of the device. */
  persistent: boolean;
  /** Number of key slots (dev.slots). */
  slots: number;
  /** Most CA certificates one dev.x509.TrustStore holds (0 from firmware without trust stores). */
  trustCasMax: number;
  /** Most CRLs one dev.x509.TrustStore holds. */
  trustCrlsMax: number;
  /** The device's TLS limits (dev.tls, spec.md 7.12); zeros from firmware without TLS. */
  tls: TLSLimits;
  /** The device's DTLS limits (dev.dtls, spec.md 7.13; sessions count against tls.sessionsMax); zeros from firmware without DTLS. */
  dtls: DTLSLimits;
}

/** hello's "dtls" map. */
export interface DTLSLimits {
  /** Bytes of handshake messages a session buffers out of order (MBEDTLS_SSL_DTLS_MAX_BUFFERING). */
  buffering: number;
  /** Longest own Connection ID a configuration may ask for. */
  cidMax: number;
  /** Largest datagram a session takes or sends (its ring less the 2-byte length); also the largest MTU. */
  datagramMax: number;
}

function dtlsLimits(v: unknown): DTLSLimits {
  if (v === undefined) return { buffering: 0, cidMax: 0, datagramMax: 0 };
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array)
    throw new ProtocolError('hello: "dtls" is not a map');
  const d = v as Record<string, unknown>;
  return {
    buffering: u(d.dtls_buffering, "dtls.dtls_buffering"),
    cidMax: u(d.cid_max, "dtls.cid_max"),
    datagramMax: u(d.datagram_max, "dtls.datagram_max"),
  };
}

/** python-mbedtls's `mbedtls.version`, of the device's Mbed TLS. */
export interface VersionInfo {
  /** e.g. "Mbed TLS 3.6.6" */
  version: string;
  /** e.g. [3, 6, 6] */
  versionInfo: [number, number, number];
}

/** dev.stats(): device counters (stats-res of messages.cddl, camelCase). */
export interface DeviceStats {
  heapSize: number;
  heapUsed: number;
  heapPeak: number;
  heapBlocks: number;
  handlesUsed: number;
  maxHandles: number;
  rxFrames: number;
  rxDropped: number;
  rxBadCrc: number;
  rxBadEscape: number;
  rxOversize: number;
  rxTooShort: number;
  rxBadMessage: number;
  txFrames: number;
  txDropped: number;
  stackPeak: number;
  /** Requests answered out_of_memory since boot. */
  oomAnswers: number;
  /** TLS sessions alive (at most info.tls.sessionsMax). */
  tlsSessions: number;
  /** TLS configurations alive (a closed context's included while its sessions keep it). */
  tlsConfs: number;
  [key: string]: unknown;
}

/** A Device's events: the session's (reset, frameDropped, disconnected, busy) and its own. */
export interface DeviceEventMap extends SessionEventMap {
  /** Re-running hello after a reset failed (the queued calls failed with this error). */
  error: [err: Error];
  /** The session is open again after a reset or a lost link (hello done; queued calls go on). */
  reconnected: [info: DeviceInfo];
}

export interface DeviceOptions {
  /** Default per-call timeout in ms (10 s). */
  timeoutMs?: number;
  /** Extra cleanup when the device is closed (e.g. stop the native process). @internal */
  onClose?: () => Promise<void>;
  /** Resends of a lost idempotent request (spec §6), default 3. */
  retries?: number;
  /**
   * Brings the link back after it was lost (restart the native process or
   * QEMU, or reopen the port). Without it a lost link is final. @internal
   */
  reconnect?: () => Promise<Transport>;
}

function u(v: unknown, key: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new ProtocolError(`hello: "${key}" is not an unsigned integer`);
  return v;
}
function bool(v: unknown, key: string): boolean {
  if (typeof v !== "boolean") throw new ProtocolError(`hello: "${key}" is not a boolean`);
  return v;
}
function s(v: unknown, key: string): string {
  if (typeof v !== "string") throw new ProtocolError(`hello: "${key}" is not a text string`);
  return v;
}

/** Parses and checks a hello result map. */
export function parseHello(r: unknown): DeviceInfo {
  if (typeof r !== "object" || r === null || Array.isArray(r) || r instanceof Uint8Array)
    throw new ProtocolError("hello: result is not a map");
  const m = r as Record<string, unknown>;
  const bootId = m.boot_id;
  if (!(bootId instanceof Uint8Array)) throw new ProtocolError('hello: "boot_id" is not a byte string');
  const hashes = m.hashes;
  if (!Array.isArray(hashes)) throw new ProtocolError('hello: "hashes" is not an array');
  return {
    protocolVersion: u(m.proto, "proto"),
    firmwareVersion: s(m.fw, "fw"),
    mbedtlsVersion: s(m.mbedtls, "mbedtls"),
    board: s(m.board, "board"),
    mtu: u(m.mtu, "mtu"),
    window: u(m.window, "window"),
    maxHandles: u(m.max_handles, "max_handles"),
    heapSize: u(m.heap_size, "heap_size"),
    heapUsed: u(m.heap_used, "heap_used"),
    heapPeak: u(m.heap_peak, "heap_peak"),
    bootId: hex(bootId),
    entropy: s(m.entropy, "entropy"),
    hashes: hashes.map((id) => (typeof id === "number" ? (hashNameOf(id) ?? `alg${id}`) : String(id))),
    keyStore: s(m.key_store, "key_store"),
    persistent: bool(m.persistent, "persistent"),
    slots: u(m.slots, "slots"),
    trustCasMax: m.trust_cas_max === undefined ? 0 : u(m.trust_cas_max, "trust_cas_max"),
    trustCrlsMax: m.trust_crls_max === undefined ? 0 : u(m.trust_crls_max, "trust_crls_max"),
    tls: {
      sessionsMax: m.tls_sessions_max === undefined ? 0 : u(m.tls_sessions_max, "tls_sessions_max"),
      inRecord: m.tls_in_record === undefined ? 0 : u(m.tls_in_record, "tls_in_record"),
      outRecord: m.tls_out_record === undefined ? 0 : u(m.tls_out_record, "tls_out_record"),
      ring: m.tls_ring === undefined ? 0 : u(m.tls_ring, "tls_ring"),
    },
    dtls: dtlsLimits(m.dtls),
  };
}

function clockOf(r: unknown): Date {
  const s = typeof r === "bigint" ? Number(r) : r;
  if (typeof s !== "number" || !Number.isInteger(s) || s < 0) throw new ProtocolError("time_set: result is not an unsigned integer");
  return new Date(s);
}

function parseVersion(mbedtls: string): VersionInfo {
  const parts = mbedtls.split(".").map((p) => Number.parseInt(p, 10));
  const [a = 0, b = 0, c = 0] = parts.map((n) => (Number.isFinite(n) ? n : 0));
  return { version: `Mbed TLS ${mbedtls}`, versionInfo: [a, b, c] };
}

/** Resends of a lost idempotent request by default (spec §6). */
export const DEFAULT_RETRIES = 3;

/** Shortest time between two boot id checks after bad_handle answers, ms. */
const BOOT_CHECK_INTERVAL_MS = 1000;

/** First hello attempt's timeout; each retry waits one step longer. */
const HELLO_RETRY_MS = 500;

export class Device extends EventEmitter<DeviceEventMap> implements AsyncDisposable {
  readonly rpc: Rpc;
  /** Digests (PEP 452 shape). */
  readonly hash: HashModule;
  /** Symmetric ciphers (PEP 272 shape, python-mbedtls's mbedtls.cipher). */
  readonly cipher: CipherModule;
  /** HMAC (PEP 452 shape, python-mbedtls's mbedtls.hmac). */
  readonly hmac: HmacModule;
  /** HKDF (RFC 5869). */
  readonly hkdf: HkdfModule;
  /** CMAC (NIST SP 800-38B, RFC 4493): AES-128/192/256 and DES3, in dev.hmac's shape. */
  readonly cmac: CmacModule;
  /** Password-based key derivation: PBKDF2-HMAC (RFC 8018). */
  readonly kdf: KdfModule;
  /** The device DRBG with Python `secrets` semantics. */
  readonly random: RandomModule;
  /** Device-held symmetric keys for dev.cipher and dev.hmac. */
  readonly keys: KeysModule;
  /** NIST key wrap KW / KWP (RFC 3394 / 5649) under a KEK, into device keys. */
  readonly keywrap: KeyWrapModule;
  /** Persistent key slots (spec.md 7.4). */
  readonly slots: SlotsModule;
  /** RSA and EC keys on the device (python-mbedtls's mbedtls.pk). */
  readonly pk: PkModule;
  /** Primes and random big numbers from the device DRBG (python-mbedtls's mbedtls.mpi). */
  readonly mpi: MpiModule;
  /** X.509 certificates, CRLs (and requests, trust stores) on the device (spec.md 7.x). */
  readonly x509: X509Module;
  /** TLS sessions run on the device: configurations, contexts, wrapped buffers and sockets (python-mbedtls's `tls`). */
  readonly tls: TLSModule;
  /** DTLS 1.2 sessions run on the device: configurations, contexts, wrapped datagram buffers (python-mbedtls's `DTLSConfiguration`). */
  readonly dtls: DTLSModule;
  /** @internal What the modules use of this session. */
  readonly _context: SessionContext;
  private _info: DeviceInfo | undefined;
  private closing: Promise<void> | undefined;
  private readonly onClose: (() => Promise<void>) | undefined;
  private readonly reconnectLink: (() => Promise<Transport>) | undefined;
  private bootCheck: Promise<void> | undefined;
  private lastBootCheck = Number.NEGATIVE_INFINITY;

  private constructor(transport: Transport, opts: DeviceOptions) {
    super();
    this.rpc = new Rpc(transport, {
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      retries: opts.retries ?? DEFAULT_RETRIES,
      inOrder: true,
    });
    this.onClose = opts.onClose;
    this.reconnectLink = opts.reconnect;
    if (opts.reconnect) this.rpc.onLinkLost = (err) => void this.reconnect(err);
    const ctx = new RpcSession(
      this.rpc,
      () => this.info,
      () => this.closing !== undefined,
    );
    this._context = ctx;
    this.hash = new HashModule(ctx);
    this.cipher = new CipherModule(ctx);
    this.hmac = new HmacModule(ctx);
    this.hkdf = new HkdfModule(ctx);
    this.cmac = new CmacModule(ctx);
    this.kdf = new KdfModule(ctx);
    this.random = new RandomModule(ctx);
    this.keys = new KeysModule(ctx);
    this.keywrap = new KeyWrapModule(ctx);
    this.slots = new SlotsModule(ctx);
    this.pk = new PkModule(ctx);
    this.mpi = new MpiModule(ctx);
    this.x509 = new X509Module(ctx);
    this.tls = new TLSModule(ctx);
    this.dtls = new DTLSModule(ctx, this.tls.TrustStore);
    this.rpc.on("frameDropped", (info) => this.emit("frameDropped", info));
    this.rpc.on("disconnected", (err) => this.emit("disconnected", err));
    this.rpc.on("busy", (info) => this.emit("busy", info));
    this.rpc.on("reset", (info) => this.onReset(info));
    this.rpc.on("badHandle", () => this.checkBoot());
  }

  /** Runs hello over an open transport and returns the session. */
  static async connect(transport: Transport, opts: DeviceOptions = {}): Promise<Device> {
    const dev = new Device(transport, opts);
    try {
      await dev.hello();
    } catch (e) {
      await dev.close().catch(() => {});
      throw e;
    }
    return dev;
  }

  /** The link in use (a new one after a reconnect). */
  get transport(): Transport {
    return this.rpc.transport;
  }

  /** The identity and limits from the latest hello. */
  get info(): DeviceInfo {
    if (!this._info) throw new ArgumentError("no session yet (hello has not completed)");
    return this._info;
  }

  /** The device's Mbed TLS version, python-mbedtls `mbedtls.version` style. */
  get version(): VersionInfo {
    return parseVersion(this.info.mbedtlsVersion);
  }

  /** Largest byte string one request can carry (mtu - request_overhead_max). */
  get chunkSize(): number {
    return this._context.chunkSize;
  }

  /** Default per-call timeout in ms. */
  get timeoutMs(): number {
    return this.rpc.timeoutMs;
  }
  set timeoutMs(ms: number) {
    this.rpc.timeoutMs = ms;
  }

  /** Host-side link counters (frames, bytes, drops by reason). */
  get linkCounters(): LinkCounters {
    return this.transport.counters;
  }

  /** Link test: the device returns `data`. */
  async echo(data: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    if (!(data instanceof Uint8Array)) throw new ArgumentError("echo() takes a Uint8Array");
    if (data.length > this.chunkSize) throw new ArgumentError(`echo() data of ${data.length} bytes exceeds ${this.chunkSize} (MTU limit)`);
    const r = await this.rpc.call(Op.echo, [data], opts);
    if (!(r instanceof Uint8Array)) throw new ProtocolError("echo: result is not a byte string");
    return Uint8Array.from(r);
  }

  /** The device clock (time_set without an argument), by which certificate and CRL validity are judged. */
  async time(opts: CallOptions = {}): Promise<Date> {
    return clockOf(await this.rpc.call(Op.timeSet, [], opts));
  }

  /**
   * Sets the device clock (the SDK already sets it to the host's time after
   * every hello, so this lasts until the next reset or reconnect); resolves
   * with the clock's new time.
   */
  async setTime(at: Date, opts: CallOptions = {}): Promise<Date> {
    if (!(at instanceof Date) || Number.isNaN(at.getTime()) || at.getTime() < 0)
      throw new ArgumentError("setTime() takes a valid Date from 1970 on");
    return clockOf(await this.rpc.call(Op.timeSet, [BigInt(at.getTime())], opts));
  }

  /** Heap, handle and link counters of the device. */
  async stats(opts: CallOptions = {}): Promise<DeviceStats> {
    const r = await this.rpc.call(Op.stats, [], opts);
    if (typeof r !== "object" || r === null || Array.isArray(r)) throw new ProtocolError("stats: result is not a map");
    return camelKeys(r as Record<string, unknown>) as DeviceStats;
  }

  /** Closes the port (failing pending calls with DisconnectedError) and stops a spawned target. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.rpc.close();
      } finally {
        await this.onClose?.();
      }
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal Next host-chosen handle: a per-Device counter, never reused. */
  _nextHandle(): number {
    return this._context.nextHandle();
  }

  /** @internal Frees the handle of an object garbage-collected without close(). */
  _freeOrphan(handle: number, epoch: number): void {
    this._context.freeOrphan(handle, epoch);
  }

  /**
   * hello is idempotent (spec §6), so it is retried within the call's
   * timeout: bytes sent in the first moments after a port is opened can be
   * lost (measured: QEMU's pty chardev drops about half of the requests sent
   * within its first second of a new connection; a board may still be
   * booting), and a retry is cheaper than failing the whole open().
   */
  private async hello(): Promise<void> {
    const seed = new Uint8Array(randomBytes(32));
    const deadline = performance.now() + this.rpc.timeoutMs;
    let r: unknown;
    for (let attempt = 1; ; attempt++) {
      const left = deadline - performance.now();
      const timeoutMs = Math.max(1, Math.min(left, HELLO_RETRY_MS * attempt));
      try {
        r = await this.rpc.callPriority(Op.hello, [seed], { timeoutMs });
        break;
      } catch (e) {
        if (!(e instanceof TimeoutError) || performance.now() >= deadline) throw e;
      }
    }
    const info = parseHello(r);
    if (info.protocolVersion !== PROTOCOL_VERSION) {
      throw new ProtocolError(`device speaks protocol version ${info.protocolVersion}, this SDK speaks ${PROTOCOL_VERSION}`);
    }
    if (info.mtu < Limits.minMtu) throw new ProtocolError(`hello: mtu ${info.mtu} is below the minimum ${Limits.minMtu}`);
    if (info.window < 1) throw new ProtocolError("hello: window is 0");
    this._info = info;
    this.rpc.window = info.window;
    this.rpc.mtu = info.mtu;
    this.transport.setMaxFrame(info.mtu);
    this.rpc.noteBootId(Buffer.from(info.bootId, "hex"));
    await this.setClock(deadline);
  }

  /**
   * Sets the device clock (time_set) to the host's time after every hello:
   * at open, after a reset and on a new link, before any queued call goes
   * on, so certificate validity is judged by the right date (a board keeps
   * no calendar across a restart). It goes ahead of queued calls like hello;
   * ordered (spec 6), so a lost request is resent only while nothing sent
   * after it can depend on it, and each try carries the time of its own
   * sending (a new request, never a stale resend).
   */
  private async setClock(deadline: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const left = deadline - performance.now();
      const timeoutMs = Math.max(1, Math.min(left, HELLO_RETRY_MS * attempt));
      try {
        await this.rpc.callPriority(Op.timeSet, [BigInt(Date.now())], { timeoutMs });
        return;
      } catch (e) {
        if (!(e instanceof TimeoutError) || performance.now() >= deadline) throw e;
      }
    }
  }

  /**
   * The device answered bad_handle. If it rebooted without the host seeing
   * the boot event (damaged on the line, or sent while the port was
   * closed), hello finds the new boot id and the reset is handled as usual.
   * At most one check at a time, one a second.
   */
  private checkBoot(): void {
    const now = performance.now();
    if (this.bootCheck || this.closing || this.rpc.isPaused || now - this.lastBootCheck < BOOT_CHECK_INTERVAL_MS) return;
    this.lastBootCheck = now;
    this.bootCheck = this.hello()
      .catch(() => {})
      .finally(() => {
        this.bootCheck = undefined;
      });
  }

  private onReset(info: ResetInfo): void {
    // Hold every new call until the new session is open.
    this.rpc.pause();
    this.emit("reset", info);
    if (this.rpc.isLinkDown) return; // reconnect() runs hello on the new link
    this.hello().then(
      () => {
        this.rpc.resume();
        this.emit("reconnected", this.info);
      },
      (err: Error) => {
        this.rpc.failAll(err);
        this.rpc.resume();
        if (this.listenerCount("error") > 0) this.emit("error", err);
      },
    );
  }

  /**
   * The link was lost and a way back exists (the Device owns the process, or
   * reopening the port was asked for): in-flight calls already failed with
   * DeviceResetError; new calls wait while a new link is made and hello runs
   * on it. If that fails, everything fails with DisconnectedError.
   */
  private async reconnect(cause: Error): Promise<void> {
    const reconnectLink = this.reconnectLink;
    if (!reconnectLink) return;
    try {
      // Let go of the dead port first: its name (and lock) may go to the new device.
      await this.transport.close().catch(() => {});
      const t = await reconnectLink();
      if (this.closing) {
        await t.close();
        return;
      }
      this.rpc.bootId = undefined; // the reset is already declared: hello names the new session
      this.rpc.replaceTransport(t);
      await this.hello();
      this.rpc.resume();
      this.emit("reconnected", this.info);
    } catch (e) {
      // Closed meanwhile, or the new link was lost too and another reconnect runs.
      if (this.closing || this.rpc.isLinkDown) return;
      const err = new DisconnectedError(`device lost (${cause.message}) and reconnecting failed: ${(e as Error).message}`);
      this.rpc.giveUp(err);
      this.rpc.resume();
    }
  }
}

export interface OpenOptions {
  /** Default per-call timeout in ms (10 s); hello at open uses it too. */
  timeoutMs?: number;
  /** Baud rate of a real UART (115200). */
  baudRate?: number;
  /** Resends of a lost idempotent request (spec §6), default 3; 0 turns resending off. */
  retries?: number;
  /**
   * What to do when the link is lost. A device the SDK started (target
   * "native" or "qemu" without a path) is restarted by default; a port path is
   * reopened only when this is true (it keeps trying for `timeoutMs`), since a
   * vanished PTY's name may be given to an unrelated terminal. In-flight
   * calls fail with DeviceResetError, 'reset' and then 'reconnected' are
   * emitted, and calls made meanwhile wait for the new session.
   */
  reconnect?: boolean;
}

export interface TargetOpenOptions extends OpenOptions {
  /**
   * "serial": the port at `path`; "native": spawn the native simulator
   * (build/native/mbedlink-native, built first when missing); "qemu": boot the STM32F405
   * image in qemu-system-arm (build/stm32/mbedlink-stm32f405.elf, built first when missing).
   */
  target: "native" | "qemu" | "serial";
  /** Serial port path (target "serial"); for "native", the PTY of a simulator already running (nothing is spawned). */
  path?: string;
  /** Native target: argv to run instead of build/native/mbedlink-native (it must print the PTY path first). */
  command?: readonly string[];
  /**
   * A target the SDK starts: the directory that holds its key store, kept
   * after close so a later session (or another process) sees the same slots.
   * Default: a fresh store per session, deleted on close.
   */
  storeDir?: string;
}

/** Opens a device on a serial port path and runs hello. */
export async function open(path: string, opts?: OpenOptions): Promise<Device>;
/** Opens a device by target and runs hello. */
export async function open(opts: TargetOpenOptions): Promise<Device>;
export async function open(a: string | TargetOpenOptions, b: OpenOptions = {}): Promise<Device> {
  if (typeof a === "string") return openSerial(a, b);
  if (typeof a !== "object" || a === null) throw new ArgumentError("open() takes a port path or { target }");
  switch (a.target) {
    case "serial":
      if (!a.path) throw new ArgumentError('open({ target: "serial" }) needs a path');
      return openSerial(a.path, a);
    case "qemu": {
      if (a.path) return openSerial(a.path, a);
      const { startQemu } = await import("./targets/qemu.js");
      const storeDir = a.storeDir;
      return openOwned(a, () => startQemu(storeDir ? { storeDir } : {}));
    }
    case "native": {
      // A path names a simulator that is already running: just connect.
      if (a.path) return openSerial(a.path, a);
      const { startNative, nativeStoreFile } = await import("./targets/native.js");
      const { command, storeDir } = a;
      return openOwned(a, () =>
        startNative({ ...(command ? { command } : {}), ...(storeDir ? { store: nativeStoreFile(storeDir) } : {}) }),
      );
    }
    default:
      throw new ArgumentError(`unknown target ${JSON.stringify((a as { target: unknown }).target)}`);
  }
}

interface StartedTarget {
  readonly path: string;
  readonly child: { once(event: "exit", listener: () => void): unknown };
  stop(): Promise<void>;
}

/**
 * A device whose process the SDK runs: stopped on close, and restarted
 * (a new process, a new PTY) when it dies, unless `reconnect` is false.
 */
async function openOwned(opts: OpenOptions, start: () => Promise<StartedTarget>): Promise<Device> {
  let target = await start();
  let closed = false;
  const serialOpts = opts.baudRate !== undefined ? { baudRate: opts.baudRate } : {};
  const devOpts = deviceOptions(opts);
  devOpts.onClose = () => {
    closed = true;
    return target.stop();
  };
  // The process exiting is the sure sign of a dead device: an idle PTY does
  // not report its other end going away.
  const watch = (t: StartedTarget, link: Transport): Transport => {
    t.child.once("exit", () => {
      if (!closed && target === t) void link.close();
    });
    return link;
  };
  if (opts.reconnect !== false) {
    devOpts.reconnect = async () => {
      await target.stop();
      target = await start();
      // closed while the new one started: it must not outlive the Device
      if (closed) await target.stop();
      return watch(target, await SerialTransport.open(target.path, serialOpts));
    };
  }
  try {
    return await Device.connect(watch(target, await SerialTransport.open(target.path, serialOpts)), devOpts);
  } catch (e) {
    await target.stop();
    throw e;
  }
}

function deviceOptions(opts: OpenOptions): DeviceOptions {
  const devOpts: DeviceOptions = {};
  if (opts.timeoutMs !== undefined) devOpts.timeoutMs = opts.timeoutMs;
  if (opts.retries !== undefined) devOpts.retries = opts.retries;
  return devOpts;
}

/** Reopens `path` until it opens or `ms` pass. */
async function reopen(path: string, opts: SerialOptions, ms: number): Promise<Transport> {
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      return await SerialTransport.open(path, opts);
    } catch (e) {
      if (performance.now() >= deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function openSerial(path: string, opts: OpenOptions): Promise<Device> {
  const serialOpts = opts.baudRate !== undefined ? { baudRate: opts.baudRate } : {};
  const transport = await SerialTransport.open(path, serialOpts);
  const devOpts = deviceOptions(opts);
  if (opts.reconnect === true) devOpts.reconnect = () => reopen(path, serialOpts, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  return Device.connect(transport, devOpts);
}
