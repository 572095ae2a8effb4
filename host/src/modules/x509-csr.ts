// dev.x509.CSR: PKCS#10 certificate signing requests (spec.md 7.11),
// python-mbedtls's mbedtls.x509.CSR in TypeScript style.
//
//   const csr = await dev.x509.CSR.new(key, "CN=device-42,O=Acme", dev.hash.sha256(), {
//     subjectAlternativeNames: ["DNS:device-42.acme.example", "IP:192.0.2.7"],
//     keyUsage: ["digitalSignature"], extendedKeyUsage: ["clientAuth"],
//   });
//   csr.toPEM();              // for any CA
//   await csr.verify();       // true: signed by the key it names
//
// The device writes and signs the request (mbedtls_x509write_csr) with any
// dev.pk key that has a private part, also a non-exportable one or one
// loaded from a slot: the private key never travels. A CSR keeps its DER on
// the host and the parsed request on the device under a handle (what
// CRT.selfsign and crt.sign name); its accessors are the device's
// description, read once. Requests larger than a frame travel in pieces both
// ways (x509_csr_parse in, x509_der_read out).

import { ArgumentError, ProtocolError } from "../base/errors.js";
import { pemEncode } from "../base/pem.js";
import { Op } from "../base/protocol.generated.js";
import { utf8 } from "../base/util.js";
import { atLeast, type CallOptions, type SessionContext } from "../session/context.js";
import { type AdoptedHandle, adoptHandle, DeviceObject } from "../session/device-object.js";
import { hashNameOf, lookupHash } from "./hash.js";
import { _adoptKey } from "./pk.js";
import { type ECC, PkKey, type RSA } from "./pk-key.js";
import { derBlocksOf, derBlocksOfFile, InfoReader, type NameAttribute, pemBlocksOf, sameBytes, sendInPieces } from "./x509-common.js";
import { KEY_USAGE_BITS, type KeyUsage, type SubjectAlternativeName, sanOf } from "./x509-crt.js";

/** A subjectAltName to request: `{ type, value }`, or OpenSSL's "DNS:host", "IP:192.0.2.1", "URI:...", "email:..." text. */
export type SanInput = string | { type: "dns" | "ip" | "uri" | "email"; value: string };

/** Extensions a request or a certificate carries (x509-ext of messages.cddl). */
export interface ExtensionOptions {
  /** subjectAltName entries (DNS names, IPv4/IPv6 addresses, URIs, email addresses), in order. */
  subjectAlternativeNames?: readonly SanInput[];
  /** keyUsage: names ("digitalSignature", "keyCertSign", ...) or Mbed TLS's bits (MBEDTLS_X509_KU_*). */
  keyUsage?: readonly KeyUsage[] | number;
  /** extendedKeyUsage: "serverAuth", "clientAuth", "codeSigning", "emailProtection", "timeStamping", "OCSPSigning", or dotted OIDs. */
  extendedKeyUsage?: readonly string[];
}

export interface CsrOptions extends ExtensionOptions, CallOptions {}

/** extendedKeyUsage purposes by name (RFC 5280 4.2.1.12). */
export const EXTENDED_KEY_USAGE_OIDS = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  codeSigning: "1.3.6.1.5.5.7.3.3",
  emailProtection: "1.3.6.1.5.5.7.3.4",
  timeStamping: "1.3.6.1.5.5.7.3.8",
  OCSPSigning: "1.3.6.1.5.5.7.3.9",
  anyExtendedKeyUsage: "2.5.29.37.0",
} as const;

/** Signing with RSA-4096 on a microcontroller takes seconds (busy events extend it further). */
const SIGN_TIMEOUT_MS = 60_000;

