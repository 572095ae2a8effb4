// Residency: how objects nobody closes stay within the device's handle table.
//
// Every handle the SDK makes is counted here. When the count reaches the
// table's size less a small reserve, the least recently used object that is
// idle (no call in flight, none queued) and whose type the device can swap is
// wrapped (obj_wrap, spec.md 7.6): the device encrypts its state under a
// per-boot key, returns the blob and frees the handle, and the object keeps
// the blob until it is used again, when obj_unwrap brings it back under a new
// handle. Wraps are sent before the create that needs the room, pipelined:
// the device runs requests in order, so the room is there when the create
// runs. Objects of other types (cipher contexts, key exchanges) are pinned;
// when nothing can be swapped, the create goes as before and the device
// decides (TooManyHandlesError when its table is full).

import { BadHandleError, DeviceError, ProtocolError, WrongHandleTypeError } from "../base/errors.js";
import { Op } from "../base/protocol.generated.js";

/** Handles kept free below max_handles: slack for a wrap or free that is resent after the create it made room for. */
export const HANDLE_RESERVE = 2;

/** How often a create waiting for room checks that something is still on its way that could make some, ms. */
const ROOM_CHECK_MS = 250;

/**
 * Where an object's device state is: `none` (nothing on the device: an empty
 * key, a digest not created yet), `reviving` (a create that names another
 * object waits for that one), `resident` (under `handle`), `swapping` (obj_wrap
 * in flight), `swapped` (the host holds `blob`), `gone` (freed, or lost: `error`).
 */
export type ResidenceState = "none" | "reviving" | "resident" | "swapping" | "swapped" | "gone";

/**
 * The device side of one object, shared by the object, the residency manager
 * and the finalizer of a collected object, so it must never hold the object
 * itself (only a WeakRef).
 */
export class Residence {
  state: ResidenceState = "none";
  /** The current handle (resident), else the last one. */
  handle: number | undefined;
  /** The wrapped state (swapped). */
  blob: Uint8Array | undefined;
  /** Settles when the obj_wrap in flight is answered (swapping). */
  wrapped: Promise<void> | undefined;
  /** Why the device state is lost (gone). */
  error: Error | undefined;
  /** Calls naming the handle that are not answered yet. */
  inFlight = 0;
  /** Calls waiting for the object to become resident. */
  queued = 0;
  /** The handle counts against the table. */
  counted = false;
  /** Closed or collected: a blob that arrives now is dropped, a handle that comes back is freed. */
  dropped = false;

  constructor(
    /** The boot the object belongs to. */
    readonly epoch: number,
    readonly owner: WeakRef<object>,
    /** The device cannot swap it (cipher contexts, key exchanges). */
    public pinned: boolean,
  ) {}
}

/** What the manager uses of the session. */
export interface ResidencyHost {
  call(op: number, args?: readonly unknown[]): Promise<unknown>;
  readonly epoch: number;
  readonly maxHandles: number;
  /** Calls sent or queued and not answered yet. */
  readonly pendingCalls: number;
  nextHandle(): number;
  freeOrphan(handle: number, epoch: number): void;
}

/** Counts of the manager's work since the session opened (for measurements and tests). */
export interface ResidencyCounters {
  /** obj_wrap requests sent. */
  wraps: number;
  /** obj_unwrap requests sent. */
  unwraps: number;
  /** Handles of collected objects freed when they came up for eviction. */
  collected: number;
  /** Creates that waited for an object to become idle. */
  waits: number;
  /** too_many_handles answers to creates. */
  full: number;
}

/** The residency manager of one session. */
export class Residency {
  readonly counters: ResidencyCounters = { wraps: 0, unwraps: 0, collected: 0, waits: 0, full: 0 };
  /** Resident objects, least recently used first. */
  private readonly lru = new Set<Residence>();
  /** Handles the host has made live on the device (creates sent, frees and wraps not yet sent). */
  private live = 0;
  private epoch: number;
  /** A lower table size learnt from too_many_handles (the device holds handles the host does not know of). */
  private cap: number | undefined;
  private waiters: (() => void)[] = [];
  /** The next create goes without room (a wait ran out). */
  private force = false;

  constructor(private readonly host: ResidencyHost) {
    this.epoch = host.epoch;
  }

  /** Handles the host counts as live now. */
  get liveHandles(): number {
    this.sync();
    return this.live;
  }

  /** How many handles the host lets be live before it swaps. */
  get limit(): number {
    const l = Math.max(1, this.host.maxHandles - HANDLE_RESERVE);
    return this.cap === undefined ? l : Math.min(l, this.cap);
  }

  /**
   * A new handle, counted, with room made for it first: idle objects are
   * wrapped, least recently used first (their obj_wrap is sent now, before the
   * caller's create). Undefined when every swappable object is busy: wait with
   * room() and ask again. `protect` is never chosen (the object a create names).
   */
  tryAcquire(protect?: Residence): number | undefined {
    if (!this.makeRoom(1, protect)) return undefined;
    this.force = false;
    this.live++;
    return this.host.nextHandle();
  }

  /**
   * Swaps out idle objects until `n` more handles fit (counting none yet);
   * false when every swappable object is busy. True as well when nothing can
   * be swapped (everything pinned): the device decides.
   */
  makeRoom(n: number, protect?: Residence): boolean {
    this.sync();
    while (this.live + n > this.limit) {
      const r = this.evictOne(protect);
      if (r === "evicted") continue;
      if (r === "busy" && !this.force) return false;
      break;
    }
    return true;
  }

