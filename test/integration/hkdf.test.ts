// dev.hkdf against RFC 5869's appendix A test cases and Node's
// crypto.hkdfSync (OpenSSL) on random inputs, on the target under test.
import { hkdfSync, randomInt } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { HASH_ALGS } from "../../host/src/base/protocol.generated.js";
import {
  ArgumentError,
  BadArgumentError,
  type Device,
  fromHex,
  hex,
  TooLargeError,
  UnsupportedAlgorithmError,
} from "../../host/src/index.js";
import { rand } from "./bytes.js";
import { useSession } from "./session.js";

const session = useSession();
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

/** Bytes from..to inclusive, as RFC 5869's long test inputs. */
const range = (from: number, to: number) => Uint8Array.from({ length: to - from + 1 }, (_, i) => from + i);
const fill = (b: number, n: number) => new Uint8Array(n).fill(b);

interface Rfc5869Case {
  name: string;
  hash: string;
  ikm: Uint8Array;
  salt: Uint8Array;
  info: Uint8Array;
  length: number;
  prk: string;
  okm: string;
}

// RFC 5869 appendix A. Test cases 3, 6 and 7 give no salt and no info: no
// salt means HashLen zero bytes, which HMAC's zero padding makes equal to an
// empty salt.
const RFC5869: Rfc5869Case[] = [
  {
    name: "A.1 test case 1: basic test case with SHA-256",
    hash: "sha256",
    ikm: fill(0x0b, 22),
    salt: range(0x00, 0x0c),
    info: range(0xf0, 0xf9),
    length: 42,
    prk: "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
    okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
  },
  {
    name: "A.2 test case 2: SHA-256 with longer inputs/outputs",
    hash: "sha256",
    ikm: range(0x00, 0x4f),
    salt: range(0x60, 0xaf),
    info: range(0xb0, 0xff),
    length: 82,
    prk: "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
    okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
  },
  {
    name: "A.3 test case 3: SHA-256 with zero-length salt/info",
    hash: "sha256",
    ikm: fill(0x0b, 22),
    salt: new Uint8Array(0),
    info: new Uint8Array(0),
    length: 42,
    prk: "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
    okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
  },
  {
    name: "A.4 test case 4: basic test case with SHA-1",
    hash: "sha1",
    ikm: fill(0x0b, 11),
    salt: range(0x00, 0x0c),
    info: range(0xf0, 0xf9),
    length: 42,
    prk: "9b6c18c432a7bf8f0e71c8eb88f4b30baa2ba243",
    okm: "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896",
  },
  {
    name: "A.5 test case 5: SHA-1 with longer inputs/outputs",
    hash: "sha1",
    ikm: range(0x00, 0x4f),
    salt: range(0x60, 0xaf),
    info: range(0xb0, 0xff),
    length: 82,
    prk: "8adae09a2a307059478d309b26c4115a224cfaf6",
    okm: "0bd770a74d1160f7c9f12cd5912a06ebff6adcae899d92191fe4305673ba2ffe8fa3f1a4e5ad79f3f334b3b202b2173c486ea37ce3d397ed034c7f9dfeb15c5e927336d0441f4c4300e2cff0d0900b52d3b4",
  },
  {
    name: "A.6 test case 6: SHA-1 with zero-length salt/info",
    hash: "sha1",
    ikm: fill(0x0b, 22),
    salt: new Uint8Array(0),
    info: new Uint8Array(0),
    length: 42,
    prk: "da8c8a73c7fa77288ec6f5e7c297786aa0d32d01",
    okm: "0ac1af7002b3d761d1e55298da9d0506b9ae52057220a306e07b6b87e8df21d0ea00033de03984d34918",
  },
  {
    name: "A.7 test case 7: SHA-1, salt not provided (defaults to HashLen zero octets), zero-length info",
    hash: "sha1",
    ikm: fill(0x0c, 22),
    salt: new Uint8Array(0),
    info: new Uint8Array(0),
    length: 42,
    prk: "2adccada18779e7c2077ad2eb19d3f3e731385dd",
    okm: "2c91117204d745f3500d636a62f64f0ab3bae548aa53d423b0d1f27ebba6f5e5673a081d70cce7acfc48",
  },
];

describe("RFC 5869 appendix A", () => {
  it.each(RFC5869.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const prk = await dev.hkdf.extract(c.hash, c.ikm, c.salt);
    expect(hex(prk)).toBe(c.prk);
    expect(hex(await dev.hkdf.expand(c.hash, prk, c.info, c.length))).toBe(c.okm);
    expect(hex(await dev.hkdf.hkdf(c.hash, c.ikm, c.salt, c.info, c.length))).toBe(c.okm);
  });
  it("test case 7 with the explicit HashLen-zeros salt gives the same key", async () => {
    const c = RFC5869[6] as Rfc5869Case;
    expect(hex(await dev.hkdf.hkdf("sha1", c.ikm, new Uint8Array(20), c.info, c.length))).toBe(c.okm);
    expect(hex(await dev.hkdf.extract("sha1", c.ikm))).toBe(c.prk); // salt defaults to empty
  });
});

