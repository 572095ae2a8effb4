// dev.slots: persistent key slots. Keys stored in a slot load back with the
// same flags and still work (checked against Node's crypto); slot_list shows
// labels, flags and public keys but no private material; slot errors are
// typed; and a stopped and restarted device (same store file / directory)
// still has its keys. Two boots on every target.
import { createHmac, generateKeyPairSync, verify as nodeVerify, randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Limits, Op } from "../../host/src/base/protocol.generated.js";
import {
  ArgumentError,
  BadArgumentError,
  type Device,
  ECC,
  hex,
  NotExportableError,
  RSA,
  SlotEmptyError,
  SlotInUseError,
  SymmetricKey,
  utf8,
} from "../../host/src/index.js";
import { useSession } from "./session.js";
import { TARGET, until } from "./target.js";

const session = useSession({ keepStore: true });
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

const u8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.length);
const rand = (n: number) => u8(randomBytes(n));

const ecNode = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const ecScalar = u8(Buffer.from(ecNode.privateKey.export({ format: "jwk" }).d as string, "base64url"));
const rsaNode = generateKeyPairSync("rsa", { modulusLength: 2048 });
const rsaPrivateExponent = u8(Buffer.from(rsaNode.privateKey.export({ format: "jwk" }).d as string, "base64url"));
const symRaw = rand(32);

/** Every byte string inside a decoded CBOR value, concatenated. */
function allBytes(v: unknown): Buffer {
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (Array.isArray(v)) return Buffer.concat(v.map(allBytes));
  if (typeof v === "object" && v !== null) return Buffer.concat(Object.values(v).map(allBytes));
  if (typeof v === "string") return Buffer.from(v, "utf8");
  return Buffer.alloc(0);
}

describe("hello", () => {
  it("reports the key store honestly", () => {
    const want = TARGET === "qemu" ? "semihosting-file" : TARGET === "native" ? "file" : dev.info.keyStore;
    expect(dev.info.keyStore).toBe(want);
    expect(dev.info.persistent).toBe(dev.info.keyStore !== "volatile");
    expect(dev.info.slots).toBe(16);
    expect(dev.slots.count).toBe(16);
  });
});

describe("store, list, load", () => {
  it("a symmetric key: listed without its bytes, loads back and gives the same HMAC as Node", async () => {
    await using key = dev.keys.importSymmetric(symRaw);
    await dev.slots.store(key, 1, { label: "hmac key" });
    const entry = (await dev.slots.list()).find((s) => s.slot === 1);
    expect(entry).toEqual({
      slot: 1,
      label: "hmac key",
      kind: "symmetric",
      exportable: false,
      info: undefined,
      size: 32,
      publicKey: undefined,
      chain: 0,
      certificate: undefined,
    });
    await using loaded = await dev.slots.load(1);
    expect(loaded).toBeInstanceOf(SymmetricKey);
    const data = rand(100);
    const want = createHmac("sha256", symRaw).update(data).digest("hex");
    expect(hex(await dev.hmac.digest(loaded as SymmetricKey, data, "sha256"))).toBe(want);
  });

  it("an EC key (non-exportable) and an RSA key: public keys listed, private parts never", async () => {
    await using ec = await dev.pk.ECC.fromDER(u8(ecNode.privateKey.export({ format: "der", type: "pkcs8" }) as Buffer), {
      exportable: false,
    });
    await using rsa = await dev.pk.RSA.fromDER(u8(rsaNode.privateKey.export({ format: "der", type: "pkcs8" }) as Buffer));
    await dev.slots.store(ec, 2, { label: "device identity" });
    await dev.slots.store(rsa, 3, { label: "rsa" });
    const raw = await dev.rpc.call(Op.slotList, []);
    const bytes = allBytes(raw);
    expect(bytes.indexOf(Buffer.from(ecScalar))).toBe(-1);
    expect(bytes.indexOf(Buffer.from(rsaPrivateExponent.subarray(0, 32)))).toBe(-1);
    expect(bytes.indexOf(Buffer.from(symRaw))).toBe(-1);
    const list = await dev.slots.list();
    expect(list.map((s) => [s.slot, s.label, s.kind, s.exportable])).toEqual([
      [1, "hmac key", "symmetric", false],
      [2, "device identity", "pk", false],
      [3, "rsa", "pk", true],
    ]);
    const [, ecEntry, rsaEntry] = list;
    expect(ecEntry?.info).toEqual({ type: "ec", bits: 256, curve: "secp256r1", isPrivate: true, exportable: false });
    expect(rsaEntry?.info).toEqual({ type: "rsa", bits: 2048, curve: undefined, isPrivate: true, exportable: true });
    expect(hex(ecEntry?.publicKey ?? new Uint8Array())).toBe(hex(await ec.exportPublicKey()));
    expect(hex(ecEntry?.publicKey ?? new Uint8Array())).toBe(hex(u8(ecNode.publicKey.export({ format: "der", type: "spki" }) as Buffer)));
    expect(hex(rsaEntry?.publicKey ?? new Uint8Array())).toBe(hex(u8(rsaNode.publicKey.export({ format: "der", type: "spki" }) as Buffer)));
  });

  it("loaded pk keys keep their flags and sign; Node verifies", async () => {
    await using ec = await dev.slots.load(2);
    expect(ec).toBeInstanceOf(ECC);
    const e = ec as ECC;
    expect([e.isPrivate, e.exportable]).toEqual([true, false]);
    await expect(e.exportKey("DER")).rejects.toBeInstanceOf(NotExportableError);
    const msg = utf8("signed by a key from slot 2");
    expect(nodeVerify("sha256", msg, ecNode.publicKey, await e.sign(msg, "sha256"))).toBe(true);

    await using rsa = await dev.slots.load(3);
    expect(rsa).toBeInstanceOf(RSA);
    const r = rsa as RSA;
    expect(r.exportable).toBe(true);
    expect(nodeVerify("sha256", msg, rsaNode.publicKey, await r.sign(msg, "sha256"))).toBe(true);
  }, 120_000);
});

