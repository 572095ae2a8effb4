// Public-key objects held on the device (spec.md 7.3): RSA and EC keys,
// python-mbedtls's mbedtls.pk.RSA / mbedtls.pk.ECC in TypeScript style.
//
// A key object is born empty (`dev.pk.RSA()`, `dev.pk.ECC(curve)`) and gets
// its key once, from generate() on the device, or is made by an import
// (`dev.pk.RSA.fromBuffer(...)`). The private part stays on the device; with
// `exportable: false` no op ever returns it, while sign, decrypt and
// checkPair still use it. Messages are hashed on the device (dev.hash) and
// only their digest is signed; signDigest()/verifyDigest() take a digest the
// caller computed.

import { ArgumentError, ProtocolError, UnsupportedAlgorithmError } from "../base/errors.js";
import { pemEncode } from "../base/pem.js";
import { type CurveInfo, Op, PkEncryptScheme, PkExportFormat, PkFlag, PkSignScheme, PkType } from "../base/protocol.generated.js";
import { checkBytes } from "../base/util.js";
import { atLeast, type CallOptions, type SessionContext } from "../session/context.js";
import { type AdoptedHandle, DeviceObject } from "../session/device-object.js";
import { curveNamed, curveNameOf, lookupCurve } from "./curves.js";
import { derToRaw, rawToDer } from "./ecdsa-sig.js";
import { digestOf, lookupHash } from "./hash.js";
import { ECDHClient, ECDHServer } from "./kex.js";

/** What the device says about a key (pk-info of messages.cddl). */
export interface PkInfo {
  type: "rsa" | "ec";
  /** RSA modulus bits, or the curve's bits. */
  bits: number;
  /** The curve's name (EC keys only). */
  curve: string | undefined;
  /** The key holds a private part. */
  isPrivate: boolean;
  /** The private part may leave the device (exportKey). */
  exportable: boolean;
}

/** @internal Parses a pk-info map. */
export function parsePkInfo(r: unknown, op: string): PkInfo {
  if (typeof r !== "object" || r === null || Array.isArray(r) || r instanceof Uint8Array) {
    throw new ProtocolError(`${op}: the key description is not a map`);
  }
  const m = r as Record<string, unknown>;
  const { type, bits, curve } = m;
  if (type !== PkType.rsa && type !== PkType.ec) throw new ProtocolError(`${op}: unknown key type ${JSON.stringify(type)}`);
  if (typeof bits !== "number" || !Number.isInteger(bits) || bits < 0) throw new ProtocolError(`${op}: "bits" is not an unsigned integer`);
  if (type === PkType.ec && typeof curve !== "number") throw new ProtocolError(`${op}: an EC key without a curve id`);
  if (typeof m.private !== "boolean" || typeof m.exportable !== "boolean") {
    throw new ProtocolError(`${op}: "private" / "exportable" are not booleans`);
  }
  return {
    type: type === PkType.rsa ? "rsa" : "ec",
    bits,
    curve: typeof curve === "number" ? curveNameOf(curve) : undefined,
    isPrivate: m.private,
    exportable: m.exportable,
  };
}

/** pk flags (messages.cddl pk-flags). */
export function pkFlags(opts: { exportable?: boolean } | undefined): number {
  const e = opts?.exportable ?? true;
  if (typeof e !== "boolean") throw new ArgumentError("exportable must be a boolean");
  return e ? PkFlag.exportable : 0;
}

export type PrivateKeyFormat = "DER" | "PEM" | "NUM";
export type PublicKeyFormat = "DER" | "PEM" | "POINT" | "RAW";
export type SignatureScheme = "pkcs1v15" | "pss" | "ecdsa";
export type EncryptionPadding = "pkcs1v15" | "oaep";
/** ECDSA signature encodings: DER (OpenSSL, X.509) or raw r||s (IEEE P1363, WebCrypto, JOSE, COSE). */
export type SignatureFormat = "der" | "raw";

export interface SignOptions extends CallOptions {
  /** RSA: "pkcs1v15" (default) or "pss" (MGF1 with the same digest). EC: "ecdsa" (default). */
  scheme?: SignatureScheme;
  /** RSA: the same choice as `scheme` under its WebCrypto/Node name ("pkcs1v15" or "pss"). */
  padding?: "pkcs1v15" | "pss";
  /**
   * PSS salt length in bytes. Default "digest": as long as the digest
   * (shorter only when the key is too small for it, e.g. RSA-1024 with
   * SHA-512), the same on signing and verifying. verify() only: "any"
   * accepts every salt length.
   */
  saltLength?: number | "digest" | "any";
  /** ECDSA: "der" (default) or "raw" (r||s, each as long as the curve's order: 66 bytes for secp521r1). */
  format?: SignatureFormat;
}

