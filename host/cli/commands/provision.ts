// `mbedlink provision`: gives a device its identity. On each device: a key
// made on the device, non-exportable, a CSR naming the device, a
// certificate for it from a CA (PEM files on the station, or a key in a slot
// of another mbedlink device), the key and the chain written into a slot,
// read back and verified on the device (its trust store) and on the host
// (node:crypto's X509Certificate), and a signed manifest line per device.
// `--ports a,b,c` runs several devices at once, each with its own progress
// line; one device's failure does not stop the others.
import { execFile } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { type CRT, type Device, type ECC, type KeyUsage, pemDecode, pemEncode, type RSA, SymmetricKey } from "../../src/index.js";
import { lookupCurve } from "../../src/modules/curves.js";
import { intArg, UsageError } from "../args.js";
import type { Context } from "../context.js";
import { fileSigner, keyId, type ManifestRecord, type ManifestSigner, ManifestWriter, sha256Hex } from "../manifest.js";
import { CliError, describeError, EXIT_FAILURE, EXIT_OK } from "../output.js";
import { DeviceBoard } from "../provision-progress.js";
import { connect, type DeviceChoice, defaultStoreDir, deviceLabel } from "../session.js";
import { keyText, slotOption } from "./keys.js";

const run = promisify(execFile);

/** --key-type: ec:CURVE or rsa:BITS. */
export type KeyType = { type: "ec"; curve: string } | { type: "rsa"; bits: number };

export function parseKeyType(text: string | undefined): KeyType {
  const [type, param] = (text ?? "ec:secp256r1").split(":");
  if (type === "ec") {
    try {
      return { type, curve: lookupCurve(param ?? "secp256r1").name };
    } catch (e) {
      throw new UsageError(`--key-type: ${(e as Error).message}`, "provision");
    }
  }
  if (type === "rsa") return { type, bits: param === undefined ? 2048 : intArg(param, "--key-type rsa:BITS", 1024, 4096, "provision") };
  throw new UsageError(`--key-type must be ec:CURVE or rsa:BITS, got ${JSON.stringify(text)}`, "provision");
}

/** What --cn's placeholders stand for on one device. */
export interface Identity {
  board: string;
  /** hello's boot_id, hex. */
  bootId: string;
  slot: number;
  /** The certificate's serial number, hex. */
  serial: string;
  /** Hex SHA-256 of the device key's SubjectPublicKeyInfo. */
  keyId: string;
  /** 1-based position of the device in --ports. */
  index: number;
}

const PLACEHOLDERS: Record<string, (id: Identity) => string> = {
  bootid: (id) => id.bootId,
  board: (id) => id.board,
  slot: (id) => String(id.slot),
  serial: (id) => id.serial,
  keyid: (id) => id.keyId.slice(0, 16),
  n: (id) => String(id.index),
};

/** The subject's CN: the template with its placeholders filled in. */
export function expandCn(template: string, id: Identity): string {
  return template.replace(/\{([a-z]+)\}/g, (whole, name: string) => {
    const f = PLACEHOLDERS[name];
    if (!f)
      throw new UsageError(
        `--cn: unknown placeholder ${whole} (known: ${Object.keys(PLACEHOLDERS)
          .map((k) => `{${k}}`)
          .join(" ")})`,
      );
    return f(id);
  });
}

