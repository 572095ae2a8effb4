// dev.kdf.pbkdf2 against RFC 6070's PBKDF2-HMAC-SHA1 vectors and Node's
// crypto.pbkdf2Sync (OpenSSL) with SHA-256, SHA-512 and every other digest
// on random inputs; a long run stays alive through busy events.
import { pbkdf2Sync, randomInt } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { HASH_ALGS, Limits, Op } from "../../host/src/base/protocol.generated.js";
import { ArgumentError, BadArgumentError, type BusyInfo, type Device, hex, UnsupportedAlgorithmError, utf8 } from "../../host/src/index.js";
import { rand } from "./bytes.js";
import { useSession } from "./session.js";
import { bulk, SLOW_LINK } from "./target.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

const node = (hash: string, pw: Uint8Array, salt: Uint8Array, c: number, len: number) =>
  pbkdf2Sync(pw, salt, c, len, hash.replace("_", "-")).toString("hex");

/** RFC 6070 section 2 (PBKDF2-HMAC-SHA1). */
const RFC6070 = [
  { p: "password", s: "salt", c: 1, len: 20, dk: "0c60c80f961f0e71f3a9b524af6012062fe037a6" },
  { p: "password", s: "salt", c: 2, len: 20, dk: "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957" },
  { p: "password", s: "salt", c: 4096, len: 20, dk: "4b007901b765489abead49d926f721d065a429c1" },
  { p: "password", s: "salt", c: 16777216, len: 20, dk: "eefe3d61cd4da4e4e9945b3d6ba2158c2634e984" },
  {
    p: "passwordPASSWORDpassword",
    s: "saltSALTsaltSALTsaltSALTsaltSALTsalt",
    c: 4096,
    len: 25,
    dk: "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
  },
  { p: "pass\0word", s: "sa\0lt", c: 4096, len: 16, dk: "56fa6aa75548099dcc37d7f03425e0c3" },
];

describe("RFC 6070 (PBKDF2-HMAC-SHA1)", () => {
  // The 16,777,216-iteration vector (tens of seconds natively, far longer on
  // the emulated M4) is the next test's, sized per target.
  const vectors = RFC6070.filter((v) => v.c < 1_000_000);
  it.each(vectors.map((v) => [`c=${v.c} dkLen=${v.len} P=${JSON.stringify(v.p)}`, v] as const))("%s", async (_, v) => {
    const dk = await dev.kdf.pbkdf2("sha1", utf8(v.p), utf8(v.s), v.c, v.len);
    expect(hex(dk)).toBe(v.dk);
  });

  // natively RFC 6070's own 16,777,216 count; the QEMU pass checks 100,000 against Node instead
  it(`the long count: ${bulk(16_777_216, 100_000)} iterations, kept alive by busy events`, async () => {
    const c = bulk(16_777_216, 100_000);
    const [pw, salt] = [utf8("password"), utf8("salt")];
    const dk = await dev.kdf.pbkdf2("sha1", pw, salt, c, 20, { timeoutMs: 2000 }); // natively seconds: busy events keep it alive
    expect(hex(dk)).toBe(c === 16_777_216 ? "eefe3d61cd4da4e4e9945b3d6ba2158c2634e984" : node("sha1", pw, salt, c, 20));
  });
});

describe("equal to Node's pbkdf2Sync", () => {
  it.each(["sha256", "sha512"])("%s: random passwords, salts, counts and lengths (several output blocks)", async (hash) => {
    const size = hash === "sha256" ? 32 : 64;
    const lens = [0, 1, size - 1, size, size + 1, 3 * size + 5, randomInt(1, 200)];
    for (const len of lens) {
      const pw = rand(randomInt(0, 200)); // longer than a block: hashed first
      const salt = rand(randomInt(0, 64));
      const c = randomInt(1, bulk(3000, 300));
      expect(hex(await dev.kdf.pbkdf2(hash, pw, salt, c, len)), `len ${len} c ${c}`).toBe(node(hash, pw, salt, c, len));
    }
  });

  it("every digest the device has, the longest output it gives", async () => {
    for (const { name } of HASH_ALGS) {
      const pw = rand(randomInt(0, 100));
      const salt = rand(16);
      const len = name === "sha512" ? dev.kdf.maxLength : randomInt(1, 100);
      const c = bulk(100, 10);
      expect(hex(await dev.kdf.pbkdf2(name, pw, salt, c, len)), name).toBe(node(name, pw, salt, c, len));
    }
  });
});

