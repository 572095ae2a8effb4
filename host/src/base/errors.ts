// Error classes of the SDK. Device-side failures (`DeviceError` and its
// subclasses: the device answered with a non-zero protocol status) are
// distinct from local ones (timeout, disconnected, device reset, stale
// object, bad argument, protocol violation by the peer).
import { STATUS_INFO, Status } from "./protocol.generated.js";

/** Base class of every error the SDK throws. */
export class MbedlinkError extends Error {
  override name = "MbedlinkError";
}

/**
 * The device answered a request with a non-zero status. `message` is the
 * device's own short message; `status`/`statusName` say what kind of
 * failure it is (programs should test those or the subclass), `op` which
 * request failed.
 */
export class DeviceError extends MbedlinkError {
  override name = "DeviceError";
  /** Protocol status number (see protocol/ids.json `statuses`). */
  readonly status: number;
  /** Status name from ids.json, e.g. "bad_handle"; "status_<n>" when unknown. */
  readonly statusName: string;
  /** Raw (negative) Mbed TLS error code, 0 when the failure did not come from Mbed TLS. */
  readonly mbedtlsCode: number;
  /** The op name of the failed request, when known. */
  readonly op: string | undefined;

  constructor(status: number, mbedtlsCode: number, message: string, op?: string) {
    super(message);
    this.status = status;
    this.statusName = STATUS_INFO.get(status)?.name ?? `status_${status}`;
    this.mbedtlsCode = mbedtlsCode;
    this.op = op;
  }

  /** e.g. "BadHandleError: hash_digest: bad_handle: handle 7 is not live" (plus the Mbed TLS code when there is one). */
  override toString(): string {
    const code = this.mbedtlsCode !== 0 ? ` (mbedtls -0x${(-this.mbedtlsCode).toString(16).padStart(4, "0")})` : "";
    return `${this.name}: ${this.op ? `${this.op}: ` : ""}${this.statusName}: ${this.message}${code}`;
  }
}

/**
 * python-mbedtls's `mbedtls.exceptions.TLSError`, for ported code: the same
 * class as DeviceError (the device, that is Mbed TLS, refused the call;
 * `mbedtlsCode` is Python's `err`, negated, and `message` its `msg`).
 */
export const TLSError = DeviceError;
export type TLSError = DeviceError;

/** bad_request: the message did not match the schema (an SDK/firmware mismatch). */
export class BadRequestError extends DeviceError {
  override name = "BadRequestError";
}
/** unknown_op: the firmware does not implement this op. */
export class UnknownOpError extends DeviceError {
  override name = "UnknownOpError";
}
/** bad_argument: the device rejected an argument's value (size, range). */
export class BadArgumentError extends DeviceError {
  override name = "BadArgumentError";
}
/** bad_handle: no live object under the handle (freed, never created, lost in a reset). */
export class BadHandleError extends DeviceError {
  override name = "BadHandleError";
}
/** wrong_handle_type: the handle names an object of another type. */
export class WrongHandleTypeError extends DeviceError {
  override name = "WrongHandleTypeError";
}
/** handle_in_use: a create op named a live handle. */
export class HandleInUseError extends DeviceError {
  override name = "HandleInUseError";
}
/** too_many_handles: the device's handle table is full; close some objects. */
export class TooManyHandlesError extends DeviceError {
  override name = "TooManyHandlesError";
}
/** out_of_memory: the device heap is exhausted; close some objects. */
export class OutOfMemoryError extends DeviceError {
  override name = "OutOfMemoryError";
}
/** too_large: input or result does not fit the device's limits. */
export class TooLargeError extends DeviceError {
  override name = "TooLargeError";
}
/**
 * unsupported_algorithm: the algorithm is not compiled into the firmware.
 * Also thrown locally (status 10, mbedtlsCode 0, `local` true) for a name
 * the protocol does not know at all, without a round trip.
 */
