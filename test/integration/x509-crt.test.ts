// dev.x509.CRT and CRL: certificates and CRLs made by OpenSSL (RSA, ECDSA
// P-256 / P-384, RSASSA-PSS; SANs of every kind, key usages, extended key
// usages, basic constraints with path lengths, UTF-8 names) parsed on the
// device, every accessor equal to Node's crypto.X509Certificate (or to
// `openssl x509 -text` where Node has no accessor); one-signature verify as
// Node's X509Certificate.verify; a CRL from `openssl ca -gencrl` with its
// revoked serials; certificates larger than one frame (in pieces); every
// certificate of Debian's ca-certificates bundle (a sample on QEMU); the heap
// a parse takes; and typed errors for truncated DER, garbage PEM and an
// oversize certificate, after which the device keeps serving.
import { execFileSync } from "node:child_process";
import { constants as cc, createHash, verify as nodeVerify, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Op } from "../../host/src/base/protocol.generated.js";
import {
  ArgumentError,
  BadArgumentError,
  CertificateError,
  type CRL,
  type CRT,
  type Device,
  OutOfMemoryError,
} from "../../host/src/index.js";
import { withTemporaryHandle } from "../../host/src/session/device-object.js";
import { requireTool } from "../../tools/programs.js";
import { buf, openssl, u8 } from "./pk-fixtures.js";
import { useSession } from "./session.js";
import { bulk, TARGET } from "./target.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const dir = mkdtempSync(join(tmpdir(), "x509-crt-"));
const path = (f: string) => join(dir, f);

/** Runs openssl in the fixture directory. */
const ossl = (args: string[]) => execFileSync(requireTool("openssl"), args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }).toString();

const EXT = `
[root]
basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[inter]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ecleaf]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = serverAuth, clientAuth, codeSigning
subjectAltName = DNS:device.example, DNS:*.fleet.example, IP:192.0.2.7, IP:2001:db8::42, URI:urn:example:device:42, email:ops@example.com
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[rsaleaf]
keyUsage = digitalSignature, keyEncipherment, nonRepudiation, dataEncipherment
extendedKeyUsage = emailProtection, timeStamping, 1.3.6.1.4.1.99999.1
subjectAltName = email:someone@example.org, DNS:rsa.example
[pss]
basicConstraints = critical, CA:TRUE
keyUsage = keyCertSign, encipherOnly, keyAgreement
`;

const CA_CNF = `
[ca]
default_ca = demo
[demo]
database = ${dir}/index.txt
crlnumber = ${dir}/crlnumber
default_md = sha256
default_crl_days = 7
`;

interface Made {
  name: string;
  pem: string;
  /** Who signed it (for the signature check by Node). */
  issuer: string;
}
const made: Made[] = [];

/** Signs `name`.csr with the CA `ca` (its .pem and .key) and the extensions section `name` of ext.cnf into `name`.pem. */
function issue(name: string, ca: string, serial: string, days: string, md: string): void {
  const caArgs = ["-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-set_serial", serial, "-days", days, `-${md}`];
  ossl(["x509", "-req", "-in", `${name}.csr`, ...caArgs, "-extfile", "ext.cnf", "-extensions", name, "-out", `${name}.pem`]);
}

/** A self-signed RSA-2048 certificate `name`.pem (key `name`.key, SHA-256) with the extensions section `name` of ext.cnf. */
function selfSigned(name: string, days: string, subj: string, extra: string[]): void {
  const out = ["-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", days, "-sha256", ...extra, "-subj", subj];
  ossl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", ...out, "-extensions", name, "-config", path("ext.cnf")]);
}

