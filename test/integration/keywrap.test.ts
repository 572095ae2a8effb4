// dev.keywrap: NIST key wrap KW (RFC 3394) and KWP (RFC 5649) on the device,
// checked against the RFCs' own vectors and against Node's (OpenSSL's)
// id-aes{128,192,256}-wrap(-pad) ciphers both ways, with the KEK as bytes
// and as a device-held key. Altered wraps, a wrong KEK and a wrong mode are
// AuthFailedError (Node refuses the same wraps) and create nothing. A key
// Node wrapped is unwrapped on the device into non-exportable device keys
// (symmetric, EC, RSA, and into a key slot) that encrypt, MAC and sign with
// results Node checks, and no 8-byte run of those keys is in anything the
// device sent during the whole session.
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  generateKeyPairSync,
  type KeyObject,
  verify as nodeVerify,
  randomInt,
} from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Op } from "../../host/src/base/protocol.generated.js";
import {
  ArgumentError,
  AuthFailedError,
  BadArgumentError,
  type Device,
  ECC,
  fromHex,
  hex,
  type KeyWrapMode,
  NotExportableError,
  RSA,
  SymmetricKey,
} from "../../host/src/index.js";
import { rand } from "./bytes.js";
import { captureDeviceBytes, findRun } from "./frame-scan.js";
import { u8 } from "./pk-fixtures.js";
import { useSession } from "./session.js";
import { bulk } from "./target.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
/** Every byte string the device sent in this file's session. */
let received: Uint8Array[] = [];

beforeAll(() => {
  dev = session.dev;
  received = captureDeviceBytes(dev);
});

const MODES: readonly KeyWrapMode[] = ["KW", "KWP"];
/** The default ICVs: RFC 3394 2.2.3.1 and RFC 5649 3 (the AIV's constant half). */
const NODE_IV: Record<KeyWrapMode, Buffer> = { KW: Buffer.from("A6A6A6A6A6A6A6A6", "hex"), KWP: Buffer.from("A65959A6", "hex") };
const nodeAlg = (kek: Uint8Array, mode: KeyWrapMode) => `id-aes${kek.length * 8}-wrap${mode === "KWP" ? "-pad" : ""}`;

function nodeWrap(kek: Uint8Array, key: Uint8Array, mode: KeyWrapMode): Uint8Array {
  const c = createCipheriv(nodeAlg(kek, mode), kek, NODE_IV[mode]);
  return u8(Buffer.concat([c.update(key), c.final()]));
}

/** Node's unwrap, or undefined when OpenSSL refuses the wrap. */
function nodeUnwrap(kek: Uint8Array, wrapped: Uint8Array, mode: KeyWrapMode): Uint8Array | undefined {
  try {
    const d = createDecipheriv(nodeAlg(kek, mode), kek, NODE_IV[mode]);
    return u8(Buffer.concat([d.update(wrapped), d.final()]));
  } catch {
    return undefined;
  }
}

const KEK_128 = "000102030405060708090A0B0C0D0E0F";
const KEK_192 = `${KEK_128}1011121314151617`;
const KEK_256 = `${KEK_128}101112131415161718191A1B1C1D1E1F`;
const DATA_128 = "00112233445566778899AABBCCDDEEFF";
const DATA_192 = `${DATA_128}0001020304050607`;
const DATA_256 = `${DATA_128}000102030405060708090A0B0C0D0E0F`;

/** RFC 3394 section 4 (KW) and RFC 5649 section 6 (KWP): [section, mode, KEK, key data, wrapped]. */
const VECTORS: [string, KeyWrapMode, string, string, string][] = [
  ["RFC 3394 4.1", "KW", KEK_128, DATA_128, "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"],
  ["RFC 3394 4.2", "KW", KEK_192, DATA_128, "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"],
  ["RFC 3394 4.3", "KW", KEK_256, DATA_128, "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"],
  ["RFC 3394 4.4", "KW", KEK_192, DATA_192, "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2"],
  ["RFC 3394 4.5", "KW", KEK_256, DATA_192, "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"],
  ["RFC 3394 4.6", "KW", KEK_256, DATA_256, "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"],
  [
    "RFC 5649 6 (20 octets)",
    "KWP",
    "5840DF6E29B02AF1AB493B705BF16EA1AE8338F4DCC176A8",
    "C37B7E6492584340BED12207808941155068F738",
    "138BDEAA9B8FA7FC61F97742E72248EE5AE6AE5360D1AE6A5F54F373FA543B6A",
  ],
  [
    "RFC 5649 6 (7 octets)",
    "KWP",
    "5840DF6E29B02AF1AB493B705BF16EA1AE8338F4DCC176A8",
    "466F7250617369",
    "AFBEB0F07DFBF5419200F2CCB50BB24F",
  ],
];

