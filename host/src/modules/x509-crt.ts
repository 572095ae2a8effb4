// dev.x509.CRT: X.509 certificates parsed on the device (spec.md 7.x).

import type { SessionContext } from "../session/context.js";

/** `dev.x509.CRT`: makes certificate objects. */
export class CrtFactory {
  /** @internal */
  constructor(readonly _ctx: SessionContext) {}
}