/** An RFC 4514 attribute value, escaped as Mbed TLS's string-to-names reads it. */
export function escapeDnValue(v: string): string {
  return v
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^([ #])/, "\\$1")
    .replace(/ $/, "\\ ");
}

/** A CA that signs the device's CSR. */
export interface CertificateAuthority {
  /** The CA's certificates as DER, the issuing certificate first, then its issuers. */
  chain: Uint8Array[];
  /** Where it lives, for messages and the manifest. */
  description: string;
  /** Signs the CSR (DER): a DER end-entity certificate. */
  issue(csr: Uint8Array, req: IssueRequest): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface IssueRequest {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  keyType: KeyType;
}

/** The extensions of an end-entity device certificate. */
function keyUsageOf(kt: KeyType): KeyUsage[] {
  return kt.type === "rsa" ? ["digitalSignature", "keyEncipherment"] : ["digitalSignature", "keyAgreement"];
}

function certsOfPem(text: string, file: string): Uint8Array[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new CliError(`${file}: no PEM certificate in it`);
  return blocks.map((b) => pemDecode(b).der);
}

/** An ASN.1 time as `openssl ca -startdate` takes it: UTCTime until 2049, GeneralizedTime after. */
function opensslTime(d: Date): string {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14); // YYYYMMDDHHMMSS
  return `${d.getUTCFullYear() < 2050 ? iso.slice(2) : iso}Z`;
}

/**
 * A CA given as PEM files: the CSR is signed on the station by `openssl ca`
 * (which checks the request's signature and takes the validity dates and the
 * serial number given); the CA key never goes to a device. Each certificate
 * gets a directory of its own (openssl ca's database), so devices provisioned
 * in parallel do not share one.
 */
export function fileCa(certFile: string, keyFile: string): CertificateAuthority {
  const chain = certsOfPem(readFileSync(certFile, "utf8"), certFile);
  const work = mkdtempSync(join(tmpdir(), "mbedlink-provision-ca-"));
  writeFileSync(join(work, "ca.pem"), pemEncode("CERTIFICATE", chain[0] as Uint8Array));
  let n = 0;
  return {
    chain,
    description: `${certFile} (signed with openssl)`,
    async issue(csr, req) {
      const dir = join(work, String(n++));
      mkdirSync(dir);
      const file = (name: string) => join(dir, name);
      writeFileSync(file("req.pem"), pemEncode("CERTIFICATE REQUEST", csr));
      writeFileSync(file("index.txt"), "");
      writeFileSync(file("serial"), `${req.serial}\n`);
      const config = [
        "[station]",
        `database = ${file("index.txt")}`,
        `new_certs_dir = ${dir}`,
        `serial = ${file("serial")}`,
        "policy = policy",
        "unique_subject = no",
        "[policy]",
        "commonName = supplied",
        "[ext]",
        "basicConstraints = critical, CA:FALSE",
        `keyUsage = critical, ${keyUsageOf(req.keyType).join(", ")}`,
        "extendedKeyUsage = clientAuth",
        "subjectKeyIdentifier = hash",
        "authorityKeyIdentifier = keyid",
        "",
      ];
      writeFileSync(file("ca.cnf"), config.join("\n"));
      try {
        await run("openssl", [
          "ca",
          "-batch",
          "-config",
          file("ca.cnf"),
          "-name",
          "station",
          "-extensions",
          "ext",
          "-in",
          file("req.pem"),
          "-cert",
          join(work, "ca.pem"),
          "-keyfile",
          keyFile,
          "-startdate",
          opensslTime(req.notBefore),
          "-enddate",
          opensslTime(req.notAfter),
          "-md",
          "sha256",
          "-preserveDN",
          "-notext",
          "-out",
          file("crt.pem"),
        ]);
      } catch (e) {
        const err = e as NodeJS.ErrnoException & { stderr?: string };
        if (err.code === "ENOENT") throw new CliError("--ca-key signs with the openssl command, which is not installed");
        const lines = (err.stderr ?? err.message).trim().split("\n");
        throw new CliError(`openssl could not sign the request: ${lines.filter((l) => !/^Using configuration/.test(l)).join(" ")}`);
      }
      return pemDecode(readFileSync(file("crt.pem"), "utf8")).der;
    },
    async close() {
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** What one device's provisioning produced. */
export interface ProvisionResult {
  device: string;
  board: string;
  bootId: string;
  slot: number;
  keyType: string;
  /** The key was made on the device by this run (false with --keep-key). */
  keyMade: boolean;
  subject: string;
  issuer: string;
  serial: string;
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  chainLength: number;
  /** The device's trust store accepted the chain read back from the slot. */
  deviceVerified: boolean;
  /** node:crypto accepted it too (signatures, issuer names, validity, the device's public key in the leaf). */
  hostVerified: boolean;
  /** The chain read back, PEM. */
  chainPem: string;
  manifestLine?: string;
}

export interface ProvisionSettings {
  slot: number;
  keyType: KeyType;
  cn: string;
  days: number;
  force: boolean;
  keepKey: boolean;
  label: string;
  ca: CertificateAuthority;
  manifest: ManifestWriter | undefined;
}

/** How one device is named in progress lines, results and the manifest. */
export interface DeviceName {
  label: string;
  index: number;
  json: Record<string, unknown>;
}

/**
 * Checks the chain on the host (node:crypto), as the device did: each
 * certificate issued by the next (names, signature) up to one of `anchors`
 * (the CA's last certificate), all valid now, and the leaf holding the
 * device's public key.
 */
export function verifyOnHost(chain: readonly Uint8Array[], anchors: readonly Uint8Array[], devicePublicKey: Uint8Array): void {
  const certs = chain.map((d) => new X509Certificate(d));
  const leaf = certs[0];
  if (!leaf) throw new CliError("the chain read back is empty");
  const spki = leaf.publicKey.export({ type: "spki", format: "der" });
  if (!Buffer.from(devicePublicKey).equals(spki)) throw new CliError("the certificate does not hold the device's public key");
  const now = Date.now();
  const trusted = anchors.map((d) => new X509Certificate(d));
  for (let i = 0; i < certs.length; i++) {
    const c = certs[i] as X509Certificate;
    if (Date.parse(c.validFrom) > now + 300_000 || Date.parse(c.validTo) < now)
      throw new CliError(`certificate ${i} of the chain is not valid now (${c.validFrom} .. ${c.validTo})`);
    if (trusted.some((t) => t.raw.equals(c.raw))) return; // reached an anchor
    const issuer = certs[i + 1] ?? trusted.find((t) => c.checkIssued(t));
    if (!issuer) throw new CliError(`no issuer for certificate ${i} (${c.issuer.replace(/\n/g, ", ")}) in the chain or the trust anchors`);
    if (!c.checkIssued(issuer) || !c.verify(issuer.publicKey)) throw new CliError(`certificate ${i} is not signed by the next one`);
  }
  throw new CliError("the chain does not end at a trust anchor (the CA's last certificate)");
}

/** "CN=a, O=b" from node's one-attribute-per-line form. */
function dnText(nodeDn: string): string {
  return nodeDn.split("\n").join(", ");
}

/** Serial numbers: 16 random bytes, positive, no leading zero byte. */
export function newSerial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x7f) | 0x40;
  return b.toString("hex");
}

/**
 * Provisions one opened device. `step` is told what runs now (for the
 * progress display). Nothing is written to the slot until the certificate is
 * issued, so a failure before that leaves the slot as it was.
 */
export async function provisionDevice(
  dev: Device,
  name: DeviceName,
  s: ProvisionSettings,
  step: (what: string) => void = () => {},
): Promise<ProvisionResult> {
  const info = dev.info;
  if (info.slots === 0) throw new CliError(`${name.label} has no key store (0 slots)`);
  if (s.slot >= info.slots)
    throw new CliError(`slot ${s.slot} is out of range: ${name.label} has ${info.slots} slots (0..${info.slots - 1})`);
  step("checking the slot");
  const taken = (await dev.slots.list()).find((e) => e.slot === s.slot);
  if (s.keepKey) {
    if (taken?.kind !== "pk") throw new CliError(`--keep-key: slot ${s.slot} holds no RSA or EC key`);
    if ((taken?.chain ?? 0) > 0 && !s.force)
      throw new CliError(`slot ${s.slot} is provisioned already (it holds a certificate); use --force to replace the certificate`);
  } else if (taken && !s.force) {
    const what = (taken?.chain ?? 0) > 0 ? "is provisioned already (a key and a certificate)" : `holds a key (${keyText(taken.info)})`;
    throw new CliError(`slot ${s.slot} ${what}; use --force to replace it`);
  }

  let key: RSA | ECC | undefined;
  try {
    if (s.keepKey) {
      const loaded = await dev.slots.load(s.slot);
      if (loaded instanceof SymmetricKey) {
        await loaded.close();
        throw new CliError(`--keep-key: slot ${s.slot} holds a symmetric key`);
      }
      key = loaded;
    } else {
      const kt = s.keyType;
      step(`generating an ${kt.type === "ec" ? `EC ${kt.curve}` : `RSA-${kt.bits}`} key (non-exportable)`);
      const k: RSA | ECC = kt.type === "ec" ? dev.pk.ECC(kt.curve) : dev.pk.RSA();
      key = k;
      if (kt.type === "ec") await (k as ECC).generate({ exportable: false });
      else await (k as RSA).generate(kt.bits, 65537, { exportable: false });
    }
    const keyType: KeyType = key.info?.type === "rsa" ? { type: "rsa", bits: key.bits } : { type: "ec", curve: key.info?.curve ?? "" };
    const publicKey = await key.exportPublicKey("DER");
    const serial = newSerial();
    const id: Identity = { board: info.board, bootId: info.bootId, slot: s.slot, serial, keyId: keyId(publicKey), index: name.index };
    const subject = `CN=${escapeDnValue(expandCn(s.cn, id))}`;

    step("making the CSR on the device");
    const csr = await makeCsr(dev, key, subject);
    step(`signing the certificate (${s.ca.description})`);
    const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    const notAfter = new Date(notBefore.getTime() + s.days * 86_400_000);
    const leaf = await s.ca.issue(csr, { serial, notBefore, notAfter, keyType });
    const written = [leaf, ...s.ca.chain];

    step(`writing the key and ${written.length} certificates into slot ${s.slot}`);
    if (!s.keepKey) await dev.slots.store(key, s.slot, { label: s.label, overwrite: s.force });
    await dev.slots.storeChain(s.slot, written, { overwrite: s.force || s.keepKey });

    step("reading the chain back and verifying it");
    const back = await dev.slots.loadChainDER(s.slot);
    if (back.length !== written.length || back.some((d, i) => !Buffer.from(d).equals(written[i] as Uint8Array)))
      throw new CliError(`slot ${s.slot}: the chain read back differs from the chain written`);
    const anchors = s.ca.chain.length > 0 ? [s.ca.chain.at(-1) as Uint8Array] : [];
    await verifyOnDevice(dev, back, anchors);
    verifyOnHost(back, anchors, publicKey);

    const x = new X509Certificate(leaf);
    const result: ProvisionResult = {
      device: name.label,
      board: info.board,
      bootId: info.bootId,
      slot: s.slot,
      keyType: keyText(key.info),
      keyMade: !s.keepKey,
      subject: dnText(x.subject),
      issuer: dnText(x.issuer),
      serial: x.serialNumber.toLowerCase(),
      fingerprint: sha256Hex(leaf),
      notBefore: new Date(x.validFrom).toISOString(),
      notAfter: new Date(x.validTo).toISOString(),
      chainLength: back.length,
      deviceVerified: true,
      hostVerified: true,
      chainPem: back.map((d) => pemEncode("CERTIFICATE", d)).join(""),
    };
    if (s.manifest) {
      step("signing the manifest line");
      result.manifestLine = await s.manifest.append(manifestRecord(result, name, publicKey));
    }
    return result;
  } finally {
    await key?.close().catch(() => {});
  }
}

/** The manifest record of one device (the writer adds alg, kid, prev and sig). */
export function manifestRecord(r: ProvisionResult, name: DeviceName, publicKey: Uint8Array): ManifestRecord {
  return {
    v: 1,
    time: new Date().toISOString(),
    device: { ...(name.json as Record<string, string>), board: r.board, bootId: r.bootId },
    slot: r.slot,
    keyType: r.keyType,
    keyId: keyId(publicKey),
    subject: r.subject,
    issuer: r.issuer,
    serial: r.serial,
    fingerprint: r.fingerprint,
    notAfter: r.notAfter,
  };
}

// ---- The device side of X.509 (dev.x509, certificate chains in slots) ----

/** The CSR for `subject` (RFC 4514 text), made and signed on the device with its key: DER. */
async function makeCsr(dev: Device, key: RSA | ECC, subject: string): Promise<Uint8Array> {
  const csr = await dev.x509.CSR.new(key, subject, "sha256");
  try {
    return csr.toDER();
  } finally {
    await csr.close().catch(() => {});
  }
}

/** Parses DER certificates on the device, closing those made when one fails. */
async function crtsOf(dev: Device, ders: readonly Uint8Array[]): Promise<CRT[]> {
  const out: CRT[] = [];
  try {
    for (const d of ders) out.push(await dev.x509.CRT.fromDER(d));
    return out;
  } catch (e) {
    await closeAll(out);
    throw e;
  }
}

async function closeAll(objects: readonly { close(): Promise<void> }[]): Promise<void> {
  await Promise.all(objects.map((o) => o.close().catch(() => {})));
}

/**
 * Mbed TLS's path validation of `chain` (DER, leaf first) on the device,
 * with `anchors` as its trust store and the device's clock; a CliError
 * naming the flags.
 */
async function verifyOnDevice(dev: Device, chain: readonly Uint8Array[], anchors: readonly Uint8Array[]): Promise<void> {
  const crts = await crtsOf(dev, chain);
  const cas = await crtsOf(dev, anchors).catch(async (e) => {
    await closeAll(crts);
    throw e;
  });
  const trust = new dev.x509.TrustStore();
  try {
    await trust.add(cas);
    const r = await trust.verify(crts);
    if (!r.valid) {
      const which = r.path.filter((c) => c.flags.length > 0).map((c) => `${c.subject}: ${c.flags.join(", ")}`);
      throw new CliError(`the device's trust store refused the chain read back (${which.join("; ") || r.flags.join(", ")})`);
    }
  } finally {
    await closeAll([trust, ...crts, ...cas]);
  }
}

/** A CA whose key is in a slot of another mbedlink device: the certificate is signed there (dev.x509 CRT.sign). */
export async function slotCa(caDev: Device, caSlot: number, label: string, certFile: string | undefined): Promise<CertificateAuthority> {
  const key = await caDev.slots.load(caSlot);
  if (key instanceof SymmetricKey) {
    await key.close();
    throw new CliError(`--ca-slot ${caSlot} holds a symmetric key, not a CA key`);
  }
  const chain = certFile ? certsOfPem(readFileSync(certFile, "utf8"), certFile) : await caDev.slots.loadChainDER(caSlot);
  if (chain.length === 0) throw new CliError(`--ca-slot ${caSlot} holds no certificate: give the CA's certificate with --ca-cert`);
  const issuer = await caDev.x509.CRT.fromDER(chain[0] as Uint8Array);
  return {
    chain,
    description: `slot ${caSlot} of ${label}`,
    async issue(csrDer, req) {
      const csr = await caDev.x509.CSR.fromDER(csrDer);
      try {
        const crt = await issuer.sign(csr, key, req.notBefore, req.notAfter, BigInt(`0x${req.serial}`), {
          basicConstraints: { ca: false },
          keyUsage: keyUsageOf(req.keyType),
          extendedKeyUsage: ["clientAuth"],
          subjectKeyIdentifier: true,
          authorityKeyIdentifier: true,
          digestmod: "sha256",
        });
        const der = crt.toDER();
        await crt.close();
        return der;
      } finally {
        await csr.close().catch(() => {});
      }
    },
    async close() {
      await issuer.close().catch(() => {});
      await key.close().catch(() => {});
    },
  };
}

// ---- The command ----

/** The station's key in a slot of its mbedlink device signs manifest lines there. */
async function slotSigner(dev: Device, slot: number): Promise<ManifestSigner & { close(): Promise<void> }> {
  const key = await dev.slots.load(slot);
  if (key instanceof SymmetricKey) {
    await key.close();
    throw new CliError(`--station-slot ${slot} holds a symmetric key; manifest lines need an EC or RSA key`);
  }
  const kid = keyId(await key.exportPublicKey("DER"));
  return {
    alg: key.name === "RSA" ? "rsa-pkcs1-sha256" : "ecdsa-sha256",
    kid,
    sign: (data) => key.sign(data, "sha256"),
    close: () => key.close(),
  };
}

function targetChoice(t: string, store: string | undefined, fallbackStore: string, option: string): DeviceChoice {
  if (t !== "native" && t !== "qemu") throw new UsageError(`${option} must be native or qemu, got ${JSON.stringify(t)}`, "provision");
  return { kind: "target", target: t, storeDir: resolve(store ?? fallbackStore), why: option };
}

/** --ca-port / --ca-target (with --ca-store), or --station-port: a second device, or undefined. */
function otherDevice(ctx: Context, prefix: "ca" | "station"): DeviceChoice | undefined {
  const port = ctx.str(`${prefix}-port`);
  const target = ctx.str(`${prefix}-target`);
  if (port !== undefined && target !== undefined)
    throw new UsageError(`give --${prefix}-port or --${prefix}-target, not both`, "provision");
  if (port !== undefined) return { kind: "port", path: port, why: `--${prefix}-port` };
  if (target !== undefined)
    return targetChoice(target, ctx.str(`${prefix}-store`), `${defaultStoreDir(target as "native")}-${prefix}`, `--${prefix}-target`);
  return undefined;
}

/** The devices to provision: --ports a,b,c, else the one device the common options name. */
function devicesToProvision(ctx: Context): { name: DeviceName; choice: DeviceChoice }[] {
  const ports = ctx.str("ports");
  if (ports === undefined) {
    const choice = ctx.choice;
    return [{ name: { label: ctx.deviceLabel, index: 1, json: ctx.deviceJson }, choice }];
  }
  if (ctx.common.port !== undefined || ctx.common.target !== undefined)
    throw new UsageError("give --ports or --port/--target, not both", "provision");
  const paths = ports.split(",").map((p) => p.trim());
  if (paths.some((p) => p === "")) throw new UsageError("--ports is a comma-separated list of port paths", "provision");
  if (new Set(paths).size !== paths.length) throw new UsageError("--ports names a port twice", "provision");
  return paths.map((path, i) => ({
    name: { label: path, index: i + 1, json: { port: path } },
    choice: { kind: "port", path, why: "--ports" },
  }));
}

function resultLine(r: ProvisionResult): string {
  return `slot ${r.slot}: ${r.keyType} key ${r.keyMade ? "made on the device" : "kept from the slot"}, certificate ${r.subject}, serial ${r.serial}, SHA-256 ${r.fingerprint}, verified on the device and the host`;
}

export async function provision(ctx: Context): Promise<number> {
  const slot = slotOption(ctx);
  const keepKey = ctx.flag("keep-key");
  if (keepKey && ctx.str("key-type") !== undefined) throw new UsageError("--keep-key uses the slot's key: no --key-type", "provision");
  const keyType = parseKeyType(ctx.str("key-type"));
  const cn = ctx.str("cn") ?? "mbedlink-{bootid}";
  expandCn(cn, { board: "", bootId: "", slot, serial: "", keyId: "", index: 1 }); // unknown placeholders: a usage error now
  const days = intArg(ctx.str("days") ?? "365", "--days", 1, 36_500, "provision");
  const label = ctx.str("label") ?? "provisioned";
  if (Buffer.byteLength(label) > 32) throw new UsageError("--label must be at most 32 bytes of UTF-8", "provision");

  const caCert = ctx.str("ca-cert");
  const caKey = ctx.str("ca-key");
  const caDevice = otherDevice(ctx, "ca");
  const caSlotText = ctx.str("ca-slot");
  if (caKey !== undefined && (caDevice || caSlotText !== undefined))
    throw new UsageError(
      "the CA is either PEM files (--ca-cert, --ca-key) or a slot of a device (--ca-port/--ca-target, --ca-slot)",
      "provision",
    );
  if (caKey !== undefined && caCert === undefined)
    throw new UsageError("--ca-key needs --ca-cert (the CA's certificate, PEM)", "provision");
  if (caKey === undefined && !(caDevice && caSlotText !== undefined))
    throw new UsageError("name the CA: --ca-cert and --ca-key (PEM files), or --ca-port/--ca-target with --ca-slot", "provision");
  const caSlot = caSlotText === undefined ? undefined : intArg(caSlotText, "--ca-slot", 0, 0xffff, "provision");

  const manifestFile = ctx.str("manifest");
  const stationKey = ctx.str("station-key");
  const stationSlotText = ctx.str("station-slot");
  const stationDevice = otherDevice(ctx, "station") ?? caDevice;
  if (manifestFile !== undefined && (stationKey === undefined) === (stationSlotText === undefined))
    throw new UsageError("--manifest needs the station's key: --station-key PEM or --station-slot N", "provision");
  if (manifestFile === undefined && (stationKey !== undefined || stationSlotText !== undefined))
    throw new UsageError("--station-key/--station-slot sign --manifest lines: give --manifest FILE", "provision");
  if (stationSlotText !== undefined && !stationDevice)
    throw new UsageError("--station-slot needs the station's device: --station-port (or the CA's device)", "provision");
  const stationSlot = stationSlotText === undefined ? undefined : intArg(stationSlotText, "--station-slot", 0, 0xffff, "provision");
  const targets = devicesToProvision(ctx);

  // The station's own devices (the CA's, the manifest signer's): one session each, shared by every device provisioned.
  const opened = new Map<string, Promise<Device>>();
  const station = (c: DeviceChoice): Promise<Device> => {
    const k = c.kind === "port" ? c.path : `${c.target}:${c.storeDir}`;
    let p = opened.get(k);
    if (!p) {
      p = connect(c, ctx.common.timeoutMs);
      opened.set(k, p);
    }
    return p;
  };
  let ca: CertificateAuthority | undefined;
  let signer: (ManifestSigner & { close?(): Promise<void> }) | undefined;
  const board = new DeviceBoard();
  try {
    if (caKey !== undefined) ca = fileCa(caCert as string, caKey);
    else {
      const c = caDevice as DeviceChoice;
      ca = await slotCa(await ctx.progress.during("opening the CA's device", station(c)), caSlot as number, deviceLabel(c), caCert);
    }
    if (stationKey !== undefined) {
      try {
        signer = fileSigner(readFileSync(stationKey));
      } catch (e) {
        throw new CliError(`--station-key ${stationKey}: ${describeError(e, "provision").message}`);
      }
    } else if (stationSlot !== undefined) signer = await slotSigner(await station(stationDevice as DeviceChoice), stationSlot);
    const settings: ProvisionSettings = {
      slot,
      keyType,
      cn,
      days,
      force: ctx.flag("force"),
      keepKey,
      label,
      ca,
      manifest: manifestFile !== undefined && signer ? new ManifestWriter(manifestFile, signer) : undefined,
    };

    const outcomes = await Promise.all(
      targets.map(async (t) => {
        const row = board.add(t.name.label);
        let dev: Device | undefined;
        try {
          board.step(row, "opening");
          dev = await connect(t.choice, ctx.common.timeoutMs);
          const r = await provisionDevice(dev, t.name, settings, (what) => board.step(row, what));
          board.finish(row, `ok: ${r.subject}, serial ${r.serial}`);
          return { target: t, result: r };
        } catch (e) {
          const message = describeError(e, "provision").message;
          board.finish(row, `FAILED: ${message}`);
          return { target: t, error: e, message };
        } finally {
          await dev?.close().catch(() => {});
        }
      }),
    );
    board.stop();

    const failed = outcomes.filter((o) => o.error !== undefined);
    if (targets.length === 1 && !ctx.out.json) {
      const o = outcomes[0] as (typeof outcomes)[number];
      if (o.error !== undefined) throw o.error;
      ctx.out.line(resultLine(o.result as ProvisionResult));
      return EXIT_OK;
    }
    if (ctx.out.json) {
      const docs = outcomes.map((o) =>
        o.result ? { ok: true, ...o.target.name.json, ...o.result } : { ok: false, ...o.target.name.json, error: o.message },
      );
      ctx.out.document(
        targets.length === 1 ? docs[0] : { devices: docs, provisioned: outcomes.length - failed.length, failed: failed.length },
      );
      return failed.length > 0 ? EXIT_FAILURE : EXIT_OK;
    }
    for (const o of outcomes) {
      if (o.result) ctx.out.line(`${o.target.name.label}: ${resultLine(o.result)}`);
      else ctx.out.warn(`${o.target.name.label}: ${o.message}`);
    }
    ctx.out.line(
      `provisioned ${outcomes.length - failed.length} of ${outcomes.length} devices` +
        (failed.length > 0 ? `; failed: ${failed.map((o) => o.target.name.label).join(", ")}` : ""),
    );
    return failed.length > 0 ? EXIT_FAILURE : EXIT_OK;
  } finally {
    board.stop();
    await ca?.close().catch(() => {});
    await signer?.close?.().catch(() => {});
    for (const p of opened.values()) await p.then((d) => d.close()).catch(() => {});
  }
}
