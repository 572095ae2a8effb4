// dev.x509.CRT: X.509 certificates parsed on the device (spec.md 7.10),
// python-mbedtls's mbedtls.x509.CRT in TypeScript style.
//
// A CRT is one certificate: its DER stays on the host (toDER, toPEM,
// tbsCertificate, signatureValue are slices of it), the device holds the
// parsed certificate under a handle (x509_crt_parse, in pieces when the DER
// is larger than a frame) and describes it once (x509_crt_info); every
// accessor is that description, cached. The SDK parses no ASN.1 itself: it
// only splits PEM into its blocks. A PEM text or file with several
// certificates is a chain: CRT.chainFromPEM / chainFromFile give one CRT per
// certificate, in the file's order; the single-certificate factories refuse
// it (ArgumentError naming chainFromPEM).

import { ArgumentError, ProtocolError } from "../base/errors.js";
import { pemEncode } from "../base/pem.js";
import { Op } from "../base/protocol.generated.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { type AdoptedHandle, adoptHandle, DeviceObject } from "../session/device-object.js";
import { hashNameOf } from "./hash.js";
import { _adoptKey } from "./pk.js";
import type { ECC, RSA } from "./pk-key.js";
import {
  bigintOf,
  derBlocksOf,
  derBlocksOfFile,
  InfoReader,
  type NameAttribute,
  pemBlocksOf,
  sameBytes,
  sendInPieces,
} from "./x509-common.js";
import type { CRL } from "./x509-crl.js";

/** KeyUsage bits by name, in RFC 5280 order, with Mbed TLS's values (MBEDTLS_X509_KU_*). */
export const KEY_USAGE_BITS = {
  digitalSignature: 0x80,
  nonRepudiation: 0x40,
  keyEncipherment: 0x20,
  dataEncipherment: 0x10,
  keyAgreement: 0x08,
  keyCertSign: 0x04,
  cRLSign: 0x02,
  encipherOnly: 0x01,
  decipherOnly: 0x8000,
} as const;
export type KeyUsage = keyof typeof KEY_USAGE_BITS;

/** A subjectAltName entry: DNS name, IP address (dotted IPv4, RFC 5952 IPv6), URI, email (rfc822Name), or another GeneralName's raw content. */
export interface SubjectAlternativeName {
  type: "dns" | "ip" | "uri" | "email" | "otherName" | "directoryName" | "x400Address" | "ediPartyName" | "registeredID";
  /** The name as text (dns, ip, uri, email), else the content as hex. */
  value: string;
  /** The GeneralName's raw content. */
  raw: Uint8Array;
}

/** The basicConstraints extension. */
export interface BasicConstraints {
  ca: boolean;
  /** pathLenConstraint, undefined when there is none. */
  maxPathLength: number | undefined;
}

const SAN_TYPES: readonly SubjectAlternativeName["type"][] = [
  "otherName",
  "email",
  "dns",
  "x400Address",
  "directoryName",
  "ediPartyName",
  "uri",
  "ip",
  "registeredID",
];

function ipText(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join(".");
  if (b.length !== 16) return Buffer.from(b).toString("hex");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] as number) << 8) | (b[i + 1] as number));
  // RFC 5952: the longest run (2+) of zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j > i ? j : i + 1;
  }
  const hexes = groups.map((g) => g.toString(16));
  if (best < 0) return hexes.join(":");
  return `${hexes.slice(0, best).join(":")}::${hexes.slice(best + bestLen).join(":")}`;
}

function sanDecode(tag: number, raw: Uint8Array): SubjectAlternativeName {
  const type = SAN_TYPES[tag] ?? "otherName";
  const text =
    type === "ip"
      ? ipText(raw)
      : type === "dns" || type === "uri" || type === "email"
        ? Buffer.from(raw).toString("latin1")
        : Buffer.from(raw).toString("hex");
  return { type, value: text, raw };
}

/** @internal A subjectAltName entry given as [tag, bytes], decoded (CSR info maps). */
export function sanOf(v: unknown): SubjectAlternativeName {
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== "number" || !(v[1] instanceof Uint8Array)) {
    throw new ProtocolError("a subjectAltName entry is not [tag, bytes]");
  }
  return sanDecode(v[0], v[1].slice());
}

