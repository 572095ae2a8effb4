// Certificates and requests made on the device (dev.x509.CSR.new,
// CRT.selfsign, crt.sign), judged by OpenSSL and Node: `openssl req -verify`
// accepts device CSRs (RSA and EC, with SANs); a root -> intermediate ->
// end-entity chain issued on the device (an RSA root whose key is
// non-exportable, an ECDSA intermediate whose key is non-exportable and
// loaded from a slot) passes `openssl verify`, `openssl x509 -text` shows
// every requested extension, and Node's X509Certificate agrees on subject,
// issuer, serial, validity and SANs. CSRs made by OpenSSL parse (one larger
// than a frame, in pieces) and get signed into a certificate larger than a
// frame (read back in pieces). A wrong signing key, a tampered signature,
// bad subjects, digests, keys and validity are typed errors, and the device
// keeps serving. Reports the heap a CSR write and a certificate signing take.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Op } from "../../host/src/base/protocol.generated.js";
import {
  ArgumentError,
  BadArgumentError,
  CertificateError,
  type CRT,
  type CSR,
  type Device,
  type ECC,
  HandleInUseError,
  type RSA,
  UnsupportedAlgorithmError,
} from "../../host/src/index.js";
import { requireTool } from "../../tools/programs.js";
import { u8 } from "./pk-fixtures.js";
import { useSession } from "./session.js";
import { TARGET } from "./target.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const dir = mkdtempSync(join(tmpdir(), "x509-write-"));
const path = (f: string) => join(dir, f);

/** Runs openssl in the fixture directory; throws with its stderr when it fails. */
function ossl(args: string[]): string {
  try {
    return execFileSync(requireTool("openssl"), args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }).toString();
  } catch (e) {
    const err = e as { stderr?: Buffer; stdout?: Buffer };
    throw new Error(`openssl ${args.join(" ")}: ${err.stdout?.toString() ?? ""}${err.stderr?.toString() ?? ""}`);
  }
}
/** Whether openssl succeeds. */
const osslOk = (args: string[]): boolean => {
  try {
    ossl(args);
    return true;
  } catch {
    return false;
  }
};
const save = (name: string, text: string) => writeFileSync(path(name), text);

const DAY = 86_400_000;
const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const in90days = new Date(now.getTime() + 90 * DAY);

let rootKey: RSA | ECC;
let interKey: RSA | ECC;
let interFromSlot: RSA | ECC;
let eeKey: ECC;
let root: CRT;
let inter: CRT;
let ee: CRT;
let eeCsr: CSR;

/** Node's one-line SAN text of a list, as X509Certificate.subjectAltName writes it. */
const EE_SANS = ["DNS:device-42.fleet.example", "IP:192.0.2.7", "IP:2001:db8::42", "URI:urn:example:device:42", "email:ops@fleet.example"];

beforeAll(async () => {
  dev = session.dev;
  // The root: RSA-2048 made by Node (QEMU would take minutes to generate one), imported non-exportable.
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  rootKey = await dev.pk.fromBuffer(u8(privateKey.export({ type: "pkcs8", format: "der" }) as Buffer), { exportable: false });
  // The intermediate: P-256 generated on the device, non-exportable, stored in a slot and loaded back.
  interKey = dev.pk.ECC("secp256r1");
  await interKey.generate({ exportable: false });
  await dev.slots.store(interKey as ECC, 0, { overwrite: true });
  interFromSlot = (await dev.slots.load(0)) as ECC;
  eeKey = dev.pk.ECC("secp256r1");
  await eeKey.generate();
});

