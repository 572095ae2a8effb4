// What every object living on the device has in common (digest and HMAC
// contexts, keys, key exchanges): a host-chosen handle from the session's
// counter, the boot it belongs to, requests pipelined without waiting whose
// first failure is remembered, residency (session/residency.ts: swapped out to
// a wrapped blob when the table fills, back under a new handle on its next
// use), and a free on close(), on `await using`, or when the object is
// garbage-collected without either.
//
// Requests naming the handle go through use(): in the order they are made,
// after the object is resident again if it was swapped out, and counted in
// flight so the object is not swapped out under them. A create the device
// refuses with too_many_handles (it holds handles the host does not know of)
// is sent again once another object is swapped out, and so is every request
// sent under the refused handle, in order.

import { ArgumentError, DeviceError, StaleHandleError, TooManyHandlesError } from "../base/errors.js";
import { Op } from "../base/protocol.generated.js";
import { contextOf, freeHandle, type SessionContext, type SessionRef } from "./context.js";
import { Residence } from "./residency.js";

interface Orphan {
  ctx: SessionContext;
  res: Residence;
}

// Frees the device handle (or drops the blob) of an object garbage-collected without close().
const orphans = new FinalizationRegistry<Orphan>((o) => o.ctx.residency.drop(o.res));

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

/** Tries of a create the device keeps refusing with too_many_handles. */
const MAX_CREATE_TRIES = 8;

/**
 * @internal Sends `create(handle)` under a fresh handle (room made for it, see
 * Residency), then builds the object from the answer with `build`. A
 * too_many_handles answer is tried again once another object is swapped out.
 * When either fails, the error is thrown; the handle is freed (quietly) unless
 * the device refused the create itself (a DeviceError: nothing was created),
 * e.g. after a timeout or a malformed answer.
 */
export async function adoptHandle<T>(
  ctx: SessionContext,
  create: (handle: number) => Promise<unknown>,
  build: (adopted: AdoptedHandle, result: unknown) => T,
): Promise<T> {
  return withRoom(ctx, async (handle, epoch) => {
    const adopted: AdoptedHandle = { handle, epoch };
    let result: unknown;
    try {
      result = await create(handle);
    } catch (e) {
      if (!(e instanceof DeviceError)) ctx.freeOrphan(handle, epoch);
      throw e;
    }
    try {
      return { value: build(adopted, result), keep: true };
    } catch (e) {
      ctx.freeOrphan(handle, epoch);
      throw e;
    }
  });
}

/**
 * @internal Runs `run` with a temporary handle (a cipher context for one
 * message), counted while it lives and freed afterwards; a too_many_handles
 * answer to its create makes room and runs it again.
 */
export function withTemporaryHandle<T>(ctx: SessionContext, run: (handle: number) => Promise<T>): Promise<T> {
  return withRoom(ctx, async (handle, epoch) => {
    try {
      return { value: await run(handle), keep: false };
    } finally {
      await freeHandle(ctx, handle, epoch);
    }
  });
}

/** A counted handle for `run`; kept counted when it returns `keep` (an object adopted it), else released. */
async function withRoom<T>(ctx: SessionContext, run: (handle: number, epoch: number) => Promise<{ value: T; keep: boolean }>): Promise<T> {
  for (let tries = 1; ; tries++) {
    const handle = await ctx.residency.acquire();
    const epoch = ctx.epoch;
    let kept = false;
    try {
      const r = await run(handle, epoch);
      kept = r.keep;
      return r.value;
    } catch (e) {
      if (e instanceof TooManyHandlesError && tries < MAX_CREATE_TRIES && epoch === ctx.epoch && ctx.residency.noteFull()) continue;
      throw e;
    } finally {
      if (!kept) ctx.residency.releaseHandle(epoch);
    }
  }
}

class Deferred<T> {
  readonly promise: Promise<T>;
  resolve: (v: T | Promise<T>) => void = () => {};
  reject: (e: unknown) => void = () => {};
  /** `quiet`: a rejection nobody awaits is not reported as unhandled. */
  constructor(quiet = false) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (quiet) this.promise.catch(() => {});
  }
}

/** An object a request may name by handle (a DeviceObject, or any object that runs requests with its handle). */
export interface HandleHolder {
  _use<T>(session: SessionRef, fn: (handle: number) => Promise<T>): Promise<T>;
}

