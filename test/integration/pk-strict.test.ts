// Strict signature verification (issue 15, SECURITY.md "What valid means"):
// non-canonical DER encodings of genuine ECDSA signatures the device made
// verify false on the device and in Node (OpenSSL), canonical and high-s
// ones true, on every Weierstrass curve both have; raw r||s signatures
// cross with WebCrypto and Node's ieee-p1363; RSA-PSS checks the salt length
// asked for and MGF1's hash; PKCS#1 v1.5 rejects every variant of the
// encoded block; OAEP with a label and SHA-384/512 interoperates with Node.
// Keys come from Node (import is quick on QEMU; RSA generation is not).
import {
  constants,
  createHash,
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
  privateDecrypt,
  privateEncrypt,
  publicEncrypt,
  webcrypto,
} from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ArgumentError,
  BadArgumentError,
  CryptoError,
  type Device,
  type ECC,
  hex,
  type RSA,
  UnsupportedAlgorithmError,
} from "../../host/src/index.js";
import { rand } from "./bytes.js";
import { buf, derSequence, NODE_CURVE, openssl, spkiOf, u8 } from "./pk-fixtures.js";
import { useCurveSession } from "./session.js";
import { SLOW_LINK } from "./target.js";

const session = useCurveSession({ endsAt: { heap: "open" } });
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

const cat = (...parts: (Uint8Array | number[])[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));
const big = (b: Uint8Array): bigint => (b.length ? BigInt(`0x${hex(b)}`) : 0n);
/** Minimal unsigned big-endian bytes (at least one). */
function bytesOf(v: bigint): Uint8Array {
  const h = v.toString(16);
  return Uint8Array.from(Buffer.from(h.length % 2 ? `0${h}` : h, "hex"));
}
/** DER content of a non-negative INTEGER: minimal, with a 0x00 sign byte before a high bit. */
const intBody = (v: bigint): Uint8Array => {
  const b = bytesOf(v);
  return (b[0] ?? 0) & 0x80 ? cat([0], b) : b;
};
type LenForm = "canonical" | "long";
/** A TLV; "long" writes the length one byte longer than needed (0x81 L below 128, 0x82 00 L above). */
function tlv(tag: number, body: Uint8Array, form: LenForm = "canonical"): Uint8Array {
  const n = body.length;
  const len = form === "long" ? (n < 0x80 ? [0x81, n] : [0x82, 0, n]) : n < 0x80 ? [n] : [0x81, n];
  return cat([tag], len, body);
}
const seq = (body: Uint8Array, form?: LenForm) => tlv(0x30, body, form);
const int = (body: Uint8Array, form?: LenForm) => tlv(0x02, body, form);
const sigDer = (r: bigint, s: bigint) => seq(cat(int(intBody(r)), int(intBody(s))));

/** r and s of a DER signature. */
function rsOf(der: Uint8Array): [bigint, bigint] {
  const [r, s] = derSequence(der);
  return [big(r?.body ?? new Uint8Array()), big(s?.body ?? new Uint8Array())];
}

/** The order n of a named curve, from OpenSSL's explicit parameters (ECParameters' fifth field). */
function curveOrder(nodeName: string): bigint {
  const pem = openssl(["ecparam", "-name", nodeName, "-param_enc", "explicit"]);
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  const order = derSequence(u8(der))[4];
  if (order?.tag !== 0x02) throw new Error(`no order in ${nodeName}'s parameters`);
  return big(order.body);
}

/**
 * Encodings of (r, s) other than the canonical one; each names the rule it
 * breaks. `negative` is an (r, s) one of whose canonical encodings has a
 * sign byte, which the "missing sign byte" variant drops.
 */