describe("published vectors", () => {
  it.each(VECTORS)(
    "%s: wrap and unwrap, KEK as bytes and as a device key; Node agrees",
    async (_name, mode, kekHex, dataHex, wrappedHex) => {
      const kek = fromHex(kekHex);
      const data = fromHex(dataHex);
      expect(hex(nodeWrap(kek, data, mode)).toUpperCase()).toBe(wrappedHex); // the reference agrees with the RFC
      await using held = dev.keys.importSymmetric(kek);
      for (const k of [kek, held]) {
        expect(hex(await dev.keywrap.wrap(k, data, { mode })).toUpperCase()).toBe(wrappedHex);
        expect(hex(await dev.keywrap.unwrap(k, fromHex(wrappedHex), { mode })).toUpperCase()).toBe(dataHex);
      }
    },
  );
});

describe("against Node's id-aes*-wrap(-pad) on random keys and lengths", () => {
  const big = () => Math.floor((dev._context.chunkSize - 128) / 8) * 8;
  const lengths = (mode: KeyWrapMode): number[] => {
    const n = bulk(10, 5);
    const small = Array.from({ length: n }, () => (mode === "KW" ? 8 * randomInt(2, 9) : randomInt(1, 72)));
    return [...(mode === "KW" ? [16, 24] : [1, 8, 9]), ...small, big() - (mode === "KWP" ? randomInt(1, 8) : 0)];
  };
  describe.each([16, 24, 32])("AES-%i KEK", (kekLen) => {
    it.each(MODES)("%s: the device's wraps equal Node's, and each unwraps the other's", async (mode) => {
      const kekBytes = rand(kekLen);
      await using held = dev.keys.importSymmetric(kekBytes);
      for (const len of lengths(mode)) {
        const key = rand(len);
        const reference = nodeWrap(kekBytes, key, mode);
        const kek = len % 2 === 0 ? held : kekBytes;
        const wrapped = await dev.keywrap.wrap(kek, key, { mode });
        expect(hex(wrapped), `${mode} ${len} bytes`).toBe(hex(reference));
        expect(hex(nodeUnwrap(kekBytes, wrapped, mode) ?? new Uint8Array()), `Node unwraps ${len}`).toBe(hex(key));
        expect(hex(await dev.keywrap.unwrap(kek, reference, { mode })), `device unwraps ${len}`).toBe(hex(key));
      }
    });
  });
});