afterAll(async () => {
  for (const o of [ee, inter, root, eeCsr, eeKey, interFromSlot, interKey, rootKey]) await o?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the heap (first, so that the peak since boot is the probes')", () => {
  it("reports what a CSR write and a certificate signing keep and take at their peak", async () => {
    const lines: string[] = [];
    /** Runs `make`, reporting what it keeps and its peak above the heap before (when it raised the peak since boot). */
    const probe = async <T>(what: string, make: () => Promise<T>): Promise<T> => {
      const a = await dev.stats();
      const made = await make();
      const b = await dev.stats();
      const peak = b.heapPeak > a.heapPeak ? `${b.heapPeak - a.heapUsed} B` : `at most ${b.heapPeak - a.heapUsed} B`;
      lines.push(`${what}: keeps ${b.heapUsed - a.heapUsed} B, peak ${peak} above the heap before`);
      return made;
    };
    const s0 = await dev.stats();
    const round = async (report: boolean) => {
      const p = report ? probe : <T>(_: string, make: () => Promise<T>) => make();
      const ecCsr = await p("P-256 CSR write", () =>
        dev.x509.CSR.new(eeKey, "O=Acme,CN=heap probe", "sha256", { subjectAlternativeNames: ["DNS:probe.example"] }),
      );
      const ecCrt = await p("P-256 self-signed certificate", () => dev.x509.CRT.selfsign(ecCsr, eeKey, { notAfter: in90days }));
      const rsaCsr = await p("RSA-2048 CSR write", () => dev.x509.CSR.new(rootKey, "CN=heap probe RSA", "sha256"));
      const rsaCrt = await p("RSA-2048 self-signed certificate", () =>
        dev.x509.CRT.selfsign(rsaCsr, rootKey, { notAfter: in90days, basicConstraints: { ca: true, maxPathLength: 1 } }),
      );
      for (const o of [rsaCrt, rsaCsr, ecCrt, ecCsr]) await o.close();
      return (await dev.stats()).heapUsed;
    };
    const after1 = await round(true);
    console.log(
      `[x509-write ${TARGET}] heap (${s0.heapSize} B, ${s0.heapUsed} B used before, peak since boot ${s0.heapPeak} B): ${lines.join("; ")}; ` +
        `the keys' Mbed TLS contexts keep ${after1 - s0.heapUsed} B of caches from their first signing (freed with the keys)`,
    );
    // A second round leaves nothing behind.
    expect(await round(false)).toBe(after1);
  });
});

describe("CSRs made on the device", () => {
  it("an RSA CSR with SANs, keyUsage and extendedKeyUsage: openssl req -verify accepts it and shows each", async () => {
    const csr = await dev.x509.CSR.new(rootKey, "C=NL,O=Acme Fleet,CN=Device 42", dev.hash.sha256(), {
      subjectAlternativeNames: ["DNS:rsa.fleet.example", { type: "ip", value: "10.1.2.3" }, "email:rsa@fleet.example"],
      keyUsage: ["digitalSignature", "keyEncipherment"],
      extendedKeyUsage: ["clientAuth", "1.3.6.1.4.1.99999.7"],
    });
    try {
      save("rsa.csr.pem", csr.toPEM());
      expect(ossl(["req", "-verify", "-noout", "-in", "rsa.csr.pem"])).toBe("");
      const text = ossl(["req", "-text", "-noout", "-in", "rsa.csr.pem"]);
      expect(text).toMatch(/Subject: C\s?=\s?NL, O\s?=\s?Acme Fleet, CN\s?=\s?Device 42/);
      expect(text).toContain("DNS:rsa.fleet.example, IP Address:10.1.2.3, email:rsa@fleet.example");
      expect(text).toContain("Digital Signature, Key Encipherment");
      expect(text).toContain("TLS Web Client Authentication, 1.3.6.1.4.1.99999.7");
      expect(text).toContain("sha256WithRSAEncryption");
      // The device's description agrees with OpenSSL's.
      expect(csr.subject).toBe("C=NL, O=Acme Fleet, CN=Device 42");
      expect(csr.subjectAttributes).toEqual([
        { name: "C", value: "NL" },
        { name: "O", value: "Acme Fleet" },
        { name: "CN", value: "Device 42" },
      ]);
      expect(csr.digestmod).toBe("sha256");
      expect(csr.version).toBe(1);
      expect(csr.keyUsage).toEqual(["digitalSignature", "keyEncipherment"]);
      expect(csr.extendedKeyUsage).toEqual(["1.3.6.1.5.5.7.3.2", "1.3.6.1.4.1.99999.7"]);
      expect(csr.subjectAlternativeNames?.map((s) => `${s.type}:${s.value}`)).toEqual([
        "dns:rsa.fleet.example",
        "ip:10.1.2.3",
        "email:rsa@fleet.example",
      ]);
      expect(u8(Buffer.from(ossl(["req", "-pubkey", "-noout", "-in", "rsa.csr.pem"])))).toEqual(
        u8(Buffer.from(await rootKey.exportPublicKey("PEM"))),
      );
      const pub = await csr.subjectPublicKey;
      expect(await pub.exportPublicKey("DER")).toEqual(await rootKey.exportPublicKey("DER"));
      expect(await csr.verify()).toBe(true);
      // The same DER read back through fromPEM is an equal request.
      const again = await dev.x509.CSR.fromPEM(csr.toPEM());
      expect(again.equals(csr)).toBe(true);
      expect(again.subject).toBe(csr.subject);
      await again.close();
    } finally {
      await csr.close();
    }
  });

  it("an EC CSR (non-exportable key loaded from a slot, SHA-384): openssl req -verify accepts it", async () => {
    const csr = await dev.x509.CSR.new(interFromSlot, "O=Acme,CN=Intermediate CA", "sha384");
    try {
      save("ec.csr.pem", csr.toPEM());
      expect(ossl(["req", "-verify", "-noout", "-in", "ec.csr.pem"])).toBe("");
      expect(ossl(["req", "-text", "-noout", "-in", "ec.csr.pem"])).toContain("ecdsa-with-SHA384");
      expect(csr.digestmod).toBe("sha384");
      expect(csr.keyUsage).toBeUndefined();
      expect(csr.extendedKeyUsage).toBeUndefined();
      expect(csr.subjectAlternativeNames).toBeUndefined();
      expect(await csr.verify()).toBe(true);
    } finally {
      await csr.close();
    }
  });

  it("an OpenSSL CSR parses with OpenSSL's view; a tampered one fails verify()", async () => {
    ossl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "o.key"]);
    ossl([
      "req",
      "-new",
      "-key",
      "o.key",
      "-out",
      "o.csr.pem",
      "-subj",
      "/CN=openssl made/O=Other Org",
      "-addext",
      "subjectAltName=DNS:o.example,URI:https://o.example/x",
      "-addext",
      "keyUsage=critical,digitalSignature,keyAgreement",
      "-addext",
      "extendedKeyUsage=serverAuth,codeSigning",
    ]);
    const pem = readFileSync(path("o.csr.pem"), "utf8");
    const csr = await dev.x509.CSR.fromPEM(pem);
    try {
      expect(csr.subject).toBe("CN=openssl made, O=Other Org");
      expect(csr.keyUsage).toEqual(["digitalSignature", "keyAgreement"]);
      expect(csr.extendedKeyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.3"]);
      expect(csr.subjectAlternativeNames?.map((s) => `${s.type}:${s.value}`)).toEqual(["dns:o.example", "uri:https://o.example/x"]);
      expect(await csr.verify()).toBe(true);
      const pubPem = ossl(["req", "-pubkey", "-noout", "-in", "o.csr.pem"]);
      expect(await (await csr.subjectPublicKey).exportPublicKey("PEM")).toBe(pubPem);
    } finally {
      await csr.close();
    }
    const der = csr.toDER();
    der[der.length - 5] = (der[der.length - 5] as number) ^ 0x01; // inside the signature
    const bad = await dev.x509.CSR.fromDER(der);
    expect(await bad.verify()).toBe(false);
    await bad.close();
    await expect(dev.x509.CSR.fromDER(der.subarray(0, 40))).rejects.toBeInstanceOf(CertificateError);
  });
});

