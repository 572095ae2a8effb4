// dev.hmac against Node's crypto.createHmac (OpenSSL) on random keys and
// messages, and against the python-mbedtls README's published output.
import { createHmac, randomInt } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { HASH_ALGS, Limits, Op } from "../../host/src/base/protocol.generated.js";
import { ArgumentError, type Device, hex, UnsupportedAlgorithmError, utf8 } from "../../host/src/index.js";
import { rand, randomSplit } from "./bytes.js";
import { useSession } from "./session.js";
import { bulk, SLOW_LINK } from "./target.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

const nodeHmac = (name: string, key: Uint8Array, ...parts: Uint8Array[]) => {
  const h = createHmac(name.replace("_", "-"), key);
  for (const p of parts) h.update(p);
  return h.digest("hex");
};

describe("the seed's HMAC example (python-mbedtls README)", () => {
  it("hmac.new(b'This is my secret key', digestmod='md5') over two updates", async () => {
    const m = dev.hmac.new(utf8("This is my secret key"), { digestmod: "md5" });
    m.update(utf8("Nobody inspects"));
    m.update(utf8(" the spammish repetition"));
    const d = await m.digest();
    // b'\x9d-/rj\\\x98\x80\xb1rG\x87\x0f\xe9\xe4\xeb'
    expect(Buffer.from(d).equals(Buffer.from("\x9d-/rj\\\x98\x80\xb1rG\x87\x0f\xe9\xe4\xeb", "latin1"))).toBe(true);
    expect(hex(d)).toBe("9d2d2f726a5c9880b17247870fe9e4eb");
    expect([m.name, m.digestSize, m.blockSize]).toEqual(["hmac-md5", 16, 64]);
    await m.close();
  });
});

describe("every digest equals Node's createHmac", () => {
  it.each(HASH_ALGS.map((a) => [a.name, a] as const))(
    "%s: key lengths 0, 1, block-1, block, block+1, 200 x messages 0..3 blocks and > 2 MTU, random splits",
    async (name, alg) => {
      const chunk = dev.info.mtu - Limits.requestOverheadMax;
      const b = alg.blockSize;
      const keyLens = [0, 1, b - 1, b, b + 1, 200];
      const msgLens = [0, 1, 15, 16, 17, b, 2 * b, 3 * b];
      const big = 2 * chunk + randomInt(1, 1000); // > 2 MTU
      for (const kl of keyLens) {
        // one key length at a time: at most 9 contexts live (small targets have 32 handles)
        const jobs = [];
        // on slow links only the 200-byte key also gets the large message
        const lens = SLOW_LINK && kl !== 200 ? msgLens : [...msgLens, big];
        for (const ml of lens) {
          const key = rand(kl);
          const msg = rand(ml);
          const m = dev.hmac.new(key, { digestmod: name });
          expect([m.name, m.digestSize, m.blockSize]).toEqual([`hmac-${name}`, alg.digestSize, alg.blockSize]);
          for (const part of randomSplit(msg, randomInt(1, 3 * chunk))) m.update(part);
          jobs.push({ ml, m, want: nodeHmac(name, key, msg) });
        }
        // created and fed without waiting; now collect
        for (const { ml, m, want } of jobs) {
          expect(await m.hexdigest(), `${name} key ${kl} msg ${ml}`).toBe(want);
          await m.close();
        }
      }
    },
  );

  it.each(HASH_ALGS.map((a) => a.name))("%s one-shot, below and above the MTU", async (name) => {
    for (const [kl, ml] of [
      [0, 0],
      [32, 100],
      [200, dev.info.mtu + 1000],
    ] as const) {
      const key = rand(kl);
      const data = rand(ml);
      expect(await dev.hmac.hexdigest(key, data, name)).toBe(nodeHmac(name, key, data));
    }
  });
});

describe("HMAC contexts", () => {
  it("digest() twice gives the same; update() after digest() continues the message; copy() forks", async () => {
    for (const { name } of HASH_ALGS) {
      const key = rand(randomInt(0, 300));
      const prefix = rand(randomInt(0, 3000));
      const [s1, s2, s3] = [rand(randomInt(0, bulk(40_000, 6000))), rand(randomInt(0, 5000)), rand(17)];
      const a = dev.hmac.new(key, { digestmod: name, msg: prefix });
      expect(await a.hexdigest()).toBe(nodeHmac(name, key, prefix));
      expect(await a.hexdigest()).toBe(nodeHmac(name, key, prefix));
      const b = a.copy();
      a.update(s1);
      b.update(s2);
      const c = b.copy();
      c.update(s3);
      expect(await a.hexdigest()).toBe(nodeHmac(name, key, prefix, s1));
      expect(await b.hexdigest()).toBe(nodeHmac(name, key, prefix, s2));
      expect(await c.hexdigest()).toBe(nodeHmac(name, key, prefix, s2, s3));
      a.update(s3);
      expect(await a.hexdigest(), name).toBe(nodeHmac(name, key, prefix, s1, s3));
      for (const h of [a, b, c]) await h.close();
    }
  });

  it("the key and data are copied at call time", async () => {
    const key = utf8("key bytes");
    const data = utf8("first");
    const m = dev.hmac.new(key, { digestmod: "sha256" });
    key.fill(0);
    m.update(data);
    data.fill(0x41);
    expect(await m.hexdigest()).toBe(nodeHmac("sha256", utf8("key bytes"), utf8("first")));
    await m.close();
  });
});

describe("bad arguments", () => {
  it("a missing digestmod is an ArgumentError, before anything is sent", () => {
    const sent = dev.linkCounters.txFrames;
    expect(() => dev.hmac.new(utf8("k"), {} as never)).toThrow(ArgumentError);
    expect(() => (dev.hmac.new as (k: Uint8Array) => unknown)(utf8("k"))).toThrow(ArgumentError);
    expect(dev.linkCounters.txFrames).toBe(sent);
  });
  it("an unknown digestmod is an UnsupportedAlgorithmError, locally", async () => {
    expect(() => dev.hmac.new(utf8("k"), { digestmod: "whirlpool" })).toThrow(UnsupportedAlgorithmError);
    await expect(dev.hmac.digest(utf8("k"), utf8("m"), "blake2b")).rejects.toThrow(UnsupportedAlgorithmError);
  });
  it("an algorithm id the device lacks gets the device's typed error, and the device keeps serving", async () => {
    const err = await dev.rpc.call(Op.hmacOneshot, [99, utf8("k"), utf8("m")]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedAlgorithmError);
    expect((err as UnsupportedAlgorithmError).local).toBe(false);
    expect(await dev.hmac.hexdigest(utf8("k"), utf8("m"), "sha256")).toBe(nodeHmac("sha256", utf8("k"), utf8("m")));
  });
  it("a key too large for one frame is an ArgumentError", () => {
    expect(() => dev.hmac.new(new Uint8Array(dev.hmac.maxKeySize + 1), { digestmod: "sha256" })).toThrow(ArgumentError);
  });
});
