import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { END, ESC, SlipDecoder, slipEncode } from "./slip.js";

function decodeAll(chunks: Uint8Array[], maxFrame = 1 << 16) {
  const frames: Uint8Array[] = [];
  const drops: string[] = [];
  const d = new SlipDecoder(maxFrame, { frame: (f) => frames.push(f), drop: (r) => drops.push(r) });
  for (const c of chunks) d.push(c);
  return { frames, drops };
}

function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

// Bytes biased towards the special values so escapes are exercised.
const byte = fc.oneof(fc.constantFrom(END, ESC, 0xdc, 0xdd), fc.integer({ min: 0, max: 255 }));
const body = fc.array(byte, { minLength: 1, maxLength: 300 }).map((a) => Uint8Array.from(a));

describe("slip", () => {
  it("round-trips random frames split at random points", () => {
    fc.assert(
      fc.property(fc.array(body, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, cuts) => {
        const wire = Buffer.concat(frames.map((f) => slipEncode(f)));
        const got = decodeAll(splitAt(wire, cuts));
        expect(got.drops).toEqual([]);
        expect(got.frames.map((f) => Buffer.from(f).toString("hex"))).toEqual(frames.map((f) => Buffer.from(f).toString("hex")));
      }),
    );
  });

  it("never emits END or a lone ESC inside an encoded frame", () => {
    fc.assert(
      fc.property(body, (f) => {
        const enc = slipEncode(f);
        expect(enc[0]).toBe(END);
        expect(enc[enc.length - 1]).toBe(END);
        expect(enc.subarray(1, -1).includes(END)).toBe(false);
      }),
    );
  });

  it("reports a bad escape, drops that frame and resynchronises", () => {
    fc.assert(
      fc.property(body, body, fc.integer({ min: 0, max: 255 }), fc.array(fc.nat(), { maxLength: 6 }), (a, b, bad, cuts) => {
        fc.pre(bad !== 0xdc && bad !== 0xdd && bad !== END);
        const broken = Uint8Array.from([END, 1, 2, ESC, bad, 3, END]);
        const wire = Buffer.concat([slipEncode(a), broken, slipEncode(b)]);
        const got = decodeAll(splitAt(wire, cuts));
        expect(got.drops).toEqual(["bad_escape"]);
        expect(got.frames.map((f) => Buffer.from(f).toString("hex"))).toEqual([a, b].map((f) => Buffer.from(f).toString("hex")));
      }),
    );
  });

  it("reports ESC right before END as a bad escape", () => {
    const got = decodeAll([Uint8Array.from([END, 1, ESC, END, 5, END])]);
    expect(got.drops).toEqual(["bad_escape"]);
    expect(got.frames).toEqual([Uint8Array.from([5])]);
  });

  it("reports an oversize frame once and keeps the frames around it", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (max, over, cuts) => {
          const ok = new Uint8Array(max).fill(0x11);
          const big = new Uint8Array(max + over).fill(0x22);
          const wire = Buffer.concat([slipEncode(ok), slipEncode(big), slipEncode(ok)]);
          const got = decodeAll(splitAt(wire, cuts), max);
          expect(got.drops).toEqual(["oversize"]);
          expect(got.frames.length).toBe(2);
        },
      ),
    );
  });

  it("ignores empty frames and applies a new max frame size", () => {
    const frames: Uint8Array[] = [];
    const drops: string[] = [];
    const d = new SlipDecoder(100, { frame: (f) => frames.push(f), drop: (r) => drops.push(r) });
    d.push(Uint8Array.from([END, END, END]));
    d.setMaxFrame(4);
    d.push(slipEncode(Uint8Array.from([1, 2, 3, 4, 5])));
    d.push(slipEncode(Uint8Array.from([1, 2, 3, 4])));
    expect(frames.length).toBe(1);
    expect(drops).toEqual(["oversize"]);
  });

  it("decodes a 16 KiB frame in linear time", () => {
    const big = new Uint8Array(16384).map((_, i) => i & 0xff);
    const wire = slipEncode(big);
    const t = performance.now();
    for (let i = 0; i < 20; i++) decodeAll([wire]);
    expect((performance.now() - t) / 20).toBeLessThan(5);
  });
});
