// Natural code never runs out of handles (issue 14): loops that make a
// device object per iteration and never close() it, and more objects alive at
// once than the device's handle table holds, all give Node's results, and the
// device ends at its handle and heap baseline. The SDK does it with lazy
// one-shots (a digest of little data holds no context) and residency (idle
// objects are swapped out to wrapped blobs, session/residency.ts). Nothing
// here forces a garbage collection; what is left at the end is freed by
// close() only. The cost (one-shot against the old context path, swaps per
// round) is printed.
import { createCipheriv, createHash, createHmac, generateKeyPairSync, randomInt, verify } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Op } from "../../host/src/base/protocol.generated.js";
import { type AEADCipher, type Cipher, type Device, type Hash, type Hmac, hex } from "../../host/src/index.js";
import { rand } from "./bytes.js";
import { useSession } from "./session.js";
import { bulk } from "./target.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

/**
 * Iterations of each form: 10,000 natively. On QEMU a round trip costs 8 to
 * 11 ms (a one-shot hash 9 ms, AES-CBC + AES-GCM encrypt and decrypt 33 ms,
 * ECDSA import + sign 43 ms), so 10,000 of each would take about 25 minutes,
 * more than all of npm test may: 500 (250 ECDSA imports), still 15 times
 * the 32-handle table, keep the file near a minute. MBEDLINK_PRESSURE_ITERATIONS
 * and MBEDLINK_PRESSURE_ECDSA set other counts.
 */
const ITERATIONS = Number(process.env.MBEDLINK_PRESSURE_ITERATIONS ?? bulk(10_000, 500));
const ECDSA_ITERATIONS = Number(process.env.MBEDLINK_PRESSURE_ECDSA ?? bulk(10_000, 250));
/** Per-test time limit: the default two minutes, or more for larger counts (QEMU: about 40 ms per iteration of the slowest form). */
const limit = (n: number) => Math.max(120_000, n * bulk(5, 60));

const counters = () => ({ ...dev._context.residency.counters });
const perOp = (t0: number, n: number) => `${(((performance.now() - t0) / n) * 1000).toFixed(0)} µs/op`;

/** No create was refused: the host kept the device within its table. */
async function expectWithinTable(): Promise<void> {
  expect(dev._context.residency.counters.full, "too_many_handles answers").toBe(0);
  const st = await dev.stats();
  expect(st.handlesUsed).toBeLessThanOrEqual(dev.info.maxHandles);
}

