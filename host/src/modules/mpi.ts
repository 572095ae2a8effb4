// dev.mpi: big numbers from the device DRBG (python-mbedtls's mbedtls.mpi).
// The device only draws primes and random numbers (spec.md 7.3); arithmetic
// on the results is plain bigint on the host. Numbers travel as unsigned
// big-endian bytes (toBytes / fromBytes).
import { bigArg, fromBytes } from "../base/bigint.js";
import { ArgumentError, ProtocolError } from "../base/errors.js";
import { Limits, MpiPrimeFlag, Op } from "../base/protocol.generated.js";
import { atLeast, type CallOptions, type SessionContext } from "../session/context.js";

export { bitLength, byteLength, fromBytes, toBytes } from "../base/bigint.js";

/**
 * Default timeout of a long device operation (prime search, DH with a big
 * modulus), unless the call passes its own: a safe prime of 128 bytes takes
 * seconds on a Cortex-M4. The device's busy events re-arm it while the
 * operation runs, so it bounds silence, not the operation.
 */
export const LONG_OP_TIMEOUT_MS = 60_000;

/** @internal The call options of a long operation: the caller's timeout, else at least LONG_OP_TIMEOUT_MS. */
export function longOp(ctx: SessionContext, opts: CallOptions): CallOptions {
  return atLeast(ctx, opts, LONG_OP_TIMEOUT_MS);
}

export interface PrimeOptions extends CallOptions {
  /** A safe prime: (p - 1) / 2 is prime too (much slower). */
  safe?: boolean;
  /** Mbed TLS's low-error flag: error probability 2^-100 instead of 2^-80. */
  lowErr?: boolean;
}

function size(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new ArgumentError(`${what} must be a non-negative integer`);
  return v;
}

function number(r: unknown, op: string): bigint {
  if (!(r instanceof Uint8Array)) throw new ProtocolError(`${op}: result is not a byte string`);
  return fromBytes(r);
}

/** `dev.mpi`: primes and random big numbers drawn on the device. */
export class MpiModule {
  /** @internal */
  constructor(private readonly ctx: SessionContext) {}

  /** Largest number, in bytes, that prime() and random() produce or take (mpi_bytes_max). */
  get maxBytes(): number {
    return Limits.mpiBytesMax;
  }

  /**
   * A probable prime of exactly `bytes` bytes (its top bit set), as
   * python-mbedtls's `MPI.prime(size)`. The device checks the size
   * (1..mpi_bytes_max, else BadArgumentError).
   */
  async prime(bytes: number, opts: PrimeOptions = {}): Promise<bigint> {
    const n = size(bytes, "prime(bytes)");
    const flags = (opts.safe ? MpiPrimeFlag.safe : 0) | (opts.lowErr ? MpiPrimeFlag.lowErr : 0);
    const { safe: _s, lowErr: _l, ...call } = opts;
    const p = number(await this.ctx.call(Op.mpiPrime, [n, flags], longOp(this.ctx, call)), "mpi_prime");
    if (p >> BigInt(8 * n - 1) !== 1n) throw new ProtocolError(`mpi_prime returned a number that is not ${n} bytes long`);
    return p;
  }

  /**
   * A uniformly random number in [min, max) from the device DRBG. `max` is
   * at most mpi_bytes_max bytes and above `min` (else BadArgumentError from
   * the device). A `min` too big for the wire's integer is handled as
   * min + random(0, max - min).
   */
  async random(min: bigint | number, max: bigint | number, opts: CallOptions = {}): Promise<bigint> {
    const lo = typeof min === "number" && Number.isSafeInteger(min) ? BigInt(min) : min;
    const hi = typeof max === "number" && Number.isSafeInteger(max) ? BigInt(max) : max;
    if (typeof lo !== "bigint" || lo < 0n) throw new ArgumentError("random(min, max): min must be a non-negative integer or bigint");
    if (typeof hi !== "bigint" || hi < 0n) throw new ArgumentError("random(min, max): max must be a non-negative integer or bigint");
    // The wire's min is a CBOR uint; beyond safe integers, shift the range to start at 0.
    const offset = lo > BigInt(Number.MAX_SAFE_INTEGER) ? lo : 0n;
    if (offset > 0n && hi <= lo) throw new ArgumentError("random(min, max): max must be above min");
    const wireMin = Number(lo - offset);
    const r = number(await this.ctx.call(Op.mpiRandom, [wireMin, bigArg(hi - offset, "max")], opts), "mpi_random");
    const v = r + offset;
    if (v < lo || v >= hi) throw new ProtocolError("mpi_random returned a number outside [min, max)");
    return v;
  }
}
