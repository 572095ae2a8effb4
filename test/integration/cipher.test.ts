// dev.cipher against Node's crypto (OpenSSL) on random keys, IVs, AAD and
// messages, on the target under test. Where OpenSSL lacks a cipher:
//   * single DES: OpenSSL 3 keeps it in the legacy provider only. DES-EDE3
//     with K1 = K2 = K3 is single DES (the EDE construction's compatibility
//     property, FIPS 46-3 / SP 800-67), plus the classic published vector
//     (J. Orlin Grabbe, "The DES Algorithm Illustrated").
//   * Camellia GCM and CCM: GCM (NIST SP 800-38D) and CCM (NIST SP 800-38C,
//     RFC 3610) written here over Node's Camellia block function; the same
//     code is first checked against OpenSSL's AES-GCM and AES-CCM.
import { createCipheriv, createDecipheriv, randomInt } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Op } from "../../host/src/base/protocol.generated.js";
import {
  type AEADCipher,
  ArgumentError,
  AuthFailedError,
  BadArgumentError,
  type Cipher,
  CryptoError,
  type Device,
  hex,
  UnsupportedAlgorithmError,
  utf8,
} from "../../host/src/index.js";
import { rand } from "./bytes.js";
import { useSession } from "./session.js";
import { SLOW_LINK, TARGET } from "./target.js";

const session = useSession();
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

const u8 = (b: Buffer) => new Uint8Array(b);

/** Node's one-shot encrypt/decrypt of a non-AEAD cipher. */
function node(name: string, key: Uint8Array, iv: Uint8Array | null, data: Uint8Array, encrypt: boolean, pad: boolean): Uint8Array {
  const c = encrypt ? createCipheriv(name, key, iv) : createDecipheriv(name, key, iv);
  c.setAutoPadding(pad);
  return u8(Buffer.concat([c.update(data), c.final()]));
}

/**
 * Message sizes: 0, 1, 15, 16, 17, block multiples, and more than 2 MTUs.
 * On slow links (QEMU at ~20 KiB/s, boards) the sizes above 2 MTUs are
 * kept for one key size per mode only (`withBig`).
 */
function sizes(block: number, wholeBlocks: boolean, max = Number.POSITIVE_INFINITY, withBig = true): number[] {
  const big = 2 * dev.info.mtu + (TARGET === "qemu" ? 37 : 12_345);
  const bigs = withBig || !SLOW_LINK ? [big, big + 2 * block] : [];
  const all = [0, 1, 15, 16, 17, block, 2 * block, 3 * block + 5, 64, 255, 1000, ...bigs];
  const ok = all.filter((n) => (!wholeBlocks || n % block === 0) && n <= max);
  return [...new Set(ok)].sort((a, b) => a - b);
}

interface Case {
  fam: "AES" | "ARIA" | "Camellia" | "DES3" | "DES3dbl";
  mode: number;
  keyLen: number;
  node: string;
}

const M = { ECB: 1, CBC: 2, CFB: 3, OFB: 4, CTR: 5, GCM: 6, STREAM: 7, CCM: 8, XTS: 9, CHACHAPOLY: 10 } as const;

/** AES, ARIA and Camellia at each key size, with OpenSSL's name prefix. */
function* blockCiphers() {
  for (const [fam, prefix] of [
    ["AES", "aes"],
    ["ARIA", "aria"],
    ["Camellia", "camellia"],
  ] as const) {
    for (const bits of [128, 192, 256]) yield { fam, prefix, bits };
  }
}