describe("altered wraps are refused and release nothing", () => {
  it.each(MODES)(
    "%s: every byte of a short wrap flipped, a wrong KEK and the other mode are AuthFailedError (as in Node)",
    async (mode) => {
      const kek = rand(16);
      await using held = dev.keys.importSymmetric(kek);
      const key = rand(mode === "KW" ? 16 : 7);
      const wrapped = nodeWrap(kek, key, mode);
      const handles = (await dev.stats()).handlesUsed;
      for (let i = 0; i < wrapped.length; i++) {
        const bad = Uint8Array.from(wrapped);
        bad[i] = (bad[i] as number) ^ (1 << (i % 8));
        expect(nodeUnwrap(kek, bad, mode), `Node, byte ${i}`).toBeUndefined();
        await expect(dev.keywrap.unwrap(held, bad, { mode }), `byte ${i}`).rejects.toBeInstanceOf(AuthFailedError);
        await expect(dev.keywrap.unwrap(kek, bad, { mode, into: "key" }), `byte ${i} into a key`).rejects.toBeInstanceOf(AuthFailedError);
      }
      const wrongKek = rand(16);
      expect(nodeUnwrap(wrongKek, wrapped, mode)).toBeUndefined();
      await expect(dev.keywrap.unwrap(wrongKek, wrapped, { mode })).rejects.toBeInstanceOf(AuthFailedError);
      await expect(dev.keywrap.unwrap(wrongKek, wrapped, { mode, into: "key" })).rejects.toBeInstanceOf(AuthFailedError);
      const other: KeyWrapMode = mode === "KW" ? "KWP" : "KW";
      if (wrapped.length >= 24) await expect(dev.keywrap.unwrap(held, wrapped, { mode: other })).rejects.toBeInstanceOf(AuthFailedError);
      expect((await dev.stats()).handlesUsed, "no key object was created").toBe(handles);
      expect(hex(await dev.keywrap.unwrap(held, wrapped, { mode })), "the device still serves").toBe(hex(key));
    },
  );

  it("lengths no wrap has, bad KEKs and bad modes are typed errors (host and device)", async () => {
    const kek = rand(16);
    await expect(dev.keywrap.wrap(kek, rand(20))).rejects.toBeInstanceOf(ArgumentError); // KW: multiple of 8
    await expect(dev.keywrap.wrap(kek, rand(8))).rejects.toBeInstanceOf(ArgumentError); // KW: at least 16
    await expect(dev.keywrap.wrap(kek, new Uint8Array(0), { mode: "KWP" })).rejects.toBeInstanceOf(ArgumentError);
    await expect(dev.keywrap.unwrap(kek, rand(16))).rejects.toBeInstanceOf(ArgumentError); // KW: at least 24
    await expect(dev.keywrap.unwrap(kek, rand(20), { mode: "KWP" })).rejects.toBeInstanceOf(ArgumentError);
    await expect(dev.keywrap.wrap(rand(20), rand(16))).rejects.toBeInstanceOf(ArgumentError);
    await expect(dev.keywrap.wrap(kek, rand(16), { mode: "XX" as KeyWrapMode })).rejects.toBeInstanceOf(ArgumentError);
    await expect(dev.keywrap.wrap(kek, rand(dev._context.chunkSize))).rejects.toBeInstanceOf(ArgumentError);
    // Past the SDK: the device checks the same.
    {
      await using odd = dev.keys.importSymmetric(rand(20));
      await expect(dev.rpc.call(Op.keywrapWrap, [odd.handle, 0, rand(16)])).rejects.toBeInstanceOf(BadArgumentError);
    }
    await expect(dev.rpc.call(Op.keywrapWrap, [kek, 2, rand(16)])).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.rpc.call(Op.keywrapWrap, [kek, 0, rand(20)])).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.rpc.call(Op.keywrapUnwrap, [kek, 1, rand(8)])).rejects.toBeInstanceOf(BadArgumentError);
    // A valid wrap of something that is no device key: too long for a key, not a private key DER.
    await expect(dev.keywrap.unwrap(kek, nodeWrap(kek, rand(72), "KW"), { into: "key" })).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.keywrap.unwrap(kek, nodeWrap(kek, rand(40), "KWP"), { mode: "KWP", into: "pk" })).rejects.toBeInstanceOf(
      BadArgumentError,
    );
    const pub = u8(generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({ type: "spki", format: "der" }));
    await expect(dev.keywrap.unwrap(kek, nodeWrap(kek, pub, "KWP"), { mode: "KWP", into: "pk" })).rejects.toBeInstanceOf(BadArgumentError);
    await session.expectAt({ heap: "open", handles: true });
  });
});

