// dev.cipher: symmetric ciphers computed on the device, PEP 272 shape
// (python-mbedtls's mbedtls.cipher), in TypeScript style.
//
// As in python-mbedtls, a Cipher object holds a key, a mode and an IV, and
// every encrypt()/decrypt() call starts afresh from that IV. Data that fits
// one frame goes in one request (cipher_crypt); bigger data streams through
// a temporary device context (cipher_new, pipelined cipher_update chunks,
// cipher_finish, free). XTS (one data unit) and the AEAD modes (GCM, CCM,
// ChaCha20-Poly1305) are one request when the message fits one frame.
// Bigger AEAD messages, of any length, stream through a device-side AEAD
// stream (spec.md 7.1: aead_new, pipelined aead_update chunks, each
// answering its output, aead_finish, free) in constant device memory; on
// decryption the SDK holds the plaintext chunks and returns them only after
// aead_finish verified the tag (on a forged tag it zeroes them and throws
// AuthFailedError). Bigger XTS data units go through a buffered context
// (cipher_buf_new, cipher_buf_update chunks, cipher_buf_finish, then
// cipher_buf_read slices), limited by the device heap.
//
// The key is either bytes (sent with every request, as python-mbedtls keeps
// it) or a device-held SymmetricKey (dev.keys), whose handle is sent instead.

import { ArgumentError, ProtocolError, TooLargeError, UnsupportedAlgorithmError } from "../base/errors.js";
import { Limits, Op, Status } from "../base/protocol.generated.js";
import { checkBytes } from "../base/util.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { withTemporaryHandle } from "../session/device-object.js";
import { SymmetricKey, withKey } from "./keys.js";

/** Cipher modes, with python-mbedtls's values (its mbedtls.cipher.Mode). */
export const MODE_ECB = 1;
export const MODE_CBC = 2;
export const MODE_CFB = 3;
export const MODE_OFB = 4;
export const MODE_CTR = 5;
export const MODE_GCM = 6;
export const MODE_STREAM = 7;
export const MODE_CCM = 8;
export const MODE_XTS = 9;
export const MODE_CHACHAPOLY = 10;

/** The AEAD modes (new() gives an AEADCipher). */
export type AeadMode = typeof MODE_GCM | typeof MODE_CCM | typeof MODE_CHACHAPOLY;
/** The other modes (new() gives a Cipher). */
export type PlainMode =
  | typeof MODE_ECB
  | typeof MODE_CBC
  | typeof MODE_CFB
  | typeof MODE_OFB
  | typeof MODE_CTR
  | typeof MODE_STREAM
  | typeof MODE_XTS;

/** Wire name of each mode (spec.md 7.1) and the Mbed TLS name suffix. */
const MODES: ReadonlyMap<number, { wire: string; suffix: string }> = new Map([
  [MODE_ECB, { wire: "ECB", suffix: "ECB" }],
  [MODE_CBC, { wire: "CBC", suffix: "CBC" }],
  [MODE_CFB, { wire: "CFB", suffix: "CFB128" }],
  [MODE_OFB, { wire: "OFB", suffix: "OFB" }],
  [MODE_CTR, { wire: "CTR", suffix: "CTR" }],
  [MODE_GCM, { wire: "GCM", suffix: "GCM" }],
  [MODE_STREAM, { wire: "STREAM", suffix: "" }],
  [MODE_CCM, { wire: "CCM", suffix: "CCM" }],
  [MODE_XTS, { wire: "XTS", suffix: "XTS" }],
  [MODE_CHACHAPOLY, { wire: "CHACHAPOLY", suffix: "" }],
]);

const AEAD_MODES = new Set([MODE_GCM, MODE_CCM, MODE_CHACHAPOLY]);
/** Bytes a one-shot request may spend on everything but the data (names, key, IV, tag, heads). */
const ONESHOT_OVERHEAD = 160;