function unauthenticatedCases(): Case[] {
  const out: Case[] = [];
  const modes: [number, string][] = [
    [M.ECB, "ecb"],
    [M.CBC, "cbc"],
    [M.CFB, "cfb"],
    [M.CTR, "ctr"],
  ];
  for (const { fam, prefix, bits } of blockCiphers()) {
    for (const [mode, suffix] of modes) out.push({ fam, mode, keyLen: bits / 8, node: `${prefix}-${bits}-${suffix}` });
    if (fam === "AES") out.push({ fam, mode: M.OFB, keyLen: bits / 8, node: `aes-${bits}-ofb` });
  }
  out.push({ fam: "DES3", mode: M.ECB, keyLen: 24, node: "des-ede3-ecb" });
  out.push({ fam: "DES3", mode: M.CBC, keyLen: 24, node: "des-ede3-cbc" });
  out.push({ fam: "DES3dbl", mode: M.ECB, keyLen: 16, node: "des-ede-ecb" });
  out.push({ fam: "DES3dbl", mode: M.CBC, keyLen: 16, node: "des-ede-cbc" });
  return out;
}

describe("the seed's cipher example (python-mbedtls README)", () => {
  it("AES-128-CBC encrypts to the published bytes and decrypts back", async () => {
    const c = dev.cipher.AES.new(utf8("My 16-bytes key."), dev.cipher.MODE_CBC, utf8("CBC needs an IV.")) as Cipher;
    const enc = await c.encrypt(utf8("This is a super-secret message!"));
    expect(hex(enc)).toBe("2a606b3698973d5bdf7f8896f509194a3793b5e07e099e96386dcd9c33046fe6");
    expect(new TextDecoder().decode(await c.decrypt(enc))).toBe("This is a super-secret message!");
    expect([c.name, c.mode, c.blockSize, c.keySize, c.ivSize]).toEqual(["AES-128-CBC", 2, 16, 16, 16]);
  });
});

describe("unauthenticated modes equal Node's crypto", () => {
  it.each(unauthenticatedCases().map((c) => [c.node, c] as const))("%s", async (_n, c) => {
    const family = dev.cipher[c.fam];
    const block = family.blockSize;
    const whole = c.mode === M.ECB;
    const jobs = sizes(block, whole, Number.POSITIVE_INFINITY, c.keyLen === 16 || c.fam.startsWith("DES")).map(async (n) => {
      const key = rand(c.keyLen);
      const iv = c.mode === M.ECB ? null : rand(block);
      const data = rand(n);
      const cipher = family.new(key, c.mode, iv) as Cipher;
      const pad = c.mode === M.CBC;
      const want = node(c.node, key, iv, data, true, pad);
      const got = await cipher.encrypt(data);
      expect(hex(got), `${c.node} encrypt ${n} bytes`).toBe(hex(want));
      expect(hex(await cipher.decrypt(want)), `${c.node} decrypt ${n} bytes`).toBe(hex(data));
    });
    await Promise.all(jobs);
  });

  it("object attributes follow Mbed TLS names and sizes", () => {
    const k = (n: number) => new Uint8Array(n);
    const iv16 = k(16);
    const attrs = (c: Cipher | AEADCipher) => [c.name, c.blockSize, c.keySize, c.ivSize];
    expect(attrs(dev.cipher.AES.new(k(32), dev.cipher.MODE_CTR, iv16))).toEqual(["AES-256-CTR", 16, 32, 16]);
    expect(attrs(dev.cipher.AES.new(k(24), dev.cipher.MODE_CFB, iv16))).toEqual(["AES-192-CFB128", 16, 24, 16]);
    expect(attrs(dev.cipher.AES.new(k(64), dev.cipher.MODE_XTS, iv16))).toEqual(["AES-256-XTS", 16, 64, 16]);
    expect(attrs(dev.cipher.ARIA.new(k(16), dev.cipher.MODE_GCM, k(12)))).toEqual(["ARIA-128-GCM", 16, 16, 12]);
    expect(attrs(dev.cipher.Camellia.new(k(16), dev.cipher.MODE_ECB))).toEqual(["CAMELLIA-128-ECB", 16, 16, 0]);
    expect(attrs(dev.cipher.DES3.new(k(24), dev.cipher.MODE_CBC, k(8)))).toEqual(["DES-EDE3-CBC", 8, 24, 8]);
    expect(attrs(dev.cipher.DES3dbl.new(k(16), dev.cipher.MODE_ECB))).toEqual(["DES-EDE-ECB", 8, 16, 0]);
    expect(attrs(dev.cipher.DES.new(k(8), dev.cipher.MODE_CBC, k(8)))).toEqual(["DES-CBC", 8, 8, 8]);
    expect(attrs(dev.cipher.CHACHA20.new(k(32), dev.cipher.MODE_STREAM, k(12)))).toEqual(["CHACHA20", 1, 32, 12]);
    expect(attrs(dev.cipher.CHACHA20_POLY1305.new(k(32), dev.cipher.MODE_CHACHAPOLY, k(12)))).toEqual(["CHACHA20-POLY1305", 1, 32, 12]);
    expect([dev.cipher.MODE_ECB, dev.cipher.MODE_CBC, dev.cipher.MODE_CFB, dev.cipher.MODE_OFB, dev.cipher.MODE_CTR]).toEqual([
      1, 2, 3, 4, 5,
    ]);
    expect([dev.cipher.MODE_GCM, dev.cipher.MODE_STREAM, dev.cipher.MODE_CCM, dev.cipher.MODE_XTS, dev.cipher.MODE_CHACHAPOLY]).toEqual([
      6, 7, 8, 9, 10,
    ]);
  });
});

