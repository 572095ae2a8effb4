// dev.x509.TrustStore: CA certificates and CRLs held on the device, and chain
// verification against them with Mbed TLS's full path validation
// (x509_trust_verify, spec.md "Trust stores and chain verification").
//
//   const trust = new dev.x509.TrustStore();
//   await trust.add(rootCrt);
//   const r = await trust.verify([leaf, intermediate], { hostname: "example.com", purpose: "server" });
//   r.valid; r.flags; // e.g. ["expired", "notTrusted"]
//
// Validity is judged by the device clock, which the SDK sets after every
// hello (time_set), or as of `at`. A verdict names every flag Mbed TLS
// raised (ids.json x509_verify_flag), never just false.

import { ArgumentError, ProtocolError } from "../base/errors.js";
import { Op, X509Profile, X509Purpose, X509VerifyCause, X509VerifyFlag } from "../base/protocol.generated.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { DeviceObject } from "../session/device-object.js";
import { bigintOf } from "./x509-common.js";
import { CRL } from "./x509-crl.js";
import { CRT } from "./x509-crt.js";

/**
 * Why a path's top found no issuer although a certificate named as its issuer
 * was at hand (Mbed TLS says `notTrusted` alone; the device tells these apart).
 */
export type VerifyCause = "badPathLength" | "notCA" | "badIssuerKeyUsage";

/** A verification flag's name: Mbed TLS's MBEDTLS_X509_BADCERT_* / BADCRL_* in camelCase ("expired", "notTrusted", ...), or a VerifyCause next to `notTrusted`. */
export type VerifyFlag = keyof typeof X509VerifyFlag | VerifyCause;

const CAUSES: [VerifyCause, number][] = [
  ["badPathLength", X509VerifyCause.badPathLength],
  ["notCA", X509VerifyCause.notCa],
  ["badIssuerKeyUsage", X509VerifyCause.badIssuerKeyUsage],
];

/** TLS purposes a leaf can be checked for (keyUsage and extendedKeyUsage, as OpenSSL's -purpose sslserver / sslclient). */
export type VerifyPurpose = "server" | "client";

/** Signature algorithm profiles (ids.json x509_profile). */
export type VerifyProfile = keyof typeof X509Profile;

export interface VerifyOptions extends CallOptions {
  /** Must match the leaf's subjectAltName (DNS or IP) or, without one, its CN: else `cnMismatch`. */
  hostname?: string;
  /** What the leaf must allow: else `badKeyUsage` / `badExtKeyUsage`. */
  purpose?: VerifyPurpose;
  /** Verify as of this time instead of the device clock. */
  at?: Date;
  /** CRLs to consult besides the store's (at most 8 objects). */
  crls?: CRL | readonly CRL[];
  /** Acceptable signature hashes, keys and curves; "default" (Mbed TLS's default profile) unless given. */
  profile?: VerifyProfile;
}

/** One certificate of the verified path, as far as it was built (leaf first, up to the trusted root). */
export interface VerifiedCertificate {
  /** The subject as Mbed TLS prints it. */
  subject: string;
  serialNumber: bigint;
  /** The serial as in the DER. */
  serialBytes: Uint8Array;
  /** This certificate's own flags. */
  flags: VerifyFlag[];
  /** The same as Mbed TLS's bits. */
  bits: number;
}

/** A verification's verdict: valid, or every reason it is not. */
export interface VerifyResult {
  valid: boolean;
  /** Names of every flag raised over the chain (empty when valid), and after `notTrusted` the causes the device found. */
  flags: VerifyFlag[];
  /** The flags as Mbed TLS's bits (MBEDTLS_X509_BADCERT_* | BADCRL_*). */
  bits: number;
  path: VerifiedCertificate[];
}

const FLAG_ENTRIES = Object.entries(X509VerifyFlag) as [VerifyFlag, number][];