/** Static description of a cipher family (python-mbedtls module attributes). */
export interface CipherFamilyInfo {
  /** Wire family name ("AES", "DES3DBL", ...). */
  readonly wire: string;
  readonly blockSize: number;
  /** Key size in bytes when the family has one fixed size, else undefined (python-mbedtls: None). */
  readonly keySize: number | undefined;
  /** Modes the family offers. */
  readonly modes: readonly number[];
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * The answers of pipelined requests; the first failure in sending order (the cause: e.g. the context's create) when any
 * failed. `secret`: byte-string answers are zeroed before a failure is thrown (unauthenticated plaintext).
 */
async function allInOrder(calls: Promise<unknown>[], secret = false): Promise<unknown[]> {
  const settled = await Promise.allSettled(calls);
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) {
    if (secret) for (const r of settled) if (r.status === "fulfilled" && r.value instanceof Uint8Array) r.value.fill(0);
    throw failed.reason;
  }
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value);
}

/** One pipelined `op [handle, chunk]` request per `chunk` bytes of data. */
function chunkCalls(
  ctx: SessionContext,
  op: number,
  handle: number,
  data: Uint8Array,
  chunk: number,
  opts: CallOptions,
): Promise<unknown>[] {
  const calls: Promise<unknown>[] = [];
  for (let off = 0; off < data.length; off += chunk) calls.push(ctx.call(op, [handle, data.slice(off, off + chunk)], opts));
  return calls;
}

function bytesResult(r: unknown, op: string): Uint8Array {
  if (!(r instanceof Uint8Array)) throw new ProtocolError(`${op}: result is not a byte string`);
  return Uint8Array.from(r);
}

function modeInfo(mode: number): { wire: string; suffix: string } {
  const m = MODES.get(mode);
  if (!m) throw new ArgumentError(`unknown cipher mode ${String(mode)}; use dev.cipher.MODE_*`);
  return m;
}

/** The Mbed TLS name of a cipher, e.g. "AES-128-CBC", "DES-EDE3-CBC", "CHACHA20-POLY1305". */
function mbedtlsName(family: string, mode: number, keyLen: number): string {
  const suffix = modeInfo(mode).suffix;
  switch (family) {
    case "DES":
      return `DES-${suffix}`;
    case "DES3DBL":
      return `DES-EDE-${suffix}`;
    case "DES3":
      return `DES-EDE3-${suffix}`;
    case "CHACHA20":
      return mode === MODE_CHACHAPOLY ? "CHACHA20-POLY1305" : "CHACHA20";
    default:
      return `${family}-${(mode === MODE_XTS ? keyLen / 2 : keyLen) * 8}-${suffix}`;
  }
}

function ivSizeOf(family: string, mode: number): number {
  if (mode === MODE_ECB) return 0;
  if (mode === MODE_GCM || mode === MODE_CCM || family === "CHACHA20") return 12;
  return family.startsWith("DES") ? 8 : 16;
}

/** Options of new() beyond python-mbedtls's arguments. */
export interface CipherOptions {
  /** AEAD tag length in bytes (16; GCM 4..16, CCM 4, 6, ... 16, ChaCha20-Poly1305 16). */
  tagLength?: number;
}

/** Shared state of Cipher and AEADCipher. */
abstract class CipherBase {
  /** Mbed TLS name, e.g. "AES-128-CBC". */
  readonly name: string;
  /** The mode, a dev.cipher.MODE_* value. */
  readonly mode: number;
  readonly blockSize: number;
  /** Key size in bytes (XTS: both halves). */
  readonly keySize: number;
  /** The IV (nonce) size Mbed TLS suggests for this cipher, in bytes (0 for ECB). */
  readonly ivSize: number;
  protected readonly wire: [string, string];

  constructor(
    protected readonly ctx: SessionContext,
    family: CipherFamilyInfo,
    mode: number,
    protected readonly key: Uint8Array | SymmetricKey,
    protected readonly iv: Uint8Array,
  ) {
    this.mode = mode;
    this.wire = [family.wire, modeInfo(mode).wire];
    this.keySize = key instanceof SymmetricKey ? key.size : key.length;
    this.name = mbedtlsName(family.wire, mode, this.keySize);
    this.blockSize = family.wire === "CHACHA20" ? 1 : family.blockSize;
    this.ivSize = ivSizeOf(family.wire, mode);
  }

