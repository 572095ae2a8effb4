// dev.pk.RSA against Node's crypto and the openssl CLI (OpenSSL 3): keys
// generated on the device are read by OpenSSL, keys OpenSSL writes (PKCS#1,
// PKCS#8, encrypted PKCS#8, SPKI; PEM and DER) are read by the device, and
// signatures and ciphertexts cross in both directions (PKCS#1 v1.5, PSS,
// OAEP). On a slow link, RSA-3072 is imported from Node instead of generated.
import {
  constants,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
  publicEncrypt,
  randomBytes,
} from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Limits } from "../../host/src/base/protocol.generated.js";
import {
  ArgumentError,
  BadArgumentError,
  type BusyInfo,
  CryptoError,
  type Device,
  hex,
  type RSA,
  UnsupportedAlgorithmError,
  utf8,
} from "../../host/src/index.js";
import { rand } from "./bytes.js";
import { buf, nodePrivate, nodePublic, openssl, spkiOf, u8 } from "./pk-fixtures.js";
import { useSession } from "./session.js";
import { SLOW_LINK } from "./target.js";

const session = useSession();
let dev: Device;
const scratch = mkdtempSync(join(tmpdir(), "mbedlink-pk-rsa-"));

/** A key on the device with its private half as Node knows it. */
interface Pair {
  label: string;
  dev: RSA;
  node: KeyObject;
}
const pairs: Pair[] = [];
let generated: RSA;
let generatedDer: Uint8Array | undefined;
let generateMs = 0;
const busy: BusyInfo[] = [];
/** Busy events seen during the RSA-2048 generation. */
let generateBusy: BusyInfo[] = [];

beforeAll(async () => {
  dev = session.dev;
  dev.on("busy", (b) => busy.push(b));
  generated = dev.pk.RSA();
  const t0 = performance.now();
  generatedDer = await generated.generate();
  generateMs = performance.now() - t0;
  generateBusy = [...busy];
  if (!generatedDer) throw new Error("generate() of an exportable key returned no DER");
  pairs.push({ label: "RSA-2048 generated on the device", dev: generated, node: nodePrivate(generatedDer, "pkcs1") });
  if (SLOW_LINK) {
    const k = generateKeyPairSync("rsa", { modulusLength: 3072 }).privateKey;
    pairs.push({
      label: "RSA-3072 made by Node",
      dev: await dev.pk.RSA.fromPEM(k.export({ type: "pkcs8", format: "pem" }) as string),
      node: k,
    });
  } else {
    const k3 = dev.pk.RSA();
    const der = await k3.generate(3072, 65537);
    if (!der) throw new Error("no DER");
    pairs.push({ label: "RSA-3072 generated on the device", dev: k3, node: nodePrivate(der, "pkcs1") });
  }
}, 600_000);

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

const msg = utf8("Please sign here.");

/** openssl pkeyutl with a private key file (Node refuses PKCS#1 v1.5 private decryption since CVE-2023-46809). */
function opensslDecrypt(key: KeyObject, ct: Uint8Array, opts: string[]): Uint8Array {
  const keyFile = join(scratch, `k${randomBytes(4).toString("hex")}.pem`);
  writeFileSync(keyFile, key.export({ type: "pkcs8", format: "pem" }) as string);
  const out = join(scratch, "out.bin");
  openssl(["pkeyutl", "-decrypt", "-inkey", keyFile, "-out", out, ...opts], ct);
  return u8(readFileSync(out));
}