describe("a chain issued on the device", () => {
  it("root (RSA, non-exportable) -> intermediate (ECDSA, slot) -> end entity: openssl verify accepts it", async () => {
    const rootCsr = await dev.x509.CSR.new(rootKey, "C=NL,O=Acme,CN=Trusted CA", dev.hash.sha256());
    root = await dev.x509.CRT.selfsign(rootCsr, rootKey, {
      notBefore: now,
      notAfter: in90days,
      serialNumber: 0x123456n,
      basicConstraints: { ca: true, maxPathLength: 1 },
      keyUsage: ["keyCertSign", "cRLSign"],
    });
    await rootCsr.close();
    const interCsr = await dev.x509.CSR.new(interFromSlot, "C=NL,O=Acme,CN=Intermediate CA", dev.hash.sha256());
    inter = await root.sign(interCsr, rootKey, now, in90days, 0x123457n, {
      basicConstraints: { ca: true, maxPathLength: 0 },
      keyUsage: ["keyCertSign", "cRLSign", "digitalSignature"],
    });
    await interCsr.close();
    eeCsr = await dev.x509.CSR.new(eeKey, "C=NL,O=Acme,CN=device-42.fleet.example", dev.hash.sha256(), {
      subjectAlternativeNames: EE_SANS,
      keyUsage: ["digitalSignature", "keyAgreement"],
      extendedKeyUsage: ["serverAuth", "clientAuth"],
    });
    // The end entity's extensions come from its CSR; the intermediate's key was loaded from a slot.
    ee = await inter.sign(eeCsr, interFromSlot, now, in90days, 0x987654n);
    save("root.pem", root.toPEM());
    save("inter.pem", inter.toPEM());
    save("ee.pem", ee.toPEM());
    expect(ossl(["verify", "-CAfile", "root.pem", "-untrusted", "inter.pem", "ee.pem"]).trim()).toBe("ee.pem: OK");
    expect(ossl(["verify", "-CAfile", "root.pem", "inter.pem"]).trim()).toBe("inter.pem: OK");
    // python-mbedtls's example: each certificate verifies the next.
    expect(await inter.verify(ee)).toBe(true);
    expect(await root.verify(inter)).toBe(true);
    expect(await root.verify(ee)).toBe(false);
  });

  it("openssl x509 -text shows every requested extension", () => {
    const r = ossl(["x509", "-text", "-noout", "-in", "root.pem"]);
    expect(r).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:1/);
    expect(r).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(r).toContain("X509v3 Subject Key Identifier");
    expect(r).toContain("sha256WithRSAEncryption");
    const i = ossl(["x509", "-text", "-noout", "-in", "inter.pem"]);
    expect(i).toMatch(/CA:TRUE, pathlen:0/);
    expect(i).toMatch(/Digital Signature, Certificate Sign, CRL Sign/);
    const e = ossl(["x509", "-text", "-noout", "-in", "ee.pem"]);
    expect(e).toContain("ecdsa-with-SHA256");
    expect(e).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Agreement/);
    expect(e).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(e).toContain(
      "DNS:device-42.fleet.example, IP Address:192.0.2.7, IP Address:2001:DB8:0:0:0:0:0:42, URI:urn:example:device:42, email:ops@fleet.example",
    );
    expect(e).not.toContain("Basic Constraints");
    // SKI of the intermediate = AKI of the end entity; the intermediate's AKI = the root's SKI.
    const ski = (t: string) => /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(t)?.[1];
    const aki = (t: string) => /Authority Key Identifier:\s+(?:keyid:)?([0-9A-F:]+)/.exec(t)?.[1];
    expect(ski(r)).toBeDefined();
    expect(aki(i)).toBe(ski(r));
    expect(aki(e)).toBe(ski(i));
  });

  it("Node's X509Certificate agrees on subject, issuer, serial, validity and SANs; the CRT accessors too", () => {
    const n = new X509Certificate(ee.toPEM());
    expect(n.subject).toBe("C=NL\nO=Acme\nCN=device-42.fleet.example");
    expect(n.issuer).toBe("C=NL\nO=Acme\nCN=Intermediate CA");
    expect(n.serialNumber).toBe("987654");
    expect(new Date(n.validFrom).getTime()).toBe(now.getTime());
    expect(new Date(n.validTo).getTime()).toBe(in90days.getTime());
    expect(n.subjectAltName).toBe(
      "DNS:device-42.fleet.example, IP Address:192.0.2.7, IP Address:2001:DB8:0:0:0:0:0:42, URI:urn:example:device:42, email:ops@fleet.example",
    );
    expect(n.checkIssued(new X509Certificate(inter.toPEM()))).toBe(true);
    expect(n.verify(new X509Certificate(inter.toPEM()).publicKey)).toBe(true);
    const nr = new X509Certificate(root.toPEM());
    expect(nr.ca).toBe(true);
    expect(nr.serialNumber).toBe("123456");
    expect(ee.serialNumber).toBe(0x987654n);
    expect(ee.issuer).toBe(inter.subject);
    expect(ee.notBefore.getTime()).toBe(now.getTime());
    expect(ee.basicConstraints).toBeUndefined();
    expect(inter.basicConstraints).toEqual({ ca: true, maxPathLength: 0 });
    expect(ee.extendedKeyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
  });

  it("validity past 2049 is GeneralizedTime, and a digest other than the CSR's can be named", async () => {
    const far = new Date(Date.UTC(2071, 5, 30, 12, 0, 0));
    const c = await root.sign(eeCsr, rootKey, now, far, 77n, { digestmod: "sha512", subjectAlternativeNames: [], keyUsage: 0 });
    try {
      const n = new X509Certificate(c.toPEM());
      expect(new Date(n.validTo).getTime()).toBe(far.getTime());
      expect(n.subjectAltName).toBeUndefined();
      expect(c.digestmod).toBe("sha512");
      expect(c.keyUsage).toBeUndefined();
      expect(c.extendedKeyUsage).toHaveLength(2); // still copied from the CSR
      save("far.pem", c.toPEM());
      expect(ossl(["verify", "-CAfile", "root.pem", "far.pem"]).trim()).toBe("far.pem: OK");
    } finally {
      await c.close();
    }
  });
});