/** The DER content bytes of a dotted OID. */
function oidBytes(dotted: string): Uint8Array {
  if (!/^[0-2](\.\d+)+$/.test(dotted)) throw new ArgumentError(`not an OID: ${JSON.stringify(dotted)}`);
  const arcs = dotted.split(".").map(BigInt);
  const [a, b = 0n, ...rest] = arcs as [bigint, bigint, ...bigint[]];
  if (a < 2n && b > 39n) throw new ArgumentError(`not an OID: ${JSON.stringify(dotted)}`);
  const out: number[] = [];
  for (const arc of [a * 40n + b, ...rest]) {
    const groups: number[] = [];
    let v = arc;
    do {
      groups.unshift(Number(v & 0x7fn));
      v >>= 7n;
    } while (v > 0n);
    out.push(...groups.map((g, i) => (i < groups.length - 1 ? g | 0x80 : g)));
  }
  return Uint8Array.from(out);
}

/** The 4 or 16 bytes of an IPv4 / IPv6 address. */
function ipBytes(text: string): Uint8Array {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const b = v4.slice(1).map(Number);
    if (b.every((x) => x <= 255)) return Uint8Array.from(b);
  } else if (/^[0-9a-fA-F:]+$/.test(text) && text.split("::").length <= 2) {
    const [head = "", tail] = text.split("::");
    const parts = (s: string) => (s === "" ? [] : s.split(":"));
    const hi = parts(head);
    const lo = tail === undefined ? [] : parts(tail);
    const fill = 8 - hi.length - lo.length;
    const groups = [...hi, ...(tail === undefined ? [] : Array(fill).fill("0")), ...lo];
    if (groups.length === 8 && (tail === undefined || fill >= 1) && groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) {
      const out = new Uint8Array(16);
      groups.forEach((g, i) => {
        const n = Number.parseInt(g, 16);
        out[2 * i] = n >> 8;
        out[2 * i + 1] = n & 0xff;
      });
      return out;
    }
  }
  throw new ArgumentError(`not an IPv4 or IPv6 address: ${JSON.stringify(text)}`);
}

const SAN_TAGS = { email: 1, dns: 2, uri: 6, ip: 7 } as const;
const SAN_PREFIXES: Record<string, keyof typeof SAN_TAGS> = { dns: "dns", ip: "ip", uri: "uri", email: "email" };

function sanEntry(s: SanInput): [number, Uint8Array] {
  let type: string;
  let value: string;
  if (typeof s === "string") {
    const i = s.indexOf(":");
    type = SAN_PREFIXES[s.slice(0, i).toLowerCase()] ?? "";
    value = s.slice(i + 1);
    if (i < 0 || type === "") throw new ArgumentError(`subjectAlternativeName ${JSON.stringify(s)}: use "DNS:", "IP:", "URI:" or "email:"`);
  } else if (typeof s === "object" && s !== null && typeof s.value === "string" && s.type in SAN_TAGS) {
    ({ type, value } = s);
  } else {
    throw new ArgumentError('a subjectAlternativeName is "DNS:name" text or { type: "dns" | "ip" | "uri" | "email", value }');
  }
  if (value === "") throw new ArgumentError(`an empty ${type} subjectAlternativeName`);
  const tag = SAN_TAGS[type as keyof typeof SAN_TAGS];
  return [tag, tag === SAN_TAGS.ip ? ipBytes(value) : utf8(value)];
}

function keyUsageBits(ku: readonly KeyUsage[] | number): number {
  if (typeof ku === "number") {
    if (!Number.isInteger(ku) || ku < 0 || (ku & ~0x80ff) !== 0)
      throw new ArgumentError(`keyUsage bits 0x${ku.toString(16)}: Mbed TLS's are 0x01..0x80 and 0x8000`);
    return ku;
  }
  if (!Array.isArray(ku)) throw new ArgumentError("keyUsage is a list of names or a number");
  let bits = 0;
  for (const name of ku) {
    const b = KEY_USAGE_BITS[name as KeyUsage];
    if (b === undefined)
      throw new ArgumentError(`unknown keyUsage ${JSON.stringify(name)}; known: ${Object.keys(KEY_USAGE_BITS).join(", ")}`);
    bits |= b;
  }
  return bits;
}