/** A subjectAltName entry of x509-crt-info ([tag, offset, length] in the certificate's DER), decoded. */
function sanAt(v: unknown, der: Uint8Array): SubjectAlternativeName {
  const [tag, off, len] = Array.isArray(v) ? v : [];
  if (
    !Array.isArray(v) ||
    v.length !== 3 ||
    typeof tag !== "number" ||
    typeof off !== "number" ||
    typeof len !== "number" ||
    off + len > der.length
  ) {
    throw new ProtocolError("x509-crt-info: a subjectAltName entry is not [tag, offset, length] within the DER");
  }
  return sanDecode(tag, der.slice(off, off + len));
}

/** What the device says about a certificate (x509-crt-info), decoded. */
interface CrtInfo {
  version: number;
  serial: Uint8Array;
  issuer: string;
  issuerAttributes: NameAttribute[];
  subject: string;
  subjectAttributes: NameAttribute[];
  notBefore: Date;
  notAfter: Date;
  digestmod: string | undefined;
  signatureAlgorithm: string;
  publicKeyDER: Uint8Array;
  keyUsageBits: number | undefined;
  extendedKeyUsage: string[] | undefined;
  subjectAlternativeNames: SubjectAlternativeName[] | undefined;
  basicConstraints: BasicConstraints | undefined;
  subjectKeyIdentifier: Uint8Array | undefined;
  authorityKeyIdentifier: Uint8Array | undefined;
  tbsCertificate: Uint8Array;
  signatureValue: Uint8Array;
}

/**
 * @internal Decodes an x509-crt-info map; `der`: the certificate's DER (the
 * tbs, signature and subjectAltName ranges point into it); `moreSans`: the
 * entries past the map's first ones (x509_crt_san pages).
 */
export function parseCrtInfo(r: unknown, der: Uint8Array, moreSans: readonly unknown[] = []): CrtInfo {
  const m = InfoReader.of(r, "x509-crt-info");
  const ca = m.optBool("ca");
  const sigMd = m.optUint("sig_md");
  return {
    version: m.uint("version"),
    serial: m.bytes("serial"),
    issuer: m.text("issuer"),
    issuerAttributes: m.name("issuer_attrs"),
    subject: m.text("subject"),
    subjectAttributes: m.name("subject_attrs"),
    notBefore: m.time("not_before"),
    notAfter: m.time("not_after"),
    digestmod: sigMd === undefined ? undefined : (hashNameOf(sigMd) ?? `alg${sigMd}`),
    signatureAlgorithm: m.text("sig_pk"),
    publicKeyDER: m.bytes("public_key"),
    keyUsageBits: m.optUint("key_usage"),
    extendedKeyUsage: m.optArray("ext_key_usage")?.map(String),
    subjectAlternativeNames: m
      .optArray("san")
      ?.concat(moreSans)
      .map((v) => sanAt(v, der)),
    basicConstraints: ca === undefined ? undefined : { ca, maxPathLength: m.optUint("max_pathlen") },
    subjectKeyIdentifier: m.optBytes("ski"),
    authorityKeyIdentifier: m.optBytes("aki"),
    tbsCertificate: m.slice("tbs", der),
    signatureValue: m.slice("sig", der),
  };
}

/** One X.509 certificate on the device (python-mbedtls's `x509.CRT`). */
export class CRT extends DeviceObject {
  readonly #der: Uint8Array;
  readonly #info: CrtInfo;
  #key: Promise<RSA | ECC> | undefined;

  /** @internal Made by dev.x509.CRT's factories. */
  constructor(ctx: SessionContext, adopted: AdoptedHandle, der: Uint8Array, info: unknown, moreSans: readonly unknown[] = []) {
    super(ctx, { adopted, pinned: true });
    this.#der = der;
    this.#info = parseCrtInfo(info, der, moreSans);
  }

  protected get what(): string {
    return "certificate";
  }