describe("generate on the device", () => {
  it("makes a 2048-bit key OpenSSL accepts, exportable as DER and PEM", async () => {
    expect([generated.name, generated.keySize, generated.bits, generated.isPrivate, generated.exportable]).toEqual([
      "RSA",
      256,
      2048,
      true,
      true,
    ]);
    expect(hex(await generated.exportKey("DER"))).toBe(hex(generatedDer ?? new Uint8Array()));
    const pem = await generated.exportKey("PEM");
    expect(pem.startsWith("-----BEGIN RSA PRIVATE KEY-----\n")).toBe(true);
    const nodeKey = createPrivateKey(pem);
    expect(nodeKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(nodeKey.asymmetricKeyDetails?.publicExponent).toBe(65537n);
    // The public key the device exports is the private key's public half, for Node and for openssl.
    const spki = await generated.exportPublicKey("DER");
    expect(hex(spki)).toBe(hex(spkiOf(nodeKey)));
    const pubPem = await generated.exportPublicKey("PEM");
    expect(pubPem).toBe(openssl(["pkey", "-pubout"], pem));
    expect(openssl(["pkey", "-pubin", "-pubout"], pubPem)).toBe(pubPem);
    expect(openssl(["rsa", "-check", "-noout"], pem)).toMatch(/RSA key ok/);
    // RAW: the modulus, as Node's JWK "n".
    const n = Buffer.from(nodeKey.export({ format: "jwk" }).n as string, "base64url");
    expect(hex(await generated.exportPublicKey("RAW"))).toBe(n.toString("hex"));
  });

  it("sends busy events while a long generation runs (when it takes longer than busy_interval_ms)", () => {
    // Native generation may finish before the first busy interval; the emulated Cortex-M4 does not.
    if (generateMs > 3 * Limits.busyIntervalMs) {
      expect(generateBusy.filter((b) => b.op === "pk_generate").length).toBeGreaterThan(0);
    }
    for (const b of busy) expect(b.elapsedMs).toBeGreaterThan(0);
    console.log(`RSA-2048 generation took ${Math.round(generateMs)} ms with ${generateBusy.length} busy events`);
  });

  it("takes another exponent, and a key that is not exportable returns no DER", async () => {
    await using k = dev.pk.RSA();
    expect(await k.generate(1024, 3, { exportable: false })).toBeUndefined();
    expect([k.bits, k.keySize, k.exportable, k.isPrivate]).toEqual([1024, 128, false, true]);
    const pub = nodePublic(await k.exportPublicKey());
    expect(pub.asymmetricKeyDetails?.publicExponent).toBe(3n);
    const sig = await k.sign(msg);
    expect(nodeVerify("sha256", msg, pub, sig)).toBe(true);
  });

  it("an RSA object gets its key once", async () => {
    await expect(generated.generate()).rejects.toBeInstanceOf(ArgumentError);
  });
});

describe.each([0, 1])("key %i", (i) => {
  const pair = () => pairs[i] as Pair;

  it("signs with PKCS#1 v1.5 and PSS; Node verifies", async () => {
    const { dev: k, node, label } = pair();
    const data = rand(300);
    for (const digestmod of ["sha1", "sha256", "sha512"]) {
      const sig = await k.sign(data, digestmod);
      expect(sig.length, label).toBe(k.keySize);
      expect(nodeVerify(digestmod, data, node, sig), `${label} ${digestmod}`).toBe(true);
      expect(await k.verify(data, sig, digestmod)).toBe(true);
    }
    for (const digestmod of ["sha256", "sha384"]) {
      const sig = await k.sign(data, digestmod, { scheme: "pss" });
      const saltLength = digestmod === "sha256" ? 32 : 48;
      expect(nodeVerify(digestmod, data, { key: node, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, sig)).toBe(true);
      expect(await k.verify(data, sig, digestmod, { scheme: "pss" })).toBe(true);
    }
  });

  it("verifies Node's PKCS#1 v1.5 and PSS signatures (the salt length asked for) and rejects wrong ones", async () => {
    const { dev: k, node } = pair();
    const data = rand(1000);
    const sig = u8(nodeSign("sha256", data, node));
    expect(await k.verify(data, sig)).toBe(true);
    expect(await k.verify(utf8("Sorry, wrong message."), sig)).toBe(false);
    const bad = sig.slice();
    bad[10] = (bad[10] ?? 0) ^ 1;
    expect(await k.verify(data, bad)).toBe(false);
    expect(await k.verify(data, sig.subarray(1))).toBe(false);
    expect(await k.verify(data, sig, "sha512")).toBe(false);
    // Salt as long as the digest by default; others only when asked (pk-strict.test.ts has the rest).
    for (const [saltLength, asked] of [
      [constants.RSA_PSS_SALTLEN_DIGEST, undefined],
      [constants.RSA_PSS_SALTLEN_MAX_SIGN, "any"],
      [0, 0],
    ] as const) {
      const pss = u8(nodeSign("sha256", data, { key: node, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }));
      expect(await k.verify(data, pss, "sha256", { scheme: "pss", saltLength: asked }), `salt ${saltLength}`).toBe(true);
      expect(await k.verify(data, pss, "sha256")).toBe(false); // not a PKCS#1 v1.5 signature
    }
    // signDigest / verifyDigest take a digest computed elsewhere.
    const digest = await dev.hash.digest("sha384", data);
    const sigD = await k.signDigest(digest, "sha384");
    expect(nodeVerify("sha384", data, node, sigD)).toBe(true);
    expect(await k.verifyDigest(digest, sigD, "sha384")).toBe(true);
  });

  it("decrypts what Node encrypts (PKCS#1 v1.5, OAEP sha1 and sha256)", async () => {
    const { dev: k, node } = pair();
    const data = rand(40);
    const v15 = u8(publicEncrypt({ key: node, padding: constants.RSA_PKCS1_PADDING }, data));
    expect(hex(await k.decrypt(v15))).toBe(hex(data));
    for (const oaepHash of ["sha1", "sha256"]) {
      const ct = u8(publicEncrypt({ key: node, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data));
      expect(hex(await k.decrypt(ct, { padding: "oaep", digestmod: oaepHash })), oaepHash).toBe(hex(data));
    }
    // OAEP's default digest is sha1, as OpenSSL's.
    const ct = u8(publicEncrypt({ key: node, padding: constants.RSA_PKCS1_OAEP_PADDING }, data));
    expect(hex(await k.decrypt(ct, { padding: "oaep" }))).toBe(hex(data));
    // A ciphertext under another padding does not decrypt.
    await expect(k.decrypt(v15, { padding: "oaep" })).rejects.toBeInstanceOf(CryptoError);
  });

  it("encrypts what OpenSSL decrypts (PKCS#1 v1.5, OAEP sha1 and sha256)", async () => {
    const { dev: k, node } = pair();
    const data = rand(60);
    const v15 = await k.encrypt(data);
    expect(v15.length).toBe(k.keySize);
    expect(hex(opensslDecrypt(node, v15, ["-pkeyopt", "rsa_padding_mode:pkcs1"]))).toBe(hex(data));
    for (const digestmod of ["sha1", "sha256"]) {
      const ct = await k.encrypt(data, { padding: "oaep", digestmod });
      const pt = opensslDecrypt(node, ct, [
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        `rsa_oaep_md:${digestmod}`,
        "-pkeyopt",
        `rsa_mgf1_md:${digestmod}`,
      ]);
      expect(hex(pt), digestmod).toBe(hex(data));
      expect(hex(await k.decrypt(ct, { padding: "oaep", digestmod }))).toBe(hex(data));
    }
    // The largest PKCS#1 v1.5 plaintext is keySize - 11 bytes; one more is the device's bad_argument.
    const max = rand(k.keySize - 11);
    expect(hex(await k.decrypt(await k.encrypt(max)))).toBe(hex(max));
    await expect(k.encrypt(rand(k.keySize - 10))).rejects.toBeInstanceOf(BadArgumentError);
  });
});

describe("keys written by OpenSSL", () => {
  const node = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const data = utf8("imported");

  it.each([
    ["PKCS#1 PEM", () => node.privateKey.export({ type: "pkcs1", format: "pem" })],
    ["PKCS#8 PEM", () => node.privateKey.export({ type: "pkcs8", format: "pem" })],
    ["PKCS#1 DER", () => node.privateKey.export({ type: "pkcs1", format: "der" })],
    ["PKCS#8 DER", () => node.privateKey.export({ type: "pkcs8", format: "der" })],
  ] as const)("private key, %s", async (_label, exported) => {
    const x = exported();
    await using k = await dev.pk.RSA.fromBuffer(typeof x === "string" ? x : u8(x));
    expect([k.isPrivate, k.bits, k.exportable]).toEqual([true, 2048, true]);
    expect(nodeVerify("sha256", data, node.publicKey, await k.sign(data))).toBe(true);
    // It round-trips: the device's PKCS#1 export is OpenSSL's.
    expect(hex(await k.exportKey("DER"))).toBe(hex(u8(node.privateKey.export({ type: "pkcs1", format: "der" }))));
    expect(await k.exportKey("PEM")).toBe(node.privateKey.export({ type: "pkcs1", format: "pem" }));
  });

  it.each([
    ["SPKI PEM", () => node.publicKey.export({ type: "spki", format: "pem" })],
    ["SPKI DER", () => node.publicKey.export({ type: "spki", format: "der" })],
    ["PKCS#1 RSAPublicKey PEM", () => node.publicKey.export({ type: "pkcs1", format: "pem" })],
  ] as const)("public key, %s", async (_label, exported) => {
    const x = exported();
    await using k = await dev.pk.RSA.fromBuffer(typeof x === "string" ? x : u8(x));
    expect([k.isPrivate, k.bits]).toEqual([false, 2048]);
    expect(await k.verify(data, u8(nodeSign("sha256", data, node.privateKey)))).toBe(true);
    expect(hex(await k.exportPublicKey())).toBe(hex(spkiOf(node.publicKey)));
    const ct = await k.encrypt(data, { padding: "oaep" });
    expect(hex(opensslDecrypt(node.privateKey, ct, ["-pkeyopt", "rsa_padding_mode:oaep"]))).toBe(hex(data));
  });

  it("openssl genpkey's key (PKCS#8 PEM from the CLI)", async () => {
    const pem = openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]);
    await using k = await dev.pk.RSA.fromPEM(pem);
    expect(k.bits).toBe(1024);
    expect(nodeVerify("sha256", data, createPrivateKey(pem), await k.sign(data))).toBe(true);
  });

  it("encrypted PKCS#8 imports with its password, and without it is a clear typed error", async () => {
    const pem = node.privateKey.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "correct horse" }) as string;
    expect(pem).toContain("ENCRYPTED PRIVATE KEY");
    await using k = await dev.pk.RSA.fromPEM(pem, { password: "correct horse" });
    expect(nodeVerify("sha256", data, node.publicKey, await k.sign(data))).toBe(true);
    const der = u8(node.privateKey.export({ type: "pkcs8", format: "der", cipher: "aes-128-cbc", passphrase: "pw" }));
    await using k2 = await dev.pk.RSA.fromDER(der, { password: utf8("pw") });
    expect(hex(await k2.exportPublicKey())).toBe(hex(spkiOf(node.publicKey)));
    const none = await dev.pk.RSA.fromPEM(pem).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(BadArgumentError);
    expect((none as Error).message).toMatch(/password/);
    const wrong = await dev.pk.RSA.fromPEM(pem, { password: "wrong" }).catch((e: unknown) => e);
    // (Usually "wrong password"; a wrong key whose CBC padding happens to check out fails as a malformed key.)
    expect(wrong).toBeInstanceOf(BadArgumentError);
  });

  it("legacy encrypted PEM (Proc-Type: 4,ENCRYPTED) is UnsupportedAlgorithmError", async () => {
    const plain = node.privateKey.export({ type: "pkcs1", format: "pem" }) as string;
    const legacy = openssl(["rsa", "-aes128", "-traditional", "-passout", "pass:secret"], plain);
    expect(legacy).toContain("Proc-Type: 4,ENCRYPTED");
    await expect(dev.pk.RSA.fromPEM(legacy, { password: "secret" })).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
    await expect(dev.pk.RSA.fromPEM(legacy)).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
    expect(await dev.hash.digest("sha256", data)).toHaveLength(32);
  });
});