  /** Runs `fn` with the key argument of a request: the bytes, or a device key's handle (kept on the device until `fn` settles). */
  protected withKey<T>(fn: (key: Uint8Array | number) => Promise<T>): Promise<T> {
    return withKey(this.ctx, this.key, fn);
  }

  /**
   * Runs XTS over a data unit too big for one frame through a temporary
   * buffered device context; every request is pipelined and the handle is
   * freed afterwards.
   */
  protected buffered(data: Uint8Array, encrypt: boolean, opts: CallOptions): Promise<Uint8Array> {
    const ctx = this.ctx;
    const chunk = ctx.streamChunk;
    return this.withKey((key) =>
      withTemporaryHandle(ctx, async (handle) => {
        const calls = [
          // The length lets the device reserve input and output at once: a message
          // its heap cannot hold fails here, before the data travels.
          ctx.call(Op.cipherBufNew, [handle, ...this.wire, key, this.iv, encrypt, new Uint8Array(0), 0, data.length], opts),
          ...chunkCalls(ctx, Op.cipherBufUpdate, handle, data, chunk, opts),
          ctx.call(Op.cipherBufFinish, [handle], opts),
        ];
        const results = await allInOrder(calls);
        const fin = results[results.length - 1];
        if (!Array.isArray(fin) || fin.length !== 2 || fin[0] !== data.length || fin[1] !== null)
          throw new ProtocolError("cipher_buf_finish: result is not [length, null]");
        const reads: Promise<unknown>[] = [];
        for (let off = 0; off < data.length; off += chunk) {
          reads.push(ctx.call(Op.cipherBufRead, [handle, off, Math.min(chunk, data.length - off)], opts));
        }
        return concat((await allInOrder(reads)).map((r) => bytesResult(r, "cipher_buf_read")));
      }),
    );
  }

  /**
   * Runs an AEAD mode over a message too big for one frame through a temporary
   * device AEAD stream (constant device memory, any length); every request is
   * pipelined and the handle is freed afterwards. Decryption: the plaintext
   * chunks are returned only when aead_finish verified the tag, else they are
   * zeroed and the failure (AuthFailedError) is thrown.
   */
  protected streamed(
    data: Uint8Array,
    encrypt: boolean,
    ad: Uint8Array,
    tagLength: number,
    tag: Uint8Array | null,
    opts: CallOptions,
  ): Promise<{ out: Uint8Array; tag: Uint8Array | null }> {
    const ctx = this.ctx;
    const chunk = ctx.streamChunk;
    return this.withKey((key) =>
      withTemporaryHandle(ctx, async (handle) => {
        const calls = [
          ctx.call(Op.aeadNew, [handle, ...this.wire, key, this.iv, encrypt, Uint8Array.from(ad), tagLength, data.length], opts),
          ...chunkCalls(ctx, Op.aeadUpdate, handle, data, chunk, opts),
          ctx.call(Op.aeadFinish, tag === null ? [handle] : [handle, Uint8Array.from(tag)], opts),
        ];
        const results = await allInOrder(calls, !encrypt);
        const parts = results.slice(1, -1).map((r) => (r instanceof Uint8Array ? r : new Uint8Array(0)));
        const fin = results[results.length - 1];
        try {
          if (parts.reduce((n, p) => n + p.length, 0) !== data.length)
            throw new ProtocolError("aead_update: output length differs from input");
          if (encrypt ? !(fin instanceof Uint8Array) || fin.length !== tagLength : fin !== null)
            throw new ProtocolError(`aead_finish: result is not ${encrypt ? "the tag" : "null"}`);
          return { out: concat(parts), tag: encrypt ? Uint8Array.from(fin as Uint8Array) : null };
        } finally {
          for (const p of parts) p.fill(0);
        }
      }),
    );
  }

  /** Largest data one one-shot request carries for this cipher. */
  protected oneShotMax(extra = 0): number {
    const keyWire = this.key instanceof SymmetricKey ? 5 : this.key.length; // a handle: at most 5 CBOR bytes
    return this.ctx.mtu - Limits.requestOverheadMax - ONESHOT_OVERHEAD - keyWire - this.iv.length - extra;
  }
}

