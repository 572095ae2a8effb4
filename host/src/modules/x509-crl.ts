// dev.x509.CRL: certificate revocation lists parsed on the device (spec.md
// 7.10), python-mbedtls's mbedtls.x509.CRL in TypeScript style. As with
// certificates (x509-crt.ts), the DER stays on the host and the device
// parses the CRL under a handle and describes it once (x509_crl_info).
// crt.checkRevocation(crl) asks the device whether a CRL lists a certificate.

import { ArgumentError } from "../base/errors.js";
import { pemEncode } from "../base/pem.js";
import { Op } from "../base/protocol.generated.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { type AdoptedHandle, adoptHandle, DeviceObject } from "../session/device-object.js";
import { hashNameOf } from "./hash.js";
import { bigintOf, derBlocksOf, derBlocksOfFile, InfoReader, type NameAttribute, sameBytes, sendInPieces, timeOf } from "./x509-common.js";

/** A revokedCertificates entry. */
export interface RevokedCertificate {
  serialNumber: bigint;
  revocationDate: Date;
}

interface CrlInfo {
  version: number;
  issuer: string;
  issuerAttributes: NameAttribute[];
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  digestmod: string | undefined;
  revoked: RevokedCertificate[];
  tbsCertList: Uint8Array;
  signatureValue: Uint8Array;
}

function parseCrlInfo(r: unknown, der: Uint8Array): CrlInfo {
  const m = InfoReader.of(r, "x509-crl-info");
  const sigMd = m.optUint("sig_md");
  return {
    version: m.uint("version"),
    issuer: m.text("issuer"),
    issuerAttributes: m.name("issuer_attrs"),
    thisUpdate: m.time("this_update"),
    nextUpdate: m.optTime("next_update"),
    digestmod: sigMd === undefined ? undefined : (hashNameOf(sigMd) ?? `alg${sigMd}`),
    revoked: m.array("revoked").map((e) => {
      if (!Array.isArray(e) || e.length !== 2 || !(e[0] instanceof Uint8Array))
        throw new ArgumentError("x509-crl-info: a revoked entry is not [serial, date]");
      return { serialNumber: bigintOf(e[0]), revocationDate: timeOf(e[1], "x509-crl-info revocation date") };
    }),
    tbsCertList: m.slice("tbs", der),
    signatureValue: m.slice("sig", der),
  };
}

/** One certificate revocation list on the device (python-mbedtls's `x509.CRL`). */
export class CRL extends DeviceObject {
  readonly #der: Uint8Array;
  readonly #info: CrlInfo;

  /** @internal Made by dev.x509.CRL's factories. */
  constructor(ctx: SessionContext, adopted: AdoptedHandle, der: Uint8Array, info: unknown) {
    super(ctx, { adopted, pinned: true });
    this.#der = der;
    this.#info = parseCrlInfo(info, der);
  }

  protected get what(): string {
    return "CRL";
  }

  toDER(): Uint8Array {
    return this.#der.slice();
  }
  toPEM(): string {
    return pemEncode("X509 CRL", this.#der);
  }
  /** 1 or 2. */
  get version(): number {
    return this.#info.version;
  }
  /** The issuer as Mbed TLS prints it (mbedtls_x509_dn_gets). */
  get issuer(): string {
    return this.#info.issuer;
  }
  get issuerAttributes(): NameAttribute[] {
    return this.#info.issuerAttributes.map((a) => ({ ...a }));
  }
  get thisUpdate(): Date {
    return new Date(this.#info.thisUpdate);
  }
  /** undefined when the CRL has no nextUpdate. */
  get nextUpdate(): Date | undefined {
    const d = this.#info.nextUpdate;
    return d && new Date(d);
  }
  get digestmod(): string | undefined {
    return this.#info.digestmod;
  }
  /** The revoked certificates in the CRL's order. */
  get revokedCertificates(): RevokedCertificate[] {
    return this.#info.revoked.map((r) => ({ serialNumber: r.serialNumber, revocationDate: new Date(r.revocationDate) }));
  }
  get tbsCertList(): Uint8Array {
    return this.#info.tbsCertList.slice();
  }
  get signatureValue(): Uint8Array {
    return this.#info.signatureValue.slice();
  }
  /** Same DER. */
  equals(other: CRL): boolean {
    return other instanceof CRL && sameBytes(this.#der, other.#der);
  }
  /** Mbed TLS's description (mbedtls_x509_crl_info). */
  text(opts: CallOptions = {}): Promise<string> {
    return this.use((h) => this.ctx.call(Op.x509CrlText, [h, 0], opts)).then((r) => {
      if (typeof r !== "string") throw new ArgumentError("x509_crl_text: not a text string");
      return r;
    });
  }
}

/** `dev.x509.CRL`: makes CRL objects. */
export class CrlFactory {
  /** @internal */
  constructor(private readonly ctx: SessionContext) {}

  /** One CRL, DER or PEM. */
  async fromBuffer(data: Uint8Array | string, opts: CallOptions = {}): Promise<CRL> {
    return this.one(derBlocksOf(data, "X509 CRL"), opts);
  }
  async fromDER(der: Uint8Array, opts: CallOptions = {}): Promise<CRL> {
    if (!(der instanceof Uint8Array) || der.length === 0) throw new ArgumentError("fromDER() takes a non-empty Uint8Array");
    return this.one([der], opts);
  }
  async fromPEM(pem: string, opts: CallOptions = {}): Promise<CRL> {
    if (typeof pem !== "string") throw new ArgumentError("fromPEM() takes PEM text");
    return this.one(derBlocksOf(pem, "X509 CRL"), opts);
  }
  async fromFile(path: string, opts: CallOptions = {}): Promise<CRL> {
    return this.one(await derBlocksOfFile(path, "X509 CRL"), opts);
  }

  private one(ders: Uint8Array[], opts: CallOptions): Promise<CRL> {
    if (ders.length !== 1) throw new ArgumentError(`the PEM holds ${ders.length} CRLs; give one`);
    const der = (ders[0] as Uint8Array).slice();
    const ctx = this.ctx;
    return adoptHandle(
      ctx,
      async (h) => {
        await sendInPieces(ctx, Op.x509CrlParse, h, der, opts);
        return ctx.call(Op.x509CrlInfo, [h, 0], opts);
      },
      (adopted, info) => new CRL(ctx, adopted, der, info),
    );
  }
}
