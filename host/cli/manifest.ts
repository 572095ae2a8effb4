// The provisioning manifest: one JSON line per provisioned device, each
// signed by the station that provisioned it, so a factory's record cannot be
// edited unnoticed. Vendor-neutral on purpose: JSON lines, canonical JSON
// (RFC 8785 for the values used here), a detached signature per line that
// `openssl dgst -verify` checks, the station's key named by a key id.
//
// A line is the canonical JSON of the record with these fields added:
//   "alg":  "ecdsa-sha256" (DER ECDSA over SHA-256), "rsa-pkcs1-sha256"
//           (RSASSA-PKCS1-v1_5 with SHA-256) or "ed25519" (RFC 8032 pure);
//   "kid":  lowercase hex SHA-256 of the station's SubjectPublicKeyInfo DER;
//   "prev": lowercase hex SHA-256 of the previous line's bytes (without its
//           newline), "" on the first line: a deleted or reordered line breaks it;
//   "sig":  base64 of the signature over the canonical JSON of the line
//           without "sig" (the same bytes as the line with `,"sig":"..."` cut).
// Canonical JSON: object keys sorted by UTF-16 code units, no whitespace,
// strings as JSON.stringify writes them, integers only (no floats).
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign as nodeSign, verify as nodeVerify } from "node:crypto";
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";

export type ManifestAlg = "ecdsa-sha256" | "rsa-pkcs1-sha256" | "ed25519";
export const MANIFEST_ALGS: readonly ManifestAlg[] = ["ecdsa-sha256", "rsa-pkcs1-sha256", "ed25519"];

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