export class UnsupportedAlgorithmError extends DeviceError {
  override name = "UnsupportedAlgorithmError";
  readonly local: boolean;
  constructor(status: number, mbedtlsCode: number, message: string, op?: string, local = false) {
    super(status, mbedtlsCode, message, op);
    this.local = local;
  }
  static local(message: string): UnsupportedAlgorithmError {
    return new UnsupportedAlgorithmError(Status.unsupportedAlgorithm, 0, message, undefined, true);
  }
}
/** crypto_error: Mbed TLS failed; see `mbedtlsCode`. */
export class CryptoError extends DeviceError {
  override name = "CryptoError";
}
/** auth_failed: a tag or signature did not verify. */
export class AuthFailedError extends DeviceError {
  override name = "AuthFailedError";
}
/** internal_error: a firmware bug; please report it. */
export class InternalDeviceError extends DeviceError {
  override name = "InternalDeviceError";
}

/** not_exportable: the key's private part never leaves the device. */
export class NotExportableError extends DeviceError {
  override name = "NotExportableError";
}
/** slot_empty: no key is stored in that slot. */
export class SlotEmptyError extends DeviceError {
  override name = "SlotEmptyError";
}
/** slot_in_use: the slot already holds a key. */
export class SlotInUseError extends DeviceError {
  override name = "SlotInUseError";
}
/** storage_full: the key store has no room for the record. */
export class StorageFullError extends DeviceError {
  override name = "StorageFullError";
}
/** storage_error: the key store's medium failed or a record is corrupt. */
export class StorageError extends DeviceError {
  override name = "StorageError";
}
/** bad_certificate: a certificate, CRL or request does not parse; `mbedtlsCode` says why (e.g. -0x2180 invalid format). */
export class CertificateError extends DeviceError {
  override name = "CertificateError";
}

type DeviceErrorClass = new (status: number, mbedtlsCode: number, message: string, op?: string) => DeviceError;

const BY_STATUS: ReadonlyMap<number, DeviceErrorClass> = new Map<number, DeviceErrorClass>([
  [Status.badRequest, BadRequestError],
  [Status.unknownOp, UnknownOpError],
  [Status.badArgument, BadArgumentError],
  [Status.badHandle, BadHandleError],
  [Status.wrongHandleType, WrongHandleTypeError],
  [Status.handleInUse, HandleInUseError],
  [Status.tooManyHandles, TooManyHandlesError],
  [Status.outOfMemory, OutOfMemoryError],
  [Status.tooLarge, TooLargeError],
  [Status.unsupportedAlgorithm, UnsupportedAlgorithmError],
  [Status.cryptoError, CryptoError],
  [Status.authFailed, AuthFailedError],
  [Status.internalError, InternalDeviceError],
  [Status.notExportable, NotExportableError],
  [Status.slotEmpty, SlotEmptyError],
  [Status.slotInUse, SlotInUseError],
  [Status.storageFull, StorageFullError],
  [Status.storageError, StorageError],
  [Status.badCertificate, CertificateError],
]);

/** Builds the most specific DeviceError subclass for a device status. */
export function deviceErrorFor(status: number, mbedtlsCode: number, message: string, op?: string): DeviceError {
  const Cls = BY_STATUS.get(status) ?? DeviceError;
  return new Cls(status, mbedtlsCode, message, op);
}

/** No response within the call's timeout (counted from when its frame was written). */
export class TimeoutError extends MbedlinkError {
  override name = "TimeoutError";
}

/** The port is closed or the link is gone; every pending and later call fails with it. */
export class DisconnectedError extends MbedlinkError {
  override name = "DisconnectedError";
}

/** The device rebooted (boot event or new boot id) while the call was in flight or queued. */
export class DeviceResetError extends MbedlinkError {
  override name = "DeviceResetError";
}

/** A device object (hash context, ...) created before a device reset was used; its handle is gone. */
export class StaleHandleError extends MbedlinkError {
  override name = "StaleHandleError";
}

/** A bad argument detected locally, before anything was sent. */
export class ArgumentError extends MbedlinkError {
  override name = "ArgumentError";
}

/** The device sent a response whose shape violates the protocol. */
export class ProtocolError extends MbedlinkError {
  override name = "ProtocolError";
}
