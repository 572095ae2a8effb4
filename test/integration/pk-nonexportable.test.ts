// Keys made with `exportable: false` (generated on the device, or imported)
// never let their private part out: every path out is NotExportableError —
// exportKey DER / PEM / NUM, pk_export's private formats sent by hand, a
// key slot (its listing, and the key loaded back from it) — while sign, decrypt,
// checkPair and the public exports work. For imported keys, whose private
// values the test knows, no byte string the device sends in the whole
// session contains them.
import { constants, generateKeyPairSync, verify as nodeVerify, publicEncrypt, randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Op } from "../../host/src/base/protocol.generated.js";
import { type Device, ECC, hex, NotExportableError, type PkKey, RSA, SlotEmptyError, utf8 } from "../../host/src/index.js";
import { collectBytes } from "./frame-scan.js";
import { nodePublic, spkiOf, u8 } from "./pk-fixtures.js";
import { useSession } from "./session.js";
import { SLOW_LINK } from "./target.js";

const session = useSession();
let dev: Device;
/** Every byte string in every message the device sent during the test. */
const received: Uint8Array[] = [];
const collect = (m: unknown): void => collectBytes(m, received);

const rsaNode = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ecNode = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
/** Private values the device must never send: RSA d, p, q and the EC scalar. */
const secrets: [string, Buffer][] = [
  ["RSA d", Buffer.from(rsaNode.privateKey.export({ format: "jwk" }).d as string, "base64url")],
  ["RSA p", Buffer.from(rsaNode.privateKey.export({ format: "jwk" }).p as string, "base64url")],
  ["RSA q", Buffer.from(rsaNode.privateKey.export({ format: "jwk" }).q as string, "base64url")],
  ["EC d", Buffer.from(ecNode.privateKey.export({ format: "jwk" }).d as string, "base64url")],
];

interface Case {
  label: string;
  key: PkKey;
}
const cases: Case[] = [];

beforeAll(async () => {
  dev = session.dev;
  dev.transport.on("message", (m) => collect(m));
  const rsaGen = dev.pk.RSA();
  expect(await rsaGen.generate(SLOW_LINK ? 1024 : 2048, 65537, { exportable: false })).toBeUndefined();
  const ecGen = dev.pk.ECC("secp384r1");
  expect(await ecGen.generate({ exportable: false })).toBeUndefined();
  cases.push(
    { label: "RSA generated", key: rsaGen },
    { label: "EC generated", key: ecGen },
    {
      label: "RSA imported (PKCS#8 PEM)",
      key: await dev.pk.RSA.fromPEM(rsaNode.privateKey.export({ type: "pkcs8", format: "pem" }) as string, { exportable: false }),
    },
    {
      label: "EC imported (SEC1 DER)",
      key: await dev.pk.ECC.fromDER(u8(ecNode.privateKey.export({ type: "sec1", format: "der" })), { exportable: false }),
    },
  );
}, 300_000);

describe.each([0, 1, 2, 3])("key %i", (i) => {
  const c = () => cases[i] as Case;

  it("is private and not exportable, as the device describes it", async () => {
    const { key } = c();
    expect([key.isPrivate, key.exportable]).toEqual([true, false]);
    const info = (await dev.rpc.call(Op.pkInfo, [key.handle])) as Record<string, unknown>;
    expect([info.private, info.exportable]).toEqual([true, false]);
  });

  it("every path out of the private part is NotExportableError", async () => {
    const { key, label } = c();
    await expect(key.exportKey("DER"), label).rejects.toBeInstanceOf(NotExportableError);
    await expect(key.exportKey("PEM"), label).rejects.toBeInstanceOf(NotExportableError);
    await expect(key.exportKey("NUM"), label).rejects.toBeInstanceOf(NotExportableError);
    // pk_export's private formats sent by hand, past the SDK: 1 = private DER, 4 = raw private.
    for (const format of [1, 4]) {
      await expect(dev.rpc.call(Op.pkExport, [key.handle, format]), `${label} format ${format}`).rejects.toBeInstanceOf(NotExportableError);
    }
  });

  it("still signs (Node verifies), checks its pair, and exports its public part", async () => {
    const { key } = c();
    const spki = await key.exportPublicKey("DER");
    const pub = nodePublic(spki);
    expect((await key.exportPublicKey("PEM")).startsWith("-----BEGIN PUBLIC KEY-----")).toBe(true);
    expect((await key.exportPublicKey("RAW")).length).toBeGreaterThan(0);
    const data = randomBytes(100);
    const sig = await key.sign(u8(data), "sha256");
    expect(nodeVerify("sha256", data, pub, sig)).toBe(true);
    await using pubOnDevice = await dev.pk.fromBuffer(spki);
    expect(await pubOnDevice.checkPair(key)).toBe(true);
    expect(await key.checkPair(pubOnDevice)).toBe(true);
    if (key instanceof RSA) {
      const msg = u8(randomBytes(32));
      const ct = u8(publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, msg));
      expect(hex(await key.decrypt(ct, { padding: "oaep", digestmod: "sha256" }))).toBe(hex(msg));
      expect(hex(await key.decrypt(await key.encrypt(msg)))).toBe(hex(msg));
    }
  });
});

describe("key slots (dev.slots)", () => {
  it("a stored non-exportable key is listed with its public part only and loads non-exportable again", async () => {
    const slot = 0;
    for (const { key, label } of cases) {
      await dev.slots.store(key as RSA | ECC, slot, { label: "nonexportable", overwrite: true });
      const entry = (await dev.slots.list()).find((e) => e.slot === slot);
      expect(entry, label).toBeDefined();
      expect([entry?.kind, entry?.exportable, entry?.info?.isPrivate, entry?.info?.exportable]).toEqual(["pk", false, true, false]);
      expect(hex(entry?.publicKey ?? new Uint8Array())).toBe(hex(await key.exportPublicKey()));
      await using loaded = (await dev.slots.load(slot)) as RSA | ECC;
      expect(loaded).toBeInstanceOf(key instanceof RSA ? RSA : ECC);
      expect([loaded.isPrivate, loaded.exportable]).toEqual([true, false]);
      await expect(loaded.exportKey("DER")).rejects.toBeInstanceOf(NotExportableError);
      await expect(dev.rpc.call(Op.pkExport, [loaded.handle, 4])).rejects.toBeInstanceOf(NotExportableError);
      const sig = await loaded.sign(utf8("from the slot"));
      expect(await key.verify(utf8("from the slot"), sig), label).toBe(true);
      await dev.slots.delete(slot);
    }
    await expect(dev.slots.delete(slot)).rejects.toBeInstanceOf(SlotEmptyError);
  });
});

describe("the whole session", () => {
  it("never carried an imported key's private values from the device", () => {
    expect(received.length).toBeGreaterThan(10);
    for (const [what, secret] of secrets) {
      // Any 16-byte window of the secret would be a leak; test the start, middle and end.
      for (const off of [0, secret.length >> 1, secret.length - 16]) {
        const probe = secret.subarray(off, off + 16);
        const hit = received.find((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).indexOf(probe) >= 0);
        expect(hit, `${what} at ${off}`).toBeUndefined();
      }
    }
    // ...while the public values did come out (the probe works).
    const spki = spkiOf(rsaNode.publicKey);
    expect(received.some((b) => hex(b) === hex(spki))).toBe(true);
  });

  it("frees every key: the heap is back at its baseline", async () => {
    for (const c of cases) await c.key.close();
    await session.expectAt({ heap: "open" });
  });
});