export interface EncryptOptions extends CallOptions {
  /** "pkcs1v15" (default, as python-mbedtls) or "oaep". */
  padding?: EncryptionPadding;
  /** OAEP's digest (label hash and MGF1): "sha1" by default (RFC 8017's and OpenSSL's default). */
  digestmod?: string;
  /** The same as `digestmod`, under Node's/WebCrypto's name. */
  hash?: string;
  /** OAEP's MGF1 digest: Mbed TLS uses the label's hash for it, so any other is UnsupportedAlgorithmError. */
  mgf1Hash?: string;
  /** OAEP's label (default empty). */
  label?: Uint8Array;
}

export interface GenerateOptions extends CallOptions {
  /** Whether the private part may ever leave the device (default true). */
  exportable?: boolean;
}

/** Private operations (sign, decrypt) of a big RSA key take seconds on a microcontroller. */
const PRIVATE_OP_TIMEOUT_MS = 30_000;

function schemeId(scheme: SignatureScheme | undefined): number {
  switch (scheme ?? "pkcs1v15") {
    case "pkcs1v15":
    case "ecdsa":
      return PkSignScheme.pkcs1v15OrEcdsa;
    case "pss":
      return PkSignScheme.pss;
    default:
      throw new ArgumentError(`unknown signature scheme ${JSON.stringify(scheme)}; use "pkcs1v15", "pss" or "ecdsa"`);
  }
}

/** What pk_sign / pk_verify get from SignOptions: the scheme id, the optional salt-len argument, and whether the signature is raw. */
interface SigParams {
  scheme: number;
  /** [] (default salt), [bytes], or [null] (any; verify only). */
  salt: (number | null)[];
  raw: boolean;
}

function sigParams(opts: SignOptions, verifying: boolean): SigParams {
  const { scheme: s, padding, saltLength, format = "der" } = opts;
  if (padding !== undefined && padding !== "pkcs1v15" && padding !== "pss")
    throw new ArgumentError(`unknown signature padding ${JSON.stringify(padding)}; use "pkcs1v15" or "pss"`);
  if (s !== undefined && padding !== undefined && s !== padding)
    throw new ArgumentError(`scheme ${JSON.stringify(s)} and padding ${JSON.stringify(padding)} disagree`);
  const scheme = schemeId(s ?? padding);
  if (format !== "der" && format !== "raw") throw new ArgumentError(`format must be "der" or "raw", got ${JSON.stringify(format)}`);
  const salt: (number | null)[] = [];
  if (saltLength !== undefined && saltLength !== "digest") {
    if (scheme !== PkSignScheme.pss) throw new ArgumentError("saltLength is for PSS signatures only");
    if (saltLength === "any") {
      if (!verifying) throw new ArgumentError('saltLength "any" is for verify only: a signature has one salt length');
      salt.push(null);
    } else if (typeof saltLength === "number" && Number.isSafeInteger(saltLength) && saltLength >= 0) {
      salt.push(saltLength);
    } else {
      throw new ArgumentError(`saltLength must be a byte count, "digest" or "any", got ${JSON.stringify(saltLength)}`);
    }
  }
  return { scheme, salt, raw: format === "raw" };
}