function ekuOid(name: string): Uint8Array {
  if (typeof name !== "string") throw new ArgumentError("an extendedKeyUsage is a name or a dotted OID");
  return oidBytes(EXTENDED_KEY_USAGE_OIDS[name as keyof typeof EXTENDED_KEY_USAGE_OIDS] ?? name);
}

/** @internal The san / ku / eku entries of an x509-ext map, for the extensions `opts` names. */
export function extensionMap(opts: ExtensionOptions): Record<string, unknown> {
  const m: Record<string, unknown> = {};
  if (opts.subjectAlternativeNames !== undefined) {
    if (!Array.isArray(opts.subjectAlternativeNames)) throw new ArgumentError("subjectAlternativeNames is a list");
    m.san = opts.subjectAlternativeNames.map(sanEntry);
  }
  if (opts.keyUsage !== undefined) m.ku = keyUsageBits(opts.keyUsage);
  if (opts.extendedKeyUsage !== undefined) {
    if (!Array.isArray(opts.extendedKeyUsage)) throw new ArgumentError("extendedKeyUsage is a list");
    m.eku = opts.extendedKeyUsage.map(ekuOid);
  }
  return m;
}

/** @internal The DER an x509-der answer ([length, DER or null]) names: read in pieces (x509_der_read) when it did not fit. */
export async function _derOf(ctx: SessionContext, handle: number, r: unknown, op: string, opts: CallOptions): Promise<Uint8Array> {
  if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== "number" || !(r[1] instanceof Uint8Array || r[1] === null))
    throw new ProtocolError(`${op}: the answer is not [length, DER or null]`);
  const [len, der] = r as [number, Uint8Array | null];
  if (der) {
    if (der.length !== len) throw new ProtocolError(`${op}: ${der.length} bytes of DER, announced ${len}`);
    return der;
  }
  const out = new Uint8Array(len);
  const step = Math.max(1, ctx.chunkSize);
  const reads: Promise<void>[] = [];
  for (let off = 0; off < len; off += step) {
    const n = Math.min(step, len - off);
    reads.push(
      ctx.call(Op.x509DerRead, [handle, off, n], opts).then((piece) => {
        if (!(piece instanceof Uint8Array) || piece.length !== n) throw new ProtocolError("x509_der_read: a piece of the wrong length");
        out.set(piece, off);
      }),
    );
  }
  await Promise.all(reads);
  return out;
}

/** @internal What a write op and the info read after it give: the object's DER and its description. */
export interface Made {
  der: Uint8Array;
  info: unknown;
}

/** The hash_algs id of a digest given as a name or a dev.hash object (python-mbedtls passes hashlib.sha256()). */
export function digestId(digest: string | { readonly name: string }): number {
  const name = typeof digest === "string" ? digest : typeof digest === "object" && digest !== null ? digest.name : undefined;
  if (typeof name !== "string") throw new ArgumentError('the digest is a name ("sha256") or a dev.hash object');
  return lookupHash(name).id;
}

/** What the device says about a request (x509-csr-info), decoded. */
interface CsrInfo {
  version: number;
  subject: string;
  subjectAttributes: NameAttribute[];
  digestmod: string | undefined;
  publicKeyDER: Uint8Array;
  keyUsage: KeyUsage[] | undefined;
  extendedKeyUsage: string[] | undefined;
  subjectAlternativeNames: SubjectAlternativeName[] | undefined;
}

const KEY_USAGE_NAMES = Object.keys(KEY_USAGE_BITS) as KeyUsage[];

/** A requested subjectAltName: [tag, offset, length] into the request's DER. */
function sanIn(der: Uint8Array) {
  return (v: unknown): SubjectAlternativeName => {
    const [tag, off, len] = Array.isArray(v) && v.length === 3 ? (v as unknown[]) : [];
    if (typeof tag !== "number" || typeof off !== "number" || typeof len !== "number" || off + len > der.length)
      throw new ProtocolError("x509-csr-info: a subjectAltName entry is not [tag, offset, length] within the DER");
    return sanOf([tag, der.slice(off, off + len)]);
  };
}