/** Digests of the protocol that Node's hkdfSync also supports. */
const nodeHkdfAlgs = HASH_ALGS.filter((a) => {
  try {
    hkdfSync(a.name.replace("_", "-"), new Uint8Array(1), new Uint8Array(0), new Uint8Array(0), 1);
    return true;
  } catch {
    return false;
  }
});

describe("equality with Node's crypto.hkdfSync", () => {
  it("Node supports most of the device's digests", () => {
    expect(nodeHkdfAlgs.map((a) => a.name)).toEqual(expect.arrayContaining(["sha1", "sha256", "sha384", "sha512"]));
  });

  it.each(nodeHkdfAlgs.map((a) => [a.name, a] as const))("%s on random inputs and lengths", async (name, alg) => {
    const chunk = dev.chunkSize - 64;
    const maxLen = Math.min(255 * alg.digestSize, chunk);
    const lengths = [0, 1, alg.digestSize - 1, alg.digestSize, alg.digestSize + 1, maxLen, randomInt(1, maxLen + 1)];
    for (const length of lengths) {
      const ikm = rand(randomInt(0, 200));
      const salt = rand(randomInt(0, 200));
      const info = rand(randomInt(0, 200));
      const want = hex(new Uint8Array(hkdfSync(name.replace("_", "-"), ikm, salt, info, length)));
      expect(hex(await dev.hkdf.hkdf(name, ikm, salt, info, length)), `${name} L=${length}`).toBe(want);
      const prk = await dev.hkdf.extract(name, ikm, salt);
      expect(prk.length).toBe(alg.digestSize);
      expect(hex(await dev.hkdf.expand(name, prk, info, length))).toBe(want);
    }
  });
});

describe("bad arguments", () => {
  it("length above 255 x digest size is the device's BadArgumentError", async () => {
    const prk = rand(32);
    await expect(dev.hkdf.expand("sha256", prk, new Uint8Array(0), 255 * 32 + 1)).rejects.toThrow(BadArgumentError);
    await expect(dev.hkdf.hkdf("sha1", rand(8), rand(8), rand(8), 255 * 20 + 1)).rejects.toThrow(BadArgumentError);
    // exactly 255 x digest size is allowed (on links whose frames carry it)
    const alg = HASH_ALGS.filter((a) => 255 * a.digestSize <= dev.chunkSize).at(-1);
    if (alg) {
      const n = 255 * alg.digestSize;
      expect((await dev.hkdf.expand(alg.name, rand(alg.digestSize), new Uint8Array(0), n)).length).toBe(n);
    }
  });
  it("length within RFC 5869 but above one frame is TooLargeError (where the MTU is the tighter bound)", async () => {
    const alg = HASH_ALGS.find((a) => 255 * a.digestSize > dev.chunkSize);
    if (!alg) return; // every RFC-valid length fits this device's frames
    await expect(dev.hkdf.expand(alg.name, rand(alg.digestSize), new Uint8Array(0), dev.chunkSize + 1)).rejects.toThrow(TooLargeError);
  });
  it("a prk shorter than the digest is BadArgumentError", async () => {
    await expect(dev.hkdf.expand("sha256", rand(31), new Uint8Array(0), 16)).rejects.toThrow(BadArgumentError);
  });
  it("negative or fractional lengths, non-byte inputs and unknown digests fail locally", async () => {
    await expect(dev.hkdf.hkdf("sha256", rand(8), rand(8), rand(8), -1)).rejects.toThrow(ArgumentError);
    await expect(dev.hkdf.expand("sha256", rand(32), rand(8), 1.5)).rejects.toThrow(ArgumentError);
    await expect(dev.hkdf.extract("sha256", "ikm" as unknown as Uint8Array)).rejects.toThrow(ArgumentError);
    await expect(dev.hkdf.extract("blake2b", rand(8))).rejects.toThrow(UnsupportedAlgorithmError);
    await expect(dev.hkdf.extract("sha256", rand(dev.chunkSize))).rejects.toThrow(ArgumentError);
  });
  it("the device keeps serving", async () => {
    const c = RFC5869[0] as Rfc5869Case;
    expect(hex(await dev.hkdf.hkdf(c.hash, c.ikm, c.salt, c.info, c.length))).toBe(c.okm);
    expect(fromHex(c.okm).length).toBe(42);
  });
});
