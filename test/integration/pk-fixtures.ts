// Helpers shared by the pk integration tests: Node (OpenSSL) key objects
// from the device's DER, and the openssl CLI as a second reference.
import { execFileSync } from "node:child_process";
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { requireTool } from "../../tools/programs.js";

export const u8 = (b: Buffer | Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
export const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** A Node public key from SubjectPublicKeyInfo DER. */
export const nodePublic = (spki: Uint8Array): KeyObject => createPublicKey({ key: buf(spki), format: "der", type: "spki" });

/** A Node private key from the device's private DER (PKCS#1 for RSA, SEC1 for EC, PKCS#8 for x25519/x448). */
export function nodePrivate(der: Uint8Array, kind: "pkcs1" | "sec1" | "pkcs8"): KeyObject {
  return createPrivateKey({ key: buf(der), format: "der", type: kind });
}

/** The SPKI DER of a Node key (public or private). */
export const spkiOf = (k: KeyObject): Uint8Array =>
  u8((k.type === "private" ? createPublicKey(k) : k).export({ type: "spki", format: "der" }) as Buffer);

/** Runs the openssl CLI with `input` on stdin; returns stdout as text. */
export function openssl(args: readonly string[], input?: string | Uint8Array): string {
  return execFileSync(requireTool("openssl"), args, {
    input: input === undefined ? undefined : typeof input === "string" ? input : buf(input),
  }).toString();
}

/** Node / OpenSSL names of the protocol's Weierstrass curves. */
export const NODE_CURVE: Readonly<Record<string, string>> = {
  secp192r1: "prime192v1",
  secp224r1: "secp224r1",
  secp256r1: "prime256v1",
  secp384r1: "secp384r1",
  secp521r1: "secp521r1",
  secp192k1: "secp192k1",
  secp224k1: "secp224k1",
  secp256k1: "secp256k1",
  brainpoolP256r1: "brainpoolP256r1",
  brainpoolP384r1: "brainpoolP384r1",
  brainpoolP512r1: "brainpoolP512r1",
};

/** One DER TLV: tag, contents, and the offset after it. */
function tlv(der: Uint8Array, off: number): { tag: number; body: Uint8Array; end: number } {
  const tag = der[off] ?? -1;
  let len = der[off + 1] ?? 0;
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[p + i] ?? 0);
    p += n;
  }
  return { tag, body: der.subarray(p, p + len), end: p + len };
}

/** The children of a DER SEQUENCE. */
export function derSequence(der: Uint8Array): { tag: number; body: Uint8Array }[] {
  const outer = tlv(der, 0);
  if (outer.tag !== 0x30) throw new Error("not a DER SEQUENCE");
  const out: { tag: number; body: Uint8Array }[] = [];
  for (let off = 0; off < outer.body.length; ) {
    const t = tlv(outer.body, off);
    out.push({ tag: t.tag, body: t.body });
    off = t.end;
  }
  return out;
}

/** The public point (04||X||Y) of an EC SubjectPublicKeyInfo: its BIT STRING without the unused-bits byte. */
export function spkiPoint(spki: Uint8Array): Uint8Array {
  const bits = derSequence(spki)[1];
  if (bits?.tag !== 0x03) throw new Error("no BIT STRING in the SPKI");
  return bits.body.subarray(1);
}

/** The private scalar d of a SEC1 ECPrivateKey (its OCTET STRING). */
export function sec1Scalar(sec1: Uint8Array): Uint8Array {
  const d = derSequence(sec1)[1];
  if (d?.tag !== 0x04) throw new Error("no OCTET STRING in the ECPrivateKey");
  return d.body;
}
