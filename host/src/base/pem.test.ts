// PEM wrapping against Node's own PEM writer and reader (OpenSSL).
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ArgumentError } from "./errors.js";
import { looksLikePem, pemDecode, pemEncode } from "./pem.js";

const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });

describe("pem", () => {
  it("writes what Node writes, byte for byte", () => {
    const cases: [string, Buffer, string][] = [
      ["PUBLIC KEY", publicKey.export({ type: "spki", format: "der" }), publicKey.export({ type: "spki", format: "pem" }) as string],
      ["EC PRIVATE KEY", privateKey.export({ type: "sec1", format: "der" }), privateKey.export({ type: "sec1", format: "pem" }) as string],
      [
        "RSA PRIVATE KEY",
        rsa.privateKey.export({ type: "pkcs1", format: "der" }),
        rsa.privateKey.export({ type: "pkcs1", format: "pem" }) as string,
      ],
    ];
    for (const [label, der, pem] of cases) {
      expect(pemEncode(label, new Uint8Array(der))).toBe(pem);
      const back = pemDecode(pem);
      expect(back.label).toBe(label);
      expect(Buffer.from(back.der).equals(der)).toBe(true);
      expect(back.headers).toEqual({});
    }
  });

  it("writes PEM that Node reads back", () => {
    const der = new Uint8Array(rsa.privateKey.export({ type: "pkcs1", format: "der" }));
    const k = createPrivateKey(pemEncode("RSA PRIVATE KEY", der));
    expect(k.asymmetricKeyType).toBe("rsa");
    const pub = createPublicKey(pemEncode("PUBLIC KEY", new Uint8Array(rsa.publicKey.export({ type: "spki", format: "der" }))));
    expect(pub.equals(rsa.publicKey)).toBe(true);
  });

  it("handles empty and odd-length DER, CRLF, leading text and RFC 1421 headers", () => {
    expect(pemEncode("X", new Uint8Array(0))).toBe("-----BEGIN X-----\n-----END X-----\n");
    for (const n of [1, 2, 3, 47, 48, 49, 100]) {
      const der = Uint8Array.from({ length: n }, (_, i) => (i * 37) & 0xff);
      const pem = pemEncode("TEST", der);
      expect(pem.split("\n").every((l) => l.length <= 64)).toBe(true);
      expect([...pemDecode(`junk before\r\n${pem.replaceAll("\n", "\r\n")}`).der]).toEqual([...der]);
    }
    const legacy =
      "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAEC\n-----END RSA PRIVATE KEY-----\n";
    const b = pemDecode(legacy);
    expect(b.headers).toEqual({ "Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00112233445566778899AABBCCDDEEFF" });
    expect([...b.der]).toEqual([0, 1, 2]);
  });

  it("refuses what is not PEM", () => {
    expect(() => pemDecode("hello")).toThrow(ArgumentError);
    expect(() => pemDecode("-----BEGIN A-----\nAAAA\n-----END B-----\n")).toThrow(/no "-----END A-----"/);
    expect(() => pemDecode("-----BEGIN A-----\nAA*A\n-----END A-----\n")).toThrow(/malformed base64/);
    expect(() => pemDecode("-----BEGIN A-----\nAAA\n-----END A-----\n")).toThrow(/malformed base64/);
    expect(() => pemEncode("bad-----label", new Uint8Array(1))).toThrow(ArgumentError);
    expect(() => pemEncode("", new Uint8Array(1))).toThrow(ArgumentError);
  });

  it("recognises PEM text and bytes", () => {
    expect(looksLikePem("\n  -----BEGIN PUBLIC KEY-----\n")).toBe(true);
    expect(looksLikePem(new TextEncoder().encode("-----BEGIN X-----"))).toBe(true);
    expect(looksLikePem(Uint8Array.of(0x30, 0x82))).toBe(false);
    expect(looksLikePem("")).toBe(false);
  });
});