/** How an object gets a handle: its first create, or obj_unwrap of its blob. */
interface Revival {
  /** Sends the create under `handle`; `viaHandle` is the handle of `via`. */
  create(handle: number, viaHandle: number): Promise<unknown>;
  /** Another object the create names (the source of a copy, an HMAC's key). */
  via: HandleHolder | undefined;
  /** Settles with the answer of the create that finally ran, or its failure. */
  done: Deferred<unknown>;
  unwrap: boolean;
}

/** A request naming the handle, kept until its create is answered (it may have to go again). */
interface Req {
  fn(handle: number): Promise<unknown>;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  outcome: { ok: boolean; value: unknown } | undefined;
  held: boolean;
}

/** One handle's life: the create (or unwrap, or adoption) and the requests sent under it. */
interface Generation {
  readonly handle: number;
  readonly revival: Revival | undefined;
  readonly tries: number;
  /** The create went out (one naming another object waits for it first). */
  sent: boolean;
  /** Requests sent while the create is unanswered; undefined once it is. */
  reqs: Req[] | undefined;
  outstanding: number;
  drained: (() => void) | undefined;
  error: Error | undefined;
}

export abstract class DeviceObject implements AsyncDisposable, HandleHolder {
  /** The first failure of a pipelined request: the object missed it, so every later use throws it. */
  protected failure: Error | undefined;
  private readonly epoch: number;
  private readonly res: Residence;
  private outstanding = 0;
  private waiters: (() => void)[] = [];
  private closing = false;
  private closed: Promise<void> | undefined;
  /** Requests waiting for the object to be resident, in order; undefined when none waits. */
  private lane: Promise<void> | undefined;
  private gen: Generation | undefined;
  /** The first create, until it has run. */
  private revival: Revival | undefined;
  /** Reviving: resolves when the create naming another object was sent. */
  private issued: Promise<void> | undefined;
  /** A create refused with too_many_handles is being sent again. */
  private recovering: Promise<void> | undefined;
  /** Registered with the finalization registry (see watchForOrphaning). */
  private watched = false;

  /**
   * `adopted`: the object takes over a handle its create op was already sent
   * under (see adoptHandle). `pinned`: the device cannot swap this type.
   */
  protected constructor(
    protected readonly ctx: SessionContext,
    opts: { adopted?: AdoptedHandle | undefined; pinned?: boolean } = {},
  ) {
    const adopted = opts.adopted;
    this.epoch = adopted?.epoch ?? ctx.epoch;
    this.res = new Residence(this.epoch, new WeakRef(this), opts.pinned ?? false);
    if (adopted) {
      this.res.state = "resident";
      this.res.handle = adopted.handle;
      this.gen = {
        handle: adopted.handle,
        revival: undefined,
        tries: 1,
        sent: true,
        reqs: undefined,
        outstanding: 0,
        drained: undefined,
        error: undefined,
      };
      ctx.residency.track(this.res);
      this.watchForOrphaning();
    }
  }

  /**
   * From its first create on, an object nobody closes is freed once it is
   * collected. Not before: one made lazily that never gets a device object
   * (a one-shot digest) costs the collector nothing.
   */
  private watchForOrphaning(): void {
    if (this.watched) return;
    this.watched = true;
    orphans.register(this, { ctx: this.ctx, res: this.res }, this.res);
  }

  /** How error messages name this object, e.g. "sha256 hash object". */
  protected abstract get what(): string;

  /**
   * The device handle (host-chosen, never reused within a boot). An object
   * swapped out gets a new one when it is used again (reading this brings it
   * back); one that has nothing on the device yet (a digest of a little data)
   * is created on the device when this is read. 0 while it has none.
   */
  get handle(): number {
    if (!this.closing && this.epoch === this.ctx.epoch && this.res.state !== "gone") {
      this.materialize();
      if (!this.lane && !this.recovering) {
        try {
          this.residentOrWait();
        } catch {
          // thrown again by the next use
        }
      }
    }
    return this.res.handle ?? 0;
  }

  /** Where the object's state is now (see ResidenceState). */
  get residence(): Residence["state"] {
    return this.res.state;
  }

  /** @internal */
  get _residence(): Residence {
    return this.res;
  }

  /** Creates the device object of an object made lazily (a digest context holding its bytes); nothing by default. */
  protected materialize(): void {}

  /** Runs before close() frees the object (e.g. a key lets the objects made lazily from it create theirs first). */
  protected beforeClose(): void {}

  /** Throws when another object may not name this one in a request now (e.g. a key object without a key). */
  protected checkUsable(): void {}

