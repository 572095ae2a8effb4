// dev.cmac against the published examples (RFC 4493 section 4; NIST SP
// 800-38B's AES and three-key TDEA examples) and against the OpenSSL CLI
// (`openssl mac -cipher AES-128-CBC -macopt hexkey:... CMAC`, the message
// read from a file) on random keys and messages of 0..3 blocks and larger
// than the MTU, streamed in several updates.
import { execFileSync } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Limits, Op } from "../../host/src/base/protocol.generated.js";
import {
  ArgumentError,
  BadArgumentError,
  type CmacCipher,
  type Device,
  fromHex,
  hex,
  UnsupportedAlgorithmError,
  WrongHandleTypeError,
} from "../../host/src/index.js";
import { rand, randomSplit } from "./bytes.js";
import { useSession } from "./session.js";
import { bulk } from "./target.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

const dir = mkdtempSync(join(tmpdir(), "mbedlink-cmac-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** OpenSSL's cipher name for a CMAC cipher and key length. */
const opensslCipher = (cipher: CmacCipher, keyLen: number) => (cipher === "AES" ? `AES-${keyLen * 8}-CBC` : "DES-EDE3-CBC");

/** The OpenSSL CLI's CMAC of msg (written to a file) under key, lower-case hex. */
function opensslCmac(cipher: CmacCipher, key: Uint8Array, msg: Uint8Array): string {
  const file = join(dir, "msg.bin");
  writeFileSync(file, msg);
  const args = ["mac", "-cipher", opensslCipher(cipher, key.length), "-macopt", `hexkey:${hex(key)}`, "-in", file, "CMAC"];
  return execFileSync("openssl", args, { encoding: "utf8" }).trim().toLowerCase();
}

// The 64-byte message all of these examples truncate.
const M = fromHex(
  "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51" + "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
);

interface Example {
  source: string;
  cipher: CmacCipher;
  key: string;
  len: number;
  mac: string;
}

const K128 = "2b7e151628aed2a6abf7158809cf4f3c";
const K192 = "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b";
const K256 = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
const KTDEA = "0123456789aacdef23456789abcdef01456789abcdef0123";
const ex = (source: string, cipher: CmacCipher, key: string, rows: [number, string][]): Example[] =>
  rows.map(([len, mac]) => ({ source, cipher, key, len, mac }));

const EXAMPLES: Example[] = [
  // RFC 4493 section 4, Examples 1-4 (AES-128)
  ...ex("RFC 4493", "AES", K128, [
    [0, "bb1d6929e95937287fa37d129b756746"],
    [16, "070a16b46b4d4144f79bdd9dd04a287c"],
    [40, "dfa66747de9ae63030ca32611497c827"],
    [64, "51f0bebf7e3b9d92fc49741779363cfe"],
  ]),
  // NIST SP 800-38B Appendix D (Mlen 0, 128, 320, 512 bits) and the updated
  // CSRC examples (Mlen 160 bits), AES-128/192/256
  ...ex("SP 800-38B AES-128", "AES", K128, [[20, "7d85449ea6ea19c823a7bf78837dfade"]]),
  ...ex("SP 800-38B AES-192", "AES", K192, [
    [0, "d17ddf46adaacde531cac483de7a9367"],
    [16, "9e99a7bf31e710900662f65e617c5184"],
    [20, "3d75c194ed96070444a9fa7ec740ecf8"],
    [40, "8a1de5be2eb31aad089a82e6ee908b0e"],
    [64, "a1d5df0eed790f794d77589659f39a11"],
  ]),
  ...ex("SP 800-38B AES-256", "AES", K256, [
    [0, "028962f61b7bf89efc6b551f4667d983"],
    [16, "28a7023f452e8f82bd4bf28d8c37c35c"],
    [20, "156727dc0878944a023c1fe03bad6d93"],
    [40, "aaf3d8f1de5640c232f5b169b9c911e6"],
    [64, "e1992190549f6ed5696a2c056c315410"],
  ]),
  // the CSRC TDEA examples, three keys (Mlen 0, 128, 160, 256 bits)
  ...ex("SP 800-38B TDEA", "DES3", KTDEA, [
    [0, "7db0d37df936c550"],
    [16, "30239cf1f52e6609"],
    [20, "6c9f3ee4923f6be2"],
    [32, "99429bd0bf7904e5"],
  ]),
];

describe("published examples", () => {
  it.each(EXAMPLES.map((e) => [`${e.source} ${e.cipher}-${e.key.length * 4} Mlen ${e.len}`, e] as const))(
    "%s: one-shot, streamed byte by byte and in halves",
    async (_, e) => {
      const key = fromHex(e.key);
      const msg = M.subarray(0, e.len);
      expect(await dev.cmac.hexdigest(key, msg, e.cipher)).toBe(e.mac);
      const a = dev.cmac.new(key, { cipher: e.cipher });
      for (const b of msg) a.update(Uint8Array.of(b));
      const b = dev.cmac.new(key, { cipher: e.cipher });
      b.update(msg.subarray(0, e.len >> 1));
      b.update(msg.subarray(e.len >> 1));
      const c = b.copy(); // a device context, fed the same
      expect([await a.hexdigest(), await b.hexdigest(), await c.hexdigest()]).toEqual([e.mac, e.mac, e.mac]);
      const bs = e.cipher === "DES3" ? 8 : 16;
      expect([a.digestSize, a.blockSize, a.keySize]).toEqual([bs, bs, key.length]);
      for (const m of [a, b, c]) await m.close();
    },
  );
});

describe("equal to OpenSSL's CMAC on random keys", () => {
  const cases: [CmacCipher, number][] = [
    ["AES", 16],
    ["AES", 24],
    ["AES", 32],
    ["DES3", 24],
  ];
  it.each(cases)("%s with a %d-byte key: 0..3 blocks and > MTU, streamed in several updates", async (cipher, keyLen) => {
    const bs = cipher === "AES" ? 16 : 8;
    const chunk = dev.info.mtu - Limits.requestOverheadMax;
    const lens = [
      0,
      1,
      bs - 1,
      bs,
      bs + 1,
      2 * bs - 1,
      2 * bs,
      2 * bs + 1,
      3 * bs - 1,
      3 * bs,
      dev.info.mtu + randomInt(1, bulk(40_000, 3000)),
    ];
    const jobs = [];
    for (const len of lens) {
      const key = rand(keyLen);
      const msg = rand(len);
      const m = dev.cmac.new(key, { cipher });
      expect(m.name).toBe(cipher === "AES" ? `cmac-aes-${keyLen * 8}` : "cmac-des3");
      const parts = randomSplit(msg, len > chunk ? randomInt(1, 2 * chunk) : randomInt(1, 3 * bs));
      for (const p of parts) m.update(p);
      jobs.push({ len, key, msg, m, want: opensslCmac(cipher, key, msg) });
    }
    // fed without waiting; now collect, and the one-shot of the same
    for (const { len, key, msg, m, want } of jobs) {
      expect(await m.hexdigest(), `${cipher}-${keyLen} msg ${len}`).toBe(want);
      expect(await dev.cmac.hexdigest(key, msg, cipher), `one-shot ${len}`).toBe(want);
      await m.close();
    }
  });

  it("a device-held key (dev.keys) gives the same MAC as its bytes, one-shot and streamed", async () => {
    for (const keyLen of [16, 24, 32]) {
      const bytes = rand(keyLen);
      const key = dev.keys.importSymmetric(bytes);
      const small = rand(randomInt(0, 100));
      const big = rand(dev.info.mtu + randomInt(1, 2000));
      expect(await dev.cmac.hexdigest(key, small)).toBe(opensslCmac("AES", bytes, small));
      const m = dev.cmac.new(key, { msg: big });
      expect(await m.hexdigest()).toBe(opensslCmac("AES", bytes, big));
      // made lazily from the key, then the key is closed: the context was created first
      const lazy = dev.cmac.new(key, { msg: small });
      await key.close();
      expect(await lazy.hexdigest()).toBe(opensslCmac("AES", bytes, small));
      for (const o of [m, lazy]) await o.close();
    }
  });
});

describe("CMAC contexts", () => {
  it("digest() twice gives the same; update() after digest() continues the message; copy() forks", async () => {
    for (const [cipher, keyLen] of [
      ["AES", 16],
      ["AES", 32],
      ["DES3", 24],
    ] as const) {
      const key = rand(keyLen);
      const prefix = rand(randomInt(0, 3000));
      const [s1, s2, s3] = [rand(randomInt(0, bulk(30_000, 5000))), rand(randomInt(0, 5000)), rand(17)];
      const a = dev.cmac.new(key, { cipher, msg: prefix });
      expect(await a.hexdigest()).toBe(opensslCmac(cipher, key, prefix));
      expect(await a.hexdigest()).toBe(opensslCmac(cipher, key, prefix));
      const b = a.copy();
      a.update(s1);
      b.update(s2);
      const c = b.copy();
      c.update(s3);
      const cat = (...p: Uint8Array[]) => Buffer.concat(p);
      expect(await a.hexdigest()).toBe(opensslCmac(cipher, key, cat(prefix, s1)));
      expect(await b.hexdigest()).toBe(opensslCmac(cipher, key, cat(prefix, s2)));
      expect(await c.hexdigest()).toBe(opensslCmac(cipher, key, cat(prefix, s2, s3)));
      a.update(s3);
      expect(await a.hexdigest()).toBe(opensslCmac(cipher, key, cat(prefix, s1, s3)));
      for (const h of [a, b, c]) await h.close();
    }
  });

  it("more contexts than the device has handles: idle ones are swapped out and back with their state", async () => {
    const n = dev.info.maxHandles + 8;
    const before = dev._context.residency.counters.wraps;
    const jobs = [];
    for (let i = 0; i < n; i++) {
      const cipher: CmacCipher = i % 4 === 3 ? "DES3" : "AES";
      const key = rand(cipher === "DES3" ? 24 : ([16, 24, 32][i % 3] as number));
      const head = rand(randomInt(0, 40));
      const tail = rand(randomInt(0, 40));
      const m = dev.cmac.new(key, { cipher, msg: head });
      void m.handle; // reading it creates the context on the device (a mid-block state is swapped too)
      jobs.push({ cipher, key, head, tail, m });
    }
    for (const { cipher, key, head, tail, m } of jobs) {
      m.update(tail);
      expect(await m.hexdigest()).toBe(opensslCmac(cipher, key, Buffer.concat([head, tail])));
    }
    expect(dev._context.residency.counters.wraps).toBeGreaterThan(before);
    for (const { m } of jobs) await m.close();
  });

  it("the key and data are copied at call time", async () => {
    const key = rand(16);
    const keep = Uint8Array.from(key);
    const data = rand(20);
    const orig = Uint8Array.from(data);
    const m = dev.cmac.new(key);
    key.fill(0);
    m.update(data);
    data.fill(0x41);
    expect(await m.hexdigest()).toBe(opensslCmac("AES", keep, orig));
    await m.close();
  });
});

describe("bad arguments", () => {
  it("Camellia, ARIA and other ciphers Mbed TLS's CMAC lacks are UnsupportedAlgorithmError before anything is sent", async () => {
    const sent = dev.linkCounters.txFrames;
    for (const c of ["CAMELLIA", "ARIA", "camellia", "DES", "DES3DBL", "CHACHA20", "BLOWFISH"]) {
      const err = (() => {
        try {
          dev.cmac.new(rand(16), { cipher: c as CmacCipher });
        } catch (e) {
          return e;
        }
      })();
      expect(err, c).toBeInstanceOf(UnsupportedAlgorithmError);
      expect((err as UnsupportedAlgorithmError).local).toBe(true);
      await expect(dev.cmac.digest(rand(16), rand(3), c as CmacCipher)).rejects.toThrow(UnsupportedAlgorithmError);
    }
    expect(dev.linkCounters.txFrames).toBe(sent);
  });

  it("a key of the wrong length is an ArgumentError at once", async () => {
    const sent = dev.linkCounters.txFrames;
    for (const [cipher, len] of [
      ["AES", 0],
      ["AES", 15],
      ["AES", 20],
      ["AES", 64],
      ["DES3", 16],
      ["DES3", 8],
    ] as const) {
      expect(() => dev.cmac.new(rand(len), { cipher }), `${cipher} ${len}`).toThrow(ArgumentError);
    }
    await expect(dev.cmac.digest(rand(17), rand(3))).rejects.toThrow(ArgumentError);
    expect(dev.linkCounters.txFrames).toBe(sent);
    const key = dev.keys.importSymmetric(rand(20));
    expect(() => dev.cmac.new(key)).toThrow(ArgumentError);
    await key.close();
  });

  it("the device's own checks: typed errors, and it keeps serving", async () => {
    const call = (op: number, args: unknown[]) => dev.rpc.call(op, args).catch((e: unknown) => e);
    const err1 = await call(Op.cmacOneshot, ["CAMELLIA", rand(16), rand(5)]);
    expect(err1).toBeInstanceOf(UnsupportedAlgorithmError);
    expect((err1 as UnsupportedAlgorithmError).local).toBe(false);
    expect(await call(Op.cmacOneshot, ["ARIA", rand(16), rand(5)])).toBeInstanceOf(UnsupportedAlgorithmError);
    expect(await call(Op.cmacOneshot, ["AES", rand(20), rand(5)])).toBeInstanceOf(BadArgumentError);
    expect(await call(Op.cmacOneshot, ["DES3", rand(16), rand(5)])).toBeInstanceOf(BadArgumentError);
    // a CMAC op on another type of object
    const h = dev.hmac.new(rand(16), { digestmod: "sha256" });
    const handle = h.handle;
    await h.digest();
    expect(await call(Op.cmacUpdate, [handle, rand(3)])).toBeInstanceOf(WrongHandleTypeError);
    await h.close();
    const key = rand(16);
    const msg = rand(100);
    expect(await dev.cmac.hexdigest(key, msg)).toBe(opensslCmac("AES", key, msg));
  });
});