function badEncodings(r: bigint, s: bigint): [string, Uint8Array][] {
  const R = intBody(r);
  const S = intBody(s);
  const body = cat(int(R), int(S));
  return [
    ["long-form SEQUENCE length", seq(body, "long")],
    ["long-form length of r", seq(cat(int(R, "long"), int(S)))],
    ["long-form length of s", seq(cat(int(R), int(S, "long")))],
    ["zero prepended to r", seq(cat(int(cat([0], R)), int(S)))],
    ["zero prepended to s", seq(cat(int(R), int(cat([0], S))))],
    ["trailing byte after the SEQUENCE", cat(seq(body), [0])],
    ["trailing INTEGER inside the SEQUENCE", seq(cat(body, int(Uint8Array.of(0))))],
    ["extra SEQUENCE around it", seq(seq(body))],
    ["indefinite length (BER)", cat([0x30, 0x80], body, [0, 0])],
    ["r as OCTET STRING", seq(cat(tlv(0x04, R), int(S)))],
  ];
}

/** The same signature with the sign byte of r (or s) removed: a negative INTEGER with r's (s's) magnitude. */
function missingSignByte(r: bigint, s: bigint): Uint8Array | undefined {
  const R = intBody(r);
  const S = intBody(s);
  if (R[0] === 0 && R.length > 1) return seq(cat(int(R.subarray(1)), int(S)));
  if (S[0] === 0 && S.length > 1) return seq(cat(int(R), int(S.subarray(1))));
  return undefined;
}

/** The five curves issue 15 names first, then the others both sides have. */
const FIRST = ["secp256r1", "secp384r1", "secp521r1", "secp256k1", "brainpoolP256r1"];
const WEBCRYPTO: Readonly<Record<string, string>> = { secp256r1: "P-256", secp384r1: "P-384", secp521r1: "P-521" };
const digestFor = (bits: number) => (bits <= 256 ? "sha256" : bits <= 384 ? "sha384" : "sha512");
const webHash = (digestmod: string) => `SHA-${digestmod.slice(3)}`;

