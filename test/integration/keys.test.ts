// dev.keys: symmetric keys held on the device by handle. Ciphers and HMACs
// built from a held key give the same bytes as from the raw key and as Node's
// crypto (OpenSSL); generated keys work and never come back; handle errors are
// typed; the device keeps serving and ends at its heap/handle baseline.
import { createCipheriv, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { Limits, OP_INFO, Op } from "../../host/src/base/protocol.generated.js";
import {
  type AEADCipher,
  ArgumentError,
  AuthFailedError,
  BadArgumentError,
  BadHandleError,
  type Cipher,
  type Device,
  hex,
  type ResetInfo,
  StaleHandleError,
  SymmetricKey,
  utf8,
  WrongHandleTypeError,
} from "../../host/src/index.js";
import { rand } from "./bytes.js";
import { useSession } from "./session.js";
import { until } from "./target.js";

const session = useSession();
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

const u8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.length);

function nodeCrypt(name: string, key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const c = createCipheriv(name, key, iv);
  return u8(Buffer.concat([c.update(data), c.final()]));
}

function nodeAead(name: string, key: Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array) {
  // biome-ignore lint/suspicious/noExplicitAny: Node's AEAD overloads are keyed by mode string literals
  const c = createCipheriv(name as any, key, iv, { authTagLength: 16 } as any) as ReturnType<typeof createCipheriv> & {
    setAAD(b: Uint8Array, o?: object): void;
    getAuthTag(): Buffer;
  };
  c.setAAD(aad);
  const ct = u8(Buffer.concat([c.update(pt), c.final()]));
  return { ct, tag: u8(c.getAuthTag()) };
}

describe("an imported key gives the same bytes as the raw key and as Node", () => {
  it("AES-CBC (one frame and streamed through a context)", async () => {
    const raw = rand(16);
    const iv = rand(16);
    await using key = dev.keys.importSymmetric(raw);
    expect([key.size, key.origin]).toEqual([16, "imported"]);
    const held = dev.cipher.AES.new(key, dev.cipher.MODE_CBC, iv) as Cipher;
    const plain = dev.cipher.AES.new(raw, dev.cipher.MODE_CBC, iv) as Cipher;
    expect([held.name, held.keySize, held.blockSize, held.ivSize]).toEqual(["AES-128-CBC", 16, 16, 16]);
    for (const n of [0, 1, 16, 100, dev.info.mtu]) {
      const data = rand(n);
      const want = nodeCrypt("aes-128-cbc", raw, iv, data);
      const got = await held.encrypt(data);
      expect(hex(got), `${n} bytes`).toBe(hex(want));
      expect(hex(await plain.encrypt(data))).toBe(hex(want));
      expect(hex(await held.decrypt(got))).toBe(hex(data));
    }
  });

  it.each([
    ["AES-GCM", "AES", 32, "aes-256-gcm"],
    ["ChaCha20-Poly1305", "CHACHA20_POLY1305", 32, "chacha20-poly1305"],
  ] as const)("%s with tag", async (_label, fam, keyLen, nodeName) => {
    const raw = rand(keyLen);
    const iv = rand(12);
    const aad = utf8("header");
    const data = rand(100);
    await using key = dev.keys.importSymmetric(raw);
    const mode = fam === "AES" ? dev.cipher.MODE_GCM : dev.cipher.MODE_CHACHAPOLY;
    const held = dev.cipher[fam].new(key, mode, iv, aad) as AEADCipher;
    const plain = dev.cipher[fam].new(raw, mode, iv, aad) as AEADCipher;
    const want = nodeAead(nodeName, raw, iv, aad, data);
    const [ct, tag] = await held.encrypt(data);
    expect([hex(ct), hex(tag)]).toEqual([hex(want.ct), hex(want.tag)]);
    const [ct2, tag2] = await plain.encrypt(data);
    expect([hex(ct2), hex(tag2)]).toEqual([hex(want.ct), hex(want.tag)]);
    expect(hex(await held.decrypt(ct, tag))).toBe(hex(data));
    tag[0] = (tag[0] ?? 0) ^ 1;
    await expect(held.decrypt(ct, tag)).rejects.toBeInstanceOf(AuthFailedError);
  });

  it("AES-XTS (a 64-byte double key, the largest a device holds)", async () => {
    let raw = rand(64);
    while (hex(raw.subarray(0, 32)) === hex(raw.subarray(32))) raw = rand(64);
    const tweak = rand(16);
    const data = rand(48);
    await using key = dev.keys.importSymmetric(raw);
    const held = dev.cipher.AES.new(key, dev.cipher.MODE_XTS, tweak) as Cipher;
    expect(held.name).toBe("AES-256-XTS");
    const want = nodeCrypt("aes-256-xts", raw, tweak, data);
    expect(hex(await held.encrypt(data))).toBe(hex(want));
    expect(hex(await (dev.cipher.AES.new(raw, dev.cipher.MODE_XTS, tweak) as Cipher).encrypt(data))).toBe(hex(want));
    expect(hex(await held.decrypt(want))).toBe(hex(data));
  });

  it("HMAC (context and one-shot) equals Node's createHmac", async () => {
    const raw = rand(40);
    const msg = rand(200);
    const want = createHmac("sha256", raw).update(msg).digest("hex");
    await using key = dev.keys.importSymmetric(raw);
    await using m = dev.hmac.new(key, { digestmod: "sha256", msg: msg.subarray(0, 50) });
    m.update(msg.subarray(50));
    expect(await m.hexdigest()).toBe(want);
    expect(await dev.hmac.hexdigest(key, msg, "sha256")).toBe(want);
    // a context made from a held key does not need it afterwards
    await key.close();
    m.update(utf8(""));
    expect(await m.hexdigest()).toBe(want);
  });
});