function makeFixtures(): void {
  writeFileSync(path("ext.cnf"), EXT);
  writeFileSync(path("ca.cnf"), CA_CNF);
  writeFileSync(path("index.txt"), "");
  writeFileSync(path("crlnumber"), "1000\n");
  // Root: RSA-2048, SHA-256.
  selfSigned("root", "3650", "/C=NL/O=mbedlink test/OU=x509/CN=Test Root CA", ["-set_serial", "0x01"]);
  // Intermediate: P-384 key, signed by the root with SHA-384.
  ossl(["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "inter.key"]);
  ossl(["req", "-new", "-key", "inter.key", "-out", "inter.csr", "-subj", "/C=NL/O=mbedlink test/CN=Test Intermediate CA"]);
  issue("inter", "root", "0x00F1E2D3C4B5A69788", "1000", "sha384");
  // EC P-256 leaf, signed by the intermediate (ECDSA with SHA-384): SANs of every kind.
  ossl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ecleaf.key"]);
  ossl(["req", "-new", "-key", "ecleaf.key", "-out", "ecleaf.csr", "-subj", "/C=DE/ST=Berlin/L=Berlin/O=Fleet GmbH/CN=device-42"]);
  issue("ecleaf", "inter", "4242", "90", "sha384");
  // RSA-3072 leaf signed by the root (SHA-512), UTF-8 subject, other EKUs.
  ossl([
    "req",
    "-new",
    "-newkey",
    "rsa:3072",
    "-nodes",
    "-keyout",
    "rsaleaf.key",
    "-out",
    "rsaleaf.csr",
    "-utf8",
    "-subj",
    "/O=Grüße & Co/CN=Zoë Müller",
  ]);
  issue("rsaleaf", "root", "0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "30", "sha512");
  // Self-signed RSASSA-PSS (SHA-256, MGF1-SHA-256), v3 without pathlen.
  selfSigned("pss", "10", "/CN=PSS self-signed", ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]);
  // v1 certificate (no extensions).
  ossl(["req", "-new", "-key", "ecleaf.key", "-out", "v1.csr", "-subj", "/CN=v1 cert"]);
  ossl(["x509", "-req", "-in", "v1.csr", "-signkey", "ecleaf.key", "-days", "5", "-out", "v1.pem"]);
  for (const [name, issuer] of [
    ["root", "root"],
    ["inter", "root"],
    ["ecleaf", "inter"],
    ["rsaleaf", "root"],
    ["pss", "pss"],
    ["v1", "v1"],
  ] as const) {
    made.push({ name, issuer, pem: readFileSync(path(`${name}.pem`), "utf8") });
  }
  // A CRL of the root revoking the RSA leaf (and a serial of no certificate here).
  const rc = ["-config", path("ca.cnf"), "-keyfile", path("root.key"), "-cert", path("root.pem")];
  ossl(["ca", ...rc, "-revoke", path("rsaleaf.pem"), "-crl_reason", "keyCompromise"]);
  ossl(["ca", ...rc, "-revoke", path("inter.pem")]);
  ossl(["ca", ...rc, "-gencrl", "-out", path("crl.pem")]);
}

const pemOf = (name: string) => (made.find((m) => m.name === name) as Made).pem;
const nodeOf = (name: string) => new X509Certificate(pemOf(name));
const text = (name: string) => ossl(["x509", "-in", `${name}.pem`, "-noout", "-text"]);

beforeAll(() => {
  dev = session.dev;
  makeFixtures();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Node's subjectAltName string from the device's entries (Node writes IPv6 as 8 uppercase groups). */
function nodeSan(c: CRT): string | undefined {
  return c.subjectAlternativeNames
    ?.map((s) => {
      if (s.type === "dns") return `DNS:${s.value}`;
      if (s.type === "uri") return `URI:${s.value}`;
      if (s.type === "email") return `email:${s.value}`;
      if (s.type === "ip" && s.raw.length === 16) {
        const g: string[] = [];
        for (let i = 0; i < 16; i += 2) g.push((((s.raw[i] as number) << 8) | (s.raw[i + 1] as number)).toString(16).toUpperCase());
        return `IP Address:${g.join(":")}`;
      }
      return s.type === "ip" ? `IP Address:${s.value}` : `${s.type}:${s.value}`;
    })
    .join(", ");
}

/** openssl's names of the KeyUsage bits. */
const OSSL_KU: Record<string, string> = {
  "Digital Signature": "digitalSignature",
  "Non Repudiation": "nonRepudiation",
  "Key Encipherment": "keyEncipherment",
  "Data Encipherment": "dataEncipherment",
  "Key Agreement": "keyAgreement",
  "Certificate Sign": "keyCertSign",
  "CRL Sign": "cRLSign",
  "Encipher Only": "encipherOnly",
  "Decipher Only": "decipherOnly",
};

/** The line after an extension's heading in `openssl x509 -text`, or undefined. */
function extLine(t: string, heading: string): string | undefined {
  const i = t.indexOf(`${heading}:`);
  if (i < 0) return undefined;
  return t.slice(i).split("\n")[1]?.trim();
}

/** The digest of the signature in `openssl x509 -text`'s "Signature Algorithm" (and PSS's "Hash Algorithm"). */
function osslDigest(t: string): string {
  const alg = /Signature Algorithm: (\S+)/.exec(t)?.[1] ?? "";
  if (alg === "rsassaPss") return /Hash Algorithm: (\S+)/.exec(t)?.[1] ?? "";
  return (/(sha\d+)/i.exec(alg)?.[1] ?? "").toLowerCase();
}

/** Upper-case hex with colons, as openssl and Node print identifiers and fingerprints. */
const colonHex = (b: Uint8Array) =>
  Buffer.from(b)
    .toString("hex")
    .toUpperCase()
    .replace(/(..)(?!$)/g, "$1:");
const fingerprint = (der: Uint8Array) => colonHex(createHash("sha256").update(der).digest());

describe("certificates made by OpenSSL, every accessor against Node's X509Certificate", () => {
  for (const name of ["root", "inter", "ecleaf", "rsaleaf", "pss", "v1"]) {
    it(name, async () => {
      const n = nodeOf(name);
      const t = text(name);
      const c = await dev.x509.CRT.fromPEM(pemOf(name));
      try {
        // Names: Node prints one attribute a line, in the DER's order; Mbed TLS's string joins them with ", ".
        expect(c.subjectAttributes.map((a) => `${a.name}=${a.value}`).join("\n")).toBe(n.subject);
        expect(c.issuerAttributes.map((a) => `${a.name}=${a.value}`).join("\n")).toBe(n.issuer);
        if (name !== "rsaleaf") {
          expect(c.subject).toBe(n.subject.split("\n").join(", "));
          expect(c.issuer).toBe(n.issuer.split("\n").join(", "));
        }
        expect(c.serialNumber).toBe(BigInt(`0x${n.serialNumber}`));
        expect(c.notBefore.getTime()).toBe(Date.parse(n.validFrom));
        expect(c.notAfter.getTime()).toBe(Date.parse(n.validTo));
        expect(nodeSan(c)).toBe(n.subjectAltName);
        // Node's keyUsage is the extendedKeyUsage OIDs.
        expect(c.extendedKeyUsage).toEqual(n.keyUsage);
        const ku = extLine(t, "X509v3 Key Usage");
        expect(c.keyUsage).toEqual(ku?.split(", ").map((k) => OSSL_KU[k]));
        const bc = extLine(t, "X509v3 Basic Constraints");
        expect(
          c.basicConstraints &&
            `CA:${c.basicConstraints.ca ? "TRUE" : "FALSE"}${c.basicConstraints.maxPathLength === undefined ? "" : `, pathlen:${c.basicConstraints.maxPathLength}`}`,
        ).toBe(bc);
        expect(c.basicConstraints?.ca ?? false).toBe(n.ca);
        expect(c.version).toBe(Number(/Version: (\d)/.exec(t)?.[1]));
        expect(c.digestmod).toBe(osslDigest(t));
        expect(c.signatureAlgorithm).toBe(t.includes("rsassaPss") ? "rsassa-pss" : t.includes("ecdsa-with") ? "ecdsa" : "rsa");
        const ski = extLine(t, "X509v3 Subject Key Identifier");
        expect(c.subjectKeyIdentifier && colonHex(c.subjectKeyIdentifier)).toBe(ski);
        const aki = extLine(t, "X509v3 Authority Key Identifier");
        expect(c.authorityKeyIdentifier && colonHex(c.authorityKeyIdentifier)).toBe(aki?.replace(/^keyid:/, ""));
        // Public key: the SPKI and the dev.pk key made from it.
        const spki = u8(n.publicKey.export({ type: "spki", format: "der" }) as Buffer);
        expect(c.subjectPublicKeyInfo).toEqual(spki);
        expect(await (await c.subjectPublicKey).exportPublicKey("DER")).toEqual(spki);
        // DER, PEM, fingerprint.
        expect(c.toDER()).toEqual(u8(n.raw));
        expect(c.toPEM()).toBe(n.toString());
        expect(fingerprint(c.toDER())).toBe(n.fingerprint256);
        // tbsCertificate and signatureValue: the issuer's signature over the one is the other.
        const issuerKey = nodeOf((made.find((m) => m.name === name) as Made).issuer).publicKey;
        const pss = c.signatureAlgorithm === "rsassa-pss" ? { padding: cc.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : {};
        expect(nodeVerify(c.digestmod as string, buf(c.tbsCertificate), { key: issuerKey, ...pss }, buf(c.signatureValue))).toBe(true);
        // Mbed TLS's own text names the subject as the string does.
        expect(await c.text()).toContain(`subject name      : ${c.subject}\n`);
      } finally {
        await c.close();
      }
    });
  }
});

describe("verify(child): one signature, as Node's X509Certificate.verify", () => {
  it("agrees with Node for every parent/child pair", async () => {
    const names = made.map((m) => m.name);
    const crts = new Map<string, CRT>();
    try {
      for (const nm of names) crts.set(nm, await dev.x509.CRT.fromPEM(pemOf(nm)));
      let trues = 0;
      for (const p of names) {
        for (const ch of names) {
          const want = nodeOf(ch).verify(nodeOf(p).publicKey);
          expect(await (crts.get(p) as CRT).verify(crts.get(ch) as CRT), `${p} verifies ${ch}`).toBe(want);
          if (want) trues++;
        }
      }
      // Each certificate by its issuer, and the v1 certificate also by the EC leaf (same key).
      expect(trues).toBe(made.length + 1);
    } finally {
      await Promise.all([...crts.values()].map((c) => c.close()));
    }
  });
});

describe("factories and equality", () => {
  it("fromDER, fromBuffer, fromFile, chains from PEM, equals", async () => {
    const chainPem = pemOf("ecleaf") + pemOf("inter") + pemOf("root");
    writeFileSync(path("chain.pem"), chainPem);
    writeFileSync(path("root.der"), nodeOf("root").raw);
    const chain = await dev.x509.CRT.chainFromPEM(chainPem);
    const fromFile = await dev.x509.CRT.chainFromFile(path("chain.pem"));
    const a = await dev.x509.CRT.fromDER(u8(nodeOf("root").raw));
    const b = await dev.x509.CRT.fromFile(path("root.der"));
    const c = await dev.x509.CRT.fromBuffer(pemOf("root"));
    const d = await dev.x509.CRT.fromBuffer(u8(Buffer.from(pemOf("inter"))));
    try {
      expect(chain.map((x) => x.subject)).toEqual(["ecleaf", "inter", "root"].map((nm) => nodeOf(nm).subject.split("\n").join(", ")));
      expect(fromFile.map((x) => x.toPEM()).join("")).toBe(chainPem);
      expect(a.equals(b) && b.equals(c) && c.equals(chain[2] as CRT)).toBe(true);
      expect(a.equals(d)).toBe(false);
      expect(await (chain[1] as CRT).verify(chain[0] as CRT)).toBe(true);
      await expect(dev.x509.CRT.fromPEM(chainPem)).rejects.toThrow(/3 certificates: use chainFromPEM/);
      await expect(dev.x509.CRT.fromFile(path("chain.pem"))).rejects.toBeInstanceOf(ArgumentError);
    } finally {
      await Promise.all([...chain, ...fromFile, a, b, c, d].map((x) => x.close()));
    }
  });
});

/** Serial numbers and dates of `openssl crl -text`'s revoked list. */
function osslRevoked(t: string): { serial: bigint; date: number }[] {
  return [...t.matchAll(/Serial Number: ([0-9A-F]+)\s+Revocation Date: ([^\n]+)/g)].map((m) => ({
    serial: BigInt(`0x${m[1]}`),
    date: Date.parse(m[2] as string),
  }));
}

describe("CRL from openssl ca -gencrl", () => {
  it("accessors match openssl crl; checkRevocation finds what it lists", async () => {
    const pem = readFileSync(path("crl.pem"), "utf8");
    const t = ossl(["crl", "-in", "crl.pem", "-noout", "-text"]);
    const crl: CRL = await dev.x509.CRL.fromPEM(pem);
    const crts = await Promise.all(["root", "inter", "ecleaf", "rsaleaf"].map((nm) => dev.x509.CRT.fromPEM(pemOf(nm))));
    const [root, inter, ecleaf, rsaleaf] = crts as [CRT, CRT, CRT, CRT];
    try {
      expect(crl.issuer).toBe(root.subject);
      expect(crl.issuerAttributes).toEqual(root.subjectAttributes);
      expect(crl.version).toBe(2);
      expect(crl.digestmod).toBe("sha256");
      const dates = ossl(["crl", "-in", "crl.pem", "-noout", "-lastupdate", "-nextupdate"]);
      expect(crl.thisUpdate.getTime()).toBe(Date.parse(/lastUpdate=(.*)/.exec(dates)?.[1] as string));
      expect(crl.nextUpdate?.getTime()).toBe(Date.parse(/nextUpdate=(.*)/.exec(dates)?.[1] as string));
      const want = osslRevoked(t);
      expect(want.length).toBe(2);
      expect(crl.revokedCertificates.map((r) => ({ serial: r.serialNumber, date: r.revocationDate.getTime() }))).toEqual(want);
      expect(crl.revokedCertificates.map((r) => r.serialNumber).sort()).toEqual([inter.serialNumber, rsaleaf.serialNumber].sort());
      expect(await rsaleaf.checkRevocation(crl)).toBe(true);
      expect(await inter.checkRevocation(crl)).toBe(true);
      expect(await ecleaf.checkRevocation(crl)).toBe(false);
      expect(await root.checkRevocation(crl)).toBe(false);
      expect(nodeVerify("sha256", buf(crl.tbsCertList), nodeOf("root").publicKey, buf(crl.signatureValue))).toBe(true);
      expect(crl.toPEM()).toBe(pem);
      expect(await crl.text()).toContain(`issuer name   : ${root.subject}`);
      const again = await dev.x509.CRL.fromDER(crl.toDER());
      expect(again.equals(crl)).toBe(true);
      await again.close();
    } finally {
      await Promise.all([crl.close(), ...crts.map((c) => c.close())]);
    }
  });
});

/** A self-signed EC certificate whose DER is about `bytes` long (padded with DNS SANs of about `nameLen` characters). */
function bigCert(bytes: number, tag: string, nameLen = 30): string {
  const names: string[] = [];
  for (let i = 0, len = 400; len < bytes; i++) {
    const n = `host-${String(i).padStart(5, "0")}.${tag.padEnd(Math.max(1, nameLen - 24), "x")}.fleet.example`;
    names.push(`DNS:${n}`);
    len += n.length + 2;
  }
  writeFileSync(path(`big-${tag}.cnf`), `[big]\nsubjectAltName = ${names.join(",")}\n`);
  ossl([
    "req",
    "-x509",
    "-key",
    "ecleaf.key",
    "-out",
    `big-${tag}.pem`,
    "-days",
    "1",
    "-subj",
    `/CN=big ${tag}`,
    "-extensions",
    "big",
    "-config",
    path(`big-${tag}.cnf`),
  ]);
  return readFileSync(path(`big-${tag}.pem`), "utf8");
}

describe("certificates larger than one frame, and the heap a parse takes", () => {
  it("parses in pieces; accessors equal Node's; reports the heap before/after", async () => {
    const mtu = dev.info.mtu;
    const pem = bigCert(bulk(3 * mtu, Math.floor(2.5 * mtu)), "frames");
    const n = new X509Certificate(pem);
    expect(n.raw.length).toBeGreaterThan(2 * mtu);
    const before = await dev.stats();
    const c = await dev.x509.CRT.fromPEM(pem);
    const after = await dev.stats();
    try {
      expect(c.toDER()).toEqual(u8(n.raw));
      expect(nodeSan(c)).toBe(n.subjectAltName);
      expect(c.subjectAlternativeNames?.length).toBe(n.subjectAltName?.split(", ").length);
      const peak = after.heapPeak > before.heapPeak ? `${after.heapPeak - before.heapUsed} B` : "not above";
      console.log(
        `[x509-crt ${TARGET}] a ${n.raw.length}-byte certificate (${c.subjectAlternativeNames?.length} SANs, MTU ${mtu}) keeps ${after.heapUsed - before.heapUsed} B of heap; the parse's peak: ${peak} the heap before`,
      );
    } finally {
      await c.close();
    }
    // A small certificate: what one parsed certificate costs.
    const b2 = await dev.stats();
    const small = await dev.x509.CRT.fromPEM(pemOf("ecleaf"));
    const a2 = await dev.stats();
    console.log(`[x509-crt ${TARGET}] the ${small.toDER().length}-byte P-256 leaf keeps ${a2.heapUsed - b2.heapUsed} B of heap`);
    await small.close();
  });

  it(`the largest certificate the target accepts parses; a larger one is OutOfMemoryError and the device keeps serving`, async () => {
    // A certificate larger than a frame is parsed where its pieces were collected: it costs its DER, about
    // 24 B per subjectAltName entry and 1.5 KiB. The STM32's heap (56 KiB until the stack and UART ring moved
    // into the upper RAM, 98 KiB since) takes one of 44 KiB with 200-character names; one larger than the
    // whole heap cannot fit on any target.
    const fits = bulk(64 * 1024, 44 * 1024);
    const pem = bigCert(fits, "fits", 200);
    const c = await dev.x509.CRT.fromPEM(pem);
    try {
      expect(c.toDER().length).toBeGreaterThan(fits - 512);
      expect(c.toDER()).toEqual(u8(new X509Certificate(pem).raw));
    } finally {
      await c.close();
    }
    const tooBig = dev.info.heapSize + 1024;
    const der = u8(new X509Certificate(bigCert(tooBig, "toobig", 200)).raw);
    await expect(dev.x509.CRT.fromDER(der)).rejects.toBeInstanceOf(OutOfMemoryError);
    const again = await dev.x509.CRT.fromPEM(pemOf("root"));
    expect(again.subject).toContain("Test Root CA");
    await again.close();
  }, 120_000);
});

describe("the largest chain", () => {
  it("one chain handle takes RSA-2048 certificates until the heap is full (STM32: 25 and more), then a typed error", async () => {
    const der = u8(nodeOf("root").raw);
    const before = await dev.stats();
    let n = 0;
    let err: unknown;
    await withTemporaryHandle(dev._context, async (h) => {
      try {
        for (; n < 1000; n++) await dev._context.call(Op.x509CrtParse, [h, der, der.length]);
      } catch (e) {
        err = e;
      }
      const full = await dev.stats();
      console.log(
        `[x509-crt ${TARGET}] one chain took ${n} ${der.length}-byte RSA-2048 certificates (${full.heapUsed - before.heapUsed} B of heap, ${Math.round((full.heapUsed - before.heapUsed) / n)} B each)`,
      );
      expect(await dev._context.call(Op.x509CrtInfo, [h, n - 1])).toMatchObject({ serial: new Uint8Array([1]) });
    });
    // Out of heap: OutOfMemoryError, except where Mbed TLS's RSA key parse reports a failed allocation as an
    // invalid key (MBEDTLS_ERR_PK_INVALID_PUBKEY, -0x3B00, with no allocation code): typed either way.
    if (!(err instanceof OutOfMemoryError)) expect(err).toMatchObject({ name: "CertificateError", mbedtlsCode: -0x3b00 });
    expect(n).toBeGreaterThanOrEqual(bulk(150, 25));
    expect((await dev.stats()).heapUsed).toBe(before.heapUsed);
  }, 120_000);
});

describe("bad input: typed errors, the device keeps serving", () => {
  it("truncated DER, garbage PEM, junk in PEM armour, a piece that does not continue the input", async () => {
    const der = u8(nodeOf("ecleaf").raw);
    const truncated = dev.x509.CRT.fromDER(der.subarray(0, der.length - 40));
    await expect(truncated).rejects.toBeInstanceOf(CertificateError);
    // MBEDTLS_ERR_X509_INVALID_FORMAT: the outer SEQUENCE's length runs past the end.
    await expect(truncated).rejects.toMatchObject({ mbedtlsCode: -0x2180 });
    await expect(dev.x509.CRT.fromPEM("-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n")).rejects.toBeInstanceOf(
      ArgumentError,
    );
    await expect(dev.x509.CRT.fromPEM("no PEM here")).rejects.toBeInstanceOf(ArgumentError);
    const junk = `-----BEGIN CERTIFICATE-----\n${Buffer.from("this is not a certificate at all").toString("base64")}\n-----END CERTIFICATE-----\n`;
    await expect(dev.x509.CRT.fromPEM(junk)).rejects.toBeInstanceOf(CertificateError);
    await expect(dev.x509.CRL.fromPEM(junk.replaceAll("CERTIFICATE", "X509 CRL"))).rejects.toBeInstanceOf(CertificateError);
    await expect(dev.x509.CRL.fromDER(der)).rejects.toBeInstanceOf(CertificateError); // a certificate is no CRL
    await expect(dev.x509.CRT.fromDER(new Uint8Array(0))).rejects.toBeInstanceOf(ArgumentError);
    // Pieces by hand: a second piece naming another total is refused and drops the input.
    await withTemporaryHandle(dev._context, async (h) => {
      expect(await dev._context.call(Op.x509CrtParse, [h, der.subarray(0, 100), der.length])).toBeNull();
      await expect(dev._context.call(Op.x509CrtParse, [h, der.subarray(100), der.length + 1])).rejects.toBeInstanceOf(BadArgumentError);
      await expect(dev._context.call(Op.x509CrtInfo, [h, 0])).rejects.toThrow(/no live object|bad_handle|handle/i);
    });
    // Still serving: a good certificate parses, a digest is right.
    const ok = await dev.x509.CRT.fromDER(der);
    expect(ok.serialNumber).toBe(4242n);
    await ok.close();
    expect(Buffer.from(await dev.hash.sha256(new Uint8Array([1, 2, 3])).digest()).toString("hex")).toBe(
      createHash("sha256")
        .update(Buffer.from([1, 2, 3]))
        .digest("hex"),
    );
  });
});

describe("Debian's ca-certificates bundle", () => {
  it("every certificate parses on native (a sample on QEMU), accessors equal Node's", async () => {
    const bundle = readFileSync("/etc/ssl/certs/ca-certificates.crt", "utf8");
    const all = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g) ?? [];
    expect(all.length).toBeGreaterThan(100);
    const step = TARGET === "native" ? 1 : Math.ceil(all.length / 10);
    let parsed = 0;
    for (let i = 0; i < all.length; i += step) {
      const pem = all[i] as string;
      const n = new X509Certificate(pem);
      const c = await dev.x509.CRT.fromPEM(pem);
      try {
        expect(c.serialNumber).toBe(BigInt(`0x${n.serialNumber}`));
        expect(c.notBefore.getTime()).toBe(Date.parse(n.validFrom));
        expect(c.notAfter.getTime()).toBe(Date.parse(n.validTo));
        expect(c.subjectPublicKeyInfo).toEqual(u8(n.publicKey.export({ type: "spki", format: "der" }) as Buffer));
        expect(fingerprint(c.toDER())).toBe(n.fingerprint256);
        expect(c.basicConstraints?.ca ?? false).toBe(n.ca);
        expect(c.subjectAttributes.length).toBe(n.subject.split("\n").length);
        parsed++;
      } finally {
        await c.close();
      }
    }
    console.log(`[x509-crt ${TARGET}] parsed ${parsed} of the bundle's ${all.length} certificates`);
    expect(parsed).toBe(Math.ceil(all.length / step));
  }, 120_000);
});

it("openssl agrees the fixtures are what the tests think (sanity of the references)", () => {
  expect(openssl(["verify", "-CAfile", path("root.pem"), "-untrusted", path("inter.pem"), path("ecleaf.pem")])).toContain("OK");
});