describe("XTS", () => {
  it.each([
    [32, "aes-128-xts"],
    [64, "aes-256-xts"],
  ] as const)("%i-byte double key equals Node's %s, 16 bytes up to one frame", async (keyLen, name) => {
    for (const n of [16, 17, 31, 32, 100, 4096, dev.info.mtu - 400].filter((x) => x <= dev.info.mtu - 400)) {
      let key = rand(keyLen);
      while (hex(key.subarray(0, keyLen / 2)) === hex(key.subarray(keyLen / 2))) key = rand(keyLen);
      const tweak = rand(16);
      const data = rand(n);
      const c = dev.cipher.AES.new(key, dev.cipher.MODE_XTS, tweak) as Cipher;
      const want = node(name, key, tweak, data, true, false);
      expect(hex(await c.encrypt(data)), `${name} ${n} bytes`).toBe(hex(want));
      expect(hex(await c.decrypt(want))).toBe(hex(data));
    }
  });
  it("a wrong key shape is a BadArgumentError; short data is refused (large data: cipher-large.test.ts)", async () => {
    for (const n of [16, 24, 48]) {
      const err = await (dev.cipher.AES.new(rand(n), dev.cipher.MODE_XTS, rand(16)) as Cipher).encrypt(rand(32)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadArgumentError);
      expect((err as Error).message).toBe(`AES-XTS key must be 32 or 64 bytes, got ${n}`);
    }
    const c = dev.cipher.AES.new(rand(32), dev.cipher.MODE_XTS, rand(16)) as Cipher;
    await expect(c.encrypt(rand(15))).rejects.toThrow("XTS data must be at least 16 bytes, got 15");
  });
});