describe("wrong keys and tampering", () => {
  it("signing with a key that is not the issuer's (or not the CSR's, self-signing) is BadArgumentError", async () => {
    await expect(inter.sign(eeCsr, rootKey, now, in90days, 5n)).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.x509.CRT.selfsign(eeCsr, interFromSlot, { notAfter: in90days })).rejects.toBeInstanceOf(BadArgumentError);
  });

  it("a certificate whose signature was altered fails openssl verify and crt.verify", async () => {
    const der = ee.toDER();
    der[der.length - 10] = (der[der.length - 10] as number) ^ 0x40;
    const tampered = await dev.x509.CRT.fromDER(der);
    try {
      expect(await inter.verify(tampered)).toBe(false);
      save("tampered.pem", tampered.toPEM());
      expect(osslOk(["verify", "-CAfile", "root.pem", "-untrusted", "inter.pem", "tampered.pem"])).toBe(false);
    } finally {
      await tampered.close();
    }
  });

  it("an end entity under another root of the same name fails openssl verify against the first root", async () => {
    const otherKey = dev.pk.ECC();
    await otherKey.generate();
    const csr = await dev.x509.CSR.new(otherKey, "C=NL,O=Acme,CN=Trusted CA", "sha256");
    const other = await dev.x509.CRT.selfsign(csr, otherKey, { notAfter: in90days, basicConstraints: { ca: true } });
    const leaf = await other.sign(eeCsr, otherKey, now, in90days, 9n);
    try {
      save("other-leaf.pem", leaf.toPEM());
      expect(osslOk(["verify", "-CAfile", "root.pem", "other-leaf.pem"])).toBe(false);
      expect(await root.verify(leaf)).toBe(false);
      expect(await other.verify(leaf)).toBe(true);
    } finally {
      for (const o of [leaf, other, csr, otherKey]) await o.close();
    }
  });
});

