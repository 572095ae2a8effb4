// The requests dev.pk's key exchanges and dev.mpi put on the wire (shapes
// of protocol/messages.cddl, sections kex and mpi) and how their results
// are checked, against an in-memory device that answers as told.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { toBytes } from "../base/bigint.js";
import { ArgumentError, BadArgumentError, ProtocolError } from "../base/errors.js";
import { Op, Status } from "../base/protocol.generated.js";
import { hex } from "../base/util.js";
import { Device } from "../device.js";
import { fail, ScriptedDevice } from "../link/testing/scripted-device.js";

let t: ScriptedDevice;
let dev: Device;

beforeEach(async () => {
  t = new ScriptedDevice();
  dev = await Device.connect(t, { timeoutMs: 2000 });
});
afterEach(async () => {
  await dev.close();
});

describe("kex_new", () => {
  it("ECDH: curve id, role, null key; secp256r1 by default", async () => {
    t.answers.set(Op.kexGenerate, () => new Uint8Array([1]));
    const a = dev.pk.ECDHServer();
    const b = dev.pk.ECDHClient("x25519");
    const c = dev.pk.ECDHServer("prime256v1");
    await Promise.all([a.generate(), b.generate(), c.generate()]);
    expect(t.sentOp(Op.kexNew)).toEqual([
      [a.handle, 1, 1, 3, null],
      [b.handle, 1, 2, 12, null],
      [c.handle, 1, 1, 3, null],
    ]);
    expect([a.curve, b.curve, a.isStatic]).toEqual(["secp256r1", "x25519", false]);
  });

  it("static ECDH: the key's curve and handle, once the key is ready", async () => {
    t.answers.set(Op.kexGenerate, () => new Uint8Array([1]));
    const key = { curve: "secp384r1", _use: <T>(_s: unknown, fn: (h: number) => Promise<T>) => fn(77) };
    const s = dev.pk.ECDHServer(key);
    await s.generate();
    expect(t.sentOp(Op.kexNew)).toEqual([[s.handle, 1, 1, 4, 77]]);
    expect([s.curve, s.isStatic]).toEqual(["secp384r1", true]);
  });

  it("static ECDH with a key that has no key yet fails at the first call, sending nothing", async () => {
    const s = dev.pk.ECDHServer({ curve: "secp256r1", _use: () => Promise.reject(new ArgumentError("no key yet")) });
    await expect(s.generate()).rejects.toThrow("no key yet");
    expect(t.sentOp(Op.kexNew)).toEqual([]);
  });

  it("DH: [P, G] as minimal big-endian bytes, bigint or bytes alike", async () => {
    t.answers.set(Op.kexGenerate, () => new Uint8Array([1]));
    const p = (1n << 520n) + 0x1234n;
    const s = dev.pk.DHServer(p, 2n);
    const c = dev.pk.DHClient(toBytes(p), new Uint8Array([2]));
    await Promise.all([s.generate(), c.generate()]);
    const [ns = [], nc = []] = t.sentOp(Op.kexNew);
    expect(ns.slice(0, 3)).toEqual([s.handle, 2, 1]);
    expect(nc.slice(0, 3)).toEqual([c.handle, 2, 2]);
    for (const params of [ns[3], nc[3]]) expect((params as Uint8Array[]).map(hex)).toEqual([hex(toBytes(p)), "02"]);
    expect([ns[4], nc[4]]).toEqual([null, null]);
    expect([s.p, s.g, c.p, c.g]).toEqual([p, 2n, p, 2n]);
  });

  it("local argument errors: unknown curve, negative or non-numeric P", () => {
    expect(() => dev.pk.ECDHServer("secp999r1")).toThrow(ArgumentError);
    expect(() => dev.pk.ECDHClient(5 as unknown as string)).toThrow(ArgumentError);
    expect(() => dev.pk.DHServer(-1n, 2n)).toThrow(ArgumentError);
    expect(() => dev.pk.DHClient("x" as unknown as bigint, 2n)).toThrow(ArgumentError);
  });

  it("a device refusal of kex_new is thrown by every later call", async () => {
    t.answers.set(Op.kexNew, () => fail(Status.badArgument, "P too small"));
    const s = dev.pk.DHServer(7n, 2n);
    await expect(s.generate()).rejects.toBeInstanceOf(BadArgumentError);
    await expect(s.generateSecret()).rejects.toBeInstanceOf(BadArgumentError);
    expect(t.sentOp(Op.kexGenerate)).toEqual([]);
  });
});

