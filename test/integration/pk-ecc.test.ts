// dev.pk.ECC against Node's crypto (OpenSSL 3) on every curve the device
// has compiled in: ECDSA signatures cross in both directions (DER, as
// OpenSSL writes them), SEC1 and PKCS#8 keys from Node import, keys the
// device makes export into Node; x25519/x448 keys are for key exchange and
// cannot sign. Node's keys are imported rather than generated on the device
// for most curves on a slow link, so one emulator boot stays short.
import { createPrivateKey, generateKeyPairSync, type KeyObject, sign as nodeSign, verify as nodeVerify } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { CURVES } from "../../host/src/base/protocol.generated.js";
import { ArgumentError, type Device, ECC, hex, UnsupportedAlgorithmError, utf8 } from "../../host/src/index.js";
import { rand } from "./bytes.js";
import { NODE_CURVE, nodePrivate, nodePublic, openssl, sec1Scalar, spkiOf, spkiPoint, u8 } from "./pk-fixtures.js";
import { useCurveSession } from "./session.js";
import { SLOW_LINK } from "./target.js";

const session = useCurveSession({ endsAt: { heap: "open" } });
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

const weierstrass = CURVES.filter((c) => c.shape === "weierstrass").map((c) => c.name);
const montgomery = CURVES.filter((c) => c.shape === "montgomery").map((c) => c.name);
/** The digest that goes with a curve size (sha512 for secp521r1 and brainpoolP512r1). */
const digestFor = (bits: number) => (bits <= 256 ? "sha256" : bits <= 384 ? "sha384" : "sha512");
const bitsOf = (name: string) => CURVES.find((c) => c.name === name)?.bits ?? 0;

/** Uncompressed point 04||X||Y of a Node EC key. */
const nodePoint = (k: KeyObject): string => hex(spkiPoint(spkiOf(k)));

describe("curves", () => {
  it("getSupportedCurves lists protocol curves, secp256r1 and x25519 among them", () => {
    expect(session.curves.length).toBeGreaterThan(0);
    for (const c of session.curves) expect(CURVES.map((x) => x.name)).toContain(c);
    expect(session.curves).toEqual(expect.arrayContaining(["secp256r1", "x25519"]));
    console.log(`curves on ${dev.info.board}: ${session.curves.join(", ")}`);
  });

  it("ECC() defaults to secp256r1; names are python-mbedtls's or OpenSSL's; an unknown name is ArgumentError", () => {
    expect(dev.pk.ECC().curve).toBe("secp256r1");
    expect(dev.pk.ECC("prime256v1").curve).toBe("secp256r1");
    expect(dev.pk.ECC("BrainpoolP384R1").curve).toBe("brainpoolP384r1");
    expect(() => dev.pk.ECC("secp999r1")).toThrow(ArgumentError);
  });
});

