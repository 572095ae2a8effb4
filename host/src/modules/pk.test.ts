// The requests dev.pk puts on the wire (protocol/messages.cddl, section pk),
// how results are checked, and the adoption hooks other modules build key
// objects with, against an in-memory device that answers as told.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ArgumentError, BadArgumentError, NotExportableError, ProtocolError, UnsupportedAlgorithmError } from "../base/errors.js";
import { Op, Status } from "../base/protocol.generated.js";
import { hex } from "../base/util.js";
import { Device } from "../device.js";
import { fail, ScriptedDevice } from "../link/testing/scripted-device.js";
import type { BusyInfo } from "../rpc/rpc.js";
import { lookupCurve } from "./curves.js";
import { _adoptSymmetric, SymmetricKey } from "./keys.js";
import { _adoptKey } from "./pk.js";
import { ECC, RSA } from "./pk-key.js";

const RSA_INFO = { type: 1, bits: 2048, curve: null, private: true, exportable: true };
const EC_INFO = { type: 2, bits: 256, curve: 3, private: true, exportable: false };
const X25519_INFO = { type: 2, bits: 255, curve: 12, private: true, exportable: true };

let t: ScriptedDevice;
let dev: Device;

beforeEach(async () => {
  t = new ScriptedDevice({ hashes: [4] });
  dev = await Device.connect(t, { timeoutMs: 2000 });
});
afterEach(async () => {
  await dev.close();
});

describe("generate", () => {
  it("RSA: [handle, 1, bits, exponent, flags], then the private DER when exportable", async () => {
    t.answers.set(Op.pkGenerate, () => RSA_INFO);
    t.answers.set(Op.pkExport, () => Uint8Array.of(0x30, 0x00));
    const k = dev.pk.RSA();
    const der = await k.generate(2048, 3);
    expect(t.sentOp(Op.pkGenerate)).toEqual([[k.handle, 1, 2048, 3, 1]]);
    expect(t.sentOp(Op.pkExport)).toEqual([[k.handle, 1]]);
    expect(hex(der ?? new Uint8Array())).toBe("3000");
    expect([k.name, k.keySize, k.bits, k.isPrivate, k.exportable]).toEqual(["RSA", 256, 2048, true, true]);
    await expect(k.generate()).rejects.toBeInstanceOf(ArgumentError);
  });

  it("EC: [handle, 2, curve id, 0, flags]; a non-exportable key returns no DER and is not asked for it", async () => {
    t.answers.set(Op.pkGenerate, () => EC_INFO);
    const k = dev.pk.ECC("prime256v1");
    expect(await k.generate({ exportable: false })).toBeUndefined();
    expect(t.sentOp(Op.pkGenerate)).toEqual([[k.handle, 2, 3, 0, 0]]);
    expect(t.sentOp(Op.pkExport)).toEqual([]);
    expect([k.name, k.curve, k.keySize, k.exportable]).toEqual(["EC", "secp256r1", 32, false]);
  });

  it("a device failure leaves the object without a key, and says so on reuse", async () => {
    t.answers.set(Op.pkGenerate, () => fail(Status.badArgument, "arg 3: RSA key size must be even"));
    const k = dev.pk.RSA();
    await expect(k.generate(2047)).rejects.toBeInstanceOf(BadArgumentError);
    expect(k.keySize).toBe(0);
    await expect(k.sign(new Uint8Array(1))).rejects.toBeInstanceOf(BadArgumentError);
    await expect(k.generate()).rejects.toThrow(/earlier generate\(\) .* failed/);
  });

  it("a malformed pk-info is ProtocolError; a key of the other type too", async () => {
    t.answers.set(Op.pkGenerate, () => ({ type: 9, bits: 1 }));
    await expect(dev.pk.RSA().generate()).rejects.toBeInstanceOf(ProtocolError);
    t.answers.set(Op.pkGenerate, () => EC_INFO);
    await expect(dev.pk.RSA().generate()).rejects.toBeInstanceOf(ProtocolError);
  });

  it("busy events keep a long generation alive past its timeout and reach dev.on('busy')", async () => {
    t.answers.set(Op.pkGenerate, () => EC_INFO);
    t.delayMs = 250;
    const seen: BusyInfo[] = [];
    dev.on("busy", (b) => seen.push(b));
    const k = dev.pk.ECC();
    const p = k.generate({ exportable: false, timeoutMs: 100 });
    const id = await new Promise<unknown>((r) => setTimeout(() => r(t.sent.find((m) => m[1] === Op.pkGenerate)?.[0]), 20));
    for (const ms of [80, 160]) setTimeout(() => t.deliver([null, 3, id, ms]), ms - 10);
    await p;
    expect(seen.map((b) => [b.op, b.elapsedMs])).toEqual([
      ["pk_generate", 80],
      ["pk_generate", 160],
    ]);
  });
});