/** A cipher in a non-AEAD mode: encrypt()/decrypt() of whole messages, each starting from the IV. */
export class Cipher extends CipherBase {
  /** Encrypts a whole message (CBC adds PKCS#7 padding; ECB needs whole blocks). */
  encrypt(data: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    return this.crypt(checkBytes(data, "encrypt() data"), true, opts);
  }

  /** Decrypts a whole message (CBC checks and removes the padding). */
  decrypt(data: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    return this.crypt(checkBytes(data, "decrypt() data"), false, opts);
  }

  private async crypt(data: Uint8Array, encrypt: boolean, opts: CallOptions): Promise<Uint8Array> {
    const max = this.oneShotMax();
    if (data.length <= max) {
      const r = await this.withKey((key) =>
        this.ctx.call(Op.cipherCrypt, [...this.wire, key, this.iv, encrypt, Uint8Array.from(data)], opts),
      );
      return bytesResult(r, "cipher_crypt");
    }
    if (this.mode === MODE_XTS) {
      // One data unit: the device buffers it whole and runs XTS at once.
      return this.buffered(data, encrypt, opts);
    }
    // Stream through a temporary context; every request is pipelined.
    const ctx = this.ctx;
    const chunk = ctx.streamChunk - 16;
    return this.withKey((key) =>
      withTemporaryHandle(ctx, async (handle) => {
        const calls = [
          ctx.call(Op.cipherNew, [handle, ...this.wire, key, this.iv, encrypt]),
          ...chunkCalls(ctx, Op.cipherUpdate, handle, data, chunk, opts),
          ctx.call(Op.cipherFinish, [handle], opts),
        ];
        const results = await allInOrder(calls);
        return concat(results.slice(1).map((r) => bytesResult(r, "cipher_update")));
      }),
    );
  }
}

/** A cipher in an AEAD mode (GCM, CCM, ChaCha20-Poly1305). */
export class AEADCipher extends CipherBase {
  /** Tag length in bytes. */
  readonly tagLength: number;

  constructor(
    ctx: SessionContext,
    family: CipherFamilyInfo,
    mode: number,
    key: Uint8Array | SymmetricKey,
    iv: Uint8Array,
    /** Additional data used when encrypt()/decrypt() get none (python-mbedtls's `ad`). */
    readonly ad: Uint8Array,
    opts: CipherOptions,
  ) {
    super(ctx, family, mode, key, iv);
    this.tagLength = opts.tagLength ?? 16;
    if (!Number.isInteger(this.tagLength) || this.tagLength < 0 || this.tagLength > 255)
      throw new ArgumentError(`tagLength must be an integer number of bytes, got ${String(opts.tagLength)}`);
  }

  /**
   * Largest message (with this additional data) one AEAD request carries on
   * this device; bigger messages, of any length, stream through the device
   * (an AEAD stream) in constant device memory.
   */
  maxMessageSize(aad: Uint8Array = this.ad): number {
    return this.oneShotMax(aad.length + this.tagLength);
  }

  /** Encrypts and authenticates: [ciphertext, tag] (python-mbedtls returns the same pair). */
  async encrypt(data: Uint8Array, aad?: Uint8Array, opts: CallOptions = {}): Promise<[Uint8Array, Uint8Array]> {
    checkBytes(data, "encrypt() data");
    const ad = aad === undefined ? this.ad : checkBytes(aad, "encrypt() aad");
    if (data.length > this.maxMessageSize(ad)) {
      this.checkAdSize(ad);
      const r = await this.streamed(data, true, ad, this.tagLength, null, opts);
      if (r.tag === null) throw new ProtocolError("aead_finish: no tag");
      return [r.out, r.tag];
    }
    const r = await this.withKey((key) =>
      this.ctx.call(Op.cipherAuthEncrypt, [...this.wire, key, this.iv, Uint8Array.from(ad), Uint8Array.from(data), this.tagLength], opts),
    );
    if (!Array.isArray(r) || r.length !== 2) throw new ProtocolError("cipher_auth_encrypt: result is not [ciphertext, tag]");
    return [bytesResult(r[0], "cipher_auth_encrypt"), bytesResult(r[1], "cipher_auth_encrypt")];
  }