/** The canonical JSON text of `v` (sorted keys, no whitespace, integers only). */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v === "boolean") return JSON.stringify(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new Error(`canonical JSON takes integers only, got ${v}`);
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(",")}}`;
  }
  throw new Error(`canonical JSON cannot hold a ${typeof v}`);
}

/** Lowercase hex SHA-256. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Who signs manifest lines: the station's key, in a PEM file or in a slot of its mbedlink device. */
export interface ManifestSigner {
  alg: ManifestAlg;
  /** Hex SHA-256 of the station's SubjectPublicKeyInfo DER. */
  kid: string;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** The manifest alg a key of this Node key type signs with, or undefined. */
export function algForKeyType(type: string | undefined): ManifestAlg | undefined {
  return type === "ec" ? "ecdsa-sha256" : type === "rsa" ? "rsa-pkcs1-sha256" : type === "ed25519" ? "ed25519" : undefined;
}

/** The key id of a public key given as SubjectPublicKeyInfo DER or a Node KeyObject. */
export function keyId(pub: Uint8Array | KeyObject): string {
  const der = pub instanceof Uint8Array ? pub : pub.export({ type: "spki", format: "der" });
  return sha256Hex(der);
}

/** A signer from a private key PEM file (EC, RSA or Ed25519). */
export function fileSigner(pem: string | Buffer): ManifestSigner {
  const key = createPrivateKey(pem);
  const alg = algForKeyType(key.asymmetricKeyType);
  if (!alg) throw new Error(`a station key must be EC, RSA or Ed25519, not ${key.asymmetricKeyType ?? "unknown"}`);
  const kid = keyId(createPublicKey(key));
  return {
    alg,
    kid,
    sign: async (data) => new Uint8Array(nodeSign(alg === "ed25519" ? null : "sha256", data, key)),
  };
}

/** Checks `sig` over `data` with `pub` as `alg` says. */
export function verifyWith(alg: ManifestAlg, pub: KeyObject, data: Uint8Array, sig: Uint8Array): boolean {
  try {
    return nodeVerify(alg === "ed25519" ? null : "sha256", data, pub, sig);
  } catch {
    return false;
  }
}

/** The record fields every line has (others may be added; all are signed). */
export interface ManifestRecord {
  [k: string]: Json | undefined;
}

/** The last line of the file (without newline), or "" when the file is missing or empty. */
export function lastLine(file: string): string {
  if (!existsSync(file)) return "";
  const size = statSync(file).size;
  if (size === 0) return "";
  // Read backwards in blocks until a newline before the last line is found.
  const fd = openSync(file, "r");
  try {
    let tail = Buffer.alloc(0);
    let pos = size;
    while (pos > 0) {
      const n = Math.min(4096, pos);
      pos -= n;
      const block = Buffer.alloc(n);
      readSync(fd, block, 0, n, pos);
      tail = Buffer.concat([block, tail]);
      const text = tail.toString("utf8").replace(/\n+$/, "");
      const nl = text.lastIndexOf("\n");
      if (nl >= 0) return text.slice(nl + 1);
      if (pos === 0) return text;
    }
    return "";
  } finally {
    closeSync(fd);
  }
}

/** Makes the signed line of `record` (canonical JSON), chained to `prevLine`. */
export async function signLine(record: ManifestRecord, signer: ManifestSigner, prevLine: string): Promise<string> {
  for (const k of ["alg", "kid", "prev", "sig"]) if (k in record) throw new Error(`a manifest record may not set "${k}"`);
  const body: Record<string, unknown> = { ...record, alg: signer.alg, kid: signer.kid, prev: prevLine === "" ? "" : sha256Hex(prevLine) };
  const signed = canonicalJson(body);
  const sig = await signer.sign(Buffer.from(signed, "utf8"));
  return canonicalJson({ ...body, sig: Buffer.from(sig).toString("base64") });
}

/**
 * Appends records to a manifest file, one signed line each, in the order
 * append() is called (calls are serialised, so parallel provisioning runs
 * chain their lines in completion order). One station process per file.
 */
export class ManifestWriter {
  private prev: string | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly signer: ManifestSigner,
  ) {}

  append(record: ManifestRecord): Promise<string> {
    const p = this.queue.then(async () => {
      this.prev ??= lastLine(this.file);
      const line = await signLine(record, this.signer, this.prev);
      appendFileSync(this.file, `${line}\n`);
      this.prev = line;
      return line;
    });
    this.queue = p.catch(() => {});
    return p;
  }
}

export interface LineProblem {
  /** 1-based line number. */
  line: number;
  reason: string;
}

export interface ManifestCheck {
  lines: number;
  problems: LineProblem[];
}

/** The public key of a PEM file: a public key, a certificate, or a private key (its public part). */
export function publicKeyFromPem(pem: string | Buffer): KeyObject {
  const text = pem.toString();
  if (/-----BEGIN CERTIFICATE-----/.test(text)) return createPublicKey(text);
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) return createPublicKey(createPrivateKey(text));
  return createPublicKey(text);
}

/** Why one line is bad, or undefined when it verifies and chains to `prevLine`. */
function checkLine(text: string, prevLine: string | undefined, pub: KeyObject, kid: string): string | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return `not JSON (${(e as Error).message})`;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "not a JSON object";
  const m = v as Record<string, unknown>;
  let canonical: string;
  try {
    canonical = canonicalJson(m);
  } catch (e) {
    return (e as Error).message;
  }
  if (canonical !== text) return "not in canonical form (bytes were changed)";
  const { sig, alg } = m;
  // Base64 has spare bits at its end: only the one canonical spelling of the signature is accepted.
  if (typeof sig !== "string" || Buffer.from(sig, "base64").toString("base64") !== sig) return '"sig" is not canonical base64';
  if (typeof alg !== "string" || !(MANIFEST_ALGS as readonly string[]).includes(alg)) return `unknown "alg" ${JSON.stringify(alg)}`;
  if (m.kid !== kid) return `signed by key ${JSON.stringify(m.kid)}, not by the given public key (${kid})`;
  const { sig: _drop, ...body } = m;
  if (!verifyWith(alg as ManifestAlg, pub, Buffer.from(canonicalJson(body), "utf8"), Buffer.from(sig, "base64")))
    return "signature does not verify";
  if (prevLine !== undefined) {
    const want = prevLine === "" ? "" : sha256Hex(prevLine);
    if (m.prev !== want) return `"prev" does not match the line before it (a line was removed, inserted or reordered)`;
  }
  return undefined;
}

/**
 * Checks every line of a manifest's text: canonical, signed by `pub`, and
 * chained to the line before. A trailing newline ends the last line; any
 * other empty line is a problem.
 */
export function checkManifest(text: string, pub: KeyObject): ManifestCheck {
  const kid = keyId(pub);
  const rows = text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n");
  if (text === "") return { lines: 0, problems: [{ line: 1, reason: "the manifest is empty" }] };
  const problems: LineProblem[] = [];
  rows.forEach((row, i) => {
    const reason = row === "" ? "empty line" : checkLine(row, i === 0 ? "" : (rows[i - 1] as string), pub, kid);
    if (reason) problems.push({ line: i + 1, reason });
  });
  return { lines: rows.length, problems };
}

/** Reads and checks a manifest file. */
export function checkManifestFile(file: string, pubPem: string | Buffer): ManifestCheck {
  return checkManifest(readFileSync(file, "utf8"), publicKeyFromPem(pubPem));
}