describe("ChaCha20 and single DES", () => {
  it("CHACHA20 equals Node's chacha20 (counter 0, 12-byte nonce)", async () => {
    for (const n of sizes(64, false)) {
      const key = rand(32);
      const nonce = rand(12);
      const data = rand(n);
      const c = dev.cipher.CHACHA20.new(key, dev.cipher.MODE_STREAM, nonce) as Cipher;
      const want = node("chacha20", key, new Uint8Array([0, 0, 0, 0, ...nonce]), data, true, false);
      expect(hex(await c.encrypt(data)), `${n} bytes`).toBe(hex(want));
      expect(hex(await c.decrypt(want))).toBe(hex(data));
    }
  });

  it("DES: the published vector 133457799BBCDFF1 / 0123456789ABCDEF -> 85E813540F0AB405", async () => {
    const c = dev.cipher.DES.new(Buffer.from("133457799bbcdff1", "hex"), dev.cipher.MODE_ECB) as Cipher;
    expect(hex(await c.encrypt(Buffer.from("0123456789abcdef", "hex")))).toBe("85e813540f0ab405");
  });

  it.each([
    [M.ECB, "des-ede3-ecb"],
    [M.CBC, "des-ede3-cbc"],
  ] as const)("DES mode %i equals DES-EDE3 with three equal keys (%s)", async (mode, name) => {
    for (const n of sizes(8, mode === M.ECB)) {
      const key = rand(8);
      const iv = mode === M.ECB ? null : rand(8);
      const data = rand(n);
      const want = node(name, new Uint8Array([...key, ...key, ...key]), iv, data, true, mode === M.CBC);
      const c = dev.cipher.DES.new(key, mode, iv) as Cipher;
      expect(hex(await c.encrypt(data)), `${n} bytes`).toBe(hex(want));
      expect(hex(await c.decrypt(want))).toBe(hex(data));
    }
  });
});

// ------------------------------------------------------------ AEAD references
/** ECB block function of an OpenSSL cipher (e.g. "camellia-128-ecb") over many blocks at once. */
const ecb = (name: string, key: Uint8Array) => (blocks: Uint8Array) => node(name, key, null, blocks, true, false);

function xorInto(a: Uint8Array, b: Uint8Array): void {
  for (let i = 0; i < a.length && i < b.length; i++) a[i] = (a[i] as number) ^ (b[i] as number);
}
const toBig = (b: Uint8Array) => BigInt(`0x${hex(b) || "0"}`);
const fromBig = (x: bigint) => Uint8Array.from(Buffer.from(x.toString(16).padStart(32, "0"), "hex"));
const R = 0xe1n << 120n;
function gmul(x: bigint, y: bigint): bigint {
  let z = 0n;
  let v = y;
  for (let i = 127n; i >= 0n; i--) {
    if ((x >> i) & 1n) z ^= v;
    v = v & 1n ? (v >> 1n) ^ R : v >> 1n;
  }
  return z;
}
function ghash(h: bigint, data: Uint8Array): bigint {
  let y = 0n;
  for (let off = 0; off < data.length; off += 16) {
    const blk = new Uint8Array(16);
    blk.set(data.subarray(off, off + 16));
    y = gmul(y ^ toBig(blk), h);
  }
  return y;
}
const pad16 = (b: Uint8Array) => {
  const out = new Uint8Array(Math.ceil(b.length / 16) * 16);
  out.set(b);
  return out;
};
const be64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return new Uint8Array(b);
};

/** GCM (NIST SP 800-38D) over a block function. */
function gcmRef(enc: (b: Uint8Array) => Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array, tagLen: number) {
  const h = toBig(enc(new Uint8Array(16)));
  let j0: Uint8Array;
  if (iv.length === 12) j0 = new Uint8Array([...iv, 0, 0, 0, 1]);
  else j0 = fromBig(ghash(h, new Uint8Array([...pad16(iv), ...be64(0), ...be64(iv.length * 8)])));
  const nBlocks = Math.ceil(pt.length / 16);
  const ctrs = new Uint8Array(16 * (nBlocks + 1));
  const base = Buffer.from(j0).readUInt32BE(12);
  for (let i = 0; i <= nBlocks; i++) {
    const c = Buffer.from(j0);
    c.writeUInt32BE((base + i) >>> 0, 12);
    ctrs.set(c, 16 * i);
  }
  const ks = enc(ctrs);
  const ct = Uint8Array.from(pt);
  xorInto(ct, ks.subarray(16));
  const s = ghash(h, new Uint8Array([...pad16(aad), ...pad16(ct), ...be64(aad.length * 8), ...be64(ct.length * 8)]));
  const tag = fromBig(s);
  xorInto(tag, ks.subarray(0, 16));
  return { ct, tag: tag.subarray(0, tagLen) };
}