describe.each(weierstrass)("%s", (curve) => {
  const nodeName = NODE_CURVE[curve] as string;
  const digestmod = digestFor(bitsOf(curve));
  const present = () => session.curves.includes(curve);

  it("a key from Node (SEC1 DER) signs what Node verifies, and verifies what Node signs", async () => {
    if (!present()) {
      // Not compiled in: the device says so.
      const sec1 = u8(generateKeyPairSync("ec", { namedCurve: nodeName }).privateKey.export({ type: "sec1", format: "der" }));
      await expect(dev.pk.ECC.fromDER(sec1)).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
      await expect(dev.pk.ECC(curve).generate()).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
      return;
    }
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: nodeName });
    await using k = await dev.pk.ECC.fromDER(u8(privateKey.export({ type: "sec1", format: "der" })));
    expect([k.name, k.curve, k.bits, k.keySize, k.isPrivate]).toEqual(["EC", curve, bitsOf(curve), Math.ceil(bitsOf(curve) / 8), true]);
    const data = rand(200);
    const sig = await k.sign(data, digestmod);
    expect(nodeVerify(digestmod, data, { key: publicKey, dsaEncoding: "der" }, sig)).toBe(true);
    expect(await k.verify(data, sig, digestmod)).toBe(true);
    const nodeSig = u8(nodeSign(digestmod, data, { key: privateKey, dsaEncoding: "der" }));
    expect(await k.verify(data, nodeSig, digestmod)).toBe(true);
    expect(await k.verify(utf8("Sorry, wrong message."), nodeSig, digestmod)).toBe(false);
    const bad = nodeSig.slice();
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1;
    expect(await k.verify(data, bad, digestmod)).toBe(false);
    // Public parts agree: SPKI and the raw point.
    expect(hex(await k.exportPublicKey())).toBe(hex(spkiOf(publicKey)));
    expect(hex(await k.publicPoint())).toBe(nodePoint(publicKey));
    // The device writes SEC1 as OpenSSL does.
    expect(hex(await k.exportKey("DER"))).toBe(hex(u8(privateKey.export({ type: "sec1", format: "der" }))));
    const d = sec1Scalar(u8(privateKey.export({ type: "sec1", format: "der" })));
    expect(await k.exportKey("NUM")).toBe(BigInt(`0x${hex(d)}`));
  });

  it("PKCS#8 PEM and SPKI PEM keys from Node import", async () => {
    if (!present()) return;
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: nodeName });
    await using prv = await dev.pk.ECC.fromPEM(privateKey.export({ type: "pkcs8", format: "pem" }) as string);
    await using pub = await dev.pk.ECC.fromPEM(publicKey.export({ type: "spki", format: "pem" }) as string);
    expect([prv.isPrivate, pub.isPrivate, pub.curve]).toEqual([true, false, curve]);
    const data = utf8("Please sign here.");
    const sig = await prv.sign(data, digestmod);
    expect(await pub.verify(data, sig, digestmod)).toBe(true);
    expect(await pub.checkPair(prv)).toBe(true);
    expect(await prv.equals(pub)).toBe(false);
    await using again = await dev.pk.ECC.fromDER(spkiOf(publicKey));
    expect(await pub.equals(again)).toBe(true);
  });

  // Generating on the device: every curve natively; on a slow link, two.
  const generateHere = !SLOW_LINK || curve === "secp256r1" || curve === "secp384r1";
  if (generateHere)
    it("a key generated on the device exports into Node (SEC1, SPKI, PEM) and openssl", async () => {
      if (!present()) return;
      await using k = dev.pk.ECC(curve);
      const der = await k.generate();
      if (!der) throw new Error("no DER from an exportable key");
      const nodeKey = nodePrivate(der, "sec1");
      expect(nodeKey.asymmetricKeyDetails?.namedCurve).toBe(nodeName);
      expect(hex(await k.exportPublicKey())).toBe(hex(spkiOf(nodeKey)));
      const pem = await k.exportKey("PEM");
      expect(pem.startsWith("-----BEGIN EC PRIVATE KEY-----\n")).toBe(true);
      expect(createPrivateKey(pem).equals(nodeKey)).toBe(true);
      expect(await k.exportPublicKey("PEM")).toBe(openssl(["pkey", "-pubout"], pem));
      const data = rand(64);
      const sig = await k.sign(data, digestmod);
      expect(nodeVerify(digestmod, data, nodePublic(await k.exportPublicKey()), sig)).toBe(true);
    });
});

describe.each(montgomery)("%s (key exchange only)", (curve) => {
  const present = () => session.curves.includes(curve);

  it("generates a key whose SPKI and PKCS#8 Node accepts; it cannot sign", async () => {
    if (!present()) {
      await expect(dev.pk.ECC(curve).generate()).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
      return;
    }
    await using k = dev.pk.ECC(curve);
    const der = await k.generate();
    if (!der) throw new Error("no DER");
    const pub = nodePublic(await k.exportPublicKey());
    expect(pub.asymmetricKeyType).toBe(curve);
    const prv = nodePrivate(der, "pkcs8");
    expect(prv.asymmetricKeyType).toBe(curve);
    expect(hex(spkiOf(prv))).toBe(hex(spkiOf(pub)));
    expect((await k.exportKey("PEM")).startsWith("-----BEGIN PRIVATE KEY-----\n")).toBe(true);
    expect(hex(await k.publicPoint())).toBe(Buffer.from(pub.export({ format: "jwk" }).x as string, "base64url").toString("hex"));
    await expect(k.sign(utf8("no"))).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
    // The device keeps serving.
    expect(await dev.hash.digest("sha256", utf8("x"))).toHaveLength(32);
  });

  it("imports Node's PKCS#8 key", async () => {
    if (!present()) return;
    const { privateKey, publicKey } = generateKeyPairSync(curve as "x25519", {});
    await using k = await dev.pk.ECC.fromPEM(privateKey.export({ type: "pkcs8", format: "pem" }) as string);
    expect([k.curve, k.isPrivate]).toEqual([curve, true]);
    expect(hex(await k.exportPublicKey())).toBe(hex(spkiOf(publicKey)));
  });
});

describe("the seed's ECDSA example", () => {
  it("sign, verify, export, from_buffer", async () => {
    await using ecdsa = dev.pk.ECC();
    await ecdsa.generate();
    const sig = await ecdsa.sign(utf8("Please sign here."));
    expect(await ecdsa.verify(utf8("Please sign here."), sig)).toBe(true);
    expect(await ecdsa.verify(utf8("Sorry, wrong message."), sig)).toBe(false);
    await using other = await dev.pk.ECC.fromBuffer(await ecdsa.exportPublicKey("DER"));
    expect(other).toBeInstanceOf(ECC);
    expect(await other.verify(utf8("Please sign here."), sig)).toBe(true);
  });
});
