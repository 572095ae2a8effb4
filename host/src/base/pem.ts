// PEM (RFC 7468): base64 DER between "-----BEGIN <label>-----" and
// "-----END <label>-----" lines. The device exports DER only; the SDK wraps
// it here, with 64-character lines as OpenSSL and Mbed TLS write them.
import { ArgumentError } from "./errors.js";

/** A decoded PEM block. */
export interface PemBlock {
  /** The label, e.g. "PUBLIC KEY", "RSA PRIVATE KEY". */
  label: string;
  /** RFC 1421 headers before the base64 (e.g. "Proc-Type" of legacy encrypted keys); empty for RFC 7468 PEM. */
  headers: Record<string, string>;
  der: Uint8Array;
}

/** PEM text of `der` under `label`, lines of 64 characters, ending in a newline. */
export function pemEncode(label: string, der: Uint8Array): string {
  if (!/^[\x21-\x2c\x2e-\x7e]([ \x21-\x2c\x2e-\x7e]*[\x21-\x2c\x2e-\x7e])?$/.test(label)) {
    throw new ArgumentError(`not a PEM label: ${JSON.stringify(label)}`);
  }
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString("base64");
  const lines: string[] = [`-----BEGIN ${label}-----`];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  lines.push(`-----END ${label}-----`, "");
  return lines.join("\n");
}

const BEGIN = /-----BEGIN ([^-\r\n]*)-----\r?\n/;

/**
 * The first PEM block of `text` (text before it is ignored, as OpenSSL
 * does). Throws ArgumentError when there is none, the END line is missing or
 * names another label, or the base64 is malformed.
 */
export function pemDecode(text: string): PemBlock {
  const begin = BEGIN.exec(text);
  if (!begin) throw new ArgumentError("no PEM block (-----BEGIN ...-----) found");
  const label = begin[1] ?? "";
  const start = begin.index + begin[0].length;
  const endLine = `-----END ${label}-----`;
  const end = text.indexOf(endLine, start);
  if (end < 0) throw new ArgumentError(`PEM block "${label}" has no "${endLine}" line`);
  let body = text.slice(start, end);
  const headers: Record<string, string> = {};
  // RFC 1421 headers ("Name: value" lines, then a blank line).
  const blank = /\r?\n\r?\n/.exec(body);
  if (blank && /^[A-Za-z-]+:/.test(body)) {
    for (const line of body.slice(0, blank.index).split(/\r?\n/)) {
      const i = line.indexOf(":");
      if (i > 0) headers[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    body = body.slice(blank.index + blank[0].length);
  }
  const b64 = body.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw new ArgumentError(`PEM block "${label}" holds malformed base64`);
  }
  return { label, headers, der: new Uint8Array(Buffer.from(b64, "base64")) };
}

/** Whether bytes (or text) look like PEM: optional whitespace, then "-----BEGIN ". */
export function looksLikePem(data: Uint8Array | string): boolean {
  const head = typeof data === "string" ? data.slice(0, 64) : Buffer.from(data.subarray(0, 64)).toString("latin1");
  return /^\s*-----BEGIN /.test(head);
}