  /** Frees (and zeroises) the device object, or drops its blob. Idempotent; quiet when the device or its boot is gone. */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async shutdown(): Promise<void> {
    this.beforeClose();
    this.closing = true;
    orphans.unregister(this.res);
    // Requests made before close() still go, in order.
    while (this.lane || this.recovering) await (this.lane ?? this.recovering);
    const res = this.res;
    if (res.state === "resident" && res.counted && res.handle !== undefined) {
      this.ctx.residency.release(res);
      res.dropped = true;
      res.state = "gone";
      // Quiet on bad_handle: the create itself failed (e.g. unsupported algorithm).
      await freeHandle(this.ctx, res.handle, this.epoch);
    } else {
      this.ctx.residency.drop(res); // a swapped object just drops its blob
    }
  }

  protected get isClosed(): boolean {
    return this.closing;
  }

  /**
   * Makes `create(handle)` the object's first create, sent now (or when there
   * is room) under a new handle; `via`: another object the create names (its
   * handle is the second argument). Resolves with the create's answer.
   */
  protected open(create: (handle: number, viaHandle: number) => Promise<unknown>, via?: HandleHolder): Promise<unknown> {
    const rev: Revival = { create, via, done: new Deferred<unknown>(true), unwrap: false };
    this.revival = rev;
    this.watchForOrphaning();
    void this.enqueue(() => Promise.resolve()).catch(() => {});
    return rev.done.promise;
  }

  /** Whether the object has been created on the device (or is being), as opposed to made lazily. */
  protected get opened(): boolean {
    return this.res.state !== "none" || this.revival !== undefined;
  }

  /**
   * Sends a request naming this object's handle: at once when the object is
   * resident, else in order once it is (swapped back in under a new handle).
   * The object is not swapped out while the request is in flight.
   */
  protected use<T>(fn: (handle: number) => Promise<T>): Promise<T> {
    this.check();
    return this.enqueue(fn);
  }