describe("long runs", () => {
  it("a run much longer than its timeout completes: busy events re-arm it", async () => {
    const busy: BusyInfo[] = [];
    const onBusy = (b: BusyInfo) => busy.push(b);
    dev.on("busy", onBusy);
    try {
      const timeoutMs = 1500;
      // seconds on either target: 1,000,000 SHA-256 iterations take about 7 s on the emulated M4
      // and 0.7 s natively, which gets five times as many
      const c = bulk(5_000_000, 1_000_000);
      const [pw, salt] = [rand(12), rand(16)];
      const t0 = performance.now();
      const dk = await dev.kdf.pbkdf2("sha256", pw, salt, c, 32, { timeoutMs });
      const elapsed = performance.now() - t0;
      expect(hex(dk)).toBe(node("sha256", pw, salt, c, 32));
      const events = busy.filter((b) => b.op === "kdf_pbkdf2").length;
      // An event about every busy_interval_ms of the device's clock after the first. QEMU's emulated
      // SysTick loses ticks while the host is loaded (its clock then runs slow against the host's), so
      // there the bound is what the call's survival needs: an event within every timeoutMs.
      const interval = SLOW_LINK ? timeoutMs : Limits.busyIntervalMs;
      expect(events).toBeGreaterThanOrEqual(Math.floor(elapsed / interval) - (SLOW_LINK ? 1 : 2));
      if (elapsed > timeoutMs) expect(events).toBeGreaterThanOrEqual(1);
    } finally {
      dev.off("busy", onBusy);
    }
  });
});

describe("bad arguments", () => {
  it("zero, fractional or too many iterations, a negative or too long length: ArgumentError before anything is sent", async () => {
    const sent = dev.linkCounters.txFrames;
    const pw = utf8("pw");
    const salt = utf8("salt");
    for (const [c, len] of [
      [0, 32],
      [-1, 32],
      [1.5, 32],
      [Limits.pbkdf2IterationsMax + 1, 32],
      [1, -1],
      [1, Limits.pbkdf2LengthMax + 1],
      [1, 2 ** 32],
    ]) {
      await expect(dev.kdf.pbkdf2("sha256", pw, salt, c as number, len as number), `c ${c} len ${len}`).rejects.toThrow(ArgumentError);
    }
    await expect(dev.kdf.pbkdf2("whirlpool", pw, salt, 1, 32)).rejects.toThrow(UnsupportedAlgorithmError);
    await expect(dev.kdf.pbkdf2("sha256", "pw" as never, salt, 1, 32)).rejects.toThrow(ArgumentError);
    await expect(dev.kdf.pbkdf2("sha256", rand(dev.info.mtu), salt, 1, 32)).rejects.toThrow(ArgumentError);
    expect(dev.linkCounters.txFrames).toBe(sent);
  });

  it("the device's own checks: typed errors, and it keeps serving", async () => {
    const call = (args: unknown[]) => dev.rpc.call(Op.kdfPbkdf2, args).catch((e: unknown) => e);
    const [pw, salt] = [utf8("pw"), utf8("salt")];
    expect(await call([4, pw, salt, 0, 32])).toBeInstanceOf(BadArgumentError);
    expect(await call([4, pw, salt, Limits.pbkdf2IterationsMax + 1, 32])).toBeInstanceOf(BadArgumentError);
    expect(await call([4, pw, salt, 1, Limits.pbkdf2LengthMax + 1])).toBeInstanceOf(BadArgumentError);
    expect(await call([4, pw, salt, 1, 2n ** 40n])).toBeInstanceOf(BadArgumentError); // a uint64 on the wire
    const err = await call([99, pw, salt, 1, 32]);
    expect(err).toBeInstanceOf(UnsupportedAlgorithmError);
    expect((err as UnsupportedAlgorithmError).local).toBe(false);
    expect(hex(await dev.kdf.pbkdf2("sha256", pw, salt, 10, 40))).toBe(node("sha256", pw, salt, 10, 40));
  });
});
