// dev.hmac: HMAC computed on the device, the PEP 452 shape of
// python-mbedtls's mbedtls.hmac (and Python's hmac), in TypeScript style.
//
// Like dev.hash, update() and copy() are synchronous, and an HMAC whose key
// and message fit one request holds them and digest() is one hmac_oneshot
// request, with no device context (digest-context.ts). Past that, or on
// copy(), the object creates its context: the key is sent once, with
// hmac_new (or named by the handle of a device-held SymmetricKey, dev.keys),
// the device keeps only the key's pads, and the host forgets the key; updates
// and copies are pipelined, and the first failure of a pipelined request is
// thrown by the next digest()/copy().
//
// Unlike python-mbedtls (whose digest() clears the message), digest() is
// non-destructive: it may be called again, and update() after digest()
// continues the message, as in Python's hmac module.

import { ArgumentError } from "../base/errors.js";
import type { HashAlgInfo } from "../base/protocol.generated.js";
import { Op } from "../base/protocol.generated.js";
import { checkBytes, hex } from "../base/util.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { checkedDigest, DigestContext } from "./digest-context.js";
import { guaranteedOf, lookupHash } from "./hash.js";
import { SymmetricKey, withKey } from "./keys.js";

/** Bytes a request needs besides the key and one data argument (alg id, second bstr head). */
const EXTRA_ARG_BYTES = 16;

export interface HmacOptions {
  /** Digest name, e.g. "sha256" (required, as in python-mbedtls). */
  digestmod: string;
  /** Initial message bytes, as Python's `msg`. */
  msg?: Uint8Array;
}

function digestmodOf(opts: unknown): HashAlgInfo {
  const d = typeof opts === "object" && opts !== null ? (opts as { digestmod?: unknown }).digestmod : undefined;
  if (d === undefined || d === null || d === "") throw new ArgumentError('hmac: digestmod is required (e.g. { digestmod: "sha256" })');
  if (typeof d !== "string") throw new ArgumentError('hmac: digestmod must be a digest name such as "sha256"');
  return lookupHash(d);
}

const HMAC_OPS = {
  update: Op.hmacUpdate,
  digest: Op.hmacDigest,
  copy: Op.hmacCopy,
  digestName: "hmac_digest",
  oneShotName: "hmac_oneshot",
} as const;

/** Bytes a key takes in a request: its length, or a handle's (at most 5 CBOR bytes). */
function keyWireSize(key: Uint8Array | SymmetricKey): number {
  return key instanceof SymmetricKey ? 5 : key.length;
}

/** An HMAC context, on the device once it holds more than one request carries. Create it with `dev.hmac.new(key, { digestmod })`. */
export class Hmac extends DigestContext {
  /** "hmac-" + digest name, e.g. "hmac-sha256" (as Python). */
  readonly name: string;
  /** The key until the device context exists. */
  private key: Uint8Array | SymmetricKey | undefined;

  /** @internal Use dev.hmac.new() / m.copy(). */
  constructor(ctx: SessionContext, alg: HashAlgInfo, source: Hmac | { key: Uint8Array | SymmetricKey }) {
    super(ctx, alg, HMAC_OPS);
    this.name = `hmac-${alg.name}`;
    if (source instanceof Hmac) {
      this.copyFrom(source);
    } else {
      this.key = source.key;
      // A device key closed while this object holds only its handle: the context is made first.
      if (source.key instanceof SymmetricKey) source.key._lazyUser(this);
    }
  }

  protected get what(): string {
    return `${this.name} object`;
  }

  protected get oneShotRoom(): number {
    return this.key === undefined ? 0 : this.ctx.chunkSize - EXTRA_ARG_BYTES - keyWireSize(this.key);
  }

  protected oneShot(data: Uint8Array, opts: CallOptions): Promise<unknown> {
    return withKey(this.ctx, this.key as Uint8Array | SymmetricKey, (k) => this.ctx.call(Op.hmacOneshot, [this.alg.id, k, data], opts));
  }

  protected createContext(): void {
    const key = this.key;
    this.key = undefined;
    if (key instanceof SymmetricKey) {
      this.track(this.open((handle, keyHandle) => this.ctx.call(Op.hmacNew, [handle, this.alg.id, keyHandle]), key));
    } else if (key) {
      this.track(this.open((handle) => this.ctx.call(Op.hmacNew, [handle, this.alg.id, key])));
    }
  }