describe("pairs and equality", () => {
  it("checkPair and equals tell halves of one key from others", async () => {
    const k = pairs[0] as Pair;
    const other = pairs[1] as Pair;
    await using pub = await dev.pk.RSA.fromDER(await k.dev.exportPublicKey("DER"));
    await using pub2 = await dev.pk.RSA.fromPEM(await k.dev.exportPublicKey("PEM"));
    expect(await pub.checkPair(k.dev)).toBe(true);
    expect(await k.dev.checkPair(pub)).toBe(true);
    expect(await dev.pk.checkPair(pub, k.dev)).toBe(true);
    expect(await pub.checkPair(other.dev)).toBe(false);
    expect(await pub.equals(pub2)).toBe(true);
    expect(await pub.equals(k.dev)).toBe(false); // public vs private
    expect(await k.dev.equals(k.dev)).toBe(true);
    expect(await k.dev.equals(other.dev)).toBe(false);
    // The seed's flow: a public key from the DER verifies the private key's signature.
    const sig = await k.dev.sign(msg);
    expect(await pub.verify(msg, sig)).toBe(true);
    expect(buf(sig).length).toBe(256);
  });

  it("RSA.fromBuffer refuses an EC key (dev.pk.fromBuffer takes either)", async () => {
    const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({ type: "spki", format: "pem" }) as string;
    await expect(dev.pk.RSA.fromPEM(ec)).rejects.toBeInstanceOf(ArgumentError);
    await using any = await dev.pk.fromBuffer(ec);
    expect(any.name).toBe("EC");
  });
});

describe("the device afterwards", () => {
  it("frees every key: the heap is back at its baseline", async () => {
    for (const p of pairs) await p.dev.close();
    await session.expectAt({ heap: "open" });
  });
});
