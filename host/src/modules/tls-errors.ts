// The typed errors of dev.tls (tls.ts, tls-buffer.ts): subclasses of
// CryptoError (a failed handshake is Mbed TLS's error, its code kept), each
// naming the reason the device gives (spec.md 7.12, tls_info): the verify
// flags of a certificate, the fatal alert the peer sent, the post-handshake
// message Mbed TLS 3.6 refuses (KeyUpdate), or Mbed TLS's own reason.

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

/** The peer went away (end of stream) before the handshake, or a record, was over. */
export class TLSConnectionError extends CryptoError {
  override name = "TLSConnectionError";
  constructor(message: string) {
    super(Status.cryptoError, 0, message);
  }
}

/** Alert descriptions (RFC 8446 §6, RFC 5246 §7.2) by number. */
const ALERTS: Record<number, string> = {
  0: "close_notify",
  10: "unexpected_message",
  20: "bad_record_mac",
  22: "record_overflow",
  40: "handshake_failure",
  42: "bad_certificate",
  43: "unsupported_certificate",
  44: "certificate_revoked",
  45: "certificate_expired",
  46: "certificate_unknown",
  47: "illegal_parameter",
  48: "unknown_ca",
  49: "access_denied",
  50: "decode_error",
  51: "decrypt_error",
  70: "protocol_version",
  71: "insufficient_security",
  80: "internal_error",
  86: "inappropriate_fallback",
  90: "user_canceled",
  100: "no_renegotiation",
  109: "missing_extension",
  110: "unsupported_extension",
  112: "unrecognized_name",
  113: "bad_certificate_status_response",
  115: "unknown_psk_identity",
  116: "certificate_required",
  120: "no_application_protocol",
};

/** What a peer's alert usually means for this device, where the name alone does not say it. */
const ALERT_HINTS: Record<number, string> = {
  20: "the keys differ: a PSK mismatch, or a damaged record",
  40: "no cipher suite, version or key exchange both sides have",
  47: "a field the peer refused (OpenSSL sends it for a TLS 1.3 PSK binder that does not verify: a PSK mismatch)",
  115: "the peer has no key for the PSK identity",
};

/** An alert's name ("handshake_failure"), or "alert N" for one RFC 8446 does not list. */
export function alertName(alert: number): string {
  return ALERTS[alert] ?? `alert ${alert}`;
}

/** The peer ended the session with a fatal alert (Mbed TLS -0x7780); `alert` is its number, `alertName` its name. */
export class TLSAlertError extends CryptoError {
  override name = "TLSAlertError";
  readonly alert: number;
  readonly alertName: string;

  constructor(cause: DeviceError, alert: number) {
    const name = alertName(alert);
    const hint = ALERT_HINTS[alert];
    super(Status.cryptoError, cause.mbedtlsCode, `the peer sent fatal alert ${name} (${alert})${hint ? `: ${hint}` : ""}`, cause.op);
    this.alert = alert;
    this.alertName = name;
  }
}

/** Mbed TLS's handshake codes (ssl.h) the device answers, and what they mean. */
const HANDSHAKE_REASONS: Record<number, string> = {
  [-0x6e00]: "handshake failure (no shared cipher suite, version or key exchange)", // MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE
  [-0x6e80]: "no shared protocol version", // MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION
  [-0x6c80]: "unknown PSK identity", // MBEDTLS_ERR_SSL_UNKNOWN_IDENTITY
  [-0x7180]: "bad record MAC (the keys differ: a PSK mismatch?)", // MBEDTLS_ERR_SSL_INVALID_MAC
  [-0x7200]: "invalid record", // MBEDTLS_ERR_SSL_INVALID_RECORD
  [-0x7300]: "malformed handshake message", // MBEDTLS_ERR_SSL_DECODE_ERROR
  [-0x7700]: "unexpected message", // MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE
  [-0x6600]: "illegal parameter", // MBEDTLS_ERR_SSL_ILLEGAL_PARAMETER
  [-0x7500]: "unsupported extension", // MBEDTLS_ERR_SSL_UNSUPPORTED_EXTENSION
  [-0x7580]: "no shared application protocol (ALPN)", // MBEDTLS_ERR_SSL_NO_APPLICATION_PROTOCOL
  [-0x7a00]: "bad certificate", // MBEDTLS_ERR_SSL_BAD_CERTIFICATE
  [-0x7480]: "the peer sent no certificate and this side requires one", // MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE
  [-0x7800]: "unrecognized server name (no certificate for the SNI the client sent)", // MBEDTLS_ERR_SSL_UNRECOGNIZED_NAME
};

/** Mbed TLS refused the handshake or a record itself; `reason` names why (from its code). */
export class TLSHandshakeError extends CryptoError {
  override name = "TLSHandshakeError";
  readonly reason: string;

  constructor(cause: DeviceError, reason: string) {
    super(Status.cryptoError, cause.mbedtlsCode, `${reason} (${cause.message})`, cause.op);
    this.reason = reason;
  }
}

/** TLS 1.3 KeyUpdate from the peer: Mbed TLS 3.6 does not handle it (-0x7700) and the session is over. */
export class TLSKeyUpdateUnsupported extends CryptoError {
  override name = "TLSKeyUpdateUnsupported";
  constructor(cause: DeviceError) {
    super(
      Status.cryptoError,
      cause.mbedtlsCode,
      "the peer sent a TLS 1.3 KeyUpdate, which Mbed TLS 3.6 does not support: the session is over",
      cause.op,
    );
  }
}

/** Why the device says a session failed (tls_info's fields). */
export interface TLSFailure {
  /** The peer certificate's verify flags, when known. */
  verifyBits: number | undefined;
  /** The fatal alert the peer sent. */
  alert: number | undefined;
  /** The post-handshake message type Mbed TLS refused (24: KeyUpdate). */
  refusedHandshake: number | undefined;
}

const CERT_VERIFY_FAILED = -0x2700; // MBEDTLS_ERR_X509_CERT_VERIFY_FAILED
const FATAL_ALERT = -0x7780; // MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE
const UNEXPECTED_MESSAGE = -0x7700; // MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE
const KEY_UPDATE = 24; // RFC 8446 HandshakeType key_update

/** The typed error of a failed TLS step: the device's error `e` with the reason the session gives. */
export function tlsError(e: DeviceError, why: TLSFailure): CryptoError | DeviceError {
  const code = e.mbedtlsCode;
  if (code === CERT_VERIFY_FAILED && why.verifyBits !== undefined) return new TLSCertificateError(e, why.verifyBits);
  if (code === FATAL_ALERT && why.alert !== undefined) return new TLSAlertError(e, why.alert);
  if (code === UNEXPECTED_MESSAGE && why.refusedHandshake === KEY_UPDATE) return new TLSKeyUpdateUnsupported(e);
  const reason = HANDSHAKE_REASONS[code];
  return reason !== undefined && e instanceof CryptoError ? new TLSHandshakeError(e, reason) : e;
}
