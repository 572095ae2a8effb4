// Property-based tests (fast-check) of the frame-body codec: CBOR message +
// big-endian CRC-32. References: RFC 8949's preferred serialisation for
// integer heads (written out here from the RFC, not from cbor-x) and an
// independent bitwise CRC-32 (IEEE 802.3, reflected) instead of zlib's.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CRC_SIZE, decodeBody, encodeBody, RequestBody } from "./codec.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** CRC-32 bit by bit, straight from the polynomial (0xEDB88320 reflected). */
function crc32Bitwise(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of data) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** RFC 8949 section 4.2.1: the shortest head for major type `major` and argument `n`. */
function preferredHead(major: number, n: number): string {
  const m = major << 5;
  if (n < 24) return (m | n).toString(16).padStart(2, "0");
  if (n < 0x100) return `${(m | 24).toString(16)}${n.toString(16).padStart(2, "0")}`;
  if (n < 0x10000) return `${(m | 25).toString(16)}${n.toString(16).padStart(4, "0")}`;
  return `${(m | 26).toString(16)}${n.toString(16).padStart(8, "0")}`;
}

// Values a message may carry: the protocol's CBOR subset.
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.nat({ max: 0xffffffff }),
    fc.integer({ min: -0x80000000, max: -1 }),
    fc.boolean(),
    fc.constant(null),
    fc.string({ maxLength: 40 }),
    fc.uint8Array({ maxLength: 100 }),
    fc.array(tie("tree"), { maxLength: 4 }),
    fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), tie("tree"), { maxKeys: 4 }),
  ),
}));
const message = fc
  .tuple(fc.nat({ max: 0xffffffff }), fc.nat({ max: 255 }), fc.array(tree, { maxLength: 5 }))
  .map(([id, op, args]) => [id, op, ...args]);

const plain = (v: unknown): unknown => {
  if (v instanceof Uint8Array) return { bytes: hex(v) };
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
};

describe("frame body codec (properties)", () => {
  it("round-trips messages: decodeBody(encodeBody(m)) is m, byte strings stay byte strings", () => {
    fc.assert(
      fc.property(message, (m) => {
        const r = decodeBody(encodeBody(m));
        expect(r.ok).toBe(true);
        if (r.ok) expect(plain(r.message)).toEqual(plain(m));
      }),
    );
  });

  it("appends the CRC-32 of the CBOR, big-endian, as an independent CRC computes it", () => {
    fc.assert(
      fc.property(message, (m) => {
        const body = encodeBody(m);
        const cbor = body.subarray(0, body.length - CRC_SIZE);
        const crc = Buffer.from(body.subarray(body.length - CRC_SIZE)).readUInt32BE(0);
        expect(crc).toBe(crc32Bitwise(cbor));
      }),
    );
  });

  it("writes request ids and ops with the preferred (shortest) integer head", () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffff }), fc.uint8Array({ maxLength: 300 }), (id, op, data) => {
        const body = encodeBody([id, op, data]);
        const expected = `83${preferredHead(0, id)}${preferredHead(0, op)}${preferredHead(2, data.length)}${hex(data)}`;
        expect(hex(body.subarray(0, body.length - CRC_SIZE))).toBe(expected);
      }),
    );
  });

  it("a request encoded once is byte for byte encodeBody of the message", () => {
    fc.assert(
      fc.property(message, (m) => {
        const [first, ...rest] = m as [number, ...unknown[]];
        const req = RequestBody.encode(first, rest);
        expect([req.id, hex(req.bytes)]).toEqual([first, hex(encodeBody(m))]);
        expect(req.size).toBe(req.bytes.length);
      }),
    );
  });

  it("rejects any single corrupted byte as bad_crc (CRC-32 catches every error burst up to 32 bits)", () => {
    fc.assert(
      fc.property(message, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, pos, xor) => {
        const body = encodeBody(m);
        const i = pos % body.length;
        body[i] = (body[i] as number) ^ xor;
        expect(decodeBody(body)).toEqual({ ok: false, reason: "bad_crc" });
      }),
    );
  });

  it("never throws on arbitrary bodies: too_short below 5 bytes, else a verdict", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (body) => {
        const r = decodeBody(body);
        if (body.length < CRC_SIZE + 1) expect(r).toEqual({ ok: false, reason: "too_short" });
        else if (!r.ok) expect(["bad_crc", "bad_message"]).toContain(r.reason);
      }),
    );
  });

  it("reports truncated or garbage CBOR under a valid CRC as bad_message, never as a message", () => {
    fc.assert(
      fc.property(message, fc.nat(), (m, cut) => {
        const full = encodeBody(m);
        const cbor = full.subarray(0, full.length - CRC_SIZE);
        if (cbor.length < 2) return;
        const part = cbor.subarray(0, 1 + (cut % (cbor.length - 1))); // a strict, non-empty prefix
        const body = new Uint8Array(part.length + CRC_SIZE);
        body.set(part);
        new DataView(body.buffer).setUint32(part.length, crc32Bitwise(part));
        expect(decodeBody(body)).toEqual({ ok: false, reason: "bad_message" });
      }),
    );
  });
});