function bytesResult(r: unknown, op: string): Uint8Array {
  if (!(r instanceof Uint8Array)) throw new ProtocolError(`${op}: result is not a byte string`);
  return Uint8Array.from(r);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The key of an RSA or ECC object: generated on the device or imported. Use `dev.pk.RSA()` / `dev.pk.ECC()`. */
export abstract class PkKey extends DeviceObject {
  /** python-mbedtls's name of the key type: "RSA" or "EC". */
  abstract readonly name: "RSA" | "EC";
  protected keyInfo: PkInfo | undefined;
  private creating: Promise<void> | undefined;

  protected constructor(ctx: SessionContext, adopted?: { handle: AdoptedHandle; info: PkInfo }) {
    super(ctx, { adopted: adopted?.handle });
    if (adopted) {
      this.keyInfo = adopted.info;
      this.creating = Promise.resolve();
    }
  }

  protected get what(): string {
    return `${this.name} key`;
  }

  /** The device's description of the key; undefined until it has one. */
  get info(): PkInfo | undefined {
    return this.keyInfo ? { ...this.keyInfo } : undefined;
  }

  /** Size in bytes, as python-mbedtls's key_size (256 for RSA-2048, 32 for secp256r1, 66 for secp521r1); 0 without a key. */
  get keySize(): number {
    return this.keyInfo ? Math.ceil(this.keyInfo.bits / 8) : 0;
  }

  /** RSA modulus bits or the curve's bits; 0 without a key. */
  get bits(): number {
    return this.keyInfo?.bits ?? 0;
  }

  /** Whether the key holds a private part. */
  get isPrivate(): boolean {
    return this.keyInfo?.isPrivate ?? false;
  }

  /** Whether the private part may leave the device (exportKey); as the device reports it. */
  get exportable(): boolean {
    return this.keyInfo?.exportable ?? false;
  }

  /** Runs pk_generate under this object's handle; an object gets its key once. */
  protected async createWith(op: number, args: readonly unknown[], opts: CallOptions, defaultTimeoutMs: number): Promise<void> {
    this.check();
    if (this.creating) {
      if (this.failure)
        throw new ArgumentError(`an earlier generate() of this ${this.what} failed (${this.failure.message}); use a new key object`);
      throw new ArgumentError(`this ${this.what} already holds a key (or is making one); use a new key object`);
    }
    const p = this.open((handle) => this.ctx.call(op, [handle, ...args], atLeast(this.ctx, opts, defaultTimeoutMs)));
    this.creating = this.track(p);
    const info = parsePkInfo(await p, "pk_generate");
    this.acceptInfo(info);
    this.keyInfo = info;
  }

  /** Throws when the device made a key of another kind than this class. */
  protected abstract acceptInfo(info: PkInfo): void;

  /** The key's description, or ArgumentError when there is no key yet. */
  protected requireKey(): PkInfo {
    this.check();
    if (!this.keyInfo) {
      if (this.failure) throw this.failure;
      throw new ArgumentError(`this ${this.what} holds no key yet: generate() one or import one (fromBuffer)`);
    }
    return this.keyInfo;
  }

  /** The PEM label of the private DER the device writes (PKCS#1, SEC1, or PKCS#8 for x25519/x448). */
  protected abstract get privatePemLabel(): string;

  /**
   * The private key: "DER" (PKCS#1 RSAPrivateKey / SEC1 ECPrivateKey, or
   * PKCS#8 for x25519/x448, as Mbed TLS writes them), "PEM" (the same,
   * PEM-wrapped), or "NUM" (EC only: the private scalar as a bigint).
   * NotExportableError for a key made with `exportable: false`.
   */
  exportKey(format?: "DER"): Promise<Uint8Array>;
  exportKey(format: "PEM"): Promise<string>;
  exportKey(format: "NUM"): Promise<bigint>;
  exportKey(format: PrivateKeyFormat): Promise<Uint8Array | string | bigint>;
  async exportKey(format: PrivateKeyFormat = "DER"): Promise<Uint8Array | string | bigint> {
    if (format !== "DER" && format !== "PEM" && format !== "NUM") {
      throw new ArgumentError(`exportKey() format must be "DER", "PEM" or "NUM", got ${JSON.stringify(format)}`);
    }
    this.requireKey();
    const which = format === "NUM" ? PkExportFormat.privateRaw : PkExportFormat.privateDer;
    const raw = bytesResult(await this.use((h) => this.ctx.call(Op.pkExport, [h, which])), "pk_export");
    if (format === "NUM") return raw.length === 0 ? 0n : BigInt(`0x${Buffer.from(raw).toString("hex")}`);
    return format === "PEM" ? pemEncode(this.privatePemLabel, raw) : raw;
  }

  /**
   * The public key: "DER" (SubjectPublicKeyInfo), "PEM" ("PUBLIC KEY"), or
   * "RAW" / "POINT": EC the public point (04||X||Y, or the u-coordinate of
   * x25519/x448), RSA the modulus n.
   */
  exportPublicKey(format?: "DER" | "POINT" | "RAW"): Promise<Uint8Array>;
  exportPublicKey(format: "PEM"): Promise<string>;
  exportPublicKey(format: PublicKeyFormat): Promise<Uint8Array | string>;
  async exportPublicKey(format: PublicKeyFormat = "DER"): Promise<Uint8Array | string> {
    if (format !== "DER" && format !== "PEM" && format !== "POINT" && format !== "RAW") {
      throw new ArgumentError(`exportPublicKey() format must be "DER", "PEM", "POINT" or "RAW", got ${JSON.stringify(format)}`);
    }
    this.requireKey();
    const raw = format === "POINT" || format === "RAW";
    const which = raw ? PkExportFormat.publicRaw : PkExportFormat.publicDer;
    const r = bytesResult(await this.use((h) => this.ctx.call(Op.pkExport, [h, which])), "pk_export");
    return format === "PEM" ? pemEncode("PUBLIC KEY", r) : r;
  }

  /**
   * Signs `message`: hashed with `digestmod` on the device, then the digest
   * is signed (RSA PKCS#1 v1.5 or PSS with `saltLength`; ECDSA as DER, or
   * r||s with `format: "raw"`).
   */
  async sign(message: Uint8Array, digestmod = "sha256", opts: SignOptions = {}): Promise<Uint8Array> {
    this.sigParamsFor(opts, false);
    checkBytes(message, "message");
    const alg = lookupHash(digestmod);
    const digest = await digestOf(this.ctx, alg.name, message);
    return this.signDigest(digest, alg.name, opts);
  }

  /** Signs a digest the caller computed (`digestmod` names its algorithm; the length must match). */
  async signDigest(digest: Uint8Array, digestmod = "sha256", opts: SignOptions = {}): Promise<Uint8Array> {
    const p = this.sigParamsFor(opts, false);
    const alg = this.checkDigest(digest, digestmod);
    const args = [alg, digest, p.scheme, ...p.salt];
    const r = await this.use((h) => this.ctx.call(Op.pkSign, [h, ...args], atLeast(this.ctx, opts, PRIVATE_OP_TIMEOUT_MS)));
    const der = bytesResult(r, "pk_sign");
    return p.raw ? derToRaw(der, this.keySize) : der;
  }

  /**
   * Whether `signature` is a valid signature of `message` (hashed on the
   * device with `digestmod`). Strict (SECURITY.md): a DER ECDSA signature
   * in any but its canonical encoding is false, and so is a raw one of the
   * wrong length; PSS checks the salt length `saltLength` says.
   */
  async verify(message: Uint8Array, signature: Uint8Array, digestmod = "sha256", opts: SignOptions = {}): Promise<boolean> {
    this.sigParamsFor(opts, true);
    checkBytes(message, "message");
    checkBytes(signature, "signature");
    const alg = lookupHash(digestmod);
    const digest = await digestOf(this.ctx, alg.name, message);
    return this.verifyDigest(digest, signature, alg.name, opts);
  }

  /** Whether `signature` is valid for a digest the caller computed. A malformed or non-canonical signature is false. */
  async verifyDigest(digest: Uint8Array, signature: Uint8Array, digestmod = "sha256", opts: SignOptions = {}): Promise<boolean> {
    const p = this.sigParamsFor(opts, true);
    const alg = this.checkDigest(digest, digestmod);
    checkBytes(signature, "signature");
    if (p.raw && signature.length !== 2 * this.keySize) return false;
    const sig = p.raw ? rawToDer(signature) : signature;
    const r = await this.use((h) => this.ctx.call(Op.pkVerify, [h, alg, digest, sig, p.scheme, ...p.salt], opts));
    if (typeof r !== "boolean") throw new ProtocolError("pk_verify: result is not a boolean");
    return r;
  }

  /** Checks the key and the options; raw is for EC keys only. */
  private sigParamsFor(opts: SignOptions, verifying: boolean): SigParams {
    const info = this.requireKey();
    const p = sigParams(opts, verifying);
    if (p.raw && info.type !== "ec") throw new ArgumentError('format "raw" is for ECDSA signatures; RSA signatures have one form');
    return p;
  }

  /**
   * RSA encryption to this key's public part (EC keys: the device answers
   * UnsupportedAlgorithmError): PKCS#1 v1.5, or OAEP with `hash` (label
   * hash and MGF1) and `label`. `mgf1Hash` other than `hash` is
   * UnsupportedAlgorithmError, before anything is sent.
   */
  async encrypt(data: Uint8Array, opts: EncryptOptions = {}): Promise<Uint8Array> {
    this.requireKey();
    checkBytes(data, "data");
    const padding = this.padding(opts);
    const r = await this.use((h) => this.ctx.call(Op.pkEncrypt, [h, data, ...padding], opts));
    return bytesResult(r, "pk_encrypt");
  }

  /** RSA decryption with this key's private part (options as encrypt()); a ciphertext that does not decrypt, or another OAEP label, is CryptoError. */
  async decrypt(data: Uint8Array, opts: EncryptOptions = {}): Promise<Uint8Array> {
    this.requireKey();
    checkBytes(data, "data");
    const padding = this.padding(opts);
    const r = await this.use((h) => this.ctx.call(Op.pkDecrypt, [h, data, ...padding], atLeast(this.ctx, opts, PRIVATE_OP_TIMEOUT_MS)));
    return bytesResult(r, "pk_decrypt");
  }

  /**
   * Whether this key and `other` are the two halves of one key pair
   * (python-mbedtls's check_pair). The private one of the two (`other` when
   * both are) is the private side of the check; the key's exportability does
   * not matter.
   */
  async checkPair(other: PkKey, opts: CallOptions = {}): Promise<boolean> {
    if (!(other instanceof PkKey)) throw new ArgumentError("checkPair() takes an RSA or ECC key");
    this.requireKey();
    other.requireKey();
    const [pub, prv] = other.isPrivate || !this.isPrivate ? [this, other] : [other, this];
    pub._checkFor(this.ctx);
    prv._checkFor(this.ctx);
    const timed = atLeast(this.ctx, opts, PRIVATE_OP_TIMEOUT_MS);
    // Both keys stay on the device until the answer (neither is swapped out under it).
    const r = await pub._use(this.ctx, (ph) => prv._use(this.ctx, (qh) => this.ctx.call(Op.pkCheckPair, [ph, qh], timed)));
    if (typeof r !== "boolean") throw new ProtocolError("pk_check_pair: result is not a boolean");
    return r;
  }

  /** Same key type and public key, and both private or both public (python-mbedtls's ==). Two empty keys are equal. */
  async equals(other: unknown): Promise<boolean> {
    if (!(other instanceof PkKey) || other.name !== this.name) return false;
    if (!this.keyInfo || !other.keyInfo) return !this.keyInfo && !other.keyInfo;
    if (this.isPrivate !== other.isPrivate) return false;
    const [a, b] = await Promise.all([this.exportPublicKey("DER"), other.exportPublicKey("DER")]);
    return sameBytes(a, b);
  }

  /** Another object may name this key only once it has one (or is making one). */
  protected override checkUsable(): void {
    if (!this.creating) throw new ArgumentError(`this ${this.what} holds no key yet: generate() one or import one (fromBuffer)`);
  }

  private checkDigest(digest: Uint8Array, digestmod: string): number {
    checkBytes(digest, "digest");
    const alg = lookupHash(digestmod);
    if (digest.length !== alg.digestSize) {
      throw new ArgumentError(`a ${alg.name} digest is ${alg.digestSize} bytes, got ${digest.length}`);
    }
    return alg.id;
  }

  /** pk_encrypt / pk_decrypt's scheme, alg and optional label; unsupported combinations fail here, before anything is sent. */
  private padding(opts: EncryptOptions): (number | Uint8Array)[] {
    const { padding = "pkcs1v15", digestmod, hash, mgf1Hash, label } = opts;
    if (padding === "pkcs1v15") {
      if (digestmod !== undefined || hash !== undefined || mgf1Hash !== undefined || label !== undefined)
        throw new ArgumentError("digestmod, hash, mgf1Hash and label are OAEP parameters; PKCS#1 v1.5 takes none");
      return [PkEncryptScheme.pkcs1v15, 0];
    }
    if (padding !== "oaep") throw new ArgumentError(`unknown padding ${JSON.stringify(padding)}; use "pkcs1v15" or "oaep"`);
    const alg = lookupHash(hash ?? digestmod ?? "sha1");
    if (hash !== undefined && digestmod !== undefined && lookupHash(digestmod).id !== alg.id)
      throw new ArgumentError(`hash ${JSON.stringify(hash)} and digestmod ${JSON.stringify(digestmod)} disagree`);
    if (mgf1Hash !== undefined && lookupHash(mgf1Hash).id !== alg.id) {
      throw UnsupportedAlgorithmError.local(
        `OAEP with MGF1 over ${lookupHash(mgf1Hash).name} and label hash ${alg.name}: Mbed TLS uses one hash for both`,
      );
    }
    if (label !== undefined) checkBytes(label, "label");
    return label?.length ? [PkEncryptScheme.oaep, alg.id, label] : [PkEncryptScheme.oaep, alg.id];
  }
}

/** Default silence (no answer, no busy event) tolerated while an RSA-2048 key is generated. */
const RSA_GENERATE_TIMEOUT_MS = 120_000;
/** ... and while an EC key is generated. */
const EC_GENERATE_TIMEOUT_MS = 30_000;

/** An RSA key on the device (python-mbedtls's pk.RSA). */
export class RSA extends PkKey {
  readonly name = "RSA";

  /** @internal Use dev.pk.RSA() / dev.pk.RSA.fromBuffer(). */
  constructor(ctx: SessionContext, adopted?: { handle: AdoptedHandle; info: PkInfo }) {
    super(ctx, adopted);
  }

  protected get privatePemLabel(): string {
    return "RSA PRIVATE KEY";
  }

  protected acceptInfo(info: PkInfo): void {
    if (info.type !== "rsa") throw new ProtocolError("the device made an EC key for an RSA object");
  }

  /**
   * Generates a key pair on the device: `keySize` modulus bits (even,
   * 1024..4096; default 2048) and public exponent (odd, >= 3; 65537).
   * Returns the private key as DER (as python-mbedtls), or undefined when
   * `exportable` is false: then the private part never leaves the device.
   * Sends busy events while it runs; the timeout (default 120 s for 2048
   * bits, scaled with the size squared) is the silence tolerated between them.
   */
  async generate(keySize = 2048, exponent = 65537, opts: GenerateOptions = {}): Promise<Uint8Array | undefined> {
    for (const [v, what] of [
      [keySize, "keySize"],
      [exponent, "exponent"],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0) throw new ArgumentError(`${what} must be an unsigned integer, got ${String(v)}`);
    }
    const flags = pkFlags(opts);
    const timeoutMs = Math.ceil(RSA_GENERATE_TIMEOUT_MS * Math.max(1, (keySize / 2048) ** 2));
    await this.createWith(Op.pkGenerate, [PkType.rsa, keySize, exponent, flags], opts, timeoutMs);
    return this.exportable ? this.exportKey("DER") : undefined;
  }
}

/** An elliptic-curve key on the device (python-mbedtls's pk.ECC): ECDSA on Weierstrass curves; x25519/x448 for key exchange only. */
export class ECC extends PkKey {
  readonly name = "EC";
  private readonly wanted: CurveInfo | undefined;

  /** @internal Use dev.pk.ECC(curve) / dev.pk.ECC.fromBuffer(). */
  constructor(ctx: SessionContext, init: { curve: string } | { handle: AdoptedHandle; info: PkInfo }) {
    super(ctx, "handle" in init ? init : undefined);
    this.wanted = "curve" in init ? lookupCurve(init.curve) : undefined;
  }

  /** The curve's name, e.g. "secp256r1" (the one asked for until a key exists). */
  get curve(): string {
    return this.keyInfo?.curve ?? this.wanted?.name ?? "";
  }

  protected get privatePemLabel(): string {
    // Mbed TLS writes x25519/x448 private keys as PKCS#8 (RFC 8410), others as SEC1.
    return curveNamed(this.curve)?.shape === "montgomery" ? "PRIVATE KEY" : "EC PRIVATE KEY";
  }

  protected acceptInfo(info: PkInfo): void {
    if (info.type !== "ec") throw new ProtocolError("the device made an RSA key for an ECC object");
  }

  /**
   * Generates a key pair on the curve on the device. Returns the private key
   * as DER (as python-mbedtls), or undefined when `exportable` is false.
   * A curve not compiled into the firmware is UnsupportedAlgorithmError.
   */
  async generate(opts: GenerateOptions = {}): Promise<Uint8Array | undefined> {
    const curve = this.wanted;
    if (!curve) throw new ArgumentError("this ECC key was imported; make a new dev.pk.ECC(curve) to generate");
    await this.createWith(Op.pkGenerate, [PkType.ec, curve.id, 0, pkFlags(opts)], opts, EC_GENERATE_TIMEOUT_MS);
    return this.exportable ? this.exportKey("DER") : undefined;
  }

  /** The raw public point (04||X||Y; the u-coordinate for x25519/x448); same as exportPublicKey("POINT"). */
  publicPoint(): Promise<Uint8Array> {
    return this.exportPublicKey("POINT");
  }

  /** A static ECDH server using this key's private part (python-mbedtls's to_ECDH_server()). */
  toECDHServer(): ECDHServer {
    return new ECDHServer(this.ctx, this);
  }

  /** A static ECDH client using this key's private part (python-mbedtls's to_ECDH_client()). */
  toECDHClient(): ECDHClient {
    return new ECDHClient(this.ctx, this);
  }
}
