// Key exchange on the device (spec.md 7.5): ECDH (ephemeral, or static from
// an EC key held on the device) and finite-field DH, with python-mbedtls's
// flow and TLS payload formats:
//
//   server.generate() -> ServerKeyExchange -> client.importSKE()
//   client.generate() -> ClientKeyExchange -> server.importCKE()
//   server.generateSecret() === client.generateSecret()      (bigint)
//
// The private values never leave the device. The shared secret comes back
// as a bigint (python-mbedtls's MPI), or stays on the device as a
// SymmetricKey (generateSecretKey) for dev.cipher and dev.hmac.
//
// A context is created with a pipelined kex_new; its failure (an unknown
// curve, a modulus the device refuses) is thrown by the first call.
import { bigArg, byteLength, fromBytes } from "../base/bigint.js";
import { ArgumentError, ProtocolError } from "../base/errors.js";
import { type CurveInfo, KexKind, KexRole, Op } from "../base/protocol.generated.js";
import type { CallOptions, SessionContext, SessionRef } from "../session/context.js";
import { DeviceObject } from "../session/device-object.js";
import { curveNamed, lookupCurve } from "./curves.js";
import { _adoptSymmetric, type SymmetricKey } from "./keys.js";
import { longOp } from "./mpi.js";

/** The curve of an ephemeral ECDH exchange when none is named. */
export const DEFAULT_ECDH_CURVE = "secp256r1";

/** An EC key held on the device whose private part a static ECDH uses (pk-key.ts's ECC). */
export interface StaticEcdhKey {
  /** The key's curve name. */
  readonly curve: string;
  /** @internal Runs `fn` with the key's handle once it exists on the device (kept there until `fn` settles). */
  _use<T>(session: SessionRef, fn: (handle: number) => Promise<T>): Promise<T>;
}

/** Bytes of an ECDH shared secret (the x-coordinate, as long as the field's prime). */
function ecdhSecretSize(c: CurveInfo): number {
  // ids.json lists secp224k1 at 225 bits (its order); its field prime has 224.
  return c.name === "secp224k1" ? 28 : Math.ceil(c.bits / 8);
}

function payload(data: unknown, what: string): Uint8Array {
  if (!(data instanceof Uint8Array)) throw new ArgumentError(`${what} must be a Uint8Array`);
  return Uint8Array.from(data);
}

/** What ECDH and DH servers and clients share: the device context and the secret steps. */
export abstract class KeyExchange extends DeviceObject {
  /** "server" or "client". */
  readonly role: "server" | "client";
  private readonly created: Promise<void>;
  private secret: bigint | undefined;
  private secretBytes: Uint8Array | undefined;

  protected constructor(ctx: SessionContext, role: "server" | "client", kind: number, params: KexParams) {
    // A key-exchange context cannot be swapped out (the device does not wrap it).
    super(ctx, { pinned: true });
    this.role = role;
    const roleId = role === "server" ? KexRole.server : KexRole.client;
    const key = params.key;
    this.created = this.track(
      key
        ? this.open((handle, keyHandle) => ctx.call(Op.kexNew, [handle, kind, roleId, params.params(), keyHandle]), key)
        : this.open((handle) => ctx.call(Op.kexNew, [handle, kind, roleId, params.params(), null])),
    );
  }

  /** Bytes of the shared secret (ECDH: the field size; DH: len(P)); undefined while a static key's curve is unknown. */
  protected abstract get secretSize(): number | undefined;

  /**
   * This side's payload: the ServerKeyExchange of a server, the
   * ClientKeyExchange of a client (TLS formats, as python-mbedtls).
   */
  async generate(opts: CallOptions = {}): Promise<Uint8Array> {
    await this.ready();
    const r = await this.use((h) => this.ctx.call(Op.kexGenerate, [h], longOp(this.ctx, opts)));
    if (!(r instanceof Uint8Array) || r.length === 0) throw new ProtocolError("kex_generate: result is not a byte string");
    return Uint8Array.from(r);
  }

  /** The shared secret as a bigint (python-mbedtls's generate_secret()); also kept in `sharedSecret`. */
  async generateSecret(opts: CallOptions = {}): Promise<bigint> {
    const b = await this.generateSecretBytes(opts);
    return fromBytes(b);
  }

