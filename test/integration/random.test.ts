// dev.random: the device CTR_DRBG through Python-secrets-style helpers. These
// are sanity checks (no repeats, every byte value, loose chi-square), not a
// statistical test suite.
import { beforeAll, describe, expect, it } from "vitest";
import { Limits, Op } from "../../host/src/base/protocol.generated.js";
import { ArgumentError, BadArgumentError, type Device } from "../../host/src/index.js";
import { useSession } from "./session.js";
import { bulk } from "./target.js";

const session = useSession();
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

describe("randbytes", () => {
  it("sizes 0, 1, one chunk, and above the MTU (split into pipelined requests)", async () => {
    for (const n of [0, 1, dev.chunkSize, dev.info.mtu + 1, 3 * dev.chunkSize + 7]) {
      const b = await dev.random.randbytes(n);
      expect(b).toBeInstanceOf(Uint8Array);
      expect(b.length).toBe(n);
    }
    const big = await dev.random.randbytes(2 * dev.chunkSize);
    const [a, b] = [big.subarray(0, dev.chunkSize), big.subarray(dev.chunkSize)];
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it("bad counts fail locally", async () => {
    await expect(dev.random.randbytes(-1)).rejects.toThrow(ArgumentError);
    await expect(dev.random.randbytes(1.5)).rejects.toThrow(ArgumentError);
  });

  it("no repeats among 32-byte draws (1 MiB native), every byte value present, loose chi-square", async () => {
    const draws = bulk(32768, 1024);
    const tokens = await Promise.all(Array.from({ length: draws }, () => dev.random.tokenBytes()));
    const seen = new Set(tokens.map((t) => Buffer.from(t).toString("hex")));
    expect(seen.size).toBe(draws);
    const counts = new Array<number>(256).fill(0);
    for (const t of tokens) {
      expect(t.length).toBe(32);
      for (const byte of t) counts[byte] = (counts[byte] as number) + 1;
    }
    expect(counts.every((c) => c > 0)).toBe(true);
    const expected = (32 * draws) / 256;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    // 255 degrees of freedom: mean 255, sd about 22.6; 400 is beyond 6 sd
    expect(chi2).toBeLessThan(400);
    expect(chi2).toBeGreaterThan(130);
  });
});

describe("tokens", () => {
  it("tokenHex: 2n lower-case hex digits, 32 bytes by default", async () => {
    expect(await dev.random.tokenHex()).toMatch(/^[0-9a-f]{64}$/);
    expect(await dev.random.tokenHex(16)).toMatch(/^[0-9a-f]{32}$/);
    expect(await dev.random.tokenHex(0)).toBe("");
  });
  it("tokenUrlsafe: base64url without padding, 32 bytes by default", async () => {
    expect(await dev.random.tokenUrlsafe()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const n of [1, 2, 3, 16, 100]) {
      const t = await dev.random.tokenUrlsafe(n);
      expect(t).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(t.length).toBe(Math.ceil((4 * n) / 3));
      expect(Buffer.from(t, "base64url").length).toBe(n);
    }
  });
  it("tokenBytes: 32 bytes by default", async () => {
    expect((await dev.random.tokenBytes()).length).toBe(32);
    expect((await dev.random.tokenBytes(5)).length).toBe(5);
  });
});

describe("randbelow, randbits and choice", () => {
  it("randbelow stays in [0, n) and returns the type it was given", async () => {
    expect(await dev.random.randbelow(1)).toBe(0);
    expect(await dev.random.randbelow(1n)).toBe(0n);
    for (const n of [2, 3, 7, 255, 256, 257, 1000, 2 ** 40 + 1, Number.MAX_SAFE_INTEGER]) {
      const r = await dev.random.randbelow(n);
      expect(typeof r).toBe("number");
      expect(Number.isSafeInteger(r) && r >= 0 && r < n, `${r} < ${n}`).toBe(true);
    }
    const big = 2n ** 521n - 1n;
    for (let i = 0; i < 20; i++) {
      const r = await dev.random.randbelow(big);
      expect(typeof r).toBe("bigint");
      expect(r >= 0n && r < big).toBe(true);
    }
  });

  it("randbelow is roughly uniform (n = 3 exercises rejection, n = 10 too)", async () => {
    for (const [n, draws] of [
      [3, bulk(3000, 600)],
      [10, bulk(5000, 1000)],
    ] as const) {
      const counts = new Array<number>(n).fill(0);
      const rs = await Promise.all(Array.from({ length: draws }, () => dev.random.randbelow(n)));
      for (const r of rs) counts[r] = (counts[r] as number) + 1;
      const expected = draws / n;
      const sd = Math.sqrt(draws * (1 / n) * (1 - 1 / n));
      for (const c of counts) expect(Math.abs(c - expected), `counts ${counts}`).toBeLessThan(6 * sd);
    }
  });

  it("randbelow rejects non-positive and non-integer bounds", async () => {
    await expect(dev.random.randbelow(0)).rejects.toThrow(ArgumentError);
    await expect(dev.random.randbelow(-5n)).rejects.toThrow(ArgumentError);
    await expect(dev.random.randbelow(2.5)).rejects.toThrow(ArgumentError);
    await expect(dev.random.randbelow(2 ** 60)).rejects.toThrow(ArgumentError); // not a safe integer: use a bigint
  });

  it("randbits gives k-bit bigints", async () => {
    expect(await dev.random.randbits(0)).toBe(0n);
    let max = 0n;
    for (let i = 0; i < 64; i++) {
      const r = await dev.random.randbits(13);
      expect(r >= 0n && r < 2n ** 13n).toBe(true);
      if (r > max) max = r;
    }
    expect(max >= 2n ** 11n).toBe(true); // top bits do get set (fails with probability 2^-64)
  });

  it("choice picks elements of arrays and strings; an empty sequence is an ArgumentError", async () => {
    const items = ["a", "b", "c", "d"];
    const picked = new Set<string>();
    for (let i = 0; i < 64; i++) picked.add(await dev.random.choice(items));
    expect([...picked].sort()).toEqual(items);
    expect("xyz").toContain(await dev.random.choice("xyz"));
    await expect(dev.random.choice([])).rejects.toThrow(ArgumentError);
  });
});

describe("reseed", () => {
  it("mixes host bytes in (any length, split at rng_reseed_max) and the DRBG keeps going", async () => {
    const before = await dev.random.randbytes(32);
    await dev.random.reseed(new Uint8Array(0));
    await dev.random.reseed(new Uint8Array(32).fill(7));
    await dev.random.reseed(new Uint8Array(3 * Limits.rngReseedMax + 1).fill(9));
    const after = await dev.random.randbytes(32);
    expect(Buffer.from(before).equals(Buffer.from(after))).toBe(false);
  });
  it("the device refuses more than rng_reseed_max bytes in one request, and keeps serving", async () => {
    const err = await dev.rpc.call(Op.rngReseed, [new Uint8Array(Limits.rngReseedMax + 1)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadArgumentError);
    expect((await dev.random.randbytes(8)).length).toBe(8);
  });
  it("reseed takes bytes only", async () => {
    await expect(dev.random.reseed("seed" as unknown as Uint8Array)).rejects.toThrow(ArgumentError);
  });
});