  /** Verifies the tag and decrypts; AuthFailedError (and no plaintext) when the tag does not match. */
  async decrypt(data: Uint8Array, tag: Uint8Array, aad?: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    checkBytes(data, "decrypt() data");
    checkBytes(tag, "decrypt() tag");
    const ad = aad === undefined ? this.ad : checkBytes(aad, "decrypt() aad");
    if (data.length > this.maxMessageSize(ad)) {
      this.checkAdSize(ad);
      // The plaintext is returned only once aead_finish verified the tag.
      return (await this.streamed(data, false, ad, tag.length, tag, opts)).out;
    }
    const r = await this.withKey((key) =>
      this.ctx.call(
        Op.cipherAuthDecrypt,
        [...this.wire, key, this.iv, Uint8Array.from(ad), Uint8Array.from(data), Uint8Array.from(tag)],
        opts,
      ),
    );
    return bytesResult(r, "cipher_auth_decrypt");
  }

  /** The additional data travels in one request (aead_new), whatever the message size. */
  private checkAdSize(ad: Uint8Array): void {
    const max = this.oneShotMax(this.tagLength);
    if (ad.length > max) {
      throw new TooLargeError(
        Status.tooLarge,
        0,
        `${this.name} takes at most ${max} bytes of additional data on this device (one frame), got ${ad.length}`,
        "aead_new",
      );
    }
  }
}

/** One cipher family, e.g. dev.cipher.AES: `new(key, mode, iv?, ad?)`. */
export class CipherFamily implements CipherFamilyInfo {
  readonly wire: string;
  readonly blockSize: number;
  readonly keySize: number | undefined;
  readonly modes: readonly number[];

  /** @internal */
  constructor(
    private readonly ctx: SessionContext,
    info: CipherFamilyInfo,
    private readonly defaultMode?: number,
  ) {
    this.wire = info.wire;
    this.blockSize = info.blockSize;
    this.keySize = info.keySize;
    this.modes = info.modes;
  }

  /**
   * A cipher object (no device call yet). AEAD modes give an AEADCipher.
   * Key and IV sizes are checked by the device (BadArgumentError); a mode
   * the family lacks throws UnsupportedAlgorithmError. `key` may be a
   * device-held SymmetricKey (dev.keys): its handle is sent instead of bytes.
   */
  new(key: Uint8Array | SymmetricKey, mode: AeadMode, iv?: Uint8Array | null, ad?: Uint8Array, opts?: CipherOptions): AEADCipher;
  new(key: Uint8Array | SymmetricKey, mode: PlainMode, iv?: Uint8Array | null): Cipher;
  new(key: Uint8Array | SymmetricKey, mode?: number, iv?: Uint8Array | null, ad?: Uint8Array, opts?: CipherOptions): Cipher | AEADCipher;
  new(
    key: Uint8Array | SymmetricKey,
    mode?: number,
    iv?: Uint8Array | null,
    ad: Uint8Array = new Uint8Array(0),
    opts: CipherOptions = {},
  ): Cipher | AEADCipher {
    if (key instanceof SymmetricKey) key._checkFor(this.ctx);
    else checkBytes(key, "key");
    const m = mode ?? this.defaultMode;
    if (m === undefined) throw new ArgumentError(`${this.wire}.new() needs a mode`);
    modeInfo(m);
    if (!this.modes.includes(m)) {
      const names = this.modes.map((x) => modeInfo(x).wire).join(", ");
      throw UnsupportedAlgorithmError.local(`${this.wire} has no ${modeInfo(m).wire} mode (it offers ${names})`);
    }
    // ECB has no IV; like python-mbedtls, one given is ignored.
    const ivBytes = iv == null || m === MODE_ECB ? new Uint8Array(0) : Uint8Array.from(checkBytes(iv, "iv"));
    checkBytes(ad, "ad");
    const k = key instanceof SymmetricKey ? key : Uint8Array.from(key);
    if (AEAD_MODES.has(m)) return new AEADCipher(this.ctx, this, m, k, ivBytes, Uint8Array.from(ad), opts);
    return new Cipher(this.ctx, this, m, k, ivBytes);
  }
}