/** CCM (NIST SP 800-38C, RFC 3610) over a block function; aad shorter than 65280 bytes. */
function ccmRef(enc: (b: Uint8Array) => Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array, tagLen: number) {
  const L = 15 - nonce.length;
  const b0 = new Uint8Array(16);
  b0[0] = (aad.length > 0 ? 64 : 0) | (((tagLen - 2) / 2) << 3) | (L - 1);
  b0.set(nonce, 1);
  for (let i = 0, n = pt.length; i < L; i++, n = Math.floor(n / 256)) b0[15 - i] = n & 255;
  const aadBlock = aad.length > 0 ? pad16(new Uint8Array([aad.length >> 8, aad.length & 255, ...aad])) : new Uint8Array(0);
  const macInput = new Uint8Array([...b0, ...aadBlock, ...pad16(pt)]);
  let x: Uint8Array = new Uint8Array(16);
  for (let off = 0; off < macInput.length; off += 16) {
    xorInto(x, macInput.subarray(off, off + 16));
    x = enc(x);
  }
  const nBlocks = Math.ceil(pt.length / 16);
  const ctrs = new Uint8Array(16 * (nBlocks + 1));
  for (let i = 0; i <= nBlocks; i++) {
    const c = new Uint8Array(16);
    c[0] = L - 1;
    c.set(nonce, 1);
    for (let j = 0, n = i; j < L; j++, n = Math.floor(n / 256)) c[15 - j] = n & 255;
    ctrs.set(c, 16 * i);
  }
  const ks = enc(ctrs);
  const ct = Uint8Array.from(pt);
  xorInto(ct, ks.subarray(16));
  const tag = x.subarray(0, tagLen);
  xorInto(tag, ks.subarray(0, 16));
  return { ct, tag };
}

/** OpenSSL AEAD encryption (GCM, CCM, ChaCha20-Poly1305). */
function nodeAead(name: string, key: Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array, tagLen: number) {
  const opts = { authTagLength: tagLen } as const;
  // biome-ignore lint/suspicious/noExplicitAny: Node's AEAD overloads are keyed by mode string literals
  const c = createCipheriv(name as any, key, iv, opts as any) as ReturnType<typeof createCipheriv> & {
    setAAD(b: Uint8Array, o?: object): void;
    getAuthTag(): Buffer;
  };
  if (name.endsWith("ccm")) c.setAAD(aad, { plaintextLength: pt.length });
  else c.setAAD(aad);
  const ct = u8(Buffer.concat([c.update(pt), c.final()]));
  return { ct, tag: u8(c.getAuthTag()) };
}

describe("AEAD references agree with OpenSSL", () => {
  it("the GCM and CCM code of this file equals OpenSSL's AES-GCM and AES-CCM", () => {
    for (const n of [0, 1, 16, 17, 100]) {
      const key = rand(16);
      const aad = rand(randomInt(0, 40));
      const pt = rand(n);
      for (const ivLen of [12, 8, 16]) {
        const iv = rand(ivLen);
        expect(gcmRef(ecb("aes-128-ecb", key), iv, aad, pt, 16)).toEqual(nodeAead("aes-128-gcm", key, iv, aad, pt, 16));
      }
      for (const nLen of [7, 13]) {
        const nonce = rand(nLen);
        expect(ccmRef(ecb("aes-128-ecb", key), nonce, aad, pt, 8)).toEqual(nodeAead("aes-128-ccm", key, nonce, aad, pt, 8));
      }
    }
  });
});

