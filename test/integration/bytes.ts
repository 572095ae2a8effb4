// Random test data shared by the integration tests.
import { randomBytes, randomInt } from "node:crypto";

/** `n` random bytes. */
export const rand = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

/** Splits data into random-size pieces (some empty, some up to `maxPiece`). */
export function randomSplit(data: Uint8Array, maxPiece: number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let off = 0;
  while (off < data.length) {
    const n = Math.min(data.length - off, randomInt(0, maxPiece + 1));
    parts.push(data.subarray(off, off + n));
    off += n;
  }
  return parts;
}
