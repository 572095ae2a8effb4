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
  const cbor = encoder.encode(message) as Uint8Array;
  const n = cbor.length;
  const body = new Uint8Array(n + CRC_SIZE);
  body.set(cbor);
  const crc = crc32Of(cbor);
  body[n] = crc >>> 24;
  body[n + 1] = (crc >>> 16) & 0xff;
  body[n + 2] = (crc >>> 8) & 0xff;
  body[n + 3] = crc & 0xff;
  return body;
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
