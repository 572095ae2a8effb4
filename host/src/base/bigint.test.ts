// bigint <-> big-endian bytes, checked against Node's Buffer integer codecs
// and hex round trips of random numbers.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { bigArg, bitLength, byteLength, fromBytes, toBytes } from "./bigint.js";
import { ArgumentError } from "./errors.js";
import { hex } from "./util.js";

describe("toBytes / fromBytes", () => {
  it("agree with Buffer's 48-bit big-endian codec", () => {
    for (let i = 0; i < 200; i++) {
      const b = randomBytes(6);
      const n = b.readUIntBE(0, 6);
      expect(fromBytes(new Uint8Array(b))).toBe(BigInt(n));
      expect(hex(toBytes(BigInt(n), 6))).toBe(b.toString("hex"));
    }
  });

  it("round-trip random numbers of up to 600 bytes, shortest form without leading zeros", () => {
    for (const len of [1, 2, 31, 32, 33, 64, 128, 512, 600]) {
      const b = new Uint8Array(randomBytes(len));
      b[0] = (b[0] as number) | 1;
      const n = fromBytes(b);
      expect(n.toString(16).padStart(2 * len, "0")).toBe(hex(b));
      expect(hex(toBytes(n))).toBe(hex(b));
      expect(hex(toBytes(n, len + 3))).toBe(`000000${hex(b)}`);
      expect(byteLength(n)).toBe(len);
    }
  });

  it("handles zero and leading zero bytes", () => {
    expect(hex(toBytes(0n))).toBe("00");
    expect(hex(toBytes(0n, 4))).toBe("00000000");
    expect(toBytes(0n, 0).length).toBe(0);
    expect(fromBytes(new Uint8Array(0))).toBe(0n);
    expect(fromBytes(new Uint8Array([0, 0, 1, 0]))).toBe(256n);
    expect(hex(toBytes(256n))).toBe("0100");
  });

  it("bitLength / byteLength match Python's int.bit_length", () => {
    expect([0n, 1n, 2n, 255n, 256n, (1n << 521n) - 1n].map(bitLength)).toEqual([0, 1, 2, 8, 9, 521]);
    expect([0n, 1n, 255n, 256n, (1n << 521n) - 1n].map(byteLength)).toEqual([0, 1, 1, 2, 66]);
  });

  it("rejects negatives, non-bigints and a length too short", () => {
    expect(() => toBytes(-1n)).toThrow(ArgumentError);
    expect(() => toBytes(1 as unknown as bigint)).toThrow(ArgumentError);
    expect(() => toBytes(65536n, 1)).toThrow(ArgumentError);
    expect(() => toBytes(1n, -1)).toThrow(ArgumentError);
    expect(() => fromBytes([1, 2] as unknown as Uint8Array)).toThrow(ArgumentError);
    expect(() => bitLength(-5n)).toThrow(ArgumentError);
  });

  it("bigArg takes bigints, safe integers and bytes", () => {
    expect(hex(bigArg(0x1234n, "x"))).toBe("1234");
    expect(hex(bigArg(2, "x"))).toBe("02");
    expect(hex(bigArg(new Uint8Array([0, 7]), "x"))).toBe("0007");
    expect(() => bigArg(-1n, "x")).toThrow(ArgumentError);
    expect(() => bigArg(1.5, "x")).toThrow(ArgumentError);
    expect(() => bigArg("12", "x")).toThrow(ArgumentError);
  });
});
