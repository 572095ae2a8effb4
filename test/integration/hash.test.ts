// dev.hash against Node's crypto (OpenSSL) on random inputs, and against the
// python-mbedtls README's published outputs, on the target under test.
import { createHash, randomInt } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { HASH_ALGS, Limits, Op } from "../../host/src/base/protocol.generated.js";
import { type Device, hex, UnsupportedAlgorithmError, utf8 } from "../../host/src/index.js";
import { rand, randomSplit } from "./bytes.js";
import { useSession } from "./session.js";
import { bulk } from "./target.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

const nodeName = (name: string) => name.replace("_", "-");
const nodeDigest = (name: string, ...parts: Uint8Array[]) => {
  const h = createHash(nodeName(name));
  for (const p of parts) h.update(p);
  return h.digest("hex");
};

describe("the seed's hash examples (python-mbedtls README)", () => {
  it("md5 with two updates, digest size and block size", async () => {
    const m = dev.hash.md5();
    m.update(utf8("Nobody inspects"));
    m.update(utf8(" the spammish repetition"));
    expect(hex(await m.digest())).toBe("bb649c83dd1ea5c9d9dec9a18df0ffe9");
    expect([m.digestSize, m.blockSize]).toEqual([16, 64]);
    await m.close();
  });
  it("sha224 condensed", async () => {
    const h = dev.hash.sha224(utf8("Nobody inspects the spammish repetition"));
    expect(await h.hexdigest()).toBe("a4337bc45a8fc544c03f52dc550cd6e1e87021bc896588bd79e901e2");
    await h.close();
  });
  it("new('ripemd160')", async () => {
    const h = dev.hash.new("ripemd160");
    h.update(utf8("Nobody inspects the spammish repetition"));
    expect(await h.hexdigest()).toBe("cc4a5ce1b3df48aec5d22d1f16b894a0b894eccc");
    await h.close();
  });
});

describe("every digest equals Node's crypto", () => {
  it("the device offers every digest of the protocol table", () => {
    expect([...dev.hash.algorithmsAvailable].sort()).toEqual(HASH_ALGS.map((a) => a.name).sort());
  });

  it.each(HASH_ALGS.map((a) => [a.name, a] as const))(
    "%s: sizes 0..2 MiB around block and MTU boundaries, random update splits",
    async (name, alg) => {
      const chunk = dev.info.mtu - Limits.requestOverheadMax;
      const sizes = new Set<number>([0, 1, 2, 3]);
      for (const b of [alg.blockSize, 2 * alg.blockSize, chunk, dev.info.mtu, 2 * chunk]) for (const d of [-1, 0, 1]) sizes.add(b + d);
      sizes.add(alg.blockSize - 9); // MD padding boundary (length field no longer fits)
      const max = bulk(2 * 1024 * 1024, 48 * 1024);
      for (let i = 0; i < 3; i++) sizes.add(randomInt(1, max));
      sizes.add(max);
      const hashes = [...sizes].map((n) => {
        const data = rand(n);
        const h = dev.hash.new(name);
        expect([h.name, h.digestSize, h.blockSize]).toEqual([name, alg.digestSize, alg.blockSize]);
        for (const part of randomSplit(data, randomInt(1, 3 * chunk))) h.update(part);
        return { n, h, want: nodeDigest(name, data) };
      });
      // all contexts were created and fed without waiting; now collect
      for (const { n, h, want } of hashes) {
        expect(await h.hexdigest(), `${name} of ${n} bytes`).toBe(want);
        await h.close();
      }
    },
  );

  it.each(HASH_ALGS.map((a) => a.name))("%s one-shot, below and above the MTU", async (name) => {
    for (const n of [0, 100, dev.info.mtu + 1000]) {
      const data = rand(n);
      expect(await dev.hash.hexdigest(name, data)).toBe(nodeDigest(name, data));
    }
  });
});

describe("digest contexts", () => {
  it("copy() forks the state; digest() is repeatable and leaves the state as it was", async () => {
    for (const { name } of HASH_ALGS) {
      const prefix = rand(randomInt(0, 3000));
      const [s1, s2, s3] = [rand(randomInt(0, bulk(40_000, 6000))), rand(randomInt(0, 5000)), rand(17)];
      const a = dev.hash.new(name, prefix);
      const b = a.copy();
      a.update(s1);
      b.update(s2);
      const c = b.copy();
      c.update(s3);
      expect(await a.hexdigest()).toBe(nodeDigest(name, prefix, s1));
      expect(await a.hexdigest()).toBe(nodeDigest(name, prefix, s1));
      expect(await b.hexdigest()).toBe(nodeDigest(name, prefix, s2));
      expect(await c.hexdigest()).toBe(nodeDigest(name, prefix, s2, s3));
      a.update(s3);
      expect(await a.hexdigest(), name).toBe(nodeDigest(name, prefix, s1, s3));
      for (const h of [a, b, c]) await h.close();
    }
  });

  it("16 MiB (256 KiB on slow links) streamed through sha256 matches", async () => {
    const total = bulk(16 * 1024 * 1024, 256 * 1024);
    const node = createHash("sha256");
    const h = dev.hash.sha256();
    let left = total;
    while (left > 0) {
      const part = rand(Math.min(left, randomInt(1, bulk(1024 * 1024, 64 * 1024))));
      node.update(part);
      h.update(part);
      left -= part.length;
    }
    expect(await h.hexdigest()).toBe(node.digest("hex"));
    await h.close();
  });

  it("update() copies the caller's bytes at call time", async () => {
    const buf = utf8("first");
    const h = dev.hash.sha1();
    h.update(buf);
    buf.fill(0x41);
    expect(await h.hexdigest()).toBe(nodeDigest("sha1", utf8("first")));
    await h.close();
  });
});

describe("bad algorithm names", () => {
  it("an unknown name fails locally, without a round trip", () => {
    const sent = dev.linkCounters.txFrames;
    expect(() => dev.hash.new("whirlpool")).toThrow(UnsupportedAlgorithmError);
    expect(dev.linkCounters.txFrames).toBe(sent);
  });
  it("an algorithm id the device does not have gets the device's typed error, and the device keeps serving", async () => {
    const err = await dev.rpc.call(Op.hashOneshot, [99, new Uint8Array(0)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedAlgorithmError);
    expect((err as UnsupportedAlgorithmError).local).toBe(false);
    expect((err as UnsupportedAlgorithmError).message).toBe("hash algorithm 99 is not supported");
    expect(await dev.hash.hexdigest("sha256", utf8("abc"))).toBe(nodeDigest("sha256", utf8("abc")));
  });
});