describe("import", () => {
  it("sends PEM NUL-terminated, the password as bytes and the flags; picks the class from the key type", async () => {
    t.answers.set(Op.pkImport, () => RSA_INFO);
    const pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    const k = await dev.pk.RSA.fromPEM(pem, { password: "pw", exportable: false });
    const [args] = t.sentOp(Op.pkImport);
    expect(args?.[0]).toBe(k.handle);
    expect(new TextDecoder().decode(args?.[1] as Uint8Array)).toBe(`${pem}\0`);
    expect(hex(args?.[2] as Uint8Array)).toBe("7077");
    expect(args?.[3]).toBe(0);
    const der = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00);
    await dev.pk.fromBuffer(der);
    expect(t.sentOp(Op.pkImport)[1]).toEqual([expect.any(Number), der, null, 1]);
    t.answers.set(Op.pkImport, () => EC_INFO);
    expect(await dev.pk.fromBuffer(der)).toBeInstanceOf(ECC);
  });

  it("RSA.fromBuffer of an EC key is ArgumentError and frees the new handle", async () => {
    t.answers.set(Op.pkImport, () => EC_INFO);
    await expect(dev.pk.RSA.fromDER(Uint8Array.of(0x30, 0))).rejects.toBeInstanceOf(ArgumentError);
    const [imp] = t.sentOp(Op.pkImport);
    await new Promise((r) => setTimeout(r, 20));
    expect(t.sentOp(Op.free)).toContainEqual([imp?.[0]]);
  });
});