describe("bad input: typed errors, and the device keeps serving", () => {
  it("subjects, digests, keys, validity, serials, extensions", async () => {
    await expect(dev.x509.CSR.new(eeKey, "CN", "sha256")).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.x509.CSR.new(eeKey, "NOTANATTRIBUTE=x", "sha256")).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.x509.CSR.new(eeKey, "CN=x", "sha257")).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
    // The device's own check of an algorithm id it does not know.
    const raw = (args: unknown[]) => eeKey._use(dev._context, (k) => dev._context.call(Op.x509CsrWrite, [0xfff0, k, ...args]));
    await expect(raw(["CN=x", 99, {}])).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
    // SHA3 has no signature OID in Mbed TLS 3.6.
    await expect(raw(["CN=x", 9, {}])).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
    await expect(raw(["CN=x", 4, { san: [[3, new Uint8Array(1)]] }])).rejects.toBeInstanceOf(BadArgumentError);
    await expect(raw(["CN=x", 4, { san: [[7, new Uint8Array(5)]] }])).rejects.toBeInstanceOf(BadArgumentError);
    await expect(raw(["CN=x", 4, { ku: 0x10000 }])).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.x509.CSR.new(eeKey, "CN=x", "sha256", { subjectAlternativeNames: ["IP:300.1.1.1"] })).rejects.toBeInstanceOf(
      ArgumentError,
    );
    await expect(dev.x509.CSR.new(eeKey, "CN=x", "sha256", { extendedKeyUsage: ["nonsense"] })).rejects.toBeInstanceOf(ArgumentError);
    const pubOnly = await dev.pk.fromBuffer(await eeKey.exportPublicKey("DER"));
    await expect(dev.x509.CSR.new(pubOnly, "CN=x", "sha256")).rejects.toBeInstanceOf(BadArgumentError);
    await expect(root.sign(eeCsr, pubOnly, now, in90days, 3n)).rejects.toBeInstanceOf(BadArgumentError);
    await pubOnly.close();
    await expect(root.sign(eeCsr, rootKey, in90days, now, 3n)).rejects.toBeInstanceOf(BadArgumentError);
    await expect(root.sign(eeCsr, rootKey, now, in90days, 0n)).rejects.toBeInstanceOf(BadArgumentError);
    await expect(root.sign(eeCsr, rootKey, now, in90days, 1n << 160n)).rejects.toBeInstanceOf(BadArgumentError);
    await expect(root.sign(eeCsr, rootKey, now, in90days, -1n)).rejects.toBeInstanceOf(ArgumentError);
    await expect(
      root.sign(eeCsr, rootKey, now, in90days, 3n, { basicConstraints: { ca: false, maxPathLength: 2 } }),
    ).rejects.toBeInstanceOf(BadArgumentError);
    await expect(root.sign(eeCsr, rootKey, now, new Date(Date.UTC(10000, 0, 1)), 3n)).rejects.toBeInstanceOf(BadArgumentError);
    // A certificate handle in use, and a CSR handle that is a certificate.
    const rh = await root._ready(dev._context);
    await expect(
      eeCsr._use(dev._context, (c) =>
        rootKey._use(dev._context, (k) => dev._context.call(Op.x509CrtSign, [rh, c, k, null, 0, 1, u8(Buffer.from([1])), null, {}])),
      ),
    ).rejects.toBeInstanceOf(HandleInUseError);
    // Still serving: a full issue works.
    const c = await root.sign(eeCsr, rootKey, now, in90days, 4n);
    expect(c.serialNumber).toBe(4n);
    await c.close();
    expect(await dev.hash.sha256(new Uint8Array(3)).hexdigest()).toBe("709e80c88487a2411e1ee4dfb9f22a861492d20c4765150c0c794abd70f8147c");
  });
});

