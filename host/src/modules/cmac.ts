// dev.cmac: CMAC (NIST SP 800-38B; RFC 4493 for AES) computed on the device,
// in the shape of dev.hmac (python-mbedtls has no CMAC; this follows its
// hmac module and PEP 452): `new(key, { cipher })`, `update`, `digest`,
// `hexdigest`, `copy`, and one-shot `digest(key, data, cipher)`.
//
// Mbed TLS 3.6's cmac.c takes AES (16, 24 or 32-byte keys) and three-key
// DES-EDE3 ("DES3", 24-byte keys) only; Camellia and ARIA, although the
// firmware has them as ciphers, are refused with UnsupportedAlgorithmError
// before anything is sent, and so is a key of the wrong length
// (ArgumentError).
//
// As dev.hmac: update() and copy() are synchronous; a CMAC whose key and
// message fit one request holds them and digest() is one cmac_oneshot
// request, with no device context (digest-context.ts). Past that, or on
// copy(), the context is created with cmac_new (the key bytes sent once, or
// the handle of a device-held SymmetricKey) and updates are pipelined;
// digest() is non-destructive. A context the handle table has no room for is
// swapped out and back like an HMAC's (its state includes the key, wrapped
// under the device's per-boot key).

import { ArgumentError, UnsupportedAlgorithmError } from "../base/errors.js";
import { Op } from "../base/protocol.generated.js";
import { checkBytes, hex } from "../base/util.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { checkedDigest, DigestContext } from "./digest-context.js";
import { SymmetricKey, withKey } from "./keys.js";

/** The ciphers Mbed TLS 3.6's CMAC takes (wire names of dev.cipher's families). */
export type CmacCipher = "AES" | "DES3";

export interface CmacOptions {
  /** "AES" (default; the key length picks AES-128/192/256) or "DES3" (three-key DES-EDE3). */
  cipher?: CmacCipher;
  /** Initial message bytes. */
  msg?: Uint8Array;
}

interface CmacCipherInfo {
  readonly wire: CmacCipher;
  readonly blockSize: number;
  readonly keySizes: readonly number[];
}

const CIPHERS: ReadonlyMap<string, CmacCipherInfo> = new Map([
  ["AES", { wire: "AES", blockSize: 16, keySizes: [16, 24, 32] }],
  ["DES3", { wire: "DES3", blockSize: 8, keySizes: [24] }],
]);

/** dev.cipher families Mbed TLS 3.6's cmac.c does not take. */
const NO_CMAC = ["ARIA", "CAMELLIA", "DES", "DES3DBL", "CHACHA20"];

/** Bytes a request needs besides the key and one data argument (cipher name, bstr heads). */
const EXTRA_ARG_BYTES = 16;

const CMAC_OPS = {
  update: Op.cmacUpdate,
  digest: Op.cmacDigest,
  copy: Op.cmacCopy,
  digestName: "cmac_digest",
  oneShotName: "cmac_oneshot",
} as const;

type CmacKey = Uint8Array | SymmetricKey;

/** The cipher named `name` (case-insensitive), checked against the key's length; throws before anything is sent. */
function cmacCipher(name: unknown, key: CmacKey): CmacCipherInfo {
  if (typeof name !== "string") throw new ArgumentError('cmac: cipher must be a name such as "AES"');
  const upper = name.toUpperCase();
  const info = CIPHERS.get(upper);
  if (!info) {
    if (NO_CMAC.includes(upper)) {
      throw UnsupportedAlgorithmError.local(`${upper}-CMAC: Mbed TLS 3.6's CMAC takes AES and DES3 only`);
    }
    throw UnsupportedAlgorithmError.local(`unknown CMAC cipher ${JSON.stringify(name)}; known: AES, DES3`);
  }
  const size = key instanceof SymmetricKey ? key.size : checkBytes(key, "key").length;
  if (!info.keySizes.includes(size)) {
    const sizes = info.keySizes.join(", ").replace(/, (\d+)$/, " or $1");
    throw new ArgumentError(`${info.wire}-CMAC key must be ${sizes} bytes, got ${size}`);
  }
  return info;
}

/** Name of a CMAC, e.g. "cmac-aes-256" or "cmac-des3". */
function cmacName(info: CmacCipherInfo, keySize: number): string {
  return info.wire === "AES" ? `cmac-aes-${keySize * 8}` : "cmac-des3";
}

/** A CMAC context, on the device once it holds more than one request carries. Create it with `dev.cmac.new(key, { cipher })`. */
export class Cmac extends DigestContext {
  /** e.g. "cmac-aes-128", "cmac-des3". */
  readonly name: string;
  /** The cipher's wire name ("AES" or "DES3"). */
  readonly cipher: CmacCipher;
  /** Key length in bytes. */
  readonly keySize: number;
  /** The key until the device context exists. */
  private pendingKey: CmacKey | undefined;

