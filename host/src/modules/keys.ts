// dev.keys: symmetric keys held on the device by handle, so cipher and HMAC
// calls name the key instead of carrying its bytes (spec.md 7.2).
//
// importSymmetric() and generateSymmetric() are synchronous, like dev.hash
// objects: they pipeline key_import / key_generate under a host-chosen handle
// and return at once. A failure of that request is thrown by the first use of
// the key (a cipher call, or digest() of an HMAC made from it). A generated
// key is born on the device and no op returns its bytes: a SymmetricKey has
// no bytes to give, only its handle and size.

import { ArgumentError, ProtocolError } from "../base/errors.js";
import { Limits, Op } from "../base/protocol.generated.js";
import { contextOf, type SessionContext, type SessionRef } from "../session/context.js";
import { type AdoptedHandle, adoptHandle, DeviceObject } from "../session/device-object.js";

function checkLength(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > Limits.symkeyMax)
    throw new ArgumentError(`${what} must be 1..${Limits.symkeyMax} bytes, got ${String(n)}`);
}

/** A symmetric key living on the device. Create it with `dev.keys.importSymmetric()` / `generateSymmetric()`. */
export class SymmetricKey extends DeviceObject {
  /** Key length in bytes. */
  readonly size: number;
  /**
   * "imported" (key_import), "generated" on the device (key_generate, never
   * exportable), or "device" (made on the device by another op: a key
   * exchange's shared secret, a key slot).
   */
  readonly origin: "imported" | "generated" | "device";
  private readonly created: Promise<void>;

  /** @internal Use dev.keys.importSymmetric() / dev.keys.generateSymmetric(). */
  constructor(ctx: SessionContext, source: { bytes: Uint8Array } | { length: number } | { adopted: AdoptedHandle; size: number }) {
    super(ctx, "adopted" in source ? source.adopted : undefined);
    if ("adopted" in source) {
      this.size = source.size;
      this.origin = "device";
      this.created = Promise.resolve();
    } else if ("bytes" in source) {
      this.size = source.bytes.length;
      this.origin = "imported";
      this.created = this.track(ctx.call(Op.keyImport, [this.handle, source.bytes]));
    } else {
      this.size = source.length;
      this.origin = "generated";
      this.created = this.track(ctx.call(Op.keyGenerate, [this.handle, source.length]));
    }
  }

  protected get what(): string {
    return "symmetric key";
  }

  /**
   * @internal The handle to send in place of key bytes, for a request queued
   * now (after the key's create request). Throws StaleHandleError after a
   * device reset; a closed key is sent anyway (the device answers bad_handle).
   */
  _wireHandle(session: SessionRef): number {
    if (contextOf(session) !== this.ctx) throw new ArgumentError(`key handle ${this.handle} belongs to another device`);
    this.check(true);
    return this.handle;
  }

  /** @internal Resolves once the device has the key; throws the create request's failure. */
  async _ready(session: SessionRef): Promise<number> {
    this._wireHandle(session);
    if (!this.isClosed) {
      await this.created;
      if (this.failure) throw this.failure;
    }
    return this._wireHandle(session);
  }
}

/**
 * @internal A SymmetricKey under a handle that `create` sends its create op
 * under (kex_secret with a destination, slot_load of a symmetric slot). The
 * size is `size`, else the "size" of the answer (slot-info), else an error.
 */
export async function _adoptSymmetric(
  ctx: SessionContext,
  create: (handle: number) => Promise<unknown>,
  size?: number,
): Promise<SymmetricKey> {
  return adoptHandle(ctx, create, (adopted, result) => {
    const reported =
      typeof result === "object" && result !== null && !(result instanceof Uint8Array)
        ? (result as Record<string, unknown>).size
        : undefined;
    const n = size ?? reported;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > Limits.symkeyMax) {
      throw new ProtocolError(`a device-made symmetric key has no valid size (got ${JSON.stringify(n)})`);
    }
    return new SymmetricKey(ctx, { adopted, size: n });
  });
}

/** `dev.keys`: device-held symmetric keys for dev.cipher and dev.hmac. */
export class KeysModule {
  /** @internal */
  constructor(private readonly ctx: SessionContext) {}

  /** Largest key the device holds, in bytes (symkey_max). */
  get maxKeySize(): number {
    return Limits.symkeyMax;
  }

  /** Copies key bytes (1..64) into a new device key (synchronous, pipelined key_import). */
  importSymmetric(bytes: Uint8Array): SymmetricKey {
    if (!(bytes instanceof Uint8Array)) throw new ArgumentError("importSymmetric() takes a Uint8Array");
    checkLength(bytes.length, "a symmetric key");
    return new SymmetricKey(this.ctx, { bytes: Uint8Array.from(bytes) });
  }

  /** A new key of `length` bytes (1..64) from the device DRBG; its bytes never leave the device. */
  generateSymmetric(length: number): SymmetricKey {
    checkLength(length, "a symmetric key");
    return new SymmetricKey(this.ctx, { length });
  }
}