describe("kex_secret", () => {
  it("bytes and bigint; a secret of the wrong length is a ProtocolError", async () => {
    const secret = new Uint8Array(32).fill(1);
    t.answers.set(Op.kexSecret, () => secret);
    const s = dev.pk.ECDHServer();
    expect(s.sharedSecret).toBeUndefined();
    const n = await s.generateSecret();
    expect(n).toBe(BigInt(`0x${"01".repeat(32)}`));
    expect(s.sharedSecret).toBe(n);
    expect(hex(s.sharedSecretBytes as Uint8Array)).toBe("01".repeat(32));
    expect(t.sentOp(Op.kexSecret)).toEqual([[s.handle, null]]);
    t.answers.set(Op.kexSecret, () => new Uint8Array(31));
    await expect(s.generateSecret()).rejects.toBeInstanceOf(ProtocolError);
    const dh = dev.pk.DHServer((1n << 1023n) + 1n, 2n);
    t.answers.set(Op.kexSecret, () => new Uint8Array(128));
    expect(await dh.generateSecret()).toBe(0n);
  });

  it("generateSecretKey sends a fresh destination handle and sizes the key by the curve", async () => {
    const s = dev.pk.ECDHClient("secp384r1");
    const key = await s.generateSecretKey();
    const [req] = t.sentOp(Op.kexSecret);
    expect(req?.[0]).toBe(s.handle);
    expect(req?.[1]).toBe(key.handle);
    expect(key.handle).not.toBe(s.handle);
    expect([key.size, key.origin]).toEqual([48, "device"]);
    expect(s.sharedSecret).toBeUndefined();
  });

  it("payloads: bytes only, sent as given", async () => {
    const c = dev.pk.ECDHClient();
    await expect(c.importSKE("abc" as unknown as Uint8Array)).rejects.toBeInstanceOf(ArgumentError);
    await c.importSKE(new Uint8Array([3, 0, 23, 1, 4]));
    expect(t.sentOp(Op.kexImport).map((a) => [a[0], hex(a[1] as Uint8Array)])).toEqual([[c.handle, "03001701" + "04"]]);
  });
});

describe("DH client and the server's group", () => {
  const lp = (b: Uint8Array) => [b.length >> 8, b.length & 0xff, ...b];
  it("a ServerKeyExchange naming another P or G is refused before it is sent", async () => {
    const p = (1n << 511n) + 111n;
    const c = dev.pk.DHClient(p, 2n);
    const other = new Uint8Array([...lp(toBytes(p + 2n)), ...lp(new Uint8Array([2])), ...lp(new Uint8Array([9]))]);
    await expect(c.importSKE(other)).rejects.toBeInstanceOf(ArgumentError);
    const otherG = new Uint8Array([...lp(toBytes(p)), ...lp(new Uint8Array([5])), ...lp(new Uint8Array([9]))]);
    await expect(c.importSKE(otherG)).rejects.toBeInstanceOf(ArgumentError);
    expect(t.sentOp(Op.kexImport)).toEqual([]);
    // the same group (P with a leading zero byte still equal) goes through
    const same = new Uint8Array([...lp(new Uint8Array([0, ...toBytes(p)])), ...lp(new Uint8Array([2])), ...lp(new Uint8Array([9]))]);
    await c.importSKE(same);
    // a payload too short to name a group is the device's to judge
    await c.importSKE(new Uint8Array([0, 9, 1]));
    expect(t.sentOp(Op.kexImport).length).toBe(2);
  });
});

describe("mpi", () => {
  it("prime: [bytes, flags]; a result of another size is a ProtocolError", async () => {
    t.answers.set(Op.mpiPrime, (args) => {
      const n = args[0] as number;
      const b = new Uint8Array(n).fill(0xff);
      return b;
    });
    expect(await dev.mpi.prime(2)).toBe(0xffffn);
    await dev.mpi.prime(4, { safe: true });
    await dev.mpi.prime(4, { lowErr: true, safe: true });
    expect(t.sentOp(Op.mpiPrime)).toEqual([
      [2, 0],
      [4, 1],
      [4, 3],
    ]);
    t.answers.set(Op.mpiPrime, () => new Uint8Array([0x7f, 0xff]));
    await expect(dev.mpi.prime(2)).rejects.toBeInstanceOf(ProtocolError);
  });

  it("random: [min, max bytes]; a min beyond safe integers shifts the range; results outside it are ProtocolErrors", async () => {
    t.answers.set(Op.mpiRandom, () => new Uint8Array([5]));
    expect(await dev.mpi.random(3, 10)).toBe(5n);
    const lo = 1n << 80n;
    expect(await dev.mpi.random(lo, lo + 1000n)).toBe(lo + 5n);
    const [a, b] = t.sentOp(Op.mpiRandom);
    expect([a?.[0], hex(a?.[1] as Uint8Array)]).toEqual([3, "0a"]);
    expect([b?.[0], hex(b?.[1] as Uint8Array)]).toEqual([0, "03e8"]);
    await expect(dev.mpi.random(6, 10)).rejects.toBeInstanceOf(ProtocolError);
    await expect(dev.mpi.random(lo, lo)).rejects.toBeInstanceOf(ArgumentError);
    await expect(dev.mpi.random(-1n, 10n)).rejects.toBeInstanceOf(ArgumentError);
  });
});