  /** The certificate's DER (a copy). */
  get der(): Uint8Array {
    return this.#der.slice();
  }
  toDER(): Uint8Array {
    return this.#der.slice();
  }
  toPEM(): string {
    return pemEncode("CERTIFICATE", this.#der);
  }
  /** 1, 2 or 3. */
  get version(): number {
    return this.#info.version;
  }
  get serialNumber(): bigint {
    return bigintOf(this.#info.serial);
  }
  /** The serial number's bytes as in the DER. */
  get serialBytes(): Uint8Array {
    return this.#info.serial.slice();
  }
  /** The issuer as Mbed TLS prints it (mbedtls_x509_dn_gets: "C=NL, O=PolarSSL, CN=PolarSSL Test CA"). */
  get issuer(): string {
    return this.#info.issuer;
  }
  get issuerAttributes(): NameAttribute[] {
    return this.#info.issuerAttributes.map((a) => ({ ...a }));
  }
  get subject(): string {
    return this.#info.subject;
  }
  get subjectAttributes(): NameAttribute[] {
    return this.#info.subjectAttributes.map((a) => ({ ...a }));
  }
  get notBefore(): Date {
    return new Date(this.#info.notBefore);
  }
  get notAfter(): Date {
    return new Date(this.#info.notAfter);
  }
  /** The signature's digest ("sha256", ...), undefined when Mbed TLS knows none. */
  get digestmod(): string | undefined {
    return this.#info.digestmod;
  }
  /** The signature scheme: "rsa" (PKCS#1 v1.5), "rsassa-pss" or "ecdsa". */
  get signatureAlgorithm(): string {
    return this.#info.signatureAlgorithm;
  }
  /** The subject's public key as SubjectPublicKeyInfo DER. */
  get subjectPublicKeyInfo(): Uint8Array {
    return this.#info.publicKeyDER.slice();
  }
  /** The subject's public key as a dev.pk key (imported once; closed with the certificate). */
  get subjectPublicKey(): Promise<RSA | ECC> {
    const spki = this.#info.publicKeyDER;
    this.#key ??= _adoptKey(this.ctx, (h) => this.ctx.call(Op.pkImport, [h, spki, null, 0]));
    return this.#key;
  }
  /** KeyUsage bits set, by name; undefined without the extension. */
  get keyUsage(): KeyUsage[] | undefined {
    const bits = this.#info.keyUsageBits;
    if (bits === undefined) return undefined;
    return (Object.keys(KEY_USAGE_BITS) as KeyUsage[]).filter((k) => (bits & KEY_USAGE_BITS[k]) !== 0);
  }
  /** The KeyUsage bits as Mbed TLS keeps them (MBEDTLS_X509_KU_*); undefined without the extension. */
  get keyUsageBits(): number | undefined {
    return this.#info.keyUsageBits;
  }
  /** extendedKeyUsage OIDs (dotted, e.g. "1.3.6.1.5.5.7.3.1"); undefined without the extension. */
  get extendedKeyUsage(): string[] | undefined {
    return this.#info.extendedKeyUsage?.slice();
  }
  /** subjectAltName entries in order; undefined without the extension. */
  get subjectAlternativeNames(): SubjectAlternativeName[] | undefined {
    return this.#info.subjectAlternativeNames?.map((s) => ({ ...s }));
  }
  /** basicConstraints; undefined without the extension. */
  get basicConstraints(): BasicConstraints | undefined {
    const b = this.#info.basicConstraints;
    return b && { ...b };
  }
  get subjectKeyIdentifier(): Uint8Array | undefined {
    return this.#info.subjectKeyIdentifier?.slice();
  }
  /** The authorityKeyIdentifier's keyIdentifier. */
  get authorityKeyIdentifier(): Uint8Array | undefined {
    return this.#info.authorityKeyIdentifier?.slice();
  }
  /** The DER of the tbsCertificate (what the issuer signed). */
  get tbsCertificate(): Uint8Array {
    return this.#info.tbsCertificate.slice();
  }
  /** The signature (the BIT STRING's content: DER ECDSA-Sig-Value or the RSA signature). */
  get signatureValue(): Uint8Array {
    return this.#info.signatureValue.slice();
  }

  /** Same DER. */
  equals(other: CRT): boolean {
    return other instanceof CRT && sameBytes(this.#der, other.#der);
  }

  /** Mbed TLS's description (mbedtls_x509_crt_info), python-mbedtls's str(crt). */
  text(opts: CallOptions = {}): Promise<string> {
    return this.use((h) => this.ctx.call(Op.x509CrtText, [h, 0], opts)).then((r) => {
      if (typeof r !== "string") throw new ArgumentError("x509_crt_text: not a text string");
      return r;
    });
  }

  /** Whether `child`'s signature verifies under this certificate's public key (one signature; no path validation). */
  verify(child: CRT, opts: CallOptions = {}): Promise<boolean> {
    if (!(child instanceof CRT)) return Promise.reject(new ArgumentError("verify() takes a CRT"));
    return this.use((p) => child._use(this.ctx, (c) => this.ctx.call(Op.x509CrtVerifySig, [p, 0, c, 0], opts))).then((r) => r === true);
  }

  /** Whether `crl` lists this certificate's serial number (python-mbedtls's check_revocation). */
  checkRevocation(crl: CRL, opts: CallOptions = {}): Promise<boolean> {
    return this.use((c) => crl._use(this.ctx, (l) => this.ctx.call(Op.x509CrtIsRevoked, [c, 0, l, 0], opts))).then((r) => r === true);
  }

  override async close(): Promise<void> {
    const key = this.#key;
    this.#key = undefined;
    if (key) await key.then((k) => k.close()).catch(() => {});
    await super.close();
  }
}

/** `dev.x509.CRT`: makes CRT objects (python-mbedtls's `CRT.from_buffer` / `from_DER` / `from_PEM` / `from_file`). */
export class CrtFactory {
  /** @internal */
  constructor(private readonly ctx: SessionContext) {}

  /** One certificate, DER or PEM (a PEM with several certificates: chainFromPEM). */
  async fromBuffer(data: Uint8Array | string, opts: CallOptions = {}): Promise<CRT> {
    return this.one(derBlocksOf(data, "CERTIFICATE"), opts);
  }
  async fromDER(der: Uint8Array, opts: CallOptions = {}): Promise<CRT> {
    if (!(der instanceof Uint8Array) || der.length === 0) throw new ArgumentError("fromDER() takes a non-empty Uint8Array");
    return _parseCrt(this.ctx, der, opts);
  }
  async fromPEM(pem: string, opts: CallOptions = {}): Promise<CRT> {
    if (typeof pem !== "string") throw new ArgumentError("fromPEM() takes PEM text");
    return this.one(pemBlocksOf(pem, "CERTIFICATE"), opts);
  }
  /** One certificate from a DER or PEM file. */
  async fromFile(path: string, opts: CallOptions = {}): Promise<CRT> {
    return this.one(await derBlocksOfFile(path, "CERTIFICATE"), opts);
  }
  /** Every certificate of a PEM text (or DER/PEM buffer), in order: a chain. */
  async chainFromPEM(pem: Uint8Array | string, opts: CallOptions = {}): Promise<CRT[]> {
    return this.all(derBlocksOf(pem, "CERTIFICATE"), opts);
  }
  /** Every certificate of a PEM (or DER) file, in order: a chain. */
  async chainFromFile(path: string, opts: CallOptions = {}): Promise<CRT[]> {
    return this.all(await derBlocksOfFile(path, "CERTIFICATE"), opts);
  }

  private one(ders: Uint8Array[], opts: CallOptions): Promise<CRT> {
    if (ders.length !== 1) throw new ArgumentError(`the PEM holds ${ders.length} certificates: use chainFromPEM() / chainFromFile()`);
    return _parseCrt(this.ctx, ders[0] as Uint8Array, opts);
  }

  private async all(ders: Uint8Array[], opts: CallOptions): Promise<CRT[]> {
    const out: CRT[] = [];
    try {
      for (const der of ders) out.push(await _parseCrt(this.ctx, der, opts));
    } catch (e) {
      await Promise.all(out.map((c) => c.close()));
      throw e;
    }
    return out;
  }
}

/** @internal Parses one DER certificate on the device (in pieces when larger than a frame) and reads its description. */
export function _parseCrt(ctx: SessionContext, der: Uint8Array, opts: CallOptions = {}): Promise<CRT> {
  const copy = der.slice();
  return adoptHandle(
    ctx,
    async (h) => {
      await sendInPieces(ctx, Op.x509CrtParse, h, copy, opts);
      return _describeCrt(ctx, h, 0, opts);
    },
    (adopted, r) => {
      const d = r as Awaited<ReturnType<typeof _describeCrt>>;
      return new CRT(ctx, adopted, copy, d.info, d.moreSans);
    },
  );
}

/** @internal x509_crt_info of one certificate of a chain, and the subjectAltName entries past the ones it carries (x509_crt_san). */
export async function _describeCrt(
  ctx: SessionContext,
  handle: number,
  index: number,
  opts: CallOptions = {},
): Promise<{ info: unknown; moreSans: unknown[] }> {
  const info = await ctx.call(Op.x509CrtInfo, [handle, index], opts);
  const m = InfoReader.of(info, "x509-crt-info");
  const total = m.uint("san_count");
  const moreSans: unknown[] = [];
  for (let have = m.optArray("san")?.length ?? 0; have < total; ) {
    const page = await ctx.call(Op.x509CrtSan, [handle, index, have], opts);
    if (!Array.isArray(page) || page.length === 0) throw new ProtocolError("x509_crt_san: an empty page before the last entry");
    moreSans.push(...page);
    have += page.length;
  }
  return { info, moreSans };
}