describe("errors", () => {
  it("overwrite rules: SlotInUseError unless overwrite", async () => {
    await using key = dev.keys.generateSymmetric(16);
    await expect(dev.slots.store(key, 1, { label: "other" })).rejects.toBeInstanceOf(SlotInUseError);
    expect((await dev.slots.list()).find((s) => s.slot === 1)?.label).toBe("hmac key");
    await dev.slots.store(key, 4, { label: "temp" });
    await dev.slots.store(key, 4, { label: "replaced", overwrite: true });
    const entry = (await dev.slots.list()).find((s) => s.slot === 4);
    expect([entry?.label, entry?.size]).toEqual(["replaced", 16]);
  });

  it("delete empties a slot: load and a second delete are SlotEmptyError", async () => {
    await dev.slots.delete(4);
    await expect(dev.slots.load(4)).rejects.toBeInstanceOf(SlotEmptyError);
    await expect(dev.slots.delete(4)).rejects.toBeInstanceOf(SlotEmptyError);
    await expect(dev.slots.load(9)).rejects.toBeInstanceOf(SlotEmptyError);
  });

  it("a slot number out of range is BadArgumentError; a label too long is a typed error", async () => {
    await using key = dev.keys.generateSymmetric(16);
    await expect(dev.slots.store(key, dev.info.slots)).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.slots.load(1000)).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.slots.delete(dev.info.slots)).rejects.toBeInstanceOf(BadArgumentError);
    const long = "x".repeat(Limits.slotLabelMax + 1);
    await expect(dev.slots.store(key, 5, { label: long })).rejects.toBeInstanceOf(ArgumentError);
    // The device checks too (a host that skips the SDK's check).
    const handle = await key._ready(dev);
    await expect(dev.rpc.call(Op.slotStore, [handle, 5, long, false])).rejects.toBeInstanceOf(BadArgumentError);
    await dev.slots.store(key, 5, { label: "x".repeat(Limits.slotLabelMax) });
    await dev.slots.delete(5);
    // and the device keeps serving
    expect((await dev.slots.list()).map((s) => s.slot)).toEqual([1, 2, 3]);
  });

  it("every loaded or refused key was freed: the device is back at its heap and handle baseline", async () => {
    await until(async () => (await dev.stats()).handlesUsed === session.openHandles);
    expect((await dev.stats()).heapUsed).toBe(session.openHeap);
  });
});

describe("persistence", () => {
  it("after the device is stopped and started again with the same store, the keys are there and work", async () => {
    const bootBefore = dev.info.bootId;
    await session.restart();
    dev = session.dev;
    expect(dev.info.bootId).not.toBe(bootBefore);
    expect(dev.info.persistent).toBe(true);
    const list = await dev.slots.list();
    expect(list.map((s) => [s.slot, s.label])).toEqual([
      [1, "hmac key"],
      [2, "device identity"],
      [3, "rsa"],
    ]);
    await using ec = (await dev.slots.load(2)) as ECC;
    expect(ec.exportable).toBe(false);
    const msg = utf8("after a restart");
    expect(nodeVerify("sha256", msg, ecNode.publicKey, await ec.sign(msg, "sha256"))).toBe(true);
    await using sym = (await dev.slots.load(1)) as SymmetricKey;
    expect(hex(await dev.hmac.digest(sym, msg, "sha256"))).toBe(createHmac("sha256", symRaw).update(msg).digest("hex"));
  }, 120_000);
});