describe(`${ITERATIONS} iterations of each one-shot form, nothing closed`, () => {
  it(
    "hash new + update + digest, and sha224(data).hexdigest()",
    async () => {
      const t0 = performance.now();
      for (let i = 0; i < ITERATIONS; i++) {
        const data = rand(randomInt(0, 200));
        const h = dev.hash.new("sha256");
        h.update(data);
        expect(hex(await h.digest())).toBe(createHash("sha256").update(data).digest("hex"));
      }
      const lazy = perOp(t0, ITERATIONS);
      const t1 = performance.now();
      for (let i = 0; i < ITERATIONS; i++) {
        const data = rand(randomInt(0, 200));
        expect(await dev.hash.sha224(data).hexdigest()).toBe(createHash("sha224").update(data).digest("hex"));
      }
      const condensed = perOp(t1, ITERATIONS);
      // Against before, in the same run: a context per digest (hash_new, hash_update, hash_digest pipelined,
      // then free), in alternating blocks so that warm-up and load fall on both alike.
      const oneShot = async (data: Uint8Array) => hex(await dev.hash.new("sha256", data).digest());
      const context = async (data: Uint8Array) => {
        const h = dev._nextHandle();
        void dev.rpc.call(Op.hashNew, [h, 4]);
        void dev.rpc.call(Op.hashUpdate, [h, data]);
        const d = dev.rpc.call(Op.hashDigest, [h]);
        const f = dev.rpc.call(Op.free, [h]);
        const r = hex((await d) as Uint8Array);
        await f;
        return r;
      };
      const spent = [0, 0];
      const block = 100;
      const perForm = Math.max(block, Math.min(ITERATIONS, bulk(2000, 200)));
      for (let n = 0; n < perForm; n += block) {
        for (const [k, run] of [oneShot, context].entries()) {
          const t = performance.now();
          for (let i = 0; i < block; i++) {
            const data = rand(randomInt(0, 200));
            expect(await run(data)).toBe(createHash("sha256").update(data).digest("hex"));
          }
          spent[k] = (spent[k] as number) + performance.now() - t;
        }
      }
      const [a, b] = spent.map((ms) => `${((ms / perForm) * 1000).toFixed(0)} µs/op`);
      console.log(
        `hash one-shot: new+update+digest ${lazy}, sha224(data).hexdigest() ${condensed}; alternating: one-shot ${a}, before (context + free) ${b}`,
      );
      await expectWithinTable();
    },
    limit(ITERATIONS),
  );

  it(
    "hmac new(key, msg).digest()",
    async () => {
      const t0 = performance.now();
      for (let i = 0; i < ITERATIONS; i++) {
        const key = rand(randomInt(1, 80));
        const msg = rand(randomInt(0, 200));
        const mac = await dev.hmac.new(key, { digestmod: "sha256", msg }).digest();
        expect(hex(mac)).toBe(createHmac("sha256", key).update(msg).digest("hex"));
      }
      console.log(`hmac one-shot: ${perOp(t0, ITERATIONS)}`);
      await expectWithinTable();
    },
    limit(ITERATIONS),
  );

  it(
    "AES-CBC and AES-GCM encrypt/decrypt",
    async () => {
      const t0 = performance.now();
      for (let i = 0; i < ITERATIONS; i++) {
        const [key, iv, data] = [rand(16), rand(16), rand(randomInt(0, 200))];
        const c = dev.cipher.AES.new(key, dev.cipher.MODE_CBC, iv) as Cipher;
        const ct = await c.encrypt(data);
        const node = createCipheriv("aes-128-cbc", key, iv);
        expect(hex(ct)).toBe(Buffer.concat([node.update(data), node.final()]).toString("hex"));
        expect(hex(await dev.cipher.AES.new(key, dev.cipher.MODE_CBC, iv).decrypt(ct))).toBe(hex(data));
      }
      for (let i = 0; i < ITERATIONS; i++) {
        const [key, nonce, aad, data] = [rand(32), rand(12), rand(randomInt(0, 32)), rand(randomInt(0, 200))];
        const [ct, tag] = await (dev.cipher.AES.new(key, dev.cipher.MODE_GCM, nonce) as AEADCipher).encrypt(data, aad);
        const node = createCipheriv("aes-256-gcm", key, nonce);
        node.setAAD(aad);
        expect(hex(ct)).toBe(Buffer.concat([node.update(data), node.final()]).toString("hex"));
        expect(hex(tag)).toBe(node.getAuthTag().toString("hex"));
        expect(hex(await (dev.cipher.AES.new(key, dev.cipher.MODE_GCM, nonce) as AEADCipher).decrypt(ct, tag, aad))).toBe(hex(data));
      }
      console.log(`AES-CBC + AES-GCM round trips: ${perOp(t0, 2 * ITERATIONS)} per encrypt+decrypt`);
      await expectWithinTable();
    },
    limit(2 * ITERATIONS),
  );

  it(
    `ECDSA P-256 sign with a fresh key object each time (${ECDSA_ITERATIONS} imports)`,
    async () => {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const der = new Uint8Array(privateKey.export({ type: "pkcs8", format: "der" }));
      const before = counters();
      const t0 = performance.now();
      for (let i = 0; i < ECDSA_ITERATIONS; i++) {
        const msg = rand(randomInt(1, 100));
        const key = await dev.pk.ECC.fromDER(der);
        const sig = await key.sign(msg, "sha256");
        expect(verify("sha256", msg, publicKey, sig)).toBe(true);
      }
      const after = counters();
      console.log(
        `ECDSA import + sign: ${perOp(t0, ECDSA_ITERATIONS)}; keys swapped out ${after.wraps - before.wraps}, ` +
          `freed when collected ${after.collected - before.collected}`,
      );
      await expectWithinTable();
    },
    limit(ECDSA_ITERATIONS),
  );
});

describe("100 objects alive at once", () => {
  it("hash and HMAC contexts, updated in turn past the one-shot limit and digested each round, equal Node's", async () => {
    const chunk = dev.chunkSize;
    const rounds = bulk(4, 2);
    const names = ["sha256", "sha1", "sha512", "sha3_256", "md5"];
    const objects = Array.from({ length: 100 }, (_, i) => {
      const name = names[i % names.length] as string;
      const key = rand(randomInt(1, 100));
      const m: Hash | Hmac = i % 2 === 0 ? dev.hash.new(name) : dev.hmac.new(key, { digestmod: name });
      const node = () => (i % 2 === 0 ? createHash(name.replace("_", "-")) : createHmac(name.replace("_", "-"), key));
      return { m, node, fed: [] as Uint8Array[] };
    });
    const want = (o: (typeof objects)[number]) => {
      const n = o.node();
      for (const p of o.fed) n.update(p);
      return n.digest("hex");
    };
    const feed = (o: (typeof objects)[number], data: Uint8Array) => {
      o.m.update(data);
      o.fed.push(data);
    };
    for (const o of objects) feed(o, rand(chunk + 1)); // past one request: each needs a device context
    for (const o of objects) expect(hex(await o.m.digest()), o.m.name).toBe(want(o));
    expect(objects.every((o) => !o.m.isLazy)).toBe(true);
    const base = counters();
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) {
      // QEMU's UART carries about 20 KB/s: small updates there (the swaps are the point).
      for (const o of objects) feed(o, rand(randomInt(1, bulk(3 * chunk, 256))));
      for (const o of objects) expect(hex(await o.m.digest()), o.m.name).toBe(want(o));
    }
    const c = counters();
    console.log(
      `100 objects on ${dev.info.maxHandles} handles, each updated and digested per round: ` +
        `${(c.wraps - base.wraps) / rounds} obj_wrap + ${(c.unwraps - base.unwraps) / rounds} obj_unwrap per round, ` +
        `${((performance.now() - t0) / rounds).toFixed(0)} ms per round`,
    );
    await expectWithinTable();
    for (const o of objects) await o.m.close();
  });
});