describe("a key wrapped by Node, unwrapped into a non-exportable device key", () => {
  /** The keys wrapped below: none may appear in what the device sends. */
  const secrets: [string, Uint8Array][] = [];
  const kekBytes = rand(32);
  let kek: SymmetricKey;

  const jwkPart = (k: KeyObject, part: "d" | "p" | "q") => u8(Buffer.from(k.export({ format: "jwk" })[part] as string, "base64url"));

  beforeAll(() => {
    kek = dev.keys.importSymmetric(kekBytes);
  });

  it("a symmetric key encrypts (AES-GCM) and MACs (HMAC) as Node does with the key", async () => {
    const keyBytes = rand(32);
    secrets.push(["AES key", keyBytes]);
    await using key = await dev.keywrap.unwrap(kek, nodeWrap(kekBytes, keyBytes, "KW"), { into: "key" });
    expect([key.size, key.origin]).toEqual([32, "device"]);
    const nonce = rand(12);
    const msg = rand(100);
    const [ct, tag] = await dev.cipher.AES.new(key, dev.cipher.MODE_GCM, nonce).encrypt(msg);
    const d = createDecipheriv("aes-256-gcm", keyBytes, nonce).setAuthTag(tag);
    expect(hex(u8(Buffer.concat([d.update(ct), d.final()])))).toBe(hex(msg));
    expect(hex(await dev.hmac.digest(key, msg, "sha256"))).toBe(createHmac("sha256", keyBytes).update(msg).digest("hex"));
  });

  it("KWP into a key slot: the key loaded back encrypts as Node does", async () => {
    const keyBytes = rand(24);
    secrets.push(["slot key", keyBytes]);
    const slot = dev.slots.count - 1;
    const wrapped = nodeWrap(kekBytes, keyBytes, "KWP");
    await (await dev.keywrap.unwrap(kek, wrapped, { mode: "KWP", into: "key", slot, label: "wrapped", overwrite: true })).close();
    const listed = (await dev.slots.list()).find((e) => e.slot === slot);
    expect([listed?.kind, listed?.label, listed?.size]).toEqual(["symmetric", "wrapped", 24]);
    await using loaded = await dev.slots.load(slot);
    expect(loaded).toBeInstanceOf(SymmetricKey);
    const iv = rand(16);
    const msg = rand(64);
    const ct = await dev.cipher.AES.new(loaded as SymmetricKey, dev.cipher.MODE_CBC, iv).encrypt(msg);
    const d = createDecipheriv("aes-192-cbc", keyBytes, iv);
    expect(hex(u8(Buffer.concat([d.update(ct), d.final()])))).toBe(hex(msg));
    await dev.slots.delete(slot);
  });

  it.each([
    ["EC P-256, SEC1 DER", "ec", "sec1"],
    ["EC P-256, PKCS#8 DER", "ec", "pkcs8"],
    ["RSA-2048, PKCS#8 DER", "rsa", "pkcs8"],
  ] as const)("a private key (%s) signs, Node verifies; its private part is not exportable", async (_label, type, format) => {
    const pair =
      type === "ec" ? generateKeyPairSync("ec", { namedCurve: "prime256v1" }) : generateKeyPairSync("rsa", { modulusLength: 2048 });
    for (const part of type === "ec" ? (["d"] as const) : (["d", "p", "q"] as const))
      secrets.push([`${_label} ${part}`, jwkPart(pair.privateKey, part)]);
    const der = u8(pair.privateKey.export({ type: format, format: "der" }));
    await using key = await dev.keywrap.unwrap(kek, nodeWrap(kekBytes, der, "KWP"), { mode: "KWP", into: "pk" });
    expect(key).toBeInstanceOf(type === "ec" ? ECC : RSA);
    expect([key.isPrivate, key.exportable]).toEqual([true, false]);
    await expect(key.exportKey("DER")).rejects.toBeInstanceOf(NotExportableError);
    const msg = rand(80);
    const sig = await key.sign(msg, "sha256");
    expect(nodeVerify("sha256", msg, pair.publicKey, sig)).toBe(true);
  });

  it("no 8-byte run of any unwrapped key is in anything the device sent", async () => {
    await kek.close();
    expect(secrets.length).toBe(7);
    expect(received.length).toBeGreaterThan(50);
    for (const [what, secret] of secrets) expect(findRun(received, secret, 8), what).toBeUndefined();
    // ...while the probe does find what the device did send: a key it unwrapped to bytes.
    const shown = rand(16);
    await dev.keywrap.unwrap(kekBytes, nodeWrap(kekBytes, shown, "KW"));
    expect(findRun(received, shown, 8)).toBe(0);
  });
});