describe("use", () => {
  it("sign hashes on the device, then sends [handle, alg, digest, scheme]; verify wants a boolean", async () => {
    const digest = new Uint8Array(32).fill(7);
    t.answers.set(Op.pkImport, () => RSA_INFO);
    t.answers.set(Op.hashOneshot, () => digest);
    t.answers.set(Op.pkSign, () => Uint8Array.of(1, 2));
    t.answers.set(Op.pkVerify, () => true);
    const k = await dev.pk.RSA.fromDER(Uint8Array.of(0x30, 0));
    const msg = Uint8Array.of(9, 9);
    expect(hex(await k.sign(msg, "sha256", { scheme: "pss" }))).toBe("0102");
    expect(t.sentOp(Op.hashOneshot)).toEqual([[4, msg]]);
    expect(t.sentOp(Op.pkSign)).toEqual([[k.handle, 4, digest, 1]]);
    expect(await k.verify(msg, Uint8Array.of(1, 2))).toBe(true);
    expect(t.sentOp(Op.pkVerify)).toEqual([[k.handle, 4, digest, Uint8Array.of(1, 2), 0]]);
    t.answers.set(Op.pkVerify, () => 1);
    await expect(k.verifyDigest(digest, Uint8Array.of(1))).rejects.toBeInstanceOf(ProtocolError);
    await expect(k.signDigest(new Uint8Array(20), "sha256")).rejects.toBeInstanceOf(ArgumentError);
  });

  it("encrypt/decrypt send [handle, data, scheme, alg]: v1.5 with alg 0, OAEP with sha1 by default", async () => {
    t.answers.set(Op.pkImport, () => RSA_INFO);
    t.answers.set(Op.pkEncrypt, () => Uint8Array.of(5));
    t.answers.set(Op.pkDecrypt, () => Uint8Array.of(6));
    const k = await dev.pk.RSA.fromDER(Uint8Array.of(0x30, 0));
    const d = Uint8Array.of(1);
    await k.encrypt(d);
    await k.encrypt(d, { padding: "oaep" });
    await k.decrypt(d, { padding: "oaep", digestmod: "sha256" });
    expect(t.sentOp(Op.pkEncrypt)).toEqual([
      [k.handle, d, 0, 0],
      [k.handle, d, 1, 2],
    ]);
    expect(t.sentOp(Op.pkDecrypt)).toEqual([[k.handle, d, 1, 4]]);
  });

  it("PSS salt length: [.., scheme, salt] on sign and verify, null for any; nothing extra by default", async () => {
    const digest = new Uint8Array(32).fill(3);
    t.answers.set(Op.pkImport, () => RSA_INFO);
    t.answers.set(Op.pkSign, () => Uint8Array.of(1));
    t.answers.set(Op.pkVerify, () => true);
    const k = await dev.pk.RSA.fromDER(Uint8Array.of(0x30, 0));
    const sig = Uint8Array.of(1);
    await k.signDigest(digest, "sha256", { padding: "pss" });
    await k.signDigest(digest, "sha256", { padding: "pss", saltLength: 0 });
    await k.signDigest(digest, "sha256", { scheme: "pss", saltLength: "digest" });
    expect(t.sentOp(Op.pkSign)).toEqual([
      [k.handle, 4, digest, 1],
      [k.handle, 4, digest, 1, 0],
      [k.handle, 4, digest, 1],
    ]);
    await k.verifyDigest(digest, sig, "sha256", { padding: "pss", saltLength: 20 });
    await k.verifyDigest(digest, sig, "sha256", { padding: "pss", saltLength: "any" });
    expect(t.sentOp(Op.pkVerify)).toEqual([
      [k.handle, 4, digest, sig, 1, 20],
      [k.handle, 4, digest, sig, 1, null],
    ]);
    for (const opts of [
      { padding: "pss", saltLength: "any" },
      { padding: "pss", saltLength: -1 },
      { padding: "pss", saltLength: 1.5 },
      { saltLength: 20 },
      { scheme: "pss", padding: "pkcs1v15" },
      { padding: "oaep" },
      { format: "raw" },
    ] as const) {
      await expect(k.signDigest(digest, "sha256", opts as never), JSON.stringify(opts)).rejects.toBeInstanceOf(ArgumentError);
    }
    expect(t.sentOp(Op.pkSign)).toHaveLength(3);
  });

  it('ECDSA format "raw": DER from the device becomes r||s; r||s goes out as canonical DER; a wrong length is false unsent', async () => {
    t.answers.set(Op.pkImport, () => EC_INFO);
    // r = 0x80 (needs a sign byte), s = 0x01
    t.answers.set(Op.pkSign, () => Uint8Array.of(0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x01));
    t.answers.set(Op.pkVerify, () => true);
    const k = await dev.pk.ECC.fromDER(Uint8Array.of(0x30, 0));
    const digest = new Uint8Array(32);
    const raw = await k.signDigest(digest, "sha256", { format: "raw" });
    expect(hex(raw)).toBe(`${"00".repeat(31)}80${"00".repeat(31)}01`);
    expect(await k.verifyDigest(digest, raw, "sha256", { format: "raw" })).toBe(true);
    expect(hex(t.sentOp(Op.pkVerify)[0]?.[3] as Uint8Array)).toBe("300702020080020101");
    expect(await k.verifyDigest(digest, raw.subarray(1), "sha256", { format: "raw" })).toBe(false);
    expect(t.sentOp(Op.pkVerify)).toHaveLength(1);
    t.answers.set(Op.pkSign, () => Uint8Array.of(0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01)); // negative r
    await expect(k.signDigest(digest, "sha256", { format: "raw" })).rejects.toBeInstanceOf(ProtocolError);
  });

  it("OAEP: hash (or digestmod) and label go out as [.., 1, alg, label]; mgf1Hash other than hash is refused unsent", async () => {
    t.answers.set(Op.pkImport, () => RSA_INFO);
    t.answers.set(Op.pkEncrypt, () => Uint8Array.of(5));
    t.answers.set(Op.pkDecrypt, () => Uint8Array.of(6));
    const k = await dev.pk.RSA.fromDER(Uint8Array.of(0x30, 0));
    const d = Uint8Array.of(1);
    const label = Uint8Array.of(7, 7);
    await k.encrypt(d, { padding: "oaep", hash: "sha512", mgf1Hash: "sha512", label });
    await k.decrypt(d, { padding: "oaep", hash: "sha256", digestmod: "sha256", label: new Uint8Array() });
    expect(t.sentOp(Op.pkEncrypt)).toEqual([[k.handle, d, 1, 6, label]]);
    expect(t.sentOp(Op.pkDecrypt)).toEqual([[k.handle, d, 1, 4]]);
    await expect(k.encrypt(d, { padding: "oaep", hash: "sha256", mgf1Hash: "sha1" })).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
    await expect(k.decrypt(d, { padding: "oaep", mgf1Hash: "sha256" })).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
    await expect(k.encrypt(d, { padding: "oaep", hash: "sha256", digestmod: "sha1" })).rejects.toBeInstanceOf(ArgumentError);
    await expect(k.encrypt(d, { label })).rejects.toBeInstanceOf(ArgumentError);
    await expect(k.encrypt(d, { padding: "oaep", label: "x" as never })).rejects.toBeInstanceOf(ArgumentError);
    expect(t.sentOp(Op.pkEncrypt)).toHaveLength(1);
    expect(t.sentOp(Op.pkDecrypt)).toHaveLength(1);
  });

  it("exports: format numbers and PEM labels (SEC1, PKCS#1, PKCS#8 for x25519, SPKI)", async () => {
    const der = Uint8Array.of(0x30, 0x00);
    t.answers.set(Op.pkExport, () => der);
    for (const [info, label] of [
      [RSA_INFO, "RSA PRIVATE KEY"],
      [{ ...EC_INFO, exportable: true }, "EC PRIVATE KEY"],
      [X25519_INFO, "PRIVATE KEY"],
    ] as const) {
      t.answers.set(Op.pkImport, () => info);
      const k = await dev.pk.fromBuffer(der);
      expect(await k.exportKey("PEM")).toBe(`-----BEGIN ${label}-----\nMAA=\n-----END ${label}-----\n`);
      expect(await k.exportPublicKey("PEM")).toBe("-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n");
      await k.exportPublicKey("POINT");
      expect(t.sentOp(Op.pkExport).slice(-3)).toEqual([
        [k.handle, 1],
        [k.handle, 2],
        [k.handle, 3],
      ]);
    }
    t.answers.set(Op.pkExport, () => Uint8Array.of(1, 0));
    const k = await dev.pk.fromBuffer(der);
    expect(await k.exportKey("NUM")).toBe(256n);
    expect(t.sentOp(Op.pkExport).at(-1)).toEqual([k.handle, 4]);
    t.answers.set(Op.pkExport, () => fail(Status.notExportable, "no"));
    await expect(k.exportKey()).rejects.toBeInstanceOf(NotExportableError);
  });

  it("checkPair sends [public, private]; an empty key object is ArgumentError before anything is sent", async () => {
    t.answers.set(Op.pkImport, (args) => (args[3] === 1 ? RSA_INFO : { ...RSA_INFO, private: false }));
    t.answers.set(Op.pkCheckPair, () => true);
    const prv = await dev.pk.RSA.fromDER(Uint8Array.of(0x30, 0));
    const pub = await dev.pk.RSA.fromDER(Uint8Array.of(0x30, 0), { exportable: false });
    expect(await prv.checkPair(pub)).toBe(true);
    expect(await dev.pk.checkPair(pub, prv)).toBe(true);
    expect(t.sentOp(Op.pkCheckPair)).toEqual([
      [pub.handle, prv.handle],
      [pub.handle, prv.handle],
    ]);
    const before = t.sent.length;
    await expect(dev.pk.RSA().sign(new Uint8Array(1))).rejects.toBeInstanceOf(ArgumentError);
    expect(() => dev.pk.RSA()._checkFor(dev)).toThrow(ArgumentError);
    expect(t.sent.length).toBe(before);
  });

  it("getSupportedCurves maps ids to names", async () => {
    t.answers.set(Op.pkCurves, () => [3, 12, 77]);
    expect(await dev.pk.getSupportedCurves()).toEqual(["secp256r1", "x25519", "curve77"]);
    expect(lookupCurve("P-384").name).toBe("secp384r1");
    expect(() => lookupCurve("nope")).toThrow(ArgumentError);
  });
});