describe("ECDSA: canonical DER only", () => {
  it("the device has the five curves issue 15 names", () => {
    expect(session.curves).toEqual(expect.arrayContaining(FIRST));
  });

  const curves = [...FIRST, ...Object.keys(NODE_CURVE).filter((c) => !FIRST.includes(c))];
  describe.each(curves)("%s", (curve) => {
    const nodeName = NODE_CURVE[curve] as string;
    let key: ECC;
    let node: { privateKey: KeyObject; publicKey: KeyObject };
    let digestmod: string;
    let n: bigint;
    const present = () => session.curves.includes(curve);

    beforeAll(async () => {
      if (!present()) return;
      node = generateKeyPairSync("ec", { namedCurve: nodeName });
      key = await dev.pk.ECC.fromDER(u8(node.privateKey.export({ type: "sec1", format: "der" })));
      digestmod = digestFor(key.bits);
      n = curveOrder(nodeName);
    });
    afterAll(() => key?.close());

    it("non-canonical encodings of the device's signatures verify false on the device and in Node; canonical and high-s true", async () => {
      if (!present()) return; // not compiled in: pk-ecc.test.ts checks the device says so
      type Signed = { msg: Uint8Array; digest: Uint8Array; sig: Uint8Array };
      const both = async (m: Signed, sig: Uint8Array): Promise<[boolean, boolean]> => [
        await key.verifyDigest(m.digest, sig, digestmod),
        nodeVerify(digestmod, m.msg, { key: node.publicKey, dsaEncoding: "der" }, sig),
      ];
      // Signatures the device made (deterministic ECDSA: one per message);
      // more until one has an integer with a sign byte (r, s or n - s at
      // least 2^(8k-1); never when the order's bit length is not a multiple
      // of 8, as secp521r1's). That must happen within maxTries unless the
      // chance is too small (brainpoolP384r1 on QEMU).
      const nBits = n.toString(2).length;
      const f = nBits % 8 === 0 ? Number(n - (1n << BigInt(nBits - 1))) / Number(n) : 0;
      const chance = 1 - (1 - f) * (1 - Math.min(1, 2 * f));
      const maxTries = SLOW_LINK ? 8 : 64;
      const signed: Signed[] = [];
      let negative: [Signed, Uint8Array] | undefined;
      for (let i = 0; i < (SLOW_LINK ? 1 : 3) || (chance > 0 && !negative && i < maxTries); i++) {
        const msg = rand(100);
        const digest = u8(createHash(digestmod).update(msg).digest());
        const m = { msg, digest, sig: await key.signDigest(digest, digestmod) };
        signed.push(m);
        const [r, s] = rsOf(m.sig);
        expect(hex(sigDer(r, s)), "the device writes canonical DER").toBe(hex(m.sig));
        const neg = missingSignByte(r, s) ?? missingSignByte(r, n - s);
        if (neg) negative ??= [m, neg];
      }
      for (const m of signed.slice(0, SLOW_LINK ? 1 : 2)) {
        const [r, s] = rsOf(m.sig);
        expect(await both(m, m.sig), "canonical").toEqual([true, true]);
        expect(await both(m, sigDer(r, n - s)), "high s").toEqual([true, true]);
        for (const [what, bad] of [...badEncodings(r, s), ...badEncodings(r, n - s).slice(3, 5)]) {
          expect(await both(m, bad), what).toEqual([false, false]);
        }
      }
      if ((1 - chance) ** maxTries < 1e-4) expect(negative, "a signature with a sign byte came up").toBeDefined();
      if (negative) expect(await both(...negative), "missing sign byte").toEqual([false, false]);
      // The message path (hashed on the device) is the same verify.
      const first = signed[0] as Signed;
      const [r, s] = rsOf(first.sig);
      expect(await key.verify(first.msg, seq(cat(int(intBody(r)), int(intBody(s))), "long"), digestmod)).toBe(false);
      expect(await key.verify(first.msg, first.sig, digestmod)).toBe(true);
    });

    it('format "raw": r||s padded to the order size, both ways with Node (ieee-p1363) and WebCrypto', async () => {
      if (!present()) return;
      const size = Math.ceil(n.toString(2).length / 8);
      const msg = rand(64);
      const raw = await key.sign(msg, digestmod, { format: "raw" });
      expect(raw.length).toBe(2 * size);
      expect(nodeVerify(digestmod, msg, { key: node.publicKey, dsaEncoding: "ieee-p1363" }, raw)).toBe(true);
      expect(await key.verify(msg, raw, digestmod, { format: "raw" })).toBe(true);
      const fromNode = u8(nodeSign(digestmod, msg, { key: node.privateKey, dsaEncoding: "ieee-p1363" }));
      expect(await key.verify(msg, fromNode, digestmod, { format: "raw" })).toBe(true);
      // A raw signature is not DER, and the wrong length is false (not an error).
      expect(await key.verify(msg, fromNode, digestmod)).toBe(false);
      expect(await key.verify(msg, fromNode.subarray(1), digestmod, { format: "raw" })).toBe(false);
      expect(await key.verify(msg, cat(fromNode, [0]), digestmod, { format: "raw" })).toBe(false);
      const flipped = fromNode.slice();
      flipped[size - 1] = (flipped[size - 1] ?? 0) ^ 1;
      expect(await key.verify(msg, flipped, digestmod, { format: "raw" })).toBe(false);

      const namedCurve = WEBCRYPTO[curve];
      if (!namedCurve) return; // WebCrypto has the NIST curves only
      const algo = { name: "ECDSA", namedCurve };
      const ecdsa = { name: "ECDSA", hash: webHash(digestmod) };
      const pub = await webcrypto.subtle.importKey("spki", buf(await key.exportPublicKey("DER")), algo, false, ["verify"]);
      expect(await webcrypto.subtle.verify(ecdsa, pub, buf(raw), buf(msg))).toBe(true);
      const prv = await webcrypto.subtle.importKey("pkcs8", node.privateKey.export({ type: "pkcs8", format: "der" }), algo, false, [
        "sign",
      ]);
      const web = new Uint8Array(await webcrypto.subtle.sign(ecdsa, prv, buf(msg)));
      expect(await key.verify(msg, web, digestmod, { format: "raw" })).toBe(true);
      expect(await key.verify(rand(64), web, digestmod, { format: "raw" })).toBe(false);
    });
  });

  it("a non-exportable key verifies the same way; an unknown format is ArgumentError", async () => {
    const k = dev.pk.ECC();
    await k.generate({ exportable: false });
    const msg = rand(32);
    const sig = await k.sign(msg);
    const [r, s] = rsOf(sig);
    expect(await k.verify(msg, sig)).toBe(true);
    expect(await k.verify(msg, seq(cat(int(cat([0], intBody(r))), int(intBody(s)))))).toBe(false);
    expect(await k.verify(msg, await k.sign(msg, "sha256", { format: "raw" }), "sha256", { format: "raw" })).toBe(true);
    await expect(k.sign(msg, "sha256", { format: "p1363" as "raw" })).rejects.toBeInstanceOf(ArgumentError);
    await k.close();
  });
});

