// Frame bodies: one CBOR message followed by its CRC-32 (IEEE, as zlib),
// big-endian. cbor-x is configured to write plain CBOR: no tag 64 on
// Uint8Array, no record extension, minimal map headers.
import { crc32 } from "node:zlib";
import { Decoder, Encoder } from "cbor-x";
import { Limits } from "../base/protocol.generated.js";

const encoder = new Encoder({ useRecords: false, variableMapSize: true, tagUint8Array: false, mapsAsObjects: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

export const CRC_SIZE = Limits.crcSize;

export function crc32Of(data: Uint8Array): number {
  return crc32(data) >>> 0;
}

/** CBOR-encodes a message and appends its CRC. */
export function encodeBody(message: unknown): Uint8Array {
  return withCrc([encoder.encode(message) as Uint8Array]);
}

/** A frame body: the parts' bytes one after the other, then their CRC-32, big-endian. */
function withCrc(parts: readonly Uint8Array[]): Uint8Array {
  const n = parts.reduce((sum, p) => sum + p.length, 0);
  const body = new Uint8Array(n + CRC_SIZE);
  let off = 0;
  for (const p of parts) {
    body.set(p, off);
    off += p.length;
  }
  const crc = crc32Of(body.subarray(0, n));
  body[n] = crc >>> 24;
  body[n + 1] = (crc >>> 16) & 0xff;
  body[n + 2] = (crc >>> 8) & 0xff;
  body[n + 3] = crc & 0xff;
  return body;
}

/**
 * The frame body of a request `[id, ...rest]`, encoded once when the call is
 * made (so the caller may reuse its buffers at once). A resend sends the
 * same bytes again (same id: the device answers it from its record, spec §6).
 */
export class RequestBody {
  private constructor(
    /** CBOR + CRC, as written on the line. */
    readonly bytes: Uint8Array,
    readonly id: number,
  ) {}

  /** Encodes `[id, ...rest]` exactly as encodeBody does; throws what cbor-x throws for a value it cannot encode. */
  static encode(id: number, rest: readonly unknown[]): RequestBody {
    return new RequestBody(encodeBody([id, ...rest]), id);
  }

  /** Frame body bytes (CBOR + CRC). */
  get size(): number {
    return this.bytes.length;
  }
}

export type BodyResult = { ok: true; message: unknown } | { ok: false; reason: "too_short" | "bad_crc" | "bad_message" };

/** Checks the CRC and decodes the CBOR message of a frame body. */
export function decodeBody(body: Uint8Array): BodyResult {
  if (body.length < CRC_SIZE + 1) return { ok: false, reason: "too_short" };
  const cborLen = body.length - CRC_SIZE;
  const cbor = body.subarray(0, cborLen);
  const want =
    (((body[cborLen] as number) << 24) |
      ((body[cborLen + 1] as number) << 16) |
      ((body[cborLen + 2] as number) << 8) |
      (body[cborLen + 3] as number)) >>>
    0;
  if (crc32Of(cbor) !== want) return { ok: false, reason: "bad_crc" };
  try {
    return { ok: true, message: decoder.decode(cbor) };
  } catch {
    return { ok: false, reason: "bad_message" };
  }
}
