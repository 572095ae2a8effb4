// dev.random: the device's CTR_DRBG with the semantics of Python's `secrets`
// module (token_bytes, token_hex, token_urlsafe, randbelow, choice,
// randbits). Requests above one frame are split into pipelined rng_bytes
// calls.

import { ArgumentError, ProtocolError } from "../base/errors.js";
import { Limits, Op } from "../base/protocol.generated.js";
import { hex } from "../base/util.js";
import type { CallOptions, SessionContext } from "../session/context.js";

/** Default token size in bytes (Python's secrets uses 32). */
export const DEFAULT_TOKEN_BYTES = 32;

function count(n: unknown, what: string): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new ArgumentError(`${what} must be a non-negative integer`);
  return n;
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** `dev.random`: cryptographically strong random values from the device. */
export class RandomModule {
  /** @internal */
  constructor(private readonly ctx: SessionContext) {}

  /** n random bytes. */
  async randbytes(n: number, opts: CallOptions = {}): Promise<Uint8Array> {
    const total = count(n, "randbytes(n)");
    const chunk = this.ctx.streamChunk;
    const parts: Promise<unknown>[] = [];
    for (let off = 0; off < total; off += chunk) parts.push(this.ctx.call(Op.rngBytes, [Math.min(chunk, total - off)], opts));
    // every call is pipelined before the first is awaited
    for (const p of parts) p.catch(() => {});
    const out = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      const r = await p;
      const want = Math.min(chunk, total - off);
      if (!(r instanceof Uint8Array) || r.length !== want) throw new ProtocolError("rng_bytes returned a bad result");
      out.set(r, off);
      off += want;
    }
    return out;
  }

  /** Python's secrets.token_bytes(nbytes=32). */
  tokenBytes(n: number = DEFAULT_TOKEN_BYTES, opts: CallOptions = {}): Promise<Uint8Array> {
    return this.randbytes(n, opts);
  }

  /** Python's secrets.token_hex(nbytes=32): 2n lower-case hex digits. */
  async tokenHex(n: number = DEFAULT_TOKEN_BYTES, opts: CallOptions = {}): Promise<string> {
    return hex(await this.randbytes(n, opts));
  }

  /** Python's secrets.token_urlsafe(nbytes=32): base64url of n bytes, without padding. */
  async tokenUrlsafe(n: number = DEFAULT_TOKEN_BYTES, opts: CallOptions = {}): Promise<string> {
    return Buffer.from(await this.randbytes(n, opts)).toString("base64url");
  }

  /** A non-negative bigint of k random bits (Python's secrets.randbits). */
  async randbits(k: number, opts: CallOptions = {}): Promise<bigint> {
    const bits = count(k, "randbits(k)");
    if (bits === 0) return 0n;
    const b = await this.randbytes(Math.ceil(bits / 8), opts);
    const extra = b.length * 8 - bits;
    b[0] = (b[0] as number) & (0xff >> extra);
    return BigInt(`0x${hex(b)}`);
  }

  /**
   * A uniform integer in [0, n), unbiased (rejection sampling on
   * bit_length(n) random bits, as Python's secrets.randbelow). Returns a
   * bigint for a bigint n and a number for a number n.
   */
  async randbelow(n: bigint, opts?: CallOptions): Promise<bigint>;
  async randbelow(n: number, opts?: CallOptions): Promise<number>;
  async randbelow(n: bigint | number, opts: CallOptions = {}): Promise<bigint | number> {
    let bound: bigint;
    if (typeof n === "bigint") bound = n;
    else if (typeof n === "number" && Number.isSafeInteger(n)) bound = BigInt(n);
    else throw new ArgumentError("randbelow(n): n must be a safe integer or a bigint");
    if (bound <= 0n) throw new ArgumentError("randbelow(n): n must be positive");
    const k = bitLength(bound);
    for (;;) {
      const r = await this.randbits(k, opts);
      if (r < bound) return typeof n === "bigint" ? r : Number(r);
    }
  }

  /** A random element of a non-empty sequence (array, string, typed array), as Python's secrets.choice. */
  async choice<T>(seq: ArrayLike<T>, opts: CallOptions = {}): Promise<T> {
    if (seq === null || (typeof seq !== "object" && typeof seq !== "string"))
      throw new ArgumentError("choice(seq): seq must be array-like");
    if (seq.length === 0) throw new ArgumentError("choice(seq): seq is empty");
    return seq[await this.randbelow(seq.length, opts)] as T;
  }

  /**
   * Reseeds the device DRBG from its entropy source with `data` as
   * additional input (it never replaces the device's entropy). Data above
   * rng_reseed_max bytes is mixed in over several reseeds.
   */
  async reseed(data: Uint8Array, opts: CallOptions = {}): Promise<void> {
    if (!(data instanceof Uint8Array)) throw new ArgumentError("reseed(data) takes a Uint8Array");
    const max = Limits.rngReseedMax;
    const calls: Promise<unknown>[] = [];
    let off = 0;
    do {
      calls.push(this.ctx.call(Op.rngReseed, [data.subarray(off, off + max)], opts));
      off += max;
    } while (off < data.length);
    for (const c of calls) c.catch(() => {});
    for (const c of calls) await c;
  }
}