  /** @internal Its device key is being closed: the context is created now, while the key is there. */
  _keyClosing(): void {
    if (this.isLazy && !this.isClosed) this.materialize();
  }

  /** A new, independent context with the same key and state (synchronous, pipelined hmac_copy). */
  copy(): Hmac {
    this.checkCopyable();
    return new Hmac(this.ctx, this.alg, this);
  }
}

/** `dev.hmac`: HMAC contexts and one-shot MACs. */
export class HmacModule {
  /** @internal */
  constructor(private readonly ctx: SessionContext) {}

  /** Names of the digests the device has compiled in (from hello), python-mbedtls's `hmac.algorithms_available`. */
  get algorithmsAvailable(): ReadonlySet<string> {
    return new Set(this.ctx.hashes);
  }

  /** python-mbedtls's guaranteed digests (md5, sha1, sha224..sha512) that this device has. */
  get algorithmsGuaranteed(): ReadonlySet<string> {
    return guaranteedOf(this.algorithmsAvailable);
  }

  /** Longest key hmac_new accepts in one frame (mtu - request_overhead_max - 16). */
  get maxKeySize(): number {
    return this.ctx.chunkSize - EXTRA_ARG_BYTES;
  }

  /**
   * A new HMAC context, python-mbedtls's `hmac.new(key, msg, digestmod)`.
   * `digestmod` is required (ArgumentError when missing); an unknown name
   * throws UnsupportedAlgorithmError at once.
   */
  new(key: Uint8Array | SymmetricKey, opts: HmacOptions): Hmac {
    const alg = digestmodOf(opts);
    if (key instanceof SymmetricKey) key._checkFor(this.ctx);
    else {
      checkBytes(key, "key");
      if (key.length > this.maxKeySize) throw new ArgumentError(`key of ${key.length} bytes exceeds ${this.maxKeySize} (MTU limit)`);
    }
    if (opts.msg !== undefined) checkBytes(opts.msg, "msg");
    const m = new Hmac(this.ctx, alg, { key: key instanceof SymmetricKey ? key : Uint8Array.from(key) });
    if (opts.msg !== undefined) m.update(opts.msg);
    return m;
  }

  /** python-mbedtls's named constructors: `dev.hmac.sha256(key, msg?)` is `new(key, { digestmod: "sha256", msg })`. */
  readonly md5 = this.named("md5");
  readonly sha1 = this.named("sha1");
  readonly sha224 = this.named("sha224");
  readonly sha256 = this.named("sha256");
  readonly sha384 = this.named("sha384");
  readonly sha512 = this.named("sha512");
  readonly ripemd160 = this.named("ripemd160");

  private named(digestmod: string): (key: Uint8Array | SymmetricKey, msg?: Uint8Array) => Hmac {
    return (key, msg) => this.new(key, { digestmod, msg });
  }

  /**
   * One-shot HMAC (Python's `hmac.digest(key, msg, digest)`): hmac_oneshot when key and data fit one frame.
   * `key` may be a device-held SymmetricKey (its handle is sent).
   */
  async digest(key: Uint8Array | SymmetricKey, data: Uint8Array, digestmod: string, opts: CallOptions = {}): Promise<Uint8Array> {
    const alg = digestmodOf({ digestmod });
    if (!(key instanceof SymmetricKey)) checkBytes(key, "key");
    checkBytes(data, "data");
    // What fits one request needs no object (the lazy Hmac would send the same request).
    if (keyWireSize(key) + data.length + EXTRA_ARG_BYTES <= this.ctx.chunkSize) {
      const r = await withKey(this.ctx, key, (k) => this.ctx.call(Op.hmacOneshot, [alg.id, k, data], opts));
      return checkedDigest(r, alg.digestSize, `hmac_oneshot(hmac-${alg.name})`);
    }
    const m = this.new(key, { digestmod: alg.name });
    try {
      m.update(data);
      return await m.digest(opts);
    } finally {
      await m.close().catch(() => {}); // no device call when it stayed lazy
    }
  }

  async hexdigest(key: Uint8Array | SymmetricKey, data: Uint8Array, digestmod: string, opts: CallOptions = {}): Promise<string> {
    return hex(await this.digest(key, data, digestmod, opts));
  }
}
