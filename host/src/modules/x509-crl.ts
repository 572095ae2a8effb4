// dev.x509.CRL: certificate revocation lists parsed on the device (spec.md 7.x).

import type { SessionContext } from "../session/context.js";

/** `dev.x509.CRL`: makes CRL objects. */
export class CrlFactory {
  /** @internal */
  constructor(readonly _ctx: SessionContext) {}
}