  /** A new handle once there is room (see tryAcquire), for a temporary context. */
  async acquire(): Promise<number> {
    for (;;) {
      const h = this.tryAcquire();
      if (h !== undefined) return h;
      await this.room();
    }
  }

  /**
   * Resolves when an object became idle or a handle was freed. When no call is
   * on its way any more (the busy objects wait for room themselves), it
   * resolves anyway and the next create goes without room: the device decides.
   */
  room(): Promise<void> {
    this.counters.waits++;
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const check = () => {
        if (this.host.pendingCalls > 0) {
          timer = setTimeout(check, ROOM_CHECK_MS);
          timer.unref?.();
          return;
        }
        this.force = true;
        resolve();
      };
      timer = setTimeout(check, ROOM_CHECK_MS);
      timer.unref?.();
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** A handle counted by tryAcquire is live no more (freed, wrapped, or its create failed); `epoch`: when it was acquired. */
  releaseHandle(epoch: number): void {
    if (epoch !== this.epoch) return;
    this.live = Math.max(0, this.live - 1);
    this.wake();
  }

  /** An object's create (or unwrap) was sent under the handle tryAcquire gave: it is resident and counted. */
  track(res: Residence): void {
    this.sync();
    if (res.epoch !== this.epoch) return;
    res.counted = true;
    this.lru.delete(res);
    this.lru.add(res);
  }

  /** The object's handle is live no more: uncounted. */
  release(res: Residence): void {
    if (!res.counted) return;
    res.counted = false;
    this.lru.delete(res);
    this.releaseHandle(res.epoch);
  }

  /** The object is used: most recently used now. */
  touch(res: Residence): void {
    if (this.lru.delete(res)) this.lru.add(res);
  }

  /** An object's calls are all answered: a create waiting for room may swap it out now. */
  idle(): void {
    this.wake();
  }

  /**
   * The device answered too_many_handles to a create the host counted room
   * for: it holds handles the host does not know of. The host's table shrinks
   * to what it had; true when an object can be swapped to try again.
   */
  noteFull(): boolean {
    this.counters.full++;
    this.cap = Math.max(1, this.live - 1);
    for (const r of this.lru) if (!r.pinned) return true;
    return false;
  }

  /** A closed or collected object: frees its handle now (without waiting), drops its blob. */
  drop(res: Residence): void {
    res.dropped = true;
    if (res.state === "swapped") {
      res.blob = undefined;
      res.state = "gone";
    } else if (res.state === "resident" && res.counted) {
      this.release(res);
      res.state = "gone";
      if (res.handle !== undefined) this.host.freeOrphan(res.handle, res.epoch);
    }
  }

  /** The device rebooted: nothing of the old boot is live. */
  private sync(): void {
    if (this.host.epoch === this.epoch) return;
    this.epoch = this.host.epoch;
    this.live = 0;
    this.cap = undefined;
    this.force = false;
    for (const r of this.lru) r.counted = false;
    this.lru.clear();
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Swaps out (or, collected, frees) the least recently used idle swappable object. */
  private evictOne(protect: Residence | undefined): "evicted" | "busy" | "none" {
    let busy = false;
    for (const res of this.lru) {
      if (res.pinned || res === protect) continue;
      if (res.owner.deref() === undefined) {
        this.counters.collected++;
        this.drop(res); // collected, its finalizer has not run yet
        return "evicted";
      }
      if (res.inFlight > 0 || res.queued > 0) {
        busy = true;
        continue;
      }
      this.wrap(res);
      return "evicted";
    }
    return busy ? "busy" : "none";
  }

  /** Sends obj_wrap for a resident object; the blob is kept when it comes. */
  private wrap(res: Residence): void {
    const handle = res.handle as number;
    this.release(res);
    res.state = "swapping";
    this.counters.wraps++;
    res.wrapped = this.host.call(Op.objWrap, [handle]).then(
      (blob) => {
        if (!(blob instanceof Uint8Array)) {
          this.wrapFailed(res, handle, new ProtocolError("obj_wrap: result is not a byte string"));
        } else if (res.dropped) {
          res.state = "gone";
        } else {
          res.blob = Uint8Array.from(blob);
          res.state = "swapped";
        }
      },
      (e: Error) => this.wrapFailed(res, handle, e),
    );
  }

  private wrapFailed(res: Residence, handle: number, e: Error): void {
    if (e instanceof DeviceError && !(e instanceof BadHandleError) && res.epoch === this.host.epoch) {
      // The device answered and the handle stayed live (spec.md 7.6): resident
      // again, pinned when its type cannot be swapped (else, e.g. out of
      // memory for the blob, it may be tried again later).
      if (e instanceof WrongHandleTypeError) res.pinned = true;
      res.state = "resident";
      this.live++;
      this.track(res);
      if (res.dropped) this.drop(res);
      return;
    }
    res.state = "gone";
    res.error = e;
    // Not answered (timeout, link lost): the wrap may not have run; a free makes sure (quiet if it did).
    if (!(e instanceof DeviceError)) this.host.freeOrphan(handle, res.epoch);
  }
}
