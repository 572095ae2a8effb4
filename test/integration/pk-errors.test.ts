// Bad input to dev.pk gets a typed error, from the host when it can tell
// before sending and from the device otherwise, and the device keeps
// serving after each one (checked after every test).
import { createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Limits, Op } from "../../host/src/base/protocol.generated.js";
import {
  ArgumentError,
  BadArgumentError,
  BadHandleError,
  CryptoError,
  type Device,
  type ECC,
  hex,
  type RSA,
  UnsupportedAlgorithmError,
  utf8,
  WrongHandleTypeError,
} from "../../host/src/index.js";
import { u8 } from "./pk-fixtures.js";
import { useSession } from "./session.js";

const session = useSession();
let dev: Device;
let rsa: RSA;
let ec: ECC;
let rsaPub: RSA;

const rsaNode = generateKeyPairSync("rsa", { modulusLength: 1024 });
const ecNode = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const rsaDer = u8(rsaNode.privateKey.export({ type: "pkcs1", format: "der" }));

beforeAll(async () => {
  dev = session.dev;
  rsa = await dev.pk.RSA.fromDER(rsaDer);
  rsaPub = await dev.pk.RSA.fromPEM(rsaNode.publicKey.export({ type: "spki", format: "pem" }) as string);
  ec = await dev.pk.ECC.fromPEM(ecNode.privateKey.export({ type: "pkcs8", format: "pem" }) as string);
});
afterEach(async () => {
  // After every bad request the device still answers, and correctly.
  expect(hex(await dev.hash.digest("sha256", utf8("abc")))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

/** The error a promise rejects with. */
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );

type KeyData = () => Uint8Array | string;

describe("malformed keys", () => {
  it.each<[string, KeyData]>([
    ["random bytes", () => u8(randomBytes(200))],
    ["truncated DER", () => rsaDer.subarray(0, rsaDer.length >> 1)],
    ["DER with one byte more", () => Uint8Array.from([...rsaDer, 0])],
    ["a DER SEQUENCE of nothing", () => Uint8Array.of(0x30, 0x00)],
    ["PEM with broken base64", () => "-----BEGIN PRIVATE KEY-----\nMIIB*not-base64*\n-----END PRIVATE KEY-----\n"],
    ["PEM of a certificate label", () => "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"],
    [
      "PEM without its END line",
      () => (rsaNode.privateKey.export({ type: "pkcs8", format: "pem" }) as string).split("-----END")[0] as string,
    ],
  ])("%s is BadArgumentError from the device", async (_label, data) => {
    const e = await failure(dev.pk.fromBuffer(data()));
    expect(e).toBeInstanceOf(BadArgumentError);
  });

  it("an empty key, or not bytes, is ArgumentError on the host", async () => {
    await expect(dev.pk.fromBuffer(new Uint8Array(0))).rejects.toBeInstanceOf(ArgumentError);
    await expect(dev.pk.fromBuffer(42 as unknown as Uint8Array)).rejects.toBeInstanceOf(ArgumentError);
    await expect(dev.pk.RSA.fromPEM("not pem")).rejects.toBeInstanceOf(ArgumentError);
  });

  it("an RSA key above rsa_bits_max is BadArgumentError", async () => {
    // A public key needs no primes: any odd modulus with its top bit set makes a well-formed key of that size.
    const n = randomBytes((Limits.rsaBitsMax + 512) / 8);
    n[0] = (n[0] ?? 0) | 0x80;
    n[n.length - 1] = (n[n.length - 1] ?? 0) | 1;
    const big = createPublicKey({ key: { kty: "RSA", n: n.toString("base64url"), e: "AQAB" }, format: "jwk" });
    const e = await failure(dev.pk.fromBuffer(u8(big.export({ type: "spki", format: "der" }))));
    expect(e).toBeInstanceOf(BadArgumentError);
    expect(e?.message).toMatch(String(Limits.rsaBitsMax));
  });
});

describe("generate with bad parameters", () => {
  it.each([
    [512, 65537],
    [8192, 65537],
    [2047, 65537],
    [1024, 65536],
    [1024, 1],
  ])("RSA %i bits, exponent %i is BadArgumentError from the device", async (bits, exponent) => {
    const k = dev.pk.RSA();
    const e = await failure(k.generate(bits, exponent));
    expect(e).toBeInstanceOf(BadArgumentError);
    expect(k.keySize).toBe(0);
    // The failed key object holds no key.
    await expect(k.sign(utf8("x"))).rejects.toBeInstanceOf(BadArgumentError);
    await k.close();
  });

  it("non-integer sizes are ArgumentError on the host", async () => {
    await expect(dev.pk.RSA().generate(2048.5)).rejects.toBeInstanceOf(ArgumentError);
    await expect(dev.pk.RSA().generate(-1)).rejects.toBeInstanceOf(ArgumentError);
  });

  it("an unknown curve name is ArgumentError; a curve id not compiled in is the device's UnsupportedAlgorithmError", async () => {
    expect(() => dev.pk.ECC("curve9999")).toThrow(ArgumentError);
    for (const id of [0, 99]) {
      const e = await failure(dev.rpc.call(Op.pkGenerate, [dev._nextHandle(), 2, id, 0, 1]));
      expect(e, `curve id ${id}`).toBeInstanceOf(UnsupportedAlgorithmError);
    }
    const e = await failure(dev.rpc.call(Op.pkGenerate, [dev._nextHandle(), 3, 1, 0, 1]));
    expect(e).toBeInstanceOf(BadArgumentError); // key type 3
  });
});

describe("operations the key cannot do", () => {
  it("EC keys cannot encrypt or decrypt: UnsupportedAlgorithmError from the device", async () => {
    const enc = await failure(ec.encrypt(utf8("secret")));
    expect(enc).toBeInstanceOf(UnsupportedAlgorithmError);
    expect((enc as UnsupportedAlgorithmError).local).toBe(false);
    await expect(ec.decrypt(new Uint8Array(64))).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
  });

  it("PSS on an EC key is BadArgumentError", async () => {
    await expect(ec.sign(utf8("x"), "sha256", { scheme: "pss" })).rejects.toBeInstanceOf(BadArgumentError);
    await expect(ec.verify(utf8("x"), new Uint8Array(70), "sha256", { scheme: "pss" })).rejects.toBeInstanceOf(BadArgumentError);
  });

  it("a public key asked to sign or decrypt is BadArgumentError naming the missing private part", async () => {
    const e = await failure(rsaPub.sign(utf8("x")));
    expect(e).toBeInstanceOf(BadArgumentError);
    expect(e?.message).toMatch(/private/);
    await expect(rsaPub.decrypt(new Uint8Array(128))).rejects.toBeInstanceOf(BadArgumentError);
    await expect(rsaPub.exportKey("DER")).rejects.toBeInstanceOf(BadArgumentError);
  });

  it("a ciphertext that does not decrypt is CryptoError; a wrong-length one too", async () => {
    await expect(rsa.decrypt(u8(randomBytes(128)))).rejects.toBeInstanceOf(CryptoError);
    await expect(rsa.decrypt(u8(randomBytes(100)))).rejects.toBeInstanceOf(CryptoError);
  });

  it("bad digests: unknown name (host), wrong length (host, and the device when sent by hand)", async () => {
    await expect(rsa.sign(utf8("x"), "sha999")).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
    await expect(rsa.signDigest(new Uint8Array(31), "sha256")).rejects.toBeInstanceOf(ArgumentError);
    await expect(dev.rpc.call(Op.pkSign, [rsa.handle, 4, new Uint8Array(31), 0])).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.rpc.call(Op.pkSign, [rsa.handle, 4, new Uint8Array(32), 7])).rejects.toBeInstanceOf(BadArgumentError);
    await expect(rsa.sign(utf8("x"), "sha256", { scheme: "rsa" as "pss" })).rejects.toBeInstanceOf(ArgumentError);
    await expect(rsa.encrypt(utf8("x"), { padding: "none" as "oaep" })).rejects.toBeInstanceOf(ArgumentError);
    await expect(rsa.exportKey("JWK" as "DER")).rejects.toBeInstanceOf(ArgumentError);
  });
});

describe("handles", () => {
  it("an empty key object, a closed one, and a freed or foreign handle", async () => {
    const empty = dev.pk.RSA();
    await expect(empty.sign(utf8("x"))).rejects.toBeInstanceOf(ArgumentError);
    await expect(empty.exportPublicKey()).rejects.toBeInstanceOf(ArgumentError);
    await empty.close();
    const k = await dev.pk.ECC.fromDER(u8(ecNode.publicKey.export({ type: "spki", format: "der" })));
    const handle = k.handle;
    await k.close();
    await expect(k.exportPublicKey()).rejects.toBeInstanceOf(ArgumentError);
    await expect(dev.rpc.call(Op.pkExport, [handle, 2])).rejects.toBeInstanceOf(BadHandleError);
    await using h = dev.hash.sha256();
    await h.digest();
    await expect(dev.rpc.call(Op.pkExport, [h.handle, 2])).rejects.toBeInstanceOf(WrongHandleTypeError);
    await expect(dev.rpc.call(Op.pkExport, [rsa.handle, 9])).rejects.toBeInstanceOf(BadArgumentError);
    // Two keys of different types do not make a pair (false or a typed error, never a hang).
    const r = await dev.pk.checkPair(rsaPub, ec).catch((e: unknown) => e);
    expect(r === false || r instanceof BadArgumentError).toBe(true);
  });
});

describe("the device afterwards", () => {
  it("frees every key: the heap is back at its baseline", async () => {
    for (const k of [rsa, rsaPub, ec]) await k.close();
    await session.expectAt({ heap: "open" });
  });
});

describe("out of device heap", () => {
  it("a PEM import that finds no heap for the decoded DER is OutOfMemoryError (MBEDTLS_ERR_PEM_ALLOC_FAILED); the heap comes back", async () => {
    const { OutOfMemoryError } = await import("../../host/src/index.js");
    const pem = rsaNode.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    const before = await dev.stats();
    const held: number[] = [];
    /** Creates an object under a new handle and keeps it; false when the device is out of heap. */
    const take = async (op: number, args: unknown[]): Promise<boolean> => {
      const h = dev._nextHandle();
      const e = await failure(dev.rpc.call(op, [h, ...args]));
      if (e === undefined) held.push(h);
      else expect(e).toBeInstanceOf(OutOfMemoryError);
      return e === undefined;
    };
    const drop = async () => dev.rpc.call(Op.free, [held.pop()]);
    const symKey = () => take(Op.keyImport, [u8(randomBytes(Limits.symkeyMax))]);
    // A buffered cipher context reserves its announced length (spec 7.1).
    const context = (length: number) =>
      take(Op.cipherBufNew, ["AES", "GCM", u8(randomBytes(16)), u8(randomBytes(12)), true, new Uint8Array(0), 16, length]);
    // Fill the heap: one 64-byte key first (freed later: room for the pk object, far less than the
    // PEM's decoded DER), then the largest context that fits until none does, then keys.
    try {
      expect(await symKey()).toBe(true);
      while (await context(1)) {
        await drop();
        let lo = 1;
        let hi = dev.info.heapSize;
        while (lo < hi) {
          const mid = Math.ceil((lo + hi) / 2);
          if (await context(mid)) {
            await drop();
            lo = mid;
          } else hi = mid - 1;
        }
        expect(await context(lo)).toBe(true);
      }
      while (await symKey()) {}
      await dev.rpc.call(Op.free, [held.shift()]);
      const e = await failure(dev.pk.RSA.fromPEM(pem));
      expect(e).toBeInstanceOf(OutOfMemoryError);
      expect((e as InstanceType<typeof OutOfMemoryError>).mbedtlsCode).toBe(-0x1180);
    } finally {
      for (const h of held) await dev.rpc.call(Op.free, [h]);
    }
    const heapBack = async () => {
      const st = await dev.stats();
      expect([st.heapUsed, st.handlesUsed]).toEqual([before.heapUsed, before.handlesUsed]);
    };
    await heapBack();
    await (await dev.pk.RSA.fromPEM(pem)).close(); // and the same import now succeeds
    await heapBack();
  });
});
