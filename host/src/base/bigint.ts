// Conversions between bigint and the protocol's big numbers: unsigned
// big-endian byte strings (spec.md 7.3). Arithmetic stays plain bigint on
// the host; these helpers only move numbers across the wire.
import { ArgumentError } from "./errors.js";
import { hex } from "./util.js";

/** Number of bits of a non-negative bigint (0 for 0), as Python's int.bit_length(). */
export function bitLength(n: bigint): number {
  if (n < 0n) throw new ArgumentError("bitLength() takes a non-negative bigint");
  return n === 0n ? 0 : n.toString(2).length;
}

/** Bytes needed to write a non-negative bigint (0 for 0). */
export function byteLength(n: bigint): number {
  return Math.ceil(bitLength(n) / 8);
}

/**
 * Unsigned big-endian bytes of a non-negative bigint. Without `length`, the
 * shortest form (0n gives one zero byte); with it, left-padded with zeros to
 * exactly `length` bytes (ArgumentError when the number does not fit).
 */
export function toBytes(n: bigint, length?: number): Uint8Array {
  if (typeof n !== "bigint") throw new ArgumentError("toBytes() takes a bigint");
  if (n < 0n) throw new ArgumentError("toBytes() takes a non-negative bigint");
  const need = Math.max(1, byteLength(n));
  let size = need;
  if (length !== undefined) {
    if (!Number.isSafeInteger(length) || length < 0) throw new ArgumentError("toBytes(): length must be a non-negative integer");
    if (length < byteLength(n)) throw new ArgumentError(`toBytes(): the number needs ${byteLength(n)} bytes, more than ${length}`);
    size = length;
  }
  const out = new Uint8Array(size);
  let v = n;
  for (let i = size - 1; i >= 0 && v > 0n; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** The non-negative bigint of unsigned big-endian bytes (empty gives 0n). */
export function fromBytes(bytes: Uint8Array): bigint {
  if (!(bytes instanceof Uint8Array)) throw new ArgumentError("fromBytes() takes a Uint8Array");
  return bytes.length === 0 ? 0n : BigInt(`0x${hex(bytes)}`);
}

/**
 * A big-number argument as the wire's big-endian bytes: a non-negative
 * bigint (shortest form), a non-negative safe integer, or bytes as given.
 */
export function bigArg(v: unknown, what: string): Uint8Array {
  if (v instanceof Uint8Array) return Uint8Array.from(v);
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return toBytes(BigInt(v));
  if (typeof v === "bigint" && v >= 0n) return toBytes(v);
  throw new ArgumentError(`${what} must be a non-negative bigint, a non-negative safe integer or big-endian bytes`);
}