describe("a generated key", () => {
  it("encrypts and decrypts round trip (CBC and GCM) and HMACs consistently", async () => {
    await using key = dev.keys.generateSymmetric(32);
    await using other = dev.keys.generateSymmetric(32);
    expect([key.size, key.origin]).toEqual([32, "generated"]);
    const iv = rand(16);
    const data = utf8("attack at dawn, bring snacks");
    const cbc = dev.cipher.AES.new(key, dev.cipher.MODE_CBC, iv) as Cipher;
    expect(cbc.name).toBe("AES-256-CBC");
    const ct = await cbc.encrypt(data);
    expect(ct.length).toBe(32);
    expect(hex(await cbc.encrypt(data))).toBe(hex(ct));
    expect(hex(await cbc.decrypt(ct))).toBe(hex(data));
    expect(hex(await (dev.cipher.AES.new(other, dev.cipher.MODE_CBC, iv) as Cipher).encrypt(data))).not.toBe(hex(ct));

    const gcm = dev.cipher.AES.new(key, dev.cipher.MODE_GCM, rand(12)) as AEADCipher;
    const [gct, tag] = await gcm.encrypt(data, utf8("aad"));
    expect(hex(await gcm.decrypt(gct, tag, utf8("aad")))).toBe(hex(data));
    await expect(gcm.decrypt(gct, tag, utf8("bad"))).rejects.toBeInstanceOf(AuthFailedError);

    const mac = await dev.hmac.digest(key, data, "sha256");
    expect(hex(await dev.hmac.digest(key, data, "sha256"))).toBe(hex(mac));
    await using m = dev.hmac.new(key, { digestmod: "sha256", msg: data });
    expect(hex(await m.digest())).toBe(hex(mac));
    expect(hex(await dev.hmac.digest(other, data, "sha256"))).not.toBe(hex(mac));
  });

  it("has no way back: no op exports a key, and a SymmetricKey holds no bytes", () => {
    const ids = JSON.parse(readFileSync(new URL("../../protocol/ids.json", import.meta.url), "utf8")) as {
      ops: { name: string; module: string }[];
    };
    const keyOps = ids.ops.filter((o) => o.module === "key").map((o) => o.name);
    expect(keyOps.sort()).toEqual(["key_generate", "key_import"]);
    // The only export op is pk_export, which takes pk handles (checked live below).
    expect(ids.ops.filter((o) => /export|get_key|key_(read|get|bytes)/.test(o.name)).map((o) => o.name)).toEqual(["pk_export"]);
    expect([...OP_INFO.values()].filter((o) => o.module === "key").map((o) => o.name)).toEqual(expect.arrayContaining(keyOps));
    const key = dev.keys.generateSymmetric(16);
    const props = [...Object.keys(key), ...Object.getOwnPropertyNames(SymmetricKey.prototype)];
    expect(props.filter((p) => /bytes|secret|material|export|raw|value/i.test(p))).toEqual([]);
    for (const v of Object.values(key)) expect(v).not.toBeInstanceOf(Uint8Array);
    return key.close();
  });

  it("pk_export refuses a symmetric key handle in every format", async () => {
    const key = dev.keys.generateSymmetric(16);
    const handle = await key._ready(dev);
    for (const format of [1, 2, 3, 4]) {
      await expect(dev.rpc.call(Op.pkExport, [handle, format])).rejects.toBeInstanceOf(WrongHandleTypeError);
    }
    await key.close();
  });
});

