// What dev.x509's certificate and CRL classes share: PEM splitting (the only
// parsing the SDK does itself), sending input larger than a frame in pieces,
// and decoding the parts of the device's info maps (names, times, ranges).

import { readFile } from "node:fs/promises";
import { ArgumentError, ProtocolError } from "../base/errors.js";
import { looksLikePem, pemDecode } from "../base/pem.js";
import type { CallOptions, SessionContext } from "../session/context.js";

/** One attribute of a distinguished name: Mbed TLS's short name ("CN", "O", ...) or the dotted OID, and its value. */
export interface NameAttribute {
  name: string;
  value: string;
}

/** The DER of every `-----BEGIN <label>-----` block of `text`, in order; ArgumentError when there is none or one is malformed. */
export function pemBlocksOf(text: string, label: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const re = /-----BEGIN ([^-\r\n]*)-----[\s\S]*?-----END \1-----/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[1] === label) out.push(pemDecode(`${m[0]}\n`).der);
  }
  if (out.length === 0) throw new ArgumentError(`no PEM block "-----BEGIN ${label}-----" found`);
  return out;
}

/** DER blocks of a buffer: the PEM blocks of `label` when it is PEM text, else the buffer as one DER object. */
export function derBlocksOf(data: Uint8Array | string, label: string): Uint8Array[] {
  if (typeof data === "string") return pemBlocksOf(data, label);
  if (!(data instanceof Uint8Array)) throw new ArgumentError("expected a Uint8Array (DER or PEM) or a PEM string");
  if (looksLikePem(data)) return pemBlocksOf(Buffer.from(data).toString("latin1"), label);
  if (data.length === 0) throw new ArgumentError("the input is empty");
  return [data];
}

/** The contents of a file (DER or PEM) as DER blocks. */
export async function derBlocksOfFile(path: string, label: string): Promise<Uint8Array[]> {
  return derBlocksOf(new Uint8Array(await readFile(path)), label);
}

/**
 * Sends `data` to a parse op (x509_crt_parse / x509_crl_parse: [handle,
 * piece, total]) in pieces of at most one frame; resolves with the last
 * piece's answer (the parse result).
 */
export async function sendInPieces(ctx: SessionContext, op: number, handle: number, data: Uint8Array, opts: CallOptions): Promise<unknown> {
  const step = Math.max(1, ctx.chunkSize);
  let result: unknown = null;
  for (let off = 0; off === 0 || off < data.length; off += step) {
    result = await ctx.call(op, [handle, data.subarray(off, Math.min(data.length, off + step)), data.length], opts);
    if (data.length === 0) break;
  }
  return result;
}

/** @internal The device's info maps, checked field by field. */
export class InfoReader {
  constructor(
    private readonly m: Record<string, unknown>,
    private readonly what: string,
  ) {}

  static of(r: unknown, what: string): InfoReader {
    if (typeof r !== "object" || r === null || Array.isArray(r) || r instanceof Uint8Array) throw new ProtocolError(`${what} is not a map`);
    return new InfoReader(r as Record<string, unknown>, what);
  }

  private bad(key: string, want: string): ProtocolError {
    return new ProtocolError(`${this.what}: "${key}" is not ${want}`);
  }

  uint(key: string): number {
    const v = this.m[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw this.bad(key, "an unsigned integer");
    return v;
  }
  optUint(key: string): number | undefined {
    return this.m[key] === null ? undefined : this.uint(key);
  }
  bool(key: string): boolean {
    const v = this.m[key];
    if (typeof v !== "boolean") throw this.bad(key, "a boolean");
    return v;
  }
  optBool(key: string): boolean | undefined {
    return this.m[key] === null ? undefined : this.bool(key);
  }
  text(key: string): string {
    const v = this.m[key];
    if (typeof v !== "string") throw this.bad(key, "a text string");
    return v;
  }
  bytes(key: string): Uint8Array {
    const v = this.m[key];
    if (!(v instanceof Uint8Array)) throw this.bad(key, "a byte string");
    return v;
  }
  optBytes(key: string): Uint8Array | undefined {
    return this.m[key] === null ? undefined : this.bytes(key);
  }
  array(key: string): unknown[] {
    const v = this.m[key];
    if (!Array.isArray(v)) throw this.bad(key, "an array");
    return v;
  }
  optArray(key: string): unknown[] | undefined {
    return this.m[key] === null ? undefined : this.array(key);
  }
  time(key: string): Date {
    return timeOf(this.m[key], `${this.what} "${key}"`);
  }
  optTime(key: string): Date | undefined {
    return this.m[key] === null ? undefined : this.time(key);
  }
  /** A [offset, length] range of `der`. */
  slice(key: string, der: Uint8Array): Uint8Array {
    const v = this.array(key);
    const [off, len] = v;
    if (v.length !== 2 || typeof off !== "number" || typeof len !== "number" || off + len > der.length)
      throw this.bad(key, "a range of the DER");
    return der.slice(off, off + len);
  }
  name(key: string): NameAttribute[] {
    return this.array(key).map((a) => {
      if (!Array.isArray(a) || a.length !== 3 || typeof a[0] !== "string" || !(a[1] instanceof Uint8Array) || typeof a[2] !== "number")
        throw this.bad(key, "a list of [name, value, tag]");
      return { name: a[0], value: decodeString(a[1], a[2]) };
    });
  }
}

/** A Date from the device's [year, month, day, hour, minute, second] (UTC). */
export function timeOf(v: unknown, what: string): Date {
  if (!Array.isArray(v) || v.length !== 6 || !v.every((x) => typeof x === "number")) throw new ProtocolError(`${what} is not a time`);
  const [y, mo, d, h, mi, s] = v as number[];
  const date = new Date(0);
  date.setUTCFullYear(y as number, (mo as number) - 1, d as number);
  date.setUTCHours(h as number, mi as number, s as number, 0);
  return date;
}

/** An ASN.1 string's value by its tag: BMPString UTF-16BE, UniversalString UTF-32BE, T61String Latin-1, the rest UTF-8. */
function decodeString(b: Uint8Array, tag: number): string {
  if (tag === 0x1e) {
    let s = "";
    for (let i = 0; i + 1 < b.length; i += 2) s += String.fromCharCode(((b[i] as number) << 8) | (b[i + 1] as number));
    return s;
  }
  if (tag === 0x1c) {
    let s = "";
    for (let i = 0; i + 3 < b.length; i += 4) s += String.fromCodePoint(new DataView(b.buffer, b.byteOffset + i, 4).getUint32(0));
    return s;
  }
  return Buffer.from(b).toString(tag === 0x14 ? "latin1" : "utf8");
}

/** An unsigned big-endian integer. */
export function bigintOf(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString("hex")}`);
}

/** Byte equality. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(b);
}