describe("larger than a frame", () => {
  it("an OpenSSL CSR larger than a frame parses in pieces and is signed into a certificate read back in pieces", async () => {
    const mtu = dev.info.mtu;
    const count = Math.ceil((1.2 * mtu) / 30);
    const names = Array.from({ length: count }, (_, i) => `DNS:host-${String(i).padStart(5, "0")}.big.fleet.example`);
    save("big.cnf", `[req]\ndistinguished_name = dn\n[dn]\n[ext]\nsubjectAltName = ${names.join(",")}\n`);
    ossl(["req", "-new", "-key", "o.key", "-out", "big.csr.pem", "-subj", "/CN=big", "-config", path("big.cnf"), "-reqexts", "ext"]);
    const csr = await dev.x509.CSR.fromPEM(readFileSync(path("big.csr.pem"), "utf8"));
    try {
      expect(csr.toDER().length).toBeGreaterThan(mtu);
      expect(csr.subjectAlternativeNames).toHaveLength(count);
      expect(await csr.verify()).toBe(true);
      const big = await root.sign(csr, rootKey, now, in90days, 0xb16n);
      try {
        expect(big.toDER().length).toBeGreaterThan(mtu);
        save("big.pem", big.toPEM());
        expect(ossl(["verify", "-CAfile", "root.pem", "big.pem"]).trim()).toBe("big.pem: OK");
        const n = new X509Certificate(big.toPEM());
        expect(n.subjectAltName?.split(", ")).toHaveLength(count);
        expect(big.subjectAlternativeNames).toHaveLength(count);
      } finally {
        await big.close();
      }
    } finally {
      await csr.close();
    }
  });
});