describe("errors", () => {
  it("a freed key is a BadHandleError on use", async () => {
    const key = dev.keys.importSymmetric(rand(16));
    const c = dev.cipher.AES.new(key, dev.cipher.MODE_CBC, rand(16)) as Cipher;
    await c.encrypt(rand(16));
    await key.close();
    await expect(c.encrypt(rand(16))).rejects.toBeInstanceOf(BadHandleError);
    await expect(dev.hmac.digest(key, rand(8), "sha256")).rejects.toBeInstanceOf(BadHandleError);
    const m = dev.hmac.new(key, { digestmod: "sha256" });
    await expect(m.digest()).rejects.toBeInstanceOf(BadHandleError);
    await m.close();
    // freed by hand on the wire, too
    const k2 = dev.keys.importSymmetric(rand(16));
    await dev.rpc.call(Op.free, [k2.handle]);
    await expect((dev.cipher.AES.new(k2, dev.cipher.MODE_ECB) as Cipher).encrypt(rand(16))).rejects.toBeInstanceOf(BadHandleError);
    await k2.close(); // quiet
  });

  it("a hash handle used as a key is a WrongHandleTypeError", async () => {
    await using h = dev.hash.sha256(utf8("abc"));
    await h.digest();
    const err = await dev.rpc.call(Op.hmacOneshot, [4, h.handle, utf8("x")]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrongHandleTypeError);
    expect((err as Error).message).toBe(`handle ${h.handle} is not a symmetric key`);
    const err2 = await dev.rpc.call(Op.cipherCrypt, ["AES", "CBC", h.handle, rand(16), true, rand(16)]).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(WrongHandleTypeError);
  });

  it("wrong sizes are typed errors, locally and on the device", async () => {
    expect(() => dev.keys.importSymmetric(new Uint8Array(0))).toThrow(ArgumentError);
    expect(() => dev.keys.importSymmetric(new Uint8Array(Limits.symkeyMax + 1))).toThrow(ArgumentError);
    expect(() => dev.keys.generateSymmetric(0)).toThrow(ArgumentError);
    expect(() => dev.keys.generateSymmetric(65)).toThrow(ArgumentError);
    expect(() => dev.keys.generateSymmetric(1.5)).toThrow(ArgumentError);
    expect(() => dev.keys.importSymmetric("key" as unknown as Uint8Array)).toThrow(ArgumentError);
    // the device's own checks (a host that skips them)
    for (const [op, arg] of [
      [Op.keyImport, new Uint8Array(65)],
      [Op.keyImport, new Uint8Array(0)],
      [Op.keyGenerate, 0],
      [Op.keyGenerate, 65],
    ] as const) {
      const err = await dev.rpc.call(op, [dev._nextHandle(), arg]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadArgumentError);
      expect((err as Error).message).toMatch(/^arg 2: key must be 1\.\.64 bytes, got /);
    }
    // a held key of a length the cipher does not take
    await using k20 = dev.keys.importSymmetric(rand(20));
    const err = await (dev.cipher.AES.new(k20, dev.cipher.MODE_CBC, rand(16)) as Cipher).encrypt(rand(16)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadArgumentError);
    expect((err as Error).message).toBe("AES-CBC key must be 16, 24 or 32 bytes, got 20");
    await using k16 = dev.keys.generateSymmetric(16);
    const err2 = await (dev.cipher.CHACHA20_POLY1305.new(k16, dev.cipher.MODE_CHACHAPOLY, rand(12)) as AEADCipher)
      .encrypt(rand(4))
      .catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(BadArgumentError);
  });

  it("a failed key create surfaces on first use, as its own error", async () => {
    // Occupy the handle the next key will get: its key_import fails with handle_in_use.
    const next = dev._nextHandle() + 1;
    await dev.rpc.call(Op.hashNew, [next, 4]);
    const key = dev.keys.importSymmetric(rand(16));
    expect(key.handle).toBe(next);
    const err = await (dev.cipher.AES.new(key, dev.cipher.MODE_CBC, rand(16)) as Cipher).encrypt(rand(16)).catch((e: unknown) => e);
    expect((err as Error).name).toBe("HandleInUseError");
    const m = dev.hmac.new(key, { digestmod: "sha256" });
    expect(((await m.digest().catch((e: unknown) => e)) as Error).name).toBe("HandleInUseError");
    await m.close();
    await dev.rpc.call(Op.free, [next]);
    await key.close(); // quiet: bad_handle
  });
});

describe("the device keeps serving", () => {
  it("and is back at its handle and heap baseline", async () => {
    expect(hex(await dev.echo(utf8("still here")))).toBe(hex(utf8("still here")));
    await session.expectAt({ heap: "open", handles: true });
  });

  it("a key from before a device reset is a StaleHandleError", async () => {
    const control = session.control;
    if (!control) return; // a real board cannot be reset from here
    const key = dev.keys.importSymmetric(rand(16));
    const c = dev.cipher.AES.new(key, dev.cipher.MODE_CBC, rand(16)) as Cipher;
    await c.encrypt(rand(16));
    const resets: ResetInfo[] = [];
    dev.on("reset", (r) => resets.push(r));
    await control.reset();
    await until(() => resets.length === 1, 15_000);
    expect(hex(await dev.echo(utf8("x")))).toBe(hex(utf8("x"))); // served after the new hello
    await expect(c.encrypt(rand(16))).rejects.toBeInstanceOf(StaleHandleError);
    expect(() => dev.hmac.new(key, { digestmod: "sha256" })).toThrow(StaleHandleError);
    expect(() => dev.cipher.AES.new(key, dev.cipher.MODE_CBC, rand(16))).toThrow(StaleHandleError);
    await key.close(); // quiet
    expect((await dev.stats()).handlesUsed).toBe(0);
  });
});