interface AeadCase {
  fam: "AES" | "ARIA" | "Camellia" | "CHACHA20_POLY1305";
  mode: number;
  keyLen: number;
  name: string;
}
function aeadCases(): AeadCase[] {
  const out: AeadCase[] = [];
  for (const { fam, prefix, bits } of blockCiphers()) {
    out.push({ fam, mode: M.GCM, keyLen: bits / 8, name: `${prefix}-${bits}-gcm` });
    out.push({ fam, mode: M.CCM, keyLen: bits / 8, name: `${prefix}-${bits}-ccm` });
  }
  out.push({ fam: "CHACHA20_POLY1305", mode: M.CHACHAPOLY, keyLen: 32, name: "chacha20-poly1305" });
  return out;
}

function reference(c: AeadCase, key: Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array, tagLen: number) {
  if (c.fam !== "Camellia") return nodeAead(c.name, key, iv, aad, pt, tagLen);
  const blockFn = ecb(`camellia-${key.length * 8}-ecb`, key);
  return c.mode === M.GCM ? gcmRef(blockFn, iv, aad, pt, tagLen) : ccmRef(blockFn, iv, aad, pt, tagLen);
}

describe("AEAD modes", () => {
  it.each(aeadCases().map((c) => [c.name, c] as const))("%s equals the reference; decrypt verifies", async (_n, c) => {
    const family = dev.cipher[c.fam];
    const probe = family.new(rand(c.keyLen), c.mode, rand(12)) as AEADCipher;
    const max = probe.maxMessageSize(new Uint8Array(64));
    const ns = [...sizes(16, false, max, c.keyLen !== 24), max];
    const jobs = ns.map(async (n, i) => {
      const key = rand(c.keyLen);
      const ivLen = c.mode === M.CCM ? [7, 12, 13][i % 3] : c.mode === M.GCM ? [12, 8, 16][i % 3] : 12;
      const tagLen = c.mode === M.CHACHAPOLY ? 16 : ([16, 12, 8][i % 3] as number);
      const iv = rand(ivLen as number);
      const aad = rand(i % 2 === 0 ? 0 : randomInt(1, 65));
      const pt = rand(n);
      const cipher = family.new(key, c.mode, iv, aad, { tagLength: tagLen }) as AEADCipher;
      const want = reference(c, key, iv, aad, pt, tagLen);
      const [ct, tag] = await cipher.encrypt(pt);
      expect({ ct: hex(ct), tag: hex(tag) }, `${c.name} ${n} bytes`).toEqual({ ct: hex(want.ct), tag: hex(want.tag) });
      expect(hex(await cipher.decrypt(want.ct, want.tag)), `${c.name} decrypt ${n}`).toBe(hex(pt));
    });
    await Promise.all(jobs);
  });

  it("a tampered tag, ciphertext or AAD gives AuthFailedError and no plaintext", async () => {
    for (const c of aeadCases()) {
      const key = rand(c.keyLen);
      const iv = rand(12);
      const aad = rand(20);
      const pt = rand(100);
      const cipher = dev.cipher[c.fam].new(key, c.mode, iv, aad) as AEADCipher;
      const [ct, tag] = await cipher.encrypt(pt);
      const badTag = Uint8Array.from(tag);
      badTag[0] = (badTag[0] as number) ^ 1;
      const badCt = Uint8Array.from(ct);
      badCt[50] = (badCt[50] as number) ^ 0x80;
      for (const attempt of [cipher.decrypt(ct, badTag), cipher.decrypt(badCt, tag), cipher.decrypt(ct, tag, rand(20))]) {
        const err = await attempt.catch((e: unknown) => e);
        expect(err, c.name).toBeInstanceOf(AuthFailedError);
        expect((err as AuthFailedError).message).toBe(`${cipher.name} tag does not match: no plaintext released`);
      }
      expect(hex(await cipher.decrypt(ct, tag))).toBe(hex(pt));
    }
    // On the wire the failure is an error response: no plaintext travels.
    const err = await dev.rpc
      .call(Op.cipherAuthDecrypt, ["AES", "GCM", rand(16), rand(12), new Uint8Array(0), rand(32), rand(16)])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthFailedError);
  });

  it("one byte over one frame switches to the buffered context (larger sizes: cipher-large.test.ts)", async () => {
    const key = rand(16);
    const iv = rand(12);
    const c = dev.cipher.AES.new(key, dev.cipher.MODE_GCM, iv) as AEADCipher;
    for (const n of [c.maxMessageSize(), c.maxMessageSize() + 1]) {
      const pt = rand(n);
      const want = nodeAead("aes-128-gcm", key, iv, new Uint8Array(0), pt, 16);
      const [ct, tag] = await c.encrypt(pt);
      expect({ ct: hex(ct), tag: hex(tag) }, `${n} bytes`).toEqual({ ct: hex(want.ct), tag: hex(want.tag) });
      expect(hex(await c.decrypt(ct, tag))).toBe(hex(pt));
    }
  });

  it("bad nonce and tag sizes are BadArgumentErrors with clear messages", async () => {
    const cases: [AEADCipher, string][] = [
      [dev.cipher.AES.new(rand(16), dev.cipher.MODE_CCM, rand(6)) as AEADCipher, "AES-128-CCM nonce must be 7 to 13 bytes, got 6"],
      [
        dev.cipher.AES.new(rand(16), dev.cipher.MODE_GCM, new Uint8Array(0)) as AEADCipher,
        "AES-128-GCM IV must be 1 to 128 bytes (12 recommended), got 0",
      ],
      [
        dev.cipher.CHACHA20_POLY1305.new(rand(32), dev.cipher.MODE_CHACHAPOLY, rand(8)) as AEADCipher,
        "CHACHA20-POLY1305 IV must be 12 bytes, got 8",
      ],
      [
        dev.cipher.AES.new(rand(16), dev.cipher.MODE_CCM, rand(12), undefined, { tagLength: 5 }) as AEADCipher,
        "AES-128-CCM tag must be 4, 6, ... or 16 bytes, got 5",
      ],
      [
        dev.cipher.AES.new(rand(16), dev.cipher.MODE_GCM, rand(12), undefined, { tagLength: 17 }) as AEADCipher,
        "AES-128-GCM tag must be 4 to 16 bytes, got 17",
      ],
    ];
    for (const [c, msg] of cases) {
      const err = await c.encrypt(rand(10)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadArgumentError);
      expect((err as Error).message).toBe(msg);
    }
  });
});

