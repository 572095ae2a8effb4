// What every object living on the device has in common (digest and HMAC
// contexts, keys): a host-chosen handle from the session's counter, the boot
// it belongs to, requests pipelined without waiting whose first failure is
// remembered, and a free on close(), on `await using`, or when the object is
// garbage-collected without either.

import { ArgumentError, DeviceError, StaleHandleError } from "../base/errors.js";
import { freeHandle, type SessionContext } from "./context.js";

interface Orphan {
  ctx: SessionContext;
  handle: number;
  epoch: number;
}

// Frees the device handle of an object garbage-collected without close().
const orphans = new FinalizationRegistry<Orphan>((o) => o.ctx.freeOrphan(o.handle, o.epoch));

/**
 * @internal A handle allocated before its object: a create op (slot_load,
 * kex_secret into a key, pk_import whose key type decides the class) is sent
 * under it, and the object built from the answer adopts it.
 */
export interface AdoptedHandle {
  readonly handle: number;
  /** The rpc epoch when the create op was sent. */
  readonly epoch: number;
}

/**
 * @internal Sends `create(handle)` under a fresh handle, then builds the object
 * from the answer with `build`. When either fails, the error is thrown; the
 * handle is freed (quietly) unless the device refused the create itself (a
 * DeviceError: nothing was created), e.g. after a timeout or a malformed answer.
 */
export async function adoptHandle<T>(
  ctx: SessionContext,
  create: (handle: number) => Promise<unknown>,
  build: (adopted: AdoptedHandle, result: unknown) => T,
): Promise<T> {
  const adopted: AdoptedHandle = { handle: ctx.nextHandle(), epoch: ctx.epoch };
  try {
    return build(adopted, await create(adopted.handle));
  } catch (e) {
    if (!(e instanceof DeviceError)) ctx.freeOrphan(adopted.handle, adopted.epoch);
    throw e;
  }
}

export abstract class DeviceObject implements AsyncDisposable {
  /** The device handle (host-chosen, never reused within a boot). */
  readonly handle: number;
  /** The first failure of a pipelined request: the object missed it, so every later use throws it. */
  protected failure: Error | undefined;
  private readonly epoch: number;
  private outstanding = 0;
  private waiters: (() => void)[] = [];
  private closed = false;

  /** `adopted`: the object takes over a handle its create op was already sent under (see adoptHandle). */
  protected constructor(
    protected readonly ctx: SessionContext,
    adopted?: AdoptedHandle,
  ) {
    this.handle = adopted?.handle ?? ctx.nextHandle();
    this.epoch = adopted?.epoch ?? ctx.epoch;
    orphans.register(this, { ctx, handle: this.handle, epoch: this.epoch }, this);
  }

  /** How error messages name this object, e.g. "sha256 hash object". */
  protected abstract get what(): string;

  /** Frees (and zeroises) the device object. Idempotent; quiet when the device or its boot is gone. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    orphans.unregister(this);
    // Quiet on bad_handle: the create itself failed (e.g. unsupported algorithm, table full).
    await freeHandle(this.ctx, this.handle, this.epoch);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  protected get isClosed(): boolean {
    return this.closed;
  }

  /** Counts a pipelined request; resolves when it settles, recording its failure. */
  protected track(p: Promise<unknown>): Promise<void> {
    this.outstanding++;
    return p
      .then(
        () => {},
        (e: Error) => {
          this.failure ??= e;
        },
      )
      .finally(() => {
        if (--this.outstanding === 0) {
          const w = this.waiters;
          this.waiters = [];
          for (const r of w) r();
        }
      });
  }

  /** Waits until every pipelined request of this object has been answered. */
  protected settled(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /** Throws when the object cannot be used: stale (older boot), link gone, or (unless allowed) closed. */
  protected check(allowClosed = false): void {
    if (this.closed && !allowClosed) throw new ArgumentError(`${this.what} (handle ${this.handle}) is closed`);
    if (this.epoch !== this.ctx.epoch) {
      throw new StaleHandleError(`${this.what} (handle ${this.handle}) was created before the device reset`);
    }
    const gone = this.ctx.disconnectError;
    if (gone) throw gone;
  }
}