// ------------------------------------------------------------ RSA

/** MGF1 (RFC 8017 B.2.1) over `hash`. */
function mgf1(hash: string, seed: Uint8Array, len: number): Uint8Array {
  const out: number[] = [];
  for (let c = 0; out.length < len; c++) {
    out.push(
      ...createHash(hash)
        .update(seed)
        .update(Uint8Array.of(c >>> 24, (c >>> 16) & 255, (c >>> 8) & 255, c & 255))
        .digest(),
    );
  }
  return Uint8Array.from(out.slice(0, len));
}

/** EMSA-PSS-ENCODE (RFC 8017 9.1.1) with its own MGF1 hash, for a modulus of modBits. */
function emsaPss(hash: string, mgfHash: string, mHash: Uint8Array, salt: Uint8Array, modBits: number): Uint8Array {
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const h = u8(createHash(hash).update(new Uint8Array(8)).update(mHash).update(salt).digest());
  const db = cat(new Uint8Array(emLen - salt.length - h.length - 2), [1], salt);
  const mask = mgf1(mgfHash, h, db.length);
  const masked = db.map((b, i) => b ^ (mask[i] ?? 0));
  masked[0] = (masked[0] ?? 0) & (0xff >> (8 * emLen - emBits));
  return cat(masked, h, [0xbc]);
}

/** RSASP1 of an encoded block: the raw private-key operation (no padding). */
const rawSign = (key: KeyObject, em: Uint8Array, k: number): Uint8Array =>
  u8(privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, cat(new Uint8Array(k - em.length), em)));

