// ECDSA signature encodings: DER (SEQUENCE { INTEGER r, INTEGER s }, what
// the device and OpenSSL write and what the device verifies) and raw r||s
// (IEEE P1363, WebCrypto, JOSE, COSE), each integer left-padded to the size
// of the curve's order. The device speaks DER only; the SDK converts, so a
// raw signature reaches the device as the canonical DER of its (r, s).

import { ProtocolError } from "../base/errors.js";

/** The content bytes of a minimal DER INTEGER for an unsigned big-endian value. */
function derUint(v: Uint8Array): Uint8Array {
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  const body = v.subarray(i);
  return (body[0] ?? 0) & 0x80 ? Uint8Array.of(0, ...body) : Uint8Array.from(body.length ? body : [0]);
}

/** A DER length (short form below 128, else 0x81/0x82 and the value). */
function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  if (n < 0x100) return [0x81, n];
  return [0x82, n >> 8, n & 0xff];
}

function tlv(tag: number, body: Uint8Array): Uint8Array {
  return Uint8Array.of(tag, ...derLength(body.length), ...body);
}

/** The canonical DER of a raw r||s signature (both halves the same length). */
export function rawToDer(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  const r = tlv(0x02, derUint(raw.subarray(0, half)));
  const s = tlv(0x02, derUint(raw.subarray(half)));
  return tlv(0x30, Uint8Array.of(...r, ...s));
}

/**
 * r||s of a DER signature the device wrote, each left-padded to `size`
 * bytes (the byte length of the curve's order: 66 for secp521r1).
 * ProtocolError if it is not DER of two non-negative INTEGERs that fit.
 */
export function derToRaw(der: Uint8Array, size: number): Uint8Array {
  const bad = (why: string) => new ProtocolError(`pk_sign: the ECDSA signature is not DER (${why})`);
  let off = 0;
  const readTlv = (tag: number): Uint8Array => {
    if (der[off++] !== tag) throw bad(`tag 0x${tag.toString(16)} expected`);
    let len = der[off++] ?? 0;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 2) throw bad("length");
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (der[off++] ?? 0);
    }
    if (off + len > der.length) throw bad("truncated");
    const body = der.subarray(off, off + len);
    off += len;
    return body;
  };
  const seq = readTlv(0x30);
  if (off !== der.length) throw bad("bytes after the SEQUENCE");
  off = der.length - seq.length;
  const out = new Uint8Array(2 * size);
  for (const half of [0, 1]) {
    const v = readTlv(0x02);
    if (v.length === 0 || (v[0] ?? 0) & 0x80) throw bad("negative or empty INTEGER");
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    const mag = v.subarray(i);
    if (mag.length > size) throw bad(`an integer longer than ${size} bytes`);
    out.set(mag, half * size + size - mag.length);
  }
  if (off !== der.length) throw bad("bytes after s");
  return out;
}