  /**
   * @internal Runs `fn` with this object's handle for a request of another
   * object or module (a key named by a cipher call, the source of a copy).
   * A closed object's last handle is sent as it is (the device answers
   * bad_handle); a stale one throws StaleHandleError.
   */
  _use<T>(session: SessionRef, fn: (handle: number) => Promise<T>): Promise<T> {
    try {
      this._checkFor(session);
      if (this.closing) return fn(this.res.handle ?? 0);
      return this.enqueue(fn);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * @internal Throws now what would keep a request queued now from naming
   * this object: another device's, stale (StaleHandleError), or not usable
   * (e.g. a key object without a key). A closed object passes (see _use).
   */
  _checkFor(session: SessionRef): void {
    if (contextOf(session) !== this.ctx) throw new ArgumentError(`${this.what} (handle ${this.res.handle ?? 0}) belongs to another device`);
    this.check(true);
    this.checkUsable();
  }

  /** @internal Resolves with the handle once the device has the object (for a request sent by hand); throws its create's failure. */
  _ready(session: SessionRef): Promise<number> {
    return this._use(session, (h) => Promise.resolve(h));
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
    if (this.closing && !allowClosed) throw new ArgumentError(`${this.what} (handle ${this.res.handle ?? 0}) is closed`);
    if (this.epoch !== this.ctx.epoch) throw this.staleError();
    const gone = this.ctx.disconnectError;
    if (gone) throw gone;
  }

  private staleError(): StaleHandleError {
    return new StaleHandleError(`${this.what} (handle ${this.res.handle ?? 0}) was created before the device reset`);
  }

  /** Sends `fn` now when nothing waits before it, else after what waits. */
  private enqueue<T>(fn: (handle: number) => Promise<T>): Promise<T> {
    if (!this.lane) {
      const w = this.residentOrWait();
      if (typeof w === "number") return this.send(fn);
    }
    const res = this.res;
    res.queued++;
    const out = new Deferred<T>();
    const step = (this.lane ?? Promise.resolve()).then(async () => {
      try {
        for (let w = this.residentOrWait(); typeof w !== "number"; w = this.residentOrWait()) await w;
        out.resolve(this.send(fn));
      } catch (e) {
        out.reject(e);
      } finally {
        res.queued--;
      }
    });
    this.lane = step;
    void step.then(() => {
      if (this.lane === step) this.lane = undefined;
    });
    return out.promise;
  }

  /**
   * The handle when the object is resident (after sending its first create or
   * its unwrap, if there is room for it now), else what to wait for first.
   */
  private residentOrWait(): number | Promise<unknown> {
    if (this.epoch !== this.ctx.epoch) throw this.staleError();
    if (this.recovering) return this.recovering;
    const res = this.res;
    let rev: Revival | undefined;
    switch (res.state) {
      case "resident":
        return res.handle as number;
      case "swapping":
        return res.wrapped ?? Promise.resolve();
      case "reviving":
        return this.issued ?? Promise.resolve();
      case "gone":
        throw this.failure ?? res.error ?? new ArgumentError(`${this.what} (handle ${res.handle ?? 0}) is closed`);
      case "swapped":
        rev = this.unwrapRevival(res.blob as Uint8Array);
        break;
      case "none":
        rev = this.revival;
        if (!rev) throw new ArgumentError(`${this.what} has nothing on the device yet`);
        break;
    }
    const other = this.bringBack(rev.via);
    if (other) return other;
    const handle = this.ctx.residency.tryAcquire(residenceOf(rev.via));
    if (handle === undefined) return this.ctx.residency.room();
    if (rev.unwrap) res.blob = undefined;
    this.start(handle, rev, 1);
    return this.res.state === "resident" ? handle : (this.issued ?? Promise.resolve());
  }

  /**
   * Makes the object a create names resident before the create takes its own
   * handle, with room for both taken at once: a create never holds a handle
   * while it waits for the other object's (when every resident object did,
   * nothing could move). Undefined when the other is resident now (or is no
   * DeviceObject, or cannot be: its _use throws), else what to wait for.
   */
  private bringBack(via: HandleHolder | undefined): Promise<unknown> | undefined {
    if (!(via instanceof DeviceObject) || via.closing || via.epoch !== via.ctx.epoch) return undefined;
    if (via.lane || via.recovering) return via.lane ?? via.recovering;
    switch (via.res.state) {
      case "swapping":
        return via.res.wrapped;
      case "reviving":
        return via.issued;
      case "swapped":
        break;
      case "none":
        if (via.revival) break;
        return undefined;
      default:
        return undefined;
    }
    if (!this.ctx.residency.makeRoom(2)) return this.ctx.residency.room();
    try {
      const w = via.residentOrWait();
      return typeof w === "number" ? undefined : w;
    } catch {
      return undefined;
    }
  }

  private unwrapRevival(blob: Uint8Array): Revival {
    return {
      create: (handle) => {
        this.ctx.residency.counters.unwraps++;
        return this.ctx.call(Op.objUnwrap, [handle, blob]);
      },
      via: undefined,
      done: new Deferred<unknown>(true),
      unwrap: true,
    };
  }

  /** Sends the create of `rev` under `handle` (counted by tryAcquire). */
  private start(handle: number, rev: Revival, tries: number): void {
    const res = this.res;
    const gen: Generation = { handle, revival: rev, tries, sent: !rev.via, reqs: [], outstanding: 0, drained: undefined, error: undefined };
    this.gen = gen;
    res.handle = handle;
    res.state = "resident";
    this.ctx.residency.track(res);
    res.inFlight++;
    let p: Promise<unknown>;
    const via = rev.via;
    if (via) {
      let sent = false;
      let markSent = () => {};
      const issued = new Promise<void>((r) => {
        markSent = r;
      });
      p = via._use(this.ctx, (vh) => {
        sent = true;
        gen.sent = true;
        markSent();
        return rev.create(handle, vh);
      });
      if (!sent) {
        // The other object comes back first: requests under this handle wait until the create is sent.
        res.state = "reviving";
        this.issued = issued;
        p.catch(() => markSent());
        void issued.then(() => {
          if (res.state === "reviving" && this.gen === gen) res.state = "resident";
        });
      }
    } else {
      p = rev.create(handle, 0);
    }
    p.then(
      (v) => this.createdOk(gen, v),
      (e: Error) => this.createFailed(gen, e),
    );
  }

  private createdOk(gen: Generation, value: unknown): void {
    this.answered();
    const reqs = gen.reqs ?? [];
    gen.reqs = undefined;
    if (gen.revival) {
      if (this.revival === gen.revival) this.revival = undefined;
      gen.revival.done.resolve(value);
    }
    for (const r of reqs) if (r.outcome) this.finish(r, gen);
  }

  private createFailed(gen: Generation, e: Error): void {
    this.answered();
    const res = this.res;
    if (this.gen === gen) this.ctx.residency.release(res);
    if (
      e instanceof TooManyHandlesError &&
      this.gen === gen &&
      gen.revival &&
      !this.closing &&
      gen.tries < MAX_CREATE_TRIES &&
      this.ctx.residency.noteFull()
    ) {
      // The table is fuller than the host counted: once every request sent
      // under the refused handle is answered, swap another object out, create
      // again and send those requests again, in order.
      const rev = gen.revival;
      res.state = "none";
      const drained = gen.outstanding === 0 ? Promise.resolve() : new Promise<void>((r) => (gen.drained = r));
      const recovery = drained
        .then(() => this.recreate(gen, rev))
        .catch((err: Error) => this.giveUp(gen, err))
        .finally(() => {
          if (this.recovering === recovery) this.recovering = undefined;
        });
      this.recovering = recovery;
      return;
    }
    this.giveUp(gen, e);
  }

  private async recreate(gen: Generation, rev: Revival): Promise<void> {
    for (;;) {
      if (this.epoch !== this.ctx.epoch) throw this.staleError();
      const other = this.bringBack(rev.via);
      if (other) {
        await other;
        continue;
      }
      const handle = this.ctx.residency.tryAcquire(residenceOf(rev.via));
      if (handle !== undefined) {
        this.start(handle, rev, gen.tries + 1);
        break;
      }
      await this.ctx.residency.room();
    }
    if (this.res.state === "reviving") await this.issued;
    const reqs = gen.reqs ?? [];
    gen.reqs = undefined;
    for (const r of reqs) {
      if (r.outcome?.ok) this.finish(r, gen);
      else {
        r.outcome = undefined;
        r.held = false;
        this.sendReq(r);
      }
    }
  }

  /** The create failed for good: the object is lost, and so is every request sent under it. */
  private giveUp(gen: Generation, e: Error): void {
    const res = this.res;
    gen.error = e;
    if (this.gen === gen) {
      res.state = "gone";
      res.error = e;
      this.failure ??= e;
    }
    // Not answered (timeout, link lost): the create may have run; a free makes sure (quiet if it did not).
    if (gen.sent && !(e instanceof DeviceError)) this.ctx.freeOrphan(gen.handle, this.epoch);
    gen.revival?.done.reject(e);
    if (this.revival === gen.revival) this.revival = undefined;
    const reqs = gen.reqs ?? [];
    gen.reqs = undefined;
    for (const r of reqs) if (r.outcome) this.finish(r, gen);
  }

  private answered(): void {
    if (--this.res.inFlight === 0) this.ctx.residency.idle();
  }

  /** Sends a request under the current handle (the object is resident). */
  private send<T>(fn: (handle: number) => Promise<T>): Promise<T> {
    const gen = this.gen as Generation;
    const res = this.res;
    if (!gen.reqs) {
      // The create is answered: nothing can make this request go again.
      res.inFlight++;
      this.ctx.residency.touch(res);
      let p: Promise<T>;
      try {
        p = fn(gen.handle);
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then(
        () => this.answered(),
        () => this.answered(),
      );
      return p;
    }
    return new Promise<T>((resolve, reject) => {
      this.sendReq({ fn, resolve: resolve as (v: unknown) => void, reject, outcome: undefined, held: false });
    });
  }

  private sendReq(r: Req): void {
    const gen = this.gen as Generation;
    const res = this.res;
    res.inFlight++;
    this.ctx.residency.touch(res);
    let p: Promise<unknown>;
    try {
      p = r.fn(gen.handle);
    } catch (e) {
      p = Promise.reject(e);
    }
    if (gen.reqs) {
      gen.reqs.push(r);
      gen.outstanding++;
      r.held = true;
    }
    p.then(
      (v) => this.settle(r, gen, true, v),
      (e) => this.settle(r, gen, false, e),
    );
  }

  private settle(r: Req, gen: Generation, ok: boolean, value: unknown): void {
    this.answered();
    r.outcome = { ok, value };
    if (r.held && gen.reqs) {
      if (--gen.outstanding === 0) gen.drained?.();
      return;
    }
    this.finish(r, gen);
  }

  /** Settles a request; under a create that failed, with the create's failure (the cause). */
  private finish(r: Req, gen: Generation): void {
    const o = r.outcome;
    if (!o) return;
    if (o.ok) r.resolve(o.value);
    else r.reject(gen.error ?? o.value);
  }
}

/** The residence of an object a create names, so making room never swaps it out. */
function residenceOf(via: HandleHolder | undefined): Residence | undefined {
  return via instanceof DeviceObject ? via._residence : undefined;
}
