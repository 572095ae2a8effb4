// Certificates made on the device (spec.md 7.11): python-mbedtls's
// CRT.selfsign and crt.sign, attached to dev.x509.CRT and CRT here.
//
//   const root = await dev.x509.CRT.selfsign(rootCsr, rootKey, {
//     notBefore, notAfter, serialNumber: 1n, basicConstraints: { ca: true, maxPathLength: 1 },
//     keyUsage: ["keyCertSign", "cRLSign"],
//   });
//   const ee = await root.sign(eeCsr, rootKey, notBefore, notAfter, 2n, { extendedKeyUsage: ["serverAuth"] });
//
// The device builds and signs the certificate (mbedtls_x509write_crt) with
// the issuer's key, which may be non-exportable or loaded from a slot; the
// subject, its key and (unless the options name them) the subjectAltNames,
// keyUsage and extendedKeyUsage the CSR requests come from the CSR on the
// device, the issuer name from the issuer certificate's subject. The new
// certificate is a CRT under the handle it was made in.

import { randomBytes } from "node:crypto";
import { toBytes } from "../base/bigint.js";
import { ArgumentError } from "../base/errors.js";
import { Op } from "../base/protocol.generated.js";
import { atLeast, type CallOptions, type SessionContext } from "../session/context.js";
import { adoptHandle } from "../session/device-object.js";
import { PkKey } from "./pk-key.js";
import { _describeCrt, CRT, CrtFactory } from "./x509-crt.js";
import { _derOf, CSR, digestId, type ExtensionOptions, extensionMap, type Made } from "./x509-csr.js";

/** What a certificate says beyond its CSR (x509_crt_sign's options). */
export interface CertificateOptions extends ExtensionOptions, CallOptions {
  /** basicConstraints: `{ ca: true, maxPathLength: 0 }` for a CA that issues end entities only; none when absent. */
  basicConstraints?: { ca: boolean; maxPathLength?: number | undefined };
  /** Add the subjectKeyIdentifier (SHA-1 of the subject key; default true). */
  subjectKeyIdentifier?: boolean;
  /** Add the authorityKeyIdentifier (the issuer's subjectKeyIdentifier, else SHA-1 of its key; default true). */
  authorityKeyIdentifier?: boolean;
  /** The digest signed with (a name or a dev.hash object); default: the CSR's. */
  digestmod?: string | { readonly name: string };
}

/** CRT.selfsign's options: the validity and the serial number too. */
export interface SelfSignOptions extends CertificateOptions {
  /** Default: now. */
  notBefore?: Date;
  notAfter: Date;
  /** Positive, at most 20 bytes; default: 16 random bytes (top bit clear). */
  serialNumber?: bigint | number;
}

/** Signing with RSA-4096 on a microcontroller takes seconds (busy events extend it further). */
const SIGN_TIMEOUT_MS = 60_000;

/** Unix seconds; a bigint past 2^32 (CBOR's uint64: the encoder writes larger numbers as floats). */
function seconds(d: Date, what: string): number | bigint {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw new ArgumentError(`${what} must be a valid Date`);
  const s = Math.floor(d.getTime() / 1000);
  if (s < 0) throw new ArgumentError(`${what} is before 1970`);
  return s > 0xffffffff ? BigInt(s) : s;
}

function serialBytes(n: bigint | number | undefined): Uint8Array {
  if (n === undefined) {
    const b = new Uint8Array(randomBytes(16));
    b[0] = ((b[0] as number) & 0x7f) | 0x01;
    return b;
  }
  if (typeof n === "number") {
    if (!Number.isSafeInteger(n)) throw new ArgumentError("serialNumber must be an integer (a bigint above 2^53)");
    return toBytes(BigInt(n));
  }
  if (typeof n !== "bigint") throw new ArgumentError("serialNumber is a bigint");
  return toBytes(n);
}

/** The x509-ext map of a certificate's options. */
function certExtensions(opts: CertificateOptions): Record<string, unknown> {
  const m = extensionMap(opts);
  const bc = opts.basicConstraints;
  if (bc !== undefined) {
    if (typeof bc !== "object" || bc === null || typeof bc.ca !== "boolean")
      throw new ArgumentError("basicConstraints is { ca: boolean, maxPathLength?: number }");
    const p = bc.maxPathLength ?? -1;
    if (!Number.isInteger(p)) throw new ArgumentError("basicConstraints.maxPathLength is an integer");
    m.bc = [bc.ca, p];
  }
  for (const [key, value] of [
    ["ski", opts.subjectKeyIdentifier],
    ["aki", opts.authorityKeyIdentifier],
  ] as const) {
    if (value !== undefined && typeof value !== "boolean")
      throw new ArgumentError(`${key === "ski" ? "subjectKeyIdentifier" : "authorityKeyIdentifier"} is a boolean`);
    m[key] = value ?? true;
  }
  return m;
}