/** A family python-mbedtls 2 offered that Mbed TLS 3 removed. */
export class RemovedCipherFamily {
  /** @internal */
  constructor(readonly wire: string) {}
  new(..._args: unknown[]): never {
    throw UnsupportedAlgorithmError.local(`${this.wire} was removed from Mbed TLS 3 and is not available on this device`);
  }
}

const BLOCK16 = [MODE_ECB, MODE_CBC, MODE_CFB, MODE_CTR, MODE_GCM, MODE_CCM];

/** `dev.cipher`: cipher families and mode constants. */
export class CipherModule {
  readonly MODE_ECB = MODE_ECB;
  readonly MODE_CBC = MODE_CBC;
  readonly MODE_CFB = MODE_CFB;
  readonly MODE_OFB = MODE_OFB;
  readonly MODE_CTR = MODE_CTR;
  readonly MODE_GCM = MODE_GCM;
  readonly MODE_STREAM = MODE_STREAM;
  readonly MODE_CCM = MODE_CCM;
  readonly MODE_XTS = MODE_XTS;
  readonly MODE_CHACHAPOLY = MODE_CHACHAPOLY;

  /** AES-128/192/256 (XTS: 32- or 64-byte double keys). */
  readonly AES: CipherFamily;
  /** ARIA-128/192/256. */
  readonly ARIA: CipherFamily;
  /** Camellia-128/192/256. */
  readonly Camellia: CipherFamily;
  /** Single DES (8-byte key); broken, for compatibility only. */
  readonly DES: CipherFamily;
  /** Three-key triple DES (24-byte key). */
  readonly DES3: CipherFamily;
  /** Two-key triple DES (16-byte key). */
  readonly DES3dbl: CipherFamily;
  /**
   * ChaCha20 (32-byte key, 12-byte nonce): the stream cipher (MODE_STREAM, the default, counter from 0) and, as in
   * python-mbedtls, ChaCha20-Poly1305 with `CHACHA20.new(key, MODE_CHACHAPOLY, nonce)`.
   */
  readonly CHACHA20: CipherFamily;
  /** ChaCha20-Poly1305 AEAD (RFC 8439); an alias of `CHACHA20.new(key, MODE_CHACHAPOLY, nonce)`. */
  readonly CHACHA20_POLY1305: CipherFamily;
  /** Removed from Mbed TLS 3: new() throws UnsupportedAlgorithmError. */
  readonly ARC4 = new RemovedCipherFamily("ARC4");
  /** Removed from Mbed TLS 3: new() throws UnsupportedAlgorithmError. */
  readonly Blowfish = new RemovedCipherFamily("BLOWFISH");

  /** @internal */
  constructor(ctx: SessionContext) {
    const fam = (wire: string, blockSize: number, keySize: number | undefined, modes: number[], defaultMode?: number) =>
      new CipherFamily(ctx, { wire, blockSize, keySize, modes }, defaultMode);
    this.AES = fam("AES", 16, undefined, [...BLOCK16, MODE_OFB, MODE_XTS]);
    this.ARIA = fam("ARIA", 16, undefined, BLOCK16);
    this.Camellia = fam("CAMELLIA", 16, undefined, BLOCK16);
    this.DES = fam("DES", 8, 8, [MODE_ECB, MODE_CBC]);
    this.DES3 = fam("DES3", 8, 24, [MODE_ECB, MODE_CBC]);
    this.DES3dbl = fam("DES3DBL", 8, 16, [MODE_ECB, MODE_CBC]);
    this.CHACHA20 = fam("CHACHA20", 1, 32, [MODE_STREAM, MODE_CHACHAPOLY], MODE_STREAM);
    this.CHACHA20_POLY1305 = fam("CHACHA20", 1, 32, [MODE_CHACHAPOLY], MODE_CHACHAPOLY);
  }
}
