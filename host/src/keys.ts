// dev.keys: symmetric keys held on the device by handle, so cipher and HMAC
// calls name the key instead of carrying its bytes (spec.md 7.2).
//
// importSymmetric() and generateSymmetric() are synchronous, like dev.hash
// objects: they pipeline key_import / key_generate under a host-chosen handle
// and return at once. A failure of that request is thrown by the first use of
// the key (a cipher call, or digest() of an HMAC made from it). A generated
// key is born on the device and no op returns its bytes: a SymmetricKey has
// no bytes to give, only its handle and size.
import type { Device } from "./device.js";
import { ArgumentError, BadHandleError, DeviceResetError, DisconnectedError, StaleHandleError } from "./errors.js";
import { Limits, Op } from "./protocol.generated.js";

interface Orphan {
  dev: Device;
  handle: number;
  epoch: number;
}

// Frees (and so zeroises) the device key of a SymmetricKey garbage-collected without close().
const orphans = new FinalizationRegistry<Orphan>((o) => o.dev._freeOrphan(o.handle, o.epoch));

function checkLength(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > Limits.symkeyMax)
    throw new ArgumentError(`${what} must be 1..${Limits.symkeyMax} bytes, got ${String(n)}`);
}

/** A symmetric key living on the device. Create it with `dev.keys.importSymmetric()` / `generateSymmetric()`. */
export class SymmetricKey implements AsyncDisposable {
  /** The device handle (host-chosen). */
  readonly handle: number;
  /** Key length in bytes. */
  readonly size: number;
  /** "imported" (key_import) or "generated" on the device (key_generate, never exportable). */
  readonly origin: "imported" | "generated";
  private readonly epoch: number;
  private readonly created: Promise<void>;
  private failure: Error | undefined;
  private closed = false;

  /** @internal Use dev.keys.importSymmetric() / dev.keys.generateSymmetric(). */
  constructor(
    private readonly dev: Device,
    source: { bytes: Uint8Array } | { length: number },
  ) {
    this.handle = dev._nextHandle();
    this.epoch = dev.rpc.epoch;
    if ("bytes" in source) {
      this.size = source.bytes.length;
      this.origin = "imported";
      this.created = this.track(dev.rpc.call(Op.keyImport, [this.handle, source.bytes]));
    } else {
      this.size = source.length;
      this.origin = "generated";
      this.created = this.track(dev.rpc.call(Op.keyGenerate, [this.handle, source.length]));
    }
    orphans.register(this, { dev, handle: this.handle, epoch: this.epoch }, this);
  }

  /**
   * @internal The handle to send in place of key bytes, for a request queued
   * now (after the key's create request). Throws StaleHandleError after a
   * device reset; a closed key is sent anyway (the device answers bad_handle).
   */
  _wireHandle(dev: Device): number {
    if (dev !== this.dev) throw new ArgumentError(`key handle ${this.handle} belongs to another device`);
    if (this.epoch !== this.dev.rpc.epoch) {
      throw new StaleHandleError(`symmetric key (handle ${this.handle}) was created before the device reset`);
    }
    const gone = this.dev.rpc.disconnectError;
    if (gone) throw gone;
    return this.handle;
  }

  /** @internal Resolves once the device has the key; throws the create request's failure. */
  async _ready(dev: Device): Promise<number> {
    this._wireHandle(dev);
    if (!this.closed) {
      await this.created;
      if (this.failure) throw this.failure;
    }
    return this._wireHandle(dev);
  }

  /** Frees the device key (zeroised there). Idempotent; quiet when the device or its boot is gone. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    orphans.unregister(this);
    if (this.epoch !== this.dev.rpc.epoch || this.dev.rpc.disconnectError) return;
    try {
      await this.dev.rpc.call(Op.free, [this.handle]);
    } catch (e) {
      // bad_handle: the create itself failed (e.g. too many handles).
      if (e instanceof DisconnectedError || e instanceof DeviceResetError || e instanceof BadHandleError) return;
      throw e;
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private track(p: Promise<unknown>): Promise<void> {
    return p.then(
      () => {},
      (e: Error) => {
        this.failure ??= e;
      },
    );
  }
}

/** `dev.keys`: device-held symmetric keys for dev.cipher and dev.hmac. */
export class KeysModule {
  /** @internal */
  constructor(private readonly dev: Device) {}

  /** Largest key the device holds, in bytes (symkey_max). */
  get maxKeySize(): number {
    return Limits.symkeyMax;
  }

  /** Copies key bytes (1..64) into a new device key (synchronous, pipelined key_import). */
  importSymmetric(bytes: Uint8Array): SymmetricKey {
    if (!(bytes instanceof Uint8Array)) throw new ArgumentError("importSymmetric() takes a Uint8Array");
    checkLength(bytes.length, "a symmetric key");
    return new SymmetricKey(this.dev, { bytes: Uint8Array.from(bytes) });
  }

  /** A new key of `length` bytes (1..64) from the device DRBG; its bytes never leave the device. */
  generateSymmetric(length: number): SymmetricKey {
    checkLength(length, "a symmetric key");
    return new SymmetricKey(this.dev, { length });
  }
}