function parseCsrInfo(r: unknown, der: Uint8Array): CsrInfo {
  const m = InfoReader.of(r, "x509-csr-info");
  const md = m.optUint("sig_md");
  const ku = m.optUint("key_usage");
  return {
    version: m.uint("version"),
    subject: m.text("subject"),
    subjectAttributes: m.name("subject_attrs"),
    digestmod: md === undefined ? undefined : (hashNameOf(md) ?? `alg${md}`),
    publicKeyDER: m.bytes("public_key"),
    keyUsage: ku === undefined ? undefined : KEY_USAGE_NAMES.filter((name) => (ku & KEY_USAGE_BITS[name]) !== 0),
    extendedKeyUsage: m.optArray("ext_key_usage")?.map(String),
    subjectAlternativeNames: m.optArray("san")?.map(sanIn(der)),
  };
}

/** A certificate signing request on the device (python-mbedtls's `x509.CSR`). */
export class CSR extends DeviceObject {
  readonly #der: Uint8Array;
  readonly #info: CsrInfo;
  #key: Promise<RSA | ECC> | undefined;

  /** @internal Made by dev.x509.CSR's factories. */
  constructor(ctx: SessionContext, adopted: AdoptedHandle, der: Uint8Array, info: unknown) {
    super(ctx, { adopted, pinned: true });
    this.#der = der;
    this.#info = parseCsrInfo(info, der);
  }

  protected get what(): string {
    return "certificate request";
  }

  /** @internal The session the request lives in (what CRT.selfsign / crt.sign send on). */
  get _context(): SessionContext {
    return this.ctx;
  }

