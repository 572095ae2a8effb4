// The typed errors of dev.tls (tls.ts, tls-buffer.ts): subclasses of
// CryptoError (a failed handshake is Mbed TLS's error), with what the device
// adds: the names of the verify flags of a certificate that failed.

import { CryptoError, type DeviceError } from "../base/errors.js";
import { Status } from "../base/protocol.generated.js";
import { type VerifyFlag, verifyFlagNames } from "./x509-trust.js";

/** A certificate the peer presented failed verification; `flags` name every reason (x509 verify flags). */
export class TLSCertificateError extends CryptoError {
  override name = "TLSCertificateError";
  readonly flags: VerifyFlag[];
  readonly bits: number;

  constructor(cause: DeviceError, bits: number) {
    const flags = verifyFlagNames(bits);
    super(Status.cryptoError, cause.mbedtlsCode, `the peer's certificate failed verification: ${flags.join(", ")}`, cause.op);
    this.flags = flags;
    this.bits = bits;
  }
}

/** The peer went away (end of stream) before the handshake or the read was over. */
export class TLSConnectionError extends CryptoError {
  override name = "TLSConnectionError";
  constructor(message: string) {
    super(Status.cryptoError, 0, message);
  }
}
