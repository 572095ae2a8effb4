// The seam between the crypto modules and the session: what a module uses of
// an open device (calls, sizes, timeouts, the few hello figures it needs,
// handles) and nothing else. device.ts builds one per Device and hands it to
// every module, so no module imports device.ts and a module can be driven by
// any object of this shape.

import { BadHandleError, DeviceResetError, DisconnectedError } from "../base/errors.js";
import { Limits, Op } from "../base/protocol.generated.js";
import type { CallOptions, Rpc } from "../rpc/rpc.js";
import { Residency } from "./residency.js";

export type { CallOptions } from "../rpc/rpc.js";

/** What a module may use of an open device. */
export interface SessionContext {
  /** Sends a request; resolves with the result, rejects with a typed error (Rpc.call). */
  call(op: number, args?: readonly unknown[], opts?: CallOptions): Promise<unknown>;
  /** Bumped on every device reset: objects remember the epoch they were made in. */
  readonly epoch: number;
  /** The error every call fails with once the link is gone, else undefined. */
  readonly disconnectError: Error | undefined;
  /** Largest frame body the device accepts (hello's mtu). */
  readonly mtu: number;
  /** Largest byte string one request can carry (mtu - request_overhead_max). */
  readonly chunkSize: number;
  /**
   * Bytes per request when bulk data is split (streams, buffered ciphers,
   * random bytes): chunkSize on a clean line, less while the line loses
   * frames (Rpc.frameLimit), so that frames still get through.
   */
  readonly streamChunk: number;
  /** Default per-call timeout in ms. */
  readonly timeoutMs: number;
  /** Names of the digests compiled into the firmware (hello). */
  readonly hashes: readonly string[];
  /** Number of key slots (hello). */
  readonly slots: number;
  /** Size of the device's handle table (hello's max_handles). */
  readonly maxHandles: number;
  /** The device's TLS limits (hello). */
  readonly tls: TLSLimits;
  /** Calls sent or queued and not answered yet. */
  readonly pendingCalls: number;
  /** Keeps the objects of this session within the handle table (session/residency.ts). */
  readonly residency: Residency;
  /** The next host-chosen handle, never reused within a boot. */
  nextHandle(): number;
  /** Frees, quietly and without waiting, the handle of an object that is gone; nothing when its boot or the link is. */
  freeOrphan(handle: number, epoch: number): void;
}

/** What a device object is told to use its session by: the context itself, or the Device holding it. */
export type SessionRef = SessionContext | { readonly _context: SessionContext };

/** The context of a SessionRef. */
export function contextOf(ref: SessionRef): SessionContext {
  return "_context" in ref ? ref._context : ref;
}

/** Call options of an op that may run long: the caller's timeout, else the default but at least `minMs`. */
export function atLeast(ctx: SessionContext, opts: CallOptions, minMs: number): CallOptions {
  return { ...opts, timeoutMs: opts.timeoutMs ?? Math.max(ctx.timeoutMs, minMs) };
}

/**
 * Frees a handle made in `epoch` and waits for the answer. Quiet when the
 * boot or the link is gone, and on bad_handle (the create itself failed);
 * other errors are thrown.
 */
export async function freeHandle(ctx: SessionContext, handle: number, epoch: number): Promise<void> {
  if (epoch !== ctx.epoch || ctx.disconnectError) return;
  try {
    await ctx.call(Op.free, [handle]);
  } catch (e) {
    if (e instanceof DisconnectedError || e instanceof DeviceResetError || e instanceof BadHandleError) return;
    throw e;
  }
}

/** hello's TLS limits (spec.md 7.12); zeros from firmware without TLS. */
export interface TLSLimits {
  /** Sessions alive at once; one more is TooManyHandlesError. */
  readonly sessionsMax: number;
  /** Largest record content the device takes (MBEDTLS_SSL_IN_CONTENT_LEN, 16384: what default peers send). */
  readonly inRecord: number;
  /** Largest record content the device sends (MBEDTLS_SSL_OUT_CONTENT_LEN). */
  readonly outRecord: number;
  /** Bytes of each of a session's two network rings on the device. */
  readonly ring: number;
}

/** The hello figures a session serves to modules. */
export interface SessionFigures {
  readonly mtu: number;
  readonly hashes: readonly string[];
  readonly slots: number;
  readonly maxHandles: number;
  readonly tls: TLSLimits;
}

/** A SessionContext over an Rpc; the owner supplies hello's figures and says when it is closing. */
export class RpcSession implements SessionContext {
  private handleCounter = 0;
  readonly residency: Residency;

  constructor(
    private readonly rpc: Rpc,
    private readonly figures: () => SessionFigures,
    private readonly closing: () => boolean,
  ) {
    this.residency = new Residency(this);
  }

  call(op: number, args: readonly unknown[] = [], opts: CallOptions = {}): Promise<unknown> {
    return this.rpc.call(op, args, opts);
  }

  get epoch(): number {
    return this.rpc.epoch;
  }

  get disconnectError(): Error | undefined {
    return this.rpc.disconnectError;
  }

  get mtu(): number {
    return this.figures().mtu;
  }

  get chunkSize(): number {
    return this.mtu - Limits.requestOverheadMax;
  }

  get streamChunk(): number {
    return Math.min(this.mtu, this.rpc.frameLimit) - Limits.requestOverheadMax;
  }

  get timeoutMs(): number {
    return this.rpc.timeoutMs;
  }

  get hashes(): readonly string[] {
    return this.figures().hashes;
  }

  get slots(): number {
    return this.figures().slots;
  }

  get maxHandles(): number {
    return this.figures().maxHandles;
  }

  get tls(): TLSLimits {
    return this.figures().tls;
  }

  get pendingCalls(): number {
    return this.rpc.inFlightCount + this.rpc.queuedCount;
  }

  nextHandle(): number {
    this.handleCounter = this.handleCounter >= Limits.handleMax ? 1 : this.handleCounter + 1;
    return this.handleCounter;
  }

  freeOrphan(handle: number, epoch: number): void {
    if (epoch !== this.rpc.epoch || this.rpc.disconnectError || this.closing()) return;
    this.rpc.call(Op.free, [handle]).catch(() => {});
  }
}
