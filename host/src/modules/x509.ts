// dev.x509: X.509 certificates, requests, revocation lists and trust stores
// on the device (spec.md 7.x). Each member is a factory bound to the session:
// `dev.x509.CRT.fromDER(der)`, `dev.x509.CRL.fromPEM(pem)`, ... The other
// members (CSR, TrustStore) are added next to these.

import type { SessionContext } from "../session/context.js";
import { CrlFactory } from "./x509-crl.js";
import { CrtFactory } from "./x509-crt.js";
import { CsrFactory } from "./x509-csr.js";
import "./x509-write.js"; // CRT.selfsign and crt.sign
import { type TrustStoreClass, trustStoreClass } from "./x509-trust.js";

/** `dev.x509`. */
export class X509Module {
  /** Certificates and chains (python-mbedtls's `x509.CRT`). */
  readonly CRT: CrtFactory;
  /** Certificate revocation lists (python-mbedtls's `x509.CRL`). */
  readonly CRL: CrlFactory;
  /** Certificate signing requests (python-mbedtls's `x509.CSR`). */
  readonly CSR: CsrFactory;
  /** Trust stores and chain verification: `new dev.x509.TrustStore()` (python-mbedtls's `tls.TrustStore`). */
  readonly TrustStore: TrustStoreClass;

  /** @internal */
  constructor(ctx: SessionContext) {
    this.CRT = new CrtFactory(ctx);
    this.CRL = new CrlFactory(ctx);
    this.CSR = new CsrFactory(ctx);
    this.TrustStore = trustStoreClass(ctx);
  }
}