describe("RSA", () => {
  let node: { privateKey: KeyObject; publicKey: KeyObject };
  let key: RSA;
  let pub: RSA;
  const msg = rand(200);
  const mHash = u8(createHash("sha256").update(msg).digest());
  const pss = (saltLength: number) => ({ key: node.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });

  beforeAll(async () => {
    node = generateKeyPairSync("rsa", { modulusLength: 2048 });
    key = await dev.pk.RSA.fromDER(u8(node.privateKey.export({ type: "pkcs1", format: "der" })));
    pub = await dev.pk.RSA.fromDER(spkiOf(node.publicKey));
  });

  it("PSS from Node verifies with the salt length asked for (default: the digest's), any only when asked", async () => {
    const max = 256 - 32 - 2;
    for (const salt of [0, 20, 32, 64, max]) {
      const sig = u8(nodeSign("sha256", msg, { key: node.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: salt }));
      expect(await pub.verify(msg, sig, "sha256", { padding: "pss" }), `salt ${salt}, default`).toBe(salt === 32);
      expect(await pub.verify(msg, sig, "sha256", { padding: "pss", saltLength: "digest" }), `salt ${salt}, "digest"`).toBe(salt === 32);
      expect(await pub.verify(msg, sig, "sha256", { padding: "pss", saltLength: salt }), `salt ${salt}, asked`).toBe(true);
      expect(await pub.verifyDigest(mHash, sig, "sha256", { scheme: "pss", saltLength: salt === 20 ? 0 : 20 })).toBe(false);
      expect(await pub.verify(msg, sig, "sha256", { padding: "pss", saltLength: "any" }), `salt ${salt}, any`).toBe(true);
    }
  });

  it("PSS from the device carries the salt length asked for; Node agrees", async () => {
    for (const salt of [0, 64]) {
      const sig = await key.sign(msg, "sha256", { padding: "pss", saltLength: salt });
      expect(nodeVerify("sha256", msg, pss(salt), sig), `salt ${salt}`).toBe(true);
      expect(nodeVerify("sha256", msg, pss(32), sig), `salt ${salt} is not 32`).toBe(false);
      expect(await pub.verify(msg, sig, "sha256", { padding: "pss", saltLength: salt })).toBe(true);
      expect(await pub.verify(msg, sig, "sha256", { padding: "pss" })).toBe(false);
    }
    // A salt that does not fit, "any" on signing, a salt for v1.5: refused before any signing.
    await expect(key.sign(msg, "sha256", { padding: "pss", saltLength: 256 - 32 - 1 })).rejects.toBeInstanceOf(BadArgumentError);
    await expect(key.sign(msg, "sha256", { padding: "pss", saltLength: "any" })).rejects.toBeInstanceOf(ArgumentError);
    await expect(key.sign(msg, "sha256", { saltLength: 20 })).rejects.toBeInstanceOf(ArgumentError);
    await expect(key.sign(msg, "sha256", { scheme: "pkcs1v15", padding: "pss" })).rejects.toBeInstanceOf(ArgumentError);
    await expect(key.sign(msg, "sha256", { format: "raw" })).rejects.toBeInstanceOf(ArgumentError);
  });

  it("PSS with another MGF1 hash, or not as long as the modulus, is false on the device and in Node", async () => {
    const salt = rand(32);
    const good = rawSign(node.privateKey, emsaPss("sha256", "sha256", mHash, salt, 2048), 256);
    const both = async (sig: Uint8Array, saltLength: number | "any" = 32) => [
      await pub.verifyDigest(mHash, sig, "sha256", { padding: "pss", saltLength }),
      nodeVerify("sha256", msg, pss(32), sig),
    ];
    expect(await both(good), "our EMSA-PSS encoder (MGF1-SHA-256)").toEqual([true, true]);
    for (const mgf of ["sha1", "sha384", "sha512"]) {
      const bad = rawSign(node.privateKey, emsaPss("sha256", mgf, mHash, salt, 2048), 256);
      expect(await both(bad), `MGF1 over ${mgf}`).toEqual([false, false]);
      expect(await both(bad, "any"), `MGF1 over ${mgf}, any salt`).toEqual([false, false]);
    }
    expect(await both(cat([0], good)), "a byte longer").toEqual([false, false]);
    expect(await both(good.subarray(1)), "a byte shorter").toEqual([false, false]);
  });

  it("PKCS#1 v1.5: only the exact encoded block verifies, on the device and in Node", async () => {
    const k = 256;
    const sha256Oid = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    const digestInfo = (oid: number[], params: number[], form?: LenForm, extra: number[] = []) =>
      seq(cat(seq(cat(oid, params)), tlv(0x04, mHash), extra), form);
    const block = (t: Uint8Array, type = 1, tail: number[] = []) =>
      cat([0, type], new Array(k - 3 - t.length - tail.length).fill(0xff), [0], t, tail);
    const canonical = digestInfo(sha256Oid, [0x05, 0x00]);
    const both = async (em: Uint8Array): Promise<[boolean, boolean]> => {
      const sig = rawSign(node.privateKey, em, k);
      return [await pub.verifyDigest(mHash, sig, "sha256"), nodeVerify("sha256", msg, node.publicKey, sig)];
    };
    expect(await both(block(canonical)), "canonical block").toEqual([true, true]);
    const sha512_256Oid = [...sha256Oid.slice(0, -1), 0x06];
    const ps = new Array(10).fill(0xff);
    for (const [what, em] of [
      ["DigestInfo without the NULL parameters", block(digestInfo(sha256Oid, []))],
      ["DigestInfo with a long-form length", block(digestInfo(sha256Oid, [0x05, 0x00], "long"))],
      ["DigestInfo with a byte after the digest inside it", block(digestInfo(sha256Oid, [0x05, 0x00], undefined, [0]))],
      ["another hash's OID (SHA-512/256, same length)", block(digestInfo(sha512_256Oid, [0x05, 0x00]))],
      ["trailing bytes after the DigestInfo", block(canonical, 1, [0, 0, 0, 0])],
      ["garbage between the padding and the DigestInfo", cat([0, 1], ps, [0], new Array(k - 13 - canonical.length).fill(0x42), canonical)],
      ["block type 2", block(canonical, 2)],
    ] as const) {
      expect(await both(em), what).toEqual([false, false]);
    }
    const sig = u8(nodeSign("sha256", msg, node.privateKey));
    expect(await pub.verify(msg, sig)).toBe(true);
    expect(await pub.verify(msg, cat([0], sig)), "a byte longer").toBe(false);
    expect(nodeVerify("sha256", msg, node.publicKey, cat([0], sig)), "Node: a byte longer").toBe(false);
    expect(await pub.verify(msg, sig.subarray(1)), "a byte shorter").toBe(false);
    expect(await pub.verify(msg, cat(sig, [0])), "a trailing byte").toBe(false);
  });

  it("a small key's default PSS salt is what fits (RSA-1024 with SHA-512: 62 bytes), on signing and verifying", async () => {
    const small = generateKeyPairSync("rsa", { modulusLength: 1024 });
    const k1024 = await dev.pk.RSA.fromDER(u8(small.privateKey.export({ type: "pkcs1", format: "der" })));
    const sig = await k1024.sign(msg, "sha512", { padding: "pss" });
    const p = (saltLength: number) => ({ key: small.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
    expect(nodeVerify("sha512", msg, p(62), sig)).toBe(true);
    expect(await k1024.verify(msg, sig, "sha512", { padding: "pss" })).toBe(true);
    await k1024.close();
  });

  describe.each(["sha384", "sha512"])("OAEP with %s and a label", (hash) => {
    const label = rand(24);
    const data = rand(60);

    it("decrypts what Node encrypts; another label or none is CryptoError", async () => {
      const ct = u8(
        publicEncrypt({ key: node.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash, oaepLabel: label }, data),
      );
      expect(hex(await key.decrypt(ct, { padding: "oaep", hash, label }))).toBe(hex(data));
      if (hash === "sha512" && SLOW_LINK) return; // each failure is a private-key operation
      await expect(key.decrypt(ct, { padding: "oaep", hash })).rejects.toBeInstanceOf(CryptoError);
      await expect(key.decrypt(ct, { padding: "oaep", hash, label: rand(24) })).rejects.toBeInstanceOf(CryptoError);
    });

    it("encrypts what Node decrypts (mgf1Hash may be named when it is the same)", async () => {
      const ct = await pub.encrypt(data, { padding: "oaep", hash, mgf1Hash: hash, label });
      const back = privateDecrypt(
        { key: node.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash, oaepLabel: label },
        ct,
      );
      expect(hex(u8(back))).toBe(hex(data));
    });
  });

  it("unsupported OAEP combinations are typed errors before anything is sent", async () => {
    const before = await dev.stats();
    await expect(pub.encrypt(rand(8), { padding: "oaep", hash: "sha256", mgf1Hash: "sha1" })).rejects.toBeInstanceOf(
      UnsupportedAlgorithmError,
    );
    await expect(pub.encrypt(rand(8), { label: rand(4) })).rejects.toBeInstanceOf(ArgumentError);
    await expect(pub.encrypt(rand(8), { padding: "oaep", hash: "sha256", digestmod: "sha1" })).rejects.toBeInstanceOf(ArgumentError);
    const after = await dev.stats();
    expect(after.rxFrames - before.rxFrames, "only the second stats request in between").toBe(1);
  });

  it("frees its keys", async () => {
    await Promise.all([key.close(), pub.close()]);
  });
});