describe("adoption hooks", () => {
  it("_adoptKey takes a pk-info or a slot-info with a pk field", async () => {
    t.answers.set(Op.slotLoad, () => ({ slot: 2, label: "x", kind: 1, exportable: false, pk: EC_INFO, size: 100, public: null }));
    const k = await _adoptKey(dev._context, (h) => dev.rpc.call(Op.slotLoad, [2, h]));
    expect(k).toBeInstanceOf(ECC);
    expect(t.sentOp(Op.slotLoad)).toEqual([[2, k.handle]]);
    expect(await k._ready(dev)).toBe(k.handle);
    const r = await _adoptKey(dev._context, () => Promise.resolve(RSA_INFO));
    expect(r).toBeInstanceOf(RSA);
    expect(r.exportable).toBe(true);
  });

  it("frees the handle when the answer is malformed, not when the device refused the create", async () => {
    let handle = 0;
    await expect(
      _adoptKey(dev._context, (h) => {
        handle = h;
        return Promise.resolve({ nonsense: true });
      }),
    ).rejects.toBeInstanceOf(ProtocolError);
    await expect(_adoptKey(dev._context, () => Promise.reject(new BadArgumentError(Status.badArgument, 0, "no")))).rejects.toBeInstanceOf(
      BadArgumentError,
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(t.sentOp(Op.free)).toEqual([[handle]]);
  });

  it("_adoptSymmetric takes the size given, else the slot-info's size", async () => {
    const a = await _adoptSymmetric(dev._context, () => Promise.resolve(null), 32);
    expect([a instanceof SymmetricKey, a.size, a.origin]).toEqual([true, 32, "device"]);
    const b = await _adoptSymmetric(dev._context, () => Promise.resolve({ slot: 1, kind: 2, size: 16 }));
    expect(b.size).toBe(16);
    await expect(_adoptSymmetric(dev._context, () => Promise.resolve(null))).rejects.toBeInstanceOf(ProtocolError);
  });
});