  /**
   * The shared secret as the device gives it: big-endian, fixed length
   * (ECDH: the x-coordinate, field size bytes, x25519/x448 as RFC 7748;
   * DH: G^XY in len(P) bytes), the form
   * to hash or feed a KDF.
   */
  async generateSecretBytes(opts: CallOptions = {}): Promise<Uint8Array> {
    await this.ready();
    const r = await this.use((h) => this.ctx.call(Op.kexSecret, [h, null], longOp(this.ctx, opts)));
    if (!(r instanceof Uint8Array) || r.length === 0) throw new ProtocolError("kex_secret: result is not a byte string");
    const want = this.secretSize;
    if (want !== undefined && r.length !== want) throw new ProtocolError(`kex_secret: ${r.length} bytes, expected ${want}`);
    this.secretBytes = Uint8Array.from(r);
    this.secret = fromBytes(r);
    return Uint8Array.from(r);
  }

  /**
   * The shared secret as a new device-held SymmetricKey (at most symkey_max
   * bytes, else BadArgumentError): it never leaves the device, and
   * dev.cipher / dev.hmac take the key in place of bytes. `sharedSecret`
   * stays unset.
   */
  async generateSecretKey(opts: CallOptions = {}): Promise<SymmetricKey> {
    await this.ready();
    return _adoptSymmetric(
      this.ctx,
      (handle) => this.use((h) => this.ctx.call(Op.kexSecret, [h, handle], longOp(this.ctx, opts))),
      this.secretSize,
    );
  }

  /** The secret of the last generateSecret() / generateSecretBytes(), python-mbedtls's shared_secret; undefined before. */
  get sharedSecret(): bigint | undefined {
    return this.secret;
  }

  /** The bytes of `sharedSecret` (fixed length), undefined before a secret was generated. */
  get sharedSecretBytes(): Uint8Array | undefined {
    return this.secretBytes && Uint8Array.from(this.secretBytes);
  }

  /** Sends the peer's payload (SKE to a client, CKE to a server). */
  protected async importPeer(data: Uint8Array, what: string, opts: CallOptions): Promise<void> {
    const bytes = payload(data, what);
    if (bytes.length > this.ctx.chunkSize)
      throw new ArgumentError(`${what} of ${bytes.length} bytes exceeds ${this.ctx.chunkSize} (MTU limit)`);
    await this.ready();
    await this.use((h) => this.ctx.call(Op.kexImport, [h, bytes], longOp(this.ctx, opts)));
  }

  /** Waits for kex_new; throws its failure. */
  private async ready(): Promise<void> {
    this.check();
    await this.created;
    if (this.failure) throw this.failure;
  }
}

/** kex_new's params (read when it is sent) and the static key it names, if any. */
interface KexParams {
  params: () => unknown;
  key?: StaticEcdhKey;
}

interface EcdhParams extends KexParams {
  curve?: CurveInfo;
}

function ecdhParams(curveOrKey: string | StaticEcdhKey | undefined): EcdhParams {
  if (curveOrKey === undefined || typeof curveOrKey === "string") {
    const c = lookupCurve(curveOrKey ?? DEFAULT_ECDH_CURVE);
    return { curve: c, params: () => c.id };
  }
  const key = curveOrKey as Partial<StaticEcdhKey> | null;
  if (typeof key !== "object" || key === null || typeof key._use !== "function" || typeof key.curve !== "string")
    throw new ArgumentError("ECDH takes a curve name or an ECC key");
  const k = key as StaticEcdhKey;
  return { key: k, params: () => lookupCurve(k.curve).id };
}

/** Elliptic-curve Diffie-Hellman, ephemeral or static; base of ECDHServer and ECDHClient. */
export abstract class ECDHBase extends KeyExchange {
  private readonly namedCurve: CurveInfo | undefined;
  /** The static key, when the exchange uses one. */
  readonly key: StaticEcdhKey | undefined;

  protected constructor(ctx: SessionContext, role: "server" | "client", curveOrKey?: string | StaticEcdhKey) {
    const p = ecdhParams(curveOrKey);
    super(ctx, role, KexKind.ecdh, p);
    this.namedCurve = p.curve;
    this.key = p.key;
  }

  /** The named curve, or the static key's (once it has a key). */
  private get curveInfo(): CurveInfo | undefined {
    if (this.namedCurve) return this.namedCurve;
    const name = this.key?.curve;
    return name ? curveNamed(name) : undefined;
  }

  /** The curve name (ids.json spelling); undefined for a static key that has no key yet. */
  get curve(): string | undefined {
    return this.curveInfo?.name;
  }

  /** Whether the exchange uses a static key's private part instead of an ephemeral one. */
  get isStatic(): boolean {
    return this.key !== undefined;
  }

  protected get what(): string {
    return `ECDH ${this.role}${this.curveInfo ? ` (${this.curveInfo.name})` : ""}`;
  }

  protected get secretSize(): number | undefined {
    return this.curveInfo && ecdhSecretSize(this.curveInfo);
  }
}