/** The names of Mbed TLS verification flag bits, in bit order (then those of x509_verify_cause bits); a bit this SDK does not know throws ProtocolError. */
export function verifyFlagNames(bits: number, causes = 0): VerifyFlag[] {
  const names: VerifyFlag[] = FLAG_ENTRIES.filter(([, bit]) => (bits & bit) !== 0).map(([name]) => name);
  const known = FLAG_ENTRIES.reduce((m, [, bit]) => m | bit, 0);
  if ((bits & ~known) !== 0) throw new ProtocolError(`x509_trust_verify: unknown flag bits 0x${(bits & ~known).toString(16)}`);
  const knownCauses = CAUSES.reduce((m, [, bit]) => m | bit, 0);
  if ((causes & ~knownCauses) !== 0)
    throw new ProtocolError(`x509_trust_verify: unknown cause bits 0x${(causes & ~knownCauses).toString(16)}`);
  return [...names, ...CAUSES.filter(([, bit]) => (causes & bit) !== 0).map(([name]) => name)];
}

/** Certificate handles one verify names (Mbed TLS takes 8 intermediates), CRL handles. */
const MAX_CHAIN = 16;
const MAX_CRLS = 8;

/** Unix seconds of `at` as the wire carries them (an unsigned integer: a bigint past 2^32 - 1, which cbor-x would write as a float). */
function wireSeconds(at: Date): number | bigint {
  const s = Math.floor(at.getTime() / 1000);
  return s > 0xffffffff ? BigInt(s) : s;
}

function uint(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new ProtocolError(`${what} is not an unsigned integer`);
  return v;
}

function parseVerdict(r: unknown): VerifyResult {
  if (typeof r !== "object" || r === null || Array.isArray(r) || r instanceof Uint8Array)
    throw new ProtocolError("x509_trust_verify: result is not a map");
  const m = r as Record<string, unknown>;
  const bits = uint(m.flags, "x509_trust_verify: flags");
  const causes = m.causes === undefined ? 0 : uint(m.causes, "x509_trust_verify: causes");
  if (!Array.isArray(m.path)) throw new ProtocolError("x509_trust_verify: path is not an array");
  const top = m.path.length - 1;
  const path = m.path.map((e, i): VerifiedCertificate => {
    if (!Array.isArray(e) || e.length !== 3 || typeof e[1] !== "string" || !(e[2] instanceof Uint8Array))
      throw new ProtocolError("x509_trust_verify: a path entry is not [flags, subject, serial]");
    const b = uint(e[0], "x509_trust_verify: a path entry's flags");
    const serial = Uint8Array.from(e[2]);
    return {
      subject: e[1],
      serialNumber: bigintOf(serial),
      serialBytes: serial,
      flags: verifyFlagNames(b, i === top ? causes : 0),
      bits: b,
    };
  });
  return { valid: bits === 0, flags: verifyFlagNames(bits, causes), bits, path };
}

/** Runs `fn` with the handles of `objs`, each object used in turn (they stay resident meanwhile). */
function withHandles<T>(ctx: SessionContext, objs: readonly (CRT | CRL)[], fn: (handles: number[]) => Promise<T>): Promise<T> {
  const step = (i: number, acc: number[]): Promise<T> => {
    const obj = objs[i];
    return obj === undefined ? fn(acc) : obj._use(ctx, (h) => step(i + 1, [...acc, h]));
  };
  return step(0, []);
}

function listOf<T>(v: T | readonly T[], cls: abstract new (...a: never[]) => T, what: string, min: number, max: number): T[] {
  const list = Array.isArray(v) ? [...(v as readonly T[])] : [v as T];
  if (list.length < min || list.length > max) throw new ArgumentError(`${what}: ${min} to ${max} objects, got ${list.length}`);
  for (const x of list) if (!(x instanceof cls)) throw new ArgumentError(`${what}: expected ${cls.name} objects`);
  if (new Set(list).size !== list.length) throw new ArgumentError(`${what}: an object is named twice`);
  return list;
}

/**
 * CA certificates and CRLs on the device (python-mbedtls's `tls.TrustStore`):
 * `new dev.x509.TrustStore()`, then `add` CA certificates and `addCRL`
 * revocation lists; the store keeps its own copies (the CRT and CRL objects
 * may be closed). At most `dev.info.trustCasMax` certificates and
 * `trustCrlsMax` CRLs.
 */
export class TrustStore extends DeviceObject {
  #cas = 0;
  #crls = 0;

