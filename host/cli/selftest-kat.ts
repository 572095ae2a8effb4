// Known-answer tests from published vectors, computed on the device:
//   FIPS 180-4 / RFC 6234 and FIPS 202 "abc" digests (and the 448-bit
//   two-block message), RFC 1321 MD5, the RIPEMD-160 authors' "abc";
//   RFC 4231 HMAC-SHA-256/512; RFC 5869 HKDF-SHA-256;
//   NIST SP 800-38A AES-CBC and AES-CTR; the GCM specification's test case 4
//   (the vectors SP 800-38D's validation uses); RFC 8439 ChaCha20-Poly1305.
import { AuthFailedError, type Device } from "../src/index.js";
import type { Check, Expect } from "./selftest.js";

const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ""), "hex"));
const text = (s: string) => new TextEncoder().encode(s);

/** Skips a check whose digest the firmware was built without. */
const needsHash = (alg: string) => (dev: Device) => (dev.hash.algorithmsAvailable.has(alg) ? undefined : `the firmware has no ${alg}`);

const ABC: [alg: string, source: string, digest: string][] = [
  ["md5", "RFC 1321", "900150983cd24fb0d6963f7d28e17f72"],
  ["sha1", "FIPS 180-4", "a9993e364706816aba3e25717850c26c9cd0d89d"],
  ["sha224", "FIPS 180-4", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"],
  ["sha256", "FIPS 180-4", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
  ["sha384", "FIPS 180-4", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"],
  [
    "sha512",
    "FIPS 180-4",
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
  ],
  ["sha3_256", "FIPS 202", "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"],
  [
    "sha3_512",
    "FIPS 202",
    "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
  ],
  ["ripemd160", "RIPEMD-160 paper", "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"],
];

const hashChecks: Check[] = ABC.map(([alg, source, digest]) => ({
  name: `kat-${alg}-abc`,
  title: `${alg}("abc"), ${source}`,
  skip: needsHash(alg),
  run: async (dev: Device, t: Expect) => t.equal(await dev.hash.digest(alg, text("abc")), digest, alg),
}));

// The 448-bit message of FIPS 180-4's examples, fed in two updates (a context that streams, not one-shot).
const twoBlock: Check = {
  name: "kat-sha256-2block",
  title: 'sha256("abcdbcde...nopq") in two updates, FIPS 180-4',
  run: async (dev, t) => {
    await using h = dev.hash.new("sha256");
    h.update(text("abcdbcdecdefdefgefghfghighijhijk"));
    h.update(text("ijkljklmklmnlmnomnopnopq"));
    t.equal(await h.digest(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "sha256");
  },
};

const hmacChecks: Check[] = [
  {
    name: "kat-hmac-sha256-rfc4231-1",
    title: "HMAC-SHA-256, RFC 4231 test case 1",
    run: async (dev, t) =>
      t.equal(
        await dev.hmac.digest(new Uint8Array(20).fill(0x0b), text("Hi There"), "sha256"),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        "HMAC",
      ),
  },
  {
    name: "kat-hmac-sha256-rfc4231-2",
    title: "HMAC-SHA-256, RFC 4231 test case 2",
    run: async (dev, t) =>
      t.equal(
        await dev.hmac.digest(text("Jefe"), text("what do ya want for nothing?"), "sha256"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        "HMAC",
      ),
  },
  {
    name: "kat-hmac-sha512-rfc4231-2",
    title: "HMAC-SHA-512, RFC 4231 test case 2",
    run: async (dev, t) =>
      t.equal(
        await dev.hmac.digest(text("Jefe"), text("what do ya want for nothing?"), "sha512"),
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554" +
          "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        "HMAC",
      ),
  },
  {
    name: "kat-hmac-sha256-rfc4231-6",
    title: "HMAC-SHA-256 with a key longer than a block, RFC 4231 test case 6",
    run: async (dev, t) =>
      t.equal(
        await dev.hmac.digest(new Uint8Array(131).fill(0xaa), text("Test Using Larger Than Block-Size Key - Hash Key First"), "sha256"),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        "HMAC",
      ),
  },
];

const hkdfChecks: Check[] = [
  {
    name: "kat-hkdf-sha256-rfc5869-1",
    title: "HKDF-SHA-256 extract and expand, RFC 5869 test case 1",
    run: async (dev, t) => {
      const prk = await dev.hkdf.extract("sha256", new Uint8Array(22).fill(0x0b), bytes("000102030405060708090a0b0c"));
      t.equal(prk, "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", "PRK");
      const okm = await dev.hkdf.expand("sha256", prk, bytes("f0f1f2f3f4f5f6f7f8f9"), 42);
      t.equal(okm, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865", "OKM");
    },
  },
  {
    name: "kat-hkdf-sha256-rfc5869-3",
    title: "HKDF-SHA-256 without salt and info, RFC 5869 test case 3",
    run: async (dev, t) => {
      const okm = await dev.hkdf.hkdf("sha256", new Uint8Array(22).fill(0x0b), new Uint8Array(0), new Uint8Array(0), 42);
      t.equal(okm, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8", "OKM");
    },
  },
];

// NIST SP 800-38A appendix F: the four-block plaintext shared by every mode.
const SP800_38A_PLAIN = bytes(
  "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51 30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710",
);
const SP800_38A_KEY128 = bytes("2b7e151628aed2a6abf7158809cf4f3c");

const aesChecks: Check[] = [
  {
    name: "kat-aes128-cbc-sp800-38a",
    title: "AES-128-CBC encrypt and decrypt, SP 800-38A F.2.1/F.2.2",
    run: async (dev, t) => {
      const c = dev.cipher.AES.new(SP800_38A_KEY128, dev.cipher.MODE_CBC, bytes("000102030405060708090a0b0c0d0e0f"));
      const ct = await c.encrypt(SP800_38A_PLAIN);
      // The SDK pads CBC with PKCS#7: the vector is the first four blocks.
      t.equal(
        ct.subarray(0, 64),
        "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2 73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7".replace(
          / /g,
          "",
        ),
        "ciphertext",
      );
      t.equal(await c.decrypt(ct), SP800_38A_PLAIN, "decrypted");
    },
  },
  {
    name: "kat-aes256-cbc-sp800-38a",
    title: "AES-256-CBC encrypt, SP 800-38A F.2.5",
    run: async (dev, t) => {
      const key = bytes("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
      const ct = await dev.cipher.AES.new(key, dev.cipher.MODE_CBC, bytes("000102030405060708090a0b0c0d0e0f")).encrypt(SP800_38A_PLAIN);
      t.equal(
        ct.subarray(0, 64),
        "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d 39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b".replace(
          / /g,
          "",
        ),
        "ciphertext",
      );
    },
  },
  {
    name: "kat-aes128-ctr-sp800-38a",
    title: "AES-128-CTR, SP 800-38A F.5.1",
    run: async (dev, t) => {
      const c = dev.cipher.AES.new(SP800_38A_KEY128, dev.cipher.MODE_CTR, bytes("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"));
      t.equal(
        await c.encrypt(SP800_38A_PLAIN),
        "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff 5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee".replace(
          / /g,
          "",
        ),
        "ciphertext",
      );
    },
  },
  {
    name: "kat-aes128-gcm-4",
    title: "AES-128-GCM with AAD, GCM spec test case 4 (SP 800-38D)",
    run: async (dev, t) => {
      const gcm = dev.cipher.AES.new(bytes("feffe9928665731c6d6a8f9467308308"), dev.cipher.MODE_GCM, bytes("cafebabefacedbaddecaf888"));
      const plain = bytes(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
      );
      const aad = bytes("feedfacedeadbeeffeedfacedeadbeefabaddad2");
      const [ct, tag] = await gcm.encrypt(plain, aad);
      t.equal(
        ct,
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
        "ciphertext",
      );
      t.equal(tag, "5bc94fbc3221a5db94fae95ae7121a47", "tag");
      t.equal(await gcm.decrypt(ct, tag, aad), plain, "decrypted");
      const bad = Uint8Array.from(tag);
      bad[15] = (bad[15] as number) ^ 0x80;
      t.true(
        await gcm.decrypt(ct, bad, aad).then(
          () => false,
          (e) => e instanceof AuthFailedError,
        ),
        "an altered tag is refused",
      );
    },
  },
];

const chachaPoly: Check = {
  name: "kat-chacha20-poly1305-rfc8439",
  title: "ChaCha20-Poly1305 AEAD, RFC 8439 section 2.8.2",
  run: async (dev, t) => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
    const aead = dev.cipher.CHACHA20_POLY1305.new(key, dev.cipher.MODE_CHACHAPOLY, bytes("070000004041424344454647"));
    const plain = text(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    );
    const aad = bytes("50515253c0c1c2c3c4c5c6c7");
    const [ct, tag] = await aead.encrypt(plain, aad);
    t.equal(
      ct,
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36" +
        "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116",
      "ciphertext",
    );
    t.equal(tag, "1ae10b594f09e26a7e902ecbd0600691", "tag");
    t.equal(await aead.decrypt(ct, tag, aad), plain, "decrypted");
  },
};

export const KAT_CHECKS: readonly Check[] = [...hashChecks, twoBlock, ...hmacChecks, ...hkdfChecks, ...aesChecks, chachaPoly];