/** ECDH server: generate() gives the ServerKeyExchange; importCKE() takes the client's answer. */
export class ECDHServer extends ECDHBase {
  /** @internal Use dev.pk.ECDHServer(curve | key) or key.toECDHServer(). */
  constructor(ctx: SessionContext, curveOrKey?: string | StaticEcdhKey) {
    super(ctx, "server", curveOrKey);
  }

  /** Imports the client's ClientKeyExchange (python-mbedtls's import_CKE). */
  importCKE(cke: Uint8Array, opts: CallOptions = {}): Promise<void> {
    return this.importPeer(cke, "importCKE(cke)", opts);
  }
}

/** ECDH client: importSKE() takes the server's payload; generate() gives the ClientKeyExchange. */
export class ECDHClient extends ECDHBase {
  /** @internal Use dev.pk.ECDHClient(curve | key) or key.toECDHClient(). */
  constructor(ctx: SessionContext, curveOrKey?: string | StaticEcdhKey) {
    super(ctx, "client", curveOrKey);
  }

  /** Imports the server's ServerKeyExchange (python-mbedtls's import_SKE). */
  importSKE(ske: Uint8Array, opts: CallOptions = {}): Promise<void> {
    return this.importPeer(ske, "importSKE(ske)", opts);
  }
}

/** Finite-field Diffie-Hellman-Merkle over a modulus P and generator G; base of DHServer and DHClient. */
export abstract class DHBase extends KeyExchange {
  /** The modulus. */
  readonly p: bigint;
  /** The generator. */
  readonly g: bigint;
  private readonly pBytes: number;

  protected constructor(ctx: SessionContext, role: "server" | "client", p: bigint | Uint8Array, g: bigint | Uint8Array) {
    const pw = bigArg(p, "DH modulus P");
    const gw = bigArg(g, "DH generator G");
    super(ctx, role, KexKind.dh, { params: () => [pw, gw] });
    this.p = fromBytes(pw);
    this.g = fromBytes(gw);
    this.pBytes = byteLength(this.p);
  }

  protected get what(): string {
    return `DH ${this.role} (${this.pBytes * 8}-bit P)`;
  }

  protected get secretSize(): number | undefined {
    // G^XY, left-padded to len(P) as the device writes it.
    return this.pBytes;
  }
}

/** P and G of a ServerDHParams (each with a 2-byte length, then G^X); undefined when it does not parse. */
function serverDhGroup(ske: Uint8Array): { p: bigint; g: bigint } | undefined {
  const nums: bigint[] = [];
  let off = 0;
  for (let i = 0; i < 2; i++) {
    if (off + 2 > ske.length) return undefined;
    const len = ((ske[off] as number) << 8) | (ske[off + 1] as number);
    if (off + 2 + len > ske.length) return undefined;
    nums.push(fromBytes(ske.subarray(off + 2, off + 2 + len)));
    off += 2 + len;
  }
  return { p: nums[0] as bigint, g: nums[1] as bigint };
}

/** DH server: generate() gives the ServerKeyExchange (P, G, G^X); importCKE() takes G^Y. */
export class DHServer extends DHBase {
  /** @internal Use dev.pk.DHServer(p, g). */
  constructor(ctx: SessionContext, p: bigint | Uint8Array, g: bigint | Uint8Array) {
    super(ctx, "server", p, g);
  }

  /** Imports the client's ClientKeyExchange, G^Y (python-mbedtls's import_CKE). */
  importCKE(cke: Uint8Array, opts: CallOptions = {}): Promise<void> {
    return this.importPeer(cke, "importCKE(cke)", opts);
  }
}

/** DH client: importSKE() takes the server's P, G, G^X; generate() gives G^Y. */
export class DHClient extends DHBase {
  /** @internal Use dev.pk.DHClient(p, g). */
  constructor(ctx: SessionContext, p: bigint | Uint8Array, g: bigint | Uint8Array) {
    super(ctx, "client", p, g);
  }

  /**
   * Imports the server's ServerKeyExchange (python-mbedtls's import_SKE).
   * A server naming another P or G than this client's is an ArgumentError:
   * the client does not let the server pick a group (a weak one).
   */
  async importSKE(ske: Uint8Array, opts: CallOptions = {}): Promise<void> {
    const group = serverDhGroup(payload(ske, "importSKE(ske)"));
    if (group && (group.p !== this.p || group.g !== this.g))
      throw new ArgumentError("importSKE(ske): the server's P and G are not this client's");
    return this.importPeer(ske, "importSKE(ske)", opts);
  }
}