  /** @internal Use dev.cmac.new() / m.copy(). */
  constructor(ctx: SessionContext, info: CmacCipherInfo, keySize: number, source: Cmac | { key: CmacKey }) {
    const name = cmacName(info, keySize);
    super(ctx, { name, id: 0, digestSize: info.blockSize, blockSize: info.blockSize }, CMAC_OPS);
    this.name = name;
    this.cipher = info.wire;
    this.keySize = keySize;
    if (source instanceof Cmac) this.copyFrom(source);
    else {
      this.pendingKey = source.key;
      if (source.key instanceof SymmetricKey) source.key._lazyUser(this); // told before the key goes
    }
  }

  protected get what(): string {
    return `${this.name} object`;
  }

  protected get oneShotRoom(): number {
    const k = this.pendingKey;
    if (k === undefined) return 0;
    return this.ctx.chunkSize - EXTRA_ARG_BYTES - (k instanceof SymmetricKey ? 5 : k.length);
  }

  protected oneShot(data: Uint8Array, opts: CallOptions): Promise<unknown> {
    return withKey(this.ctx, this.pendingKey as CmacKey, (k) => this.ctx.call(Op.cmacOneshot, [this.cipher, k, data], opts));
  }

  protected createContext(): void {
    const key = this.pendingKey;
    if (key === undefined) return;
    this.pendingKey = undefined;
    const create = (handle: number, keyHandle: number) =>
      this.ctx.call(Op.cmacNew, [handle, this.cipher, key instanceof SymmetricKey ? keyHandle : key]);
    this.track(key instanceof SymmetricKey ? this.open(create, key) : this.open(create));
  }

  /** @internal Its device key is being closed: the context is created now, while the key is there. */
  _keyClosing(): void {
    if (this.isLazy && !this.isClosed) this.materialize();
  }

  /** A new, independent context with the same key and state (synchronous, pipelined cmac_copy). */
  copy(): Cmac {
    this.checkCopyable();
    return new Cmac(this.ctx, CIPHERS.get(this.cipher) as CmacCipherInfo, this.keySize, this);
  }
}

/** `dev.cmac`: CMAC contexts and one-shot MACs (AES-128/192/256, DES3). */
export class CmacModule {
  /** @internal */
  constructor(private readonly ctx: SessionContext) {}

  /** The cipher names CMAC takes here ("AES", "DES3"; Mbed TLS 3.6 has no Camellia or ARIA CMAC). */
  get ciphers(): readonly CmacCipher[] {
    return ["AES", "DES3"];
  }

  /**
   * A new CMAC context under `key` (bytes, or a device-held SymmetricKey).
   * The cipher defaults to "AES" (the key length picks AES-128/192/256).
   * A cipher without CMAC in Mbed TLS throws UnsupportedAlgorithmError, a
   * key of the wrong length ArgumentError, both at once. Nothing is sent
   * until the data outgrows one request (or digest()).
   */
  new(key: CmacKey, opts: CmacOptions = {}): Cmac {
    if (typeof opts !== "object" || opts === null) throw new ArgumentError("cmac.new: options must be an object");
    const info = cmacCipher(opts.cipher ?? "AES", key);
    if (key instanceof SymmetricKey) key._checkFor(this.ctx);
    if (opts.msg !== undefined) checkBytes(opts.msg, "msg");
    const size = key instanceof SymmetricKey ? key.size : key.length;
    const m = new Cmac(this.ctx, info, size, { key: key instanceof SymmetricKey ? key : Uint8Array.from(key) });
    if (opts.msg !== undefined) m.update(opts.msg);
    return m;
  }

  /** One-shot CMAC: cmac_oneshot when key and data fit one frame, else a temporary context. */
  async digest(key: CmacKey, data: Uint8Array, cipher: CmacCipher = "AES", opts: CallOptions = {}): Promise<Uint8Array> {
    const info = cmacCipher(cipher, key);
    checkBytes(data, "data");
    const keyBytes = key instanceof SymmetricKey ? 5 : key.length;
    if (keyBytes + data.length + EXTRA_ARG_BYTES <= this.ctx.chunkSize) {
      const r = await withKey(this.ctx, key, (k) => this.ctx.call(Op.cmacOneshot, [info.wire, k, data], opts));
      return checkedDigest(r, info.blockSize, `cmac_oneshot(${info.wire})`);
    }
    const m = this.new(key, { cipher: info.wire });
    try {
      m.update(data);
      return await m.digest(opts);
    } finally {
      await m.close().catch(() => {}); // no device call when it stayed lazy
    }
  }

  async hexdigest(key: CmacKey, data: Uint8Array, cipher: CmacCipher = "AES", opts: CallOptions = {}): Promise<string> {
    return hex(await this.digest(key, data, cipher, opts));
  }
}