describe("errors", () => {
  it("wrong key and IV sizes are BadArgumentErrors naming the sizes", async () => {
    const cases: [Cipher, string][] = [
      [dev.cipher.AES.new(rand(17), dev.cipher.MODE_CBC, rand(16)) as Cipher, "AES-CBC key must be 16, 24 or 32 bytes, got 17"],
      [dev.cipher.DES3.new(rand(16), dev.cipher.MODE_CBC, rand(8)) as Cipher, "DES3-CBC key must be 24 bytes, got 16"],
      [dev.cipher.CHACHA20.new(rand(16), dev.cipher.MODE_STREAM, rand(12)) as Cipher, "CHACHA20-STREAM key must be 32 bytes, got 16"],
      [dev.cipher.AES.new(rand(16), dev.cipher.MODE_CBC, rand(8)) as Cipher, "AES-128-CBC IV must be 16 bytes, got 8"],
      [dev.cipher.DES.new(rand(8), dev.cipher.MODE_CBC, rand(16)) as Cipher, "DES-CBC IV must be 8 bytes, got 16"],
    ];
    for (const [c, msg] of cases) {
      const err = await c.encrypt(rand(16)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadArgumentError);
      expect((err as Error).message).toBe(msg);
      // the streaming path reports the same
      const err2 = await c.encrypt(rand(3 * dev.info.mtu)).catch((e: unknown) => e);
      expect(err2).toBeInstanceOf(BadArgumentError);
      expect((err2 as Error).message).toBe(msg);
    }
  });

  it("ECB partial blocks, bad CBC padding and lengths are typed errors", async () => {
    const ecbC = dev.cipher.AES.new(rand(16), dev.cipher.MODE_ECB) as Cipher;
    await expect(ecbC.encrypt(rand(17))).rejects.toThrow("ECB data must be a multiple of 16 bytes");
    await expect(ecbC.encrypt(rand(3 * dev.info.mtu + 1))).rejects.toBeInstanceOf(BadArgumentError);
    const cbc = dev.cipher.AES.new(rand(16), dev.cipher.MODE_CBC, rand(16)) as Cipher;
    await expect(cbc.decrypt(rand(17))).rejects.toThrow("CBC ciphertext must be a multiple of 16 bytes");
    const other = dev.cipher.AES.new(rand(16), dev.cipher.MODE_CBC, rand(16)) as Cipher;
    // a wrong key gives bad padding with probability ~ 1 - 1/256 per try
    let padErr: unknown;
    for (let i = 0; i < 8 && padErr === undefined; i++)
      padErr = await other.decrypt(await cbc.encrypt(rand(40))).then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(padErr).toBeInstanceOf(CryptoError);
  });

  it("ARC4 and Blowfish were removed from Mbed TLS 3: UnsupportedAlgorithmError, locally and from the device", async () => {
    expect(() => dev.cipher.ARC4.new(rand(16))).toThrow(UnsupportedAlgorithmError);
    expect(() => dev.cipher.Blowfish.new(rand(16), dev.cipher.MODE_CBC, rand(8))).toThrow("BLOWFISH was removed from Mbed TLS 3");
    for (const fam of ["ARC4", "BLOWFISH"]) {
      const err = await dev.rpc.call(Op.cipherCrypt, [fam, "CBC", rand(16), rand(8), true, rand(8)]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsupportedAlgorithmError);
      expect((err as UnsupportedAlgorithmError).local).toBe(false);
      expect((err as Error).message).toBe(`${fam} was removed from Mbed TLS 3`);
    }
  });

  it("unknown names and modes are UnsupportedAlgorithmErrors; bad modes fail locally", async () => {
    const bad: [unknown[], string][] = [
      [["FOO", "CBC"], 'unknown cipher "FOO"'],
      [["ARIA", "OFB"], "ARIA has no OFB mode"],
      [["DES", "CTR"], "DES has no CTR mode"],
      [["AES", "XYZ"], "AES has no XYZ mode"],
    ];
    for (const [names, msg] of bad) {
      const err = await dev.rpc.call(Op.cipherCrypt, [...names, rand(16), rand(16), true, rand(16)]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsupportedAlgorithmError);
      expect((err as Error).message).toBe(msg);
    }
    expect(() => dev.cipher.ARIA.new(rand(16), dev.cipher.MODE_OFB, rand(16))).toThrow(UnsupportedAlgorithmError);
    expect(() => dev.cipher.DES.new(rand(8), dev.cipher.MODE_GCM, rand(12))).toThrow("DES has no GCM mode (it offers ECB, CBC)");
    expect(() => dev.cipher.AES.new(rand(16), 42, rand(16))).toThrow(ArgumentError);
    const aead = await dev.rpc.call(Op.cipherCrypt, ["AES", "GCM", rand(16), rand(12), true, rand(16)]).catch((e: unknown) => e);
    expect((aead as Error).message).toBe("GCM is an AEAD mode: use cipher_auth_encrypt/decrypt");
  });

  it("the device keeps serving, and every temporary context was freed", async () => {
    const c = dev.cipher.AES.new(utf8("My 16-bytes key."), dev.cipher.MODE_CBC, utf8("CBC needs an IV.")) as Cipher;
    expect(hex(await c.encrypt(utf8("This is a super-secret message!")))).toBe(
      "2a606b3698973d5bdf7f8896f509194a3793b5e07e099e96386dcd9c33046fe6",
    );
    await session.expectAt({ heap: "open", handles: true });
  });
});