  /** @internal Made by `new dev.x509.TrustStore()`. */
  constructor(ctx: SessionContext) {
    super(ctx, { pinned: true }); // the device does not swap a trust store out
    this.track(this.open((h) => ctx.call(Op.x509TrustNew, [h])));
  }

  protected get what(): string {
    return "trust store";
  }

  /** CA certificates in the store. */
  get size(): number {
    return this.#cas;
  }

  /** CRLs in the store. */
  get crlCount(): number {
    return this.#crls;
  }

  /** Trusts `cas` (a certificate, or each of a list); resolves with the store's CA count. */
  async add(cas: CRT | readonly CRT[], opts: CallOptions = {}): Promise<number> {
    this.#cas = await this.addEach(listOf(cas, CRT, "add()", 1, Number.POSITIVE_INFINITY), Op.x509TrustAdd, opts);
    return this.#cas;
  }

  /** Consults `crls` in every verify; resolves with the store's CRL count. */
  async addCRL(crls: CRL | readonly CRL[], opts: CallOptions = {}): Promise<number> {
    this.#crls = await this.addEach(listOf(crls, CRL, "addCRL()", 1, Number.POSITIVE_INFINITY), Op.x509TrustAddCrl, opts);
    return this.#crls;
  }

  /** Sends `op` [store, object] for each object in turn; the last answer (the store's count). */
  private async addEach(objs: readonly (CRT | CRL)[], op: number, opts: CallOptions): Promise<number> {
    let count = 0;
    for (const obj of objs) {
      const r = await this.use((h) => obj._use(this.ctx, (o) => this.ctx.call(op, [h, o], opts)));
      count = uint(r, `${op === Op.x509TrustAdd ? "x509_trust_add" : "x509_trust_add_crl"}: result`);
    }
    return count;
  }

  /**
   * Verifies `chain` (the leaf, or the leaf first then the intermediates)
   * against the store: signatures, validity (device clock or `at`), CA
   * flags, path lengths, issuers' key usage, revocation (the store's CRLs
   * and `crls`), `hostname`, `purpose`, the `profile`'s algorithms.
   */
  async verify(chain: CRT | readonly CRT[], opts: VerifyOptions = {}): Promise<VerifyResult> {
    const crts = listOf(chain, CRT, "verify() chain", 1, MAX_CHAIN);
    const crls = opts.crls === undefined ? [] : listOf(opts.crls, CRL, "verify() crls", 0, MAX_CRLS);
    const { hostname, purpose, at, profile = "default" } = opts;
    if (hostname !== undefined && (typeof hostname !== "string" || hostname.length === 0))
      throw new ArgumentError("hostname must be a non-empty string");
    if (purpose !== undefined && purpose !== "server" && purpose !== "client")
      throw new ArgumentError(`purpose must be "server" or "client", got ${JSON.stringify(purpose)}`);
    if (at !== undefined && (!(at instanceof Date) || Number.isNaN(at.getTime()) || at.getTime() < 0))
      throw new ArgumentError("at must be a valid Date from 1970 on");
    const profileId = X509Profile[profile];
    if (profileId === undefined) throw new ArgumentError(`unknown profile ${JSON.stringify(profile)}`);
    const purposeId = purpose === undefined ? X509Purpose.any : X509Purpose[purpose];
    const atSeconds = at === undefined ? null : wireSeconds(at);
    const r = await this.use((h) =>
      withHandles(this.ctx, crts, (chainHandles) =>
        withHandles(this.ctx, crls, (crlHandles) =>
          this.ctx.call(Op.x509TrustVerify, [h, chainHandles, hostname ?? null, purposeId, atSeconds, crlHandles, profileId], opts),
        ),
      ),
    );
    return parseVerdict(r);
  }
}

/** `dev.x509.TrustStore`: `new dev.x509.TrustStore()` makes an empty store on this device. */
export type TrustStoreClass = new () => TrustStore;

/** @internal The TrustStore class bound to a session. */
export function trustStoreClass(ctx: SessionContext): TrustStoreClass {
  return class extends TrustStore {
    constructor() {
      super(ctx);
    }
  };
}