/** Issues a certificate for `csr` signed by `key`, under `issuer` (null: self-signed). */
function issue(
  ctx: SessionContext,
  csr: CSR,
  key: PkKey,
  issuer: CRT | null,
  notBefore: Date,
  notAfter: Date,
  serial: bigint | number | undefined,
  opts: CertificateOptions,
): Promise<CRT> {
  if (!(csr instanceof CSR)) return Promise.reject(new ArgumentError("the first argument is a CSR (dev.x509.CSR)"));
  if (!(key instanceof PkKey)) return Promise.reject(new ArgumentError("the signing key is a dev.pk key"));
  const times = [seconds(notBefore, "notBefore"), seconds(notAfter, "notAfter")];
  const sn = serialBytes(serial);
  const alg = opts.digestmod === undefined ? null : digestId(opts.digestmod);
  const ext = certExtensions(opts);
  const timed = atLeast(ctx, opts, SIGN_TIMEOUT_MS);
  const send = (h: number, c: number, k: number, i: number | null) => ctx.call(Op.x509CrtSign, [h, c, k, i, ...times, sn, alg, ext], timed);
  return adoptHandle(
    ctx,
    async (h) => {
      const r = await csr._use(ctx, (c) =>
        key._use(ctx, (k) => (issuer ? issuer._use(ctx, (i) => send(h, c, k, i)) : send(h, c, k, null))),
      );
      const der = await _derOf(ctx, h, r, "x509_crt_sign", opts);
      return { der, ...(await _describeCrt(ctx, h, 0, opts)) };
    },
    (adopted, r) => {
      const made = r as Made & { moreSans: unknown[] };
      return new CRT(ctx, adopted, made.der, made.info, made.moreSans);
    },
  );
}

declare module "./x509-crt.js" {
  interface CrtFactory {
    /**
     * A self-signed certificate for `csr`, signed by `key` (the CSR's own
     * key; another is BadArgumentError), python-mbedtls's CRT.selfsign.
     */
    selfsign(csr: CSR, key: PkKey, opts: SelfSignOptions): Promise<CRT>;
  }
  interface CRT {
    /**
     * A certificate for `csr` issued by this certificate's subject and signed
     * by `issuerKey` (this certificate's key, which may be non-exportable or
     * loaded from a slot; another is BadArgumentError), python-mbedtls's
     * crt.sign. notAfter before notBefore, a zero serial number or a serial
     * above 20 bytes are BadArgumentError.
     */
    sign(
      csr: CSR,
      issuerKey: PkKey,
      notBefore: Date,
      notAfter: Date,
      serialNumber: bigint | number,
      opts?: CertificateOptions,
    ): Promise<CRT>;
  }
}

CrtFactory.prototype.selfsign = function selfsign(csr: CSR, key: PkKey, opts: SelfSignOptions): Promise<CRT> {
  if (!(csr instanceof CSR)) return Promise.reject(new ArgumentError("selfsign() takes a CSR (dev.x509.CSR)"));
  if (typeof opts !== "object" || opts === null) return Promise.reject(new ArgumentError("selfsign() takes { notAfter, ... }"));
  try {
    return issue(csr._context, csr, key, null, opts.notBefore ?? new Date(), opts.notAfter, opts.serialNumber, opts);
  } catch (e) {
    return Promise.reject(e);
  }
};

CRT.prototype.sign = function sign(
  this: CRT,
  csr: CSR,
  issuerKey: PkKey,
  notBefore: Date,
  notAfter: Date,
  serialNumber: bigint | number,
  opts: CertificateOptions = {},
): Promise<CRT> {
  if (!(csr instanceof CSR)) return Promise.reject(new ArgumentError("sign() takes a CSR (dev.x509.CSR)"));
  if (serialNumber === undefined) return Promise.reject(new ArgumentError("sign() takes a serial number"));
  try {
    return issue(csr._context, csr, issuerKey, this, notBefore, notAfter, serialNumber, opts);
  } catch (e) {
    return Promise.reject(e);
  }
};
