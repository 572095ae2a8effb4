// dev.hash: digests computed on the device, PEP 452 shape (python-mbedtls's
// mbedtls.hash), in TypeScript style.
//
// update() and copy() are synchronous. A hash fed no more than one request
// carries holds the bytes and digest() is one hash_oneshot request: no device
// context (digest-context.ts). Past that, or on copy(), the object creates
// its context and pipelines requests (hash_update chunks, hash_copy) without
// waiting for answers. The first failure of such a pipelined request is
// remembered and thrown by the next digest() / hexdigest() / copy() (and from
// then on: the context missed data, so it is poisoned). Handles are
// host-chosen from the Device's counter and never reused within a boot.

import { UnsupportedAlgorithmError } from "../base/errors.js";
import type { HashAlgInfo } from "../base/protocol.generated.js";
import { HASH_ALGS, Op } from "../base/protocol.generated.js";
import { checkBytes, hex } from "../base/util.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { checkedDigest, DigestContext } from "./digest-context.js";

const ALG_BY_NAME: ReadonlyMap<string, HashAlgInfo> = new Map(HASH_ALGS.map((a) => [a.name, a]));
const ALG_BY_ID: ReadonlyMap<number, HashAlgInfo> = new Map(HASH_ALGS.map((a) => [a.id, a]));

/** Digests python-mbedtls guarantees; `algorithmsGuaranteed` is this set restricted to what the device has. */
const PYTHON_MBEDTLS_GUARANTEED = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"] as const;

/** The names of `available` that python-mbedtls guarantees (its `algorithms_guaranteed`), in its order. */
export function guaranteedOf(available: ReadonlySet<string>): ReadonlySet<string> {
  return new Set(PYTHON_MBEDTLS_GUARANTEED.filter((n) => available.has(n)));
}

/** Protocol name of a hash algorithm id, e.g. 4 -> "sha256". */
export function hashNameOf(id: number): string | undefined {
  return ALG_BY_ID.get(id)?.name;
}

/**
 * Looks a digest name up in the protocol's table (case-insensitive; "sha3-256"
 * is accepted for "sha3_256"). Throws UnsupportedAlgorithmError locally for a
 * name the protocol does not know.
 */
export function lookupHash(name: string): HashAlgInfo {
  const key = typeof name === "string" ? name.toLowerCase().replace(/-/g, "_") : "";
  const alg = ALG_BY_NAME.get(key);
  if (!alg)
    throw UnsupportedAlgorithmError.local(`unknown hash algorithm ${JSON.stringify(name)}; known: ${[...ALG_BY_NAME.keys()].join(", ")}`);
  return alg;
}

const HASH_OPS = {
  update: Op.hashUpdate,
  digest: Op.hashDigest,
  copy: Op.hashCopy,
  digestName: "hash_digest",
  oneShotName: "hash_oneshot",
} as const;

/** A digest context, on the device once it holds more than one request carries. Create it with `dev.hash.new(name)` or a named constructor. */
export class Hash extends DigestContext {
  /** Protocol name, e.g. "sha256". */
  readonly name: string;

  /** @internal Use dev.hash.new() / dev.hash.sha256() / h.copy(). */
  constructor(ctx: SessionContext, alg: HashAlgInfo, source?: Hash) {
    super(ctx, alg, HASH_OPS);
    this.name = alg.name;
    if (source) this.copyFrom(source);
  }

  protected get what(): string {
    return `${this.name} hash object`;
  }

  protected get oneShotRoom(): number {
    return this.ctx.chunkSize;
  }

  protected oneShot(data: Uint8Array, opts: CallOptions): Promise<unknown> {
    return this.ctx.call(Op.hashOneshot, [this.alg.id, data], opts);
  }

  protected createContext(): void {
    this.track(this.open((handle) => this.ctx.call(Op.hashNew, [handle, this.alg.id])));
  }

  /** A new, independent context with the same state (synchronous, pipelined hash_copy). */
  copy(): Hash {
    this.checkCopyable();
    return new Hash(this.ctx, this.alg, this);
  }
}

/** @internal One-shot digest on the device (dev.hash.digest): hash_oneshot when the data fits one frame, else a temporary context. */
export async function digestOf(ctx: SessionContext, name: string, data: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
  const alg = lookupHash(name);
  checkBytes(data, "data");
  // What fits one request needs no object (the lazy Hash would send the same request).
  if (data.length <= ctx.chunkSize) {
    return checkedDigest(await ctx.call(Op.hashOneshot, [alg.id, data], opts), alg.digestSize, `hash_oneshot(${alg.name})`);
  }
  const h = new Hash(ctx, alg);
  try {
    h.update(data);
    return await h.digest(opts);
  } finally {
    await h.close().catch(() => {}); // no device call when it stayed lazy
  }
}

/** `dev.hash`: constructors and one-shot digests. */
export class HashModule {
  /** @internal */
  constructor(private readonly ctx: SessionContext) {}

  /** Names of the digests the device has compiled in (from hello). */
  get algorithmsAvailable(): ReadonlySet<string> {
    return new Set(this.ctx.hashes);
  }

  /** python-mbedtls's guaranteed digests (md5, sha1, sha224..sha512) that this device has. */
  get algorithmsGuaranteed(): ReadonlySet<string> {
    return guaranteedOf(this.algorithmsAvailable);
  }

  /**
   * A new digest context. A name the protocol does not know throws
   * UnsupportedAlgorithmError at once; a known one the firmware lacks fails
   * with the device's UnsupportedAlgorithmError from digest(). Nothing is
   * sent until the data outgrows one request (or digest()).
   */
  new(name: string, data?: Uint8Array): Hash {
    const alg = lookupHash(name);
    if (data !== undefined) checkBytes(data, "initial data");
    const h = new Hash(this.ctx, alg);
    if (data !== undefined) h.update(data);
    return h;
  }

  md5(data?: Uint8Array): Hash {
    return this.new("md5", data);
  }
  sha1(data?: Uint8Array): Hash {
    return this.new("sha1", data);
  }
  sha224(data?: Uint8Array): Hash {
    return this.new("sha224", data);
  }
  sha256(data?: Uint8Array): Hash {
    return this.new("sha256", data);
  }
  sha384(data?: Uint8Array): Hash {
    return this.new("sha384", data);
  }
  sha512(data?: Uint8Array): Hash {
    return this.new("sha512", data);
  }
  ripemd160(data?: Uint8Array): Hash {
    return this.new("ripemd160", data);
  }
  sha3_224(data?: Uint8Array): Hash {
    return this.new("sha3_224", data);
  }
  sha3_256(data?: Uint8Array): Hash {
    return this.new("sha3_256", data);
  }
  sha3_384(data?: Uint8Array): Hash {
    return this.new("sha3_384", data);
  }
  sha3_512(data?: Uint8Array): Hash {
    return this.new("sha3_512", data);
  }

  /** One-shot digest: hash_oneshot when the data fits one frame, else a temporary context. */
  digest(name: string, data: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    return digestOf(this.ctx, name, data, opts);
  }

  /** Hex of digest(). */
  async hexdigest(name: string, data: Uint8Array, opts: CallOptions = {}): Promise<string> {
    return hex(await this.digest(name, data, opts));
  }
}