  /** The request's DER (a copy). */
  get der(): Uint8Array {
    return this.#der.slice();
  }
  toDER(): Uint8Array {
    return this.#der.slice();
  }
  toPEM(): string {
    return pemEncode("CERTIFICATE REQUEST", this.#der);
  }
  /** 1 (PKCS#10 v1). */
  get version(): number {
    return this.#info.version;
  }
  /** The subject as Mbed TLS prints it (mbedtls_x509_dn_gets: "CN=device-42, O=Acme"). */
  get subject(): string {
    return this.#info.subject;
  }
  get subjectAttributes(): NameAttribute[] {
    return this.#info.subjectAttributes.map((a) => ({ ...a }));
  }
  /** The signature's digest ("sha256", ...). */
  get digestmod(): string | undefined {
    return this.#info.digestmod;
  }
  /** The requested public key as SubjectPublicKeyInfo DER. */
  get subjectPublicKeyInfo(): Uint8Array {
    return this.#info.publicKeyDER.slice();
  }
  /** The requested public key as a dev.pk key (imported once, public only; closed with the request). */
  get subjectPublicKey(): Promise<RSA | ECC> {
    if (!this.#key) {
      const [ctx, spki] = [this.ctx, this.#info.publicKeyDER];
      this.#key = _adoptKey(ctx, (handle) => ctx.call(Op.pkImport, [handle, spki, null, 0]));
    }
    return this.#key;
  }
  /** Requested keyUsage bits by name (RFC 5280 order); undefined when not requested. */
  get keyUsage(): KeyUsage[] | undefined {
    return this.#info.keyUsage?.slice();
  }
  /** Requested extendedKeyUsage OIDs (dotted); undefined when not requested. */
  get extendedKeyUsage(): string[] | undefined {
    return this.#info.extendedKeyUsage?.slice();
  }
  /** Requested subjectAltName entries; undefined when not requested. */
  get subjectAlternativeNames(): SubjectAlternativeName[] | undefined {
    return this.#info.subjectAlternativeNames?.map((s) => ({ ...s }));
  }

  /** Same DER. */
  equals(other: CSR): boolean {
    return other instanceof CSR && sameBytes(this.#der, other.#der);
  }

  /** Whether the request's signature verifies under the public key it names (proof of possession). */
  verify(opts: CallOptions = {}): Promise<boolean> {
    return this.use((h) => this.ctx.call(Op.x509CsrVerify, [h], opts)).then((r) => r === true);
  }

  override async close(): Promise<void> {
    const key = this.#key;
    this.#key = undefined;
    if (key) await key.then((k) => k.close()).catch(() => {});
    await super.close();
  }
}

/** `dev.x509.CSR`: makes CSR objects (python-mbedtls's `CSR.new` / `from_buffer` / `from_DER` / `from_PEM` / `from_file`). */
export class CsrFactory {
  /** @internal */
  constructor(private readonly ctx: SessionContext) {}

  /**
   * A request for `subject` ("CN=...,O=...,C=..."), signed on the device by
   * `key` (a dev.pk key with a private part, exportable or not) with
   * `digest` (a name or a dev.hash object), asking for the extensions in
   * `opts`. A subject Mbed TLS cannot write is BadArgumentError, an unknown
   * digest UnsupportedAlgorithmError, a key without a private part
   * BadArgumentError.
   */
  async new(key: PkKey, subject: string, digest: string | { readonly name: string }, opts: CsrOptions = {}): Promise<CSR> {
    if (!(key instanceof PkKey)) throw new ArgumentError("CSR.new() takes a dev.pk key");
    if (typeof subject !== "string") throw new ArgumentError('the subject is text, e.g. "CN=device,O=Acme"');
    const alg = digestId(digest);
    const ext = extensionMap(opts);
    const timed = atLeast(this.ctx, opts, SIGN_TIMEOUT_MS);
    return adoptHandle(
      this.ctx,
      async (h) => {
        const r = await key._use(this.ctx, (k) => this.ctx.call(Op.x509CsrWrite, [h, k, subject, alg, ext], timed));
        const der = await _derOf(this.ctx, h, r, "x509_csr_write", opts);
        return { der, info: await this.ctx.call(Op.x509CsrInfo, [h], opts) };
      },
      (adopted, r) => new CSR(this.ctx, adopted, (r as Made).der, (r as Made).info),
    );
  }

  /** A request from DER or PEM ("CERTIFICATE REQUEST"). */
  fromBuffer(data: Uint8Array | string, opts: CallOptions = {}): Promise<CSR> {
    return this.one(derBlocksOf(data, "CERTIFICATE REQUEST"), opts);
  }
  fromDER(der: Uint8Array, opts: CallOptions = {}): Promise<CSR> {
    if (!(der instanceof Uint8Array) || der.length === 0)
      return Promise.reject(new ArgumentError("fromDER() takes a non-empty Uint8Array"));
    return this.parse(der, opts);
  }
  async fromPEM(pem: string, opts: CallOptions = {}): Promise<CSR> {
    if (typeof pem !== "string") throw new ArgumentError("fromPEM() takes PEM text");
    return this.one(pemBlocksOf(pem, "CERTIFICATE REQUEST"), opts);
  }
  /** A request from a DER or PEM file. */
  async fromFile(path: string, opts: CallOptions = {}): Promise<CSR> {
    return this.one(await derBlocksOfFile(path, "CERTIFICATE REQUEST"), opts);
  }

  private one(ders: Uint8Array[], opts: CallOptions): Promise<CSR> {
    if (ders.length !== 1) return Promise.reject(new ArgumentError(`the PEM holds ${ders.length} requests, expected one`));
    return this.parse(ders[0] as Uint8Array, opts);
  }

  private parse(der: Uint8Array, opts: CallOptions): Promise<CSR> {
    const copy = der.slice();
    return adoptHandle(
      this.ctx,
      (h) => sendInPieces(this.ctx, Op.x509CsrParse, h, copy, opts),
      (adopted, info) => new CSR(this.ctx, adopted, copy, info),
    );
  }
}
