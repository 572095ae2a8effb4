// Property-based tests (fast-check) of SLIP framing and of whole frame
// round trips through the host's receive path (SLIP -> CRC -> CBOR ->
// message): random bodies, random chunking of the byte stream, garbage
// between frames, corrupted bytes. The invariant under corruption is the
// one the link promises: a damaged frame is dropped, never delivered as
// something else, and the frames around it still arrive.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeBody } from "./codec.js";
import { END, ESC, ESC_END, ESC_ESC, SlipDecoder, slipEncode } from "./slip.js";
import { MemTransport } from "./testing/mem-transport.js";
import type { HostDropReason, Message } from "./transport.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// Bytes biased towards the SLIP specials so escapes are exercised.
const byte = fc.oneof(fc.constantFrom(END, ESC, ESC_END, ESC_ESC), fc.integer({ min: 0, max: 255 }));
const bytes = (maxLength: number, minLength = 0) => fc.array(byte, { minLength, maxLength }).map((a) => Uint8Array.from(a));

/** Splits `data` at random cut points (given as arbitrary naturals). */
function chunk(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  out.push(data.subarray(prev));
  return out;
}

function slipDecode(chunks: Uint8Array[], maxFrame = 1 << 16) {
  const frames: string[] = [];
  const drops: string[] = [];
  const d = new SlipDecoder(maxFrame, { frame: (f) => frames.push(hex(f)), drop: (r) => drops.push(r) });
  for (const c of chunks) d.push(c);
  return { frames, drops };
}

/** Feeds wire bytes (chunked) into a host Transport; collects messages and drops. */
function receive(chunks: Uint8Array[], maxFrame?: number) {
  const t = new MemTransport(maxFrame);
  const messages: Message[] = [];
  const drops: HostDropReason[] = [];
  t.on("message", (m) => messages.push(m));
  t.on("drop", (r) => drops.push(r));
  for (const c of chunks) t.deliverRaw(c);
  return { messages, drops, counters: t.counters };
}

// A response-shaped message with a random id and a random result.
const value = fc.oneof(fc.nat({ max: 0xffffffff }), fc.boolean(), fc.constant(null), fc.string({ maxLength: 20 }), bytes(64));
const message = fc
  .tuple(fc.nat({ max: 0xffffffff }), fc.nat({ max: 20 }), fc.array(value, { maxLength: 4 }))
  .map(([id, status, rest]) => [id, status, ...rest] as Message);

