// dev.mpi: primes and random big numbers drawn on the device. Primality is
// checked by Node's crypto.checkPrimeSync (OpenSSL's BN_check_prime), sizes
// and ranges exactly; bad sizes are typed errors and the device keeps
// serving.
import { checkPrimeSync } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Limits, Op } from "../../host/src/base/protocol.generated.js";
import { ArgumentError, BadArgumentError, type BusyInfo, type Device, fromBytes, toBytes } from "../../host/src/index.js";
import { useSession } from "./session.js";
import { bulk, SLOW_LINK } from "./target.js";

const session = useSession();
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

const isPrime = (n: bigint) => checkPrimeSync(n, { checks: 32 });

describe("prime(bytes)", () => {
  it.each([1, 2, 16, 64, 128])("%i bytes: a prime of exactly that many bytes (top bit set)", async (n) => {
    const p = await dev.mpi.prime(n);
    expect(isPrime(p)).toBe(true);
    expect(p >> BigInt(8 * n - 1)).toBe(1n);
    expect(toBytes(p).length).toBe(n);
  });

  it("draws a new prime each time", async () => {
    const [a, b] = await Promise.all([dev.mpi.prime(16), dev.mpi.prime(16)]);
    expect(a).not.toBe(b);
  });

  it("safe: (p - 1) / 2 is prime too", async () => {
    const p = await dev.mpi.prime(16, { safe: true });
    expect(isPrime(p)).toBe(true);
    expect(isPrime((p - 1n) / 2n)).toBe(true);
    expect(p >> 127n).toBe(1n);
  });

  it("lowErr: still a prime of the asked size", async () => {
    const p = await dev.mpi.prime(32, { lowErr: true });
    expect(isPrime(p)).toBe(true);
    expect(p >> 255n).toBe(1n);
  });

  it("a search longer than its timeout completes: the device's busy events re-arm it", async () => {
    const busy: BusyInfo[] = [];
    const onBusy = (b: BusyInfo) => busy.push(b);
    dev.on("busy", onBusy);
    try {
      // four busy intervals (busy_interval_ms) on slow links, where a loaded host can delay an event by one
      const timeoutMs = SLOW_LINK ? 2000 : 1000;
      const t0 = performance.now();
      // a safe prime takes seconds: 128 bytes natively, 48 bytes on the slower emulated M4
      const n = bulk(128, 48);
      const p = await dev.mpi.prime(n, { safe: true, timeoutMs });
      const elapsed = performance.now() - t0;
      expect(isPrime(p) && isPrime((p - 1n) / 2n)).toBe(true);
      expect(p >> BigInt(8 * n - 1)).toBe(1n);
      // every silence was shorter than the timeout; a long search was kept alive by busy events
      if (elapsed > timeoutMs) expect(busy.filter((b) => b.op === "mpi_prime").length).toBeGreaterThanOrEqual(1);
    } finally {
      dev.off("busy", onBusy);
    }
  });

  it("sizes 0 and above mpi_bytes_max are BadArgumentError; the device keeps serving", async () => {
    await expect(dev.mpi.prime(0)).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.mpi.prime(Limits.mpiBytesMax + 1)).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.mpi.prime(-1)).rejects.toBeInstanceOf(ArgumentError);
    await expect(dev.mpi.prime(1.5)).rejects.toBeInstanceOf(ArgumentError);
    expect(isPrime(await dev.mpi.prime(8))).toBe(true);
  });
});

describe("random(min, max)", () => {
  it("stays in [min, max) and reaches every value of a small range", async () => {
    const draws = await Promise.all(Array.from({ length: 200 }, () => dev.mpi.random(3, 13)));
    for (const v of draws) expect(v >= 3n && v < 13n, String(v)).toBe(true);
    expect(new Set(draws).size).toBe(10);
  });

  it("covers big ranges: 512-byte max, a min above 2^64, min = max - 1", async () => {
    const max = (1n << BigInt(8 * Limits.mpiBytesMax)) - 1n;
    const a = await dev.mpi.random(0n, max);
    const b = await dev.mpi.random(0n, max);
    expect(a < max && b < max).toBe(true);
    expect(a).not.toBe(b);
    // 512 random bytes: the top byte is zero with probability 1/256 only
    expect(a.toString(2).length + b.toString(2).length).toBeGreaterThan(2 * (8 * Limits.mpiBytesMax - 16));
    const lo = (1n << 64n) + 12345n;
    const v = await dev.mpi.random(lo, lo + (1n << 70n));
    expect(v >= lo && v < lo + (1n << 70n)).toBe(true);
    expect(await dev.mpi.random(41n, 42n)).toBe(41n);
    const big = (1n << 100n) + 7n;
    expect(await dev.mpi.random(big, big + 1n)).toBe(big);
  });

  it("an empty range or a max above mpi_bytes_max is BadArgumentError; the device keeps serving", async () => {
    await expect(dev.mpi.random(5, 5)).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.mpi.random(9, 2)).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.mpi.random(0n, 1n << BigInt(8 * Limits.mpiBytesMax))).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.mpi.random(-1, 5)).rejects.toBeInstanceOf(ArgumentError);
    // the wire itself: an empty max
    await expect(dev.rpc.call(Op.mpiRandom, [0, new Uint8Array(0)])).rejects.toBeInstanceOf(BadArgumentError);
    // leading zero bytes in max are allowed (no minimal form required)
    const r = await dev.rpc.call(Op.mpiRandom, [0, new Uint8Array([0, 0, 0, 4])]);
    expect(r).toBeInstanceOf(Uint8Array);
    expect(fromBytes(r as Uint8Array) < 4n).toBe(true);
    const v = await dev.mpi.random(0, 1000);
    expect(v >= 0n && v < 1000n).toBe(true);
  });
});
