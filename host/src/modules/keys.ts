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
import type { SessionContext } from "../session/context.js";
import { type AdoptedHandle, adoptHandle, DeviceObject } from "../session/device-object.js";

function checkLength(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > Limits.symkeyMax)
    throw new ArgumentError(`${what} must be 1..${Limits.symkeyMax} bytes, got ${String(n)}`);
}

/** An object made lazily from a device key (an HMAC holding the key's handle): it creates its device context before the key goes. */
interface LazyKeyUser {
  _keyClosing(): void;
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
  private lazyUsers: WeakRef<LazyKeyUser>[] = [];
  private pruneAt = 64;

  /** @internal Use dev.keys.importSymmetric() / dev.keys.generateSymmetric(). */
  constructor(ctx: SessionContext, source: { bytes: Uint8Array } | { length: number } | { adopted: AdoptedHandle; size: number }) {
    super(ctx, { adopted: "adopted" in source ? source.adopted : undefined });
    if ("adopted" in source) {
      this.size = source.size;
      this.origin = "device";
    } else if ("bytes" in source) {
      this.size = source.bytes.length;
      this.origin = "imported";
      const bytes = source.bytes;
      this.track(this.open((handle) => ctx.call(Op.keyImport, [handle, bytes])));
    } else {
      this.size = source.length;
      this.origin = "generated";
      const length = source.length;
      this.track(this.open((handle) => ctx.call(Op.keyGenerate, [handle, length])));
    }
  }

  protected get what(): string {
    return "symmetric key";
  }

  /** @internal `user` holds only this key's handle: it is told before the key is closed. */
  _lazyUser(user: LazyKeyUser): void {
    this.lazyUsers.push(new WeakRef(user));
    if (this.lazyUsers.length >= this.pruneAt) {
      this.lazyUsers = this.lazyUsers.filter((r) => r.deref() !== undefined);
      this.pruneAt = Math.max(64, 2 * this.lazyUsers.length);
    }
  }

  protected override beforeClose(): void {
    const users = this.lazyUsers;
    this.lazyUsers = [];
    for (const r of users) r.deref()?._keyClosing();
  }
}

/**
 * @internal Runs `fn` with the key argument of a request: the bytes as they
 * are, or a device key's handle (the key stays on the device until `fn`
 * settles; its create's failure is thrown instead).
 */
export function withKey<T>(ctx: SessionContext, key: Uint8Array | SymmetricKey, fn: (k: Uint8Array | number) => Promise<T>): Promise<T> {
  return key instanceof SymmetricKey ? key._use(ctx, fn) : fn(key);
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