/** What a decoded message looks like after a CBOR round trip (Uint8Array -> Uint8Array, compared by bytes). */
const canon = (m: unknown) => JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes:${hex(v)}` : v));

describe("SLIP encoder (properties)", () => {
  it("frames a body as END, escaped body, END: no END or bare ESC inside, escapes counted exactly", () => {
    fc.assert(
      fc.property(bytes(300), (body) => {
        const wire = slipEncode(body);
        const specials = body.filter((b) => b === END || b === ESC).length;
        expect(wire.length).toBe(body.length + specials + 2);
        expect(wire[0]).toBe(END);
        expect(wire[wire.length - 1]).toBe(END);
        const inner = wire.subarray(1, -1);
        expect(inner.includes(END)).toBe(false);
        inner.forEach((b, i) => {
          if (b === ESC) expect([ESC_END, ESC_ESC]).toContain(inner[i + 1]);
        });
      }),
    );
  });

  it("decodes what it encodes, whatever the chunking, and ignores empty frames", () => {
    fc.assert(
      fc.property(fc.array(bytes(300, 1), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 16 }), (bodies, cuts) => {
        const wire = Buffer.concat(bodies.map((b) => slipEncode(b)));
        const got = slipDecode(chunk(wire, cuts));
        expect(got.drops).toEqual([]);
        expect(got.frames).toEqual(bodies.map(hex));
      }),
    );
  });
});

describe("SLIP decoder (properties)", () => {
  it("never throws on arbitrary bytes and never yields an empty or oversize frame", () => {
    fc.assert(
      fc.property(bytes(600), fc.integer({ min: 1, max: 64 }), fc.array(fc.nat(), { maxLength: 8 }), (data, max, cuts) => {
        const got = slipDecode(chunk(data, cuts), max);
        for (const f of got.frames) {
          expect(f.length).toBeGreaterThan(0);
          expect(f.length / 2).toBeLessThanOrEqual(max);
        }
      }),
    );
  });

  it("delivers every frame intact after arbitrary garbage between frames", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(bytes(40), bytes(200, 1)), { minLength: 1, maxLength: 6 }),
        bytes(40),
        fc.array(fc.nat(), { maxLength: 12 }),
        (pairs, tail, cuts) => {
          const wire = Buffer.concat([...pairs.flatMap(([garbage, body]) => [garbage, slipEncode(body)]), tail]);
          const got = slipDecode(chunk(wire, cuts));
          // The real frames appear in order (garbage may add frames of its own).
          let at = 0;
          for (const [, body] of pairs) {
            const i = got.frames.indexOf(hex(body), at);
            expect(i).toBeGreaterThanOrEqual(at);
            at = i + 1;
          }
        },
      ),
    );
  });

  it("drops a frame that grows past the limit as oversize and recovers at the next END", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 50 }), bytes(100, 1), (max, extra, next) => {
        const big = Uint8Array.from({ length: max + extra }, (_, i) => i & 0x7f);
        const small = next.subarray(0, max);
        const got = slipDecode([slipEncode(big), slipEncode(small)], max);
        expect(got.drops).toEqual(["oversize"]);
        expect(got.frames).toEqual([hex(small)]);
      }),
    );
  });
});

describe("frame round trips through the host receive path (properties)", () => {
  it("delivers random messages unchanged and in order, whatever the chunking", () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 10 }), fc.array(fc.nat(), { maxLength: 20 }), (msgs, cuts) => {
        const wire = Buffer.concat(msgs.map((m) => slipEncode(encodeBody(m))));
        const got = receive(chunk(wire, cuts));
        expect(got.drops).toEqual([]);
        expect(got.messages.map(canon)).toEqual(msgs.map(canon));
      }),
    );
  });

  it("drops every frame whose body was corrupted (bad CRC) and still delivers the others", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(message, fc.option(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { nil: undefined })), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (items, cuts) => {
          const wire = Buffer.concat(
            items.map(([m, damage]) => {
              const body = encodeBody(m);
              if (damage !== undefined) {
                const [pos, xor] = damage;
                body[pos % body.length] = (body[pos % body.length] as number) ^ xor; // any non-zero error pattern in one byte
              }
              return slipEncode(body);
            }),
          );
          const got = receive(chunk(wire, cuts));
          const damaged = items.filter(([, d]) => d !== undefined).length;
          expect(got.messages.map(canon)).toEqual(items.filter(([, d]) => d === undefined).map(([m]) => canon(m)));
          expect(got.drops).toEqual(Array(damaged).fill("bad_crc"));
        },
      ),
    );
  });

  it("never misdelivers when the wire itself is hit (flipped, dropped or inserted bytes): what arrives was sent", () => {
    const hit = fc.oneof(
      fc.record({ kind: fc.constant("flip" as const), pos: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant("drop" as const), pos: fc.nat(), xor: fc.constant(0) }),
      fc.record({ kind: fc.constant("insert" as const), pos: fc.nat(), xor: byte }),
    );
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 2, maxLength: 8 }),
        fc.array(hit, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (msgs, hits, cuts) => {
          const frames = msgs.map((m) => slipEncode(encodeBody(m)));
          let wire = Array.from(Buffer.concat(frames));
          for (const h of hits) {
            const p = h.pos % wire.length;
            if (h.kind === "flip") wire[p] = (wire[p] as number) ^ h.xor;
            else if (h.kind === "drop") wire.splice(p, 1);
            else wire.splice(p, 0, h.xor);
            if (wire.length === 0) wire = [END];
          }
          const got = receive(chunk(Uint8Array.from(wire), cuts));
          // Every delivered message is one that was sent, in the order sent.
          const sent = msgs.map(canon);
          let at = 0;
          for (const m of got.messages.map(canon)) {
            const i = sent.indexOf(m, at);
            expect(i, `delivered ${m}, which was not sent (or out of order)`).toBeGreaterThanOrEqual(at);
            at = i + 1;
          }
          // At most `hits` frames can be lost to them: each hit touches one
          // frame or, on an END, merges two neighbours.
          expect(got.messages.length).toBeGreaterThanOrEqual(msgs.length - 2 * hits.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
