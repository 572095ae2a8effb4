// RPC layer: request ids, the pending map with per-call timers, the
// in-flight window with its FIFO queue, typed errors and reset detection.
//
// * Ids are uint32, 1..2^32-1, wrapping, skipping ids still pending.
// * A call is CBOR-encoded when it is made (so callers may reuse their
//   buffers at once) and waits, encoded, in a FIFO queue while `window`
//   requests are in flight.
// * A call's timer starts when its frame has been written to the OS. While
//   the write is pending a guard of twice the timeout runs, so a write that
//   never completes still fails the call.
// * A `boot` event with a new boot id, or `noteBootId` with a new one, fails
//   every sent and queued call with DeviceResetError, bumps `epoch`, and
//   emits 'reset'. The listener (Device) pauses the queue, re-runs hello as
//   a priority call and resumes.
// * A `busy` event for a sent call re-arms its timer (a long op such as key
//   generation is alive) and is re-emitted as 'busy'.
// * Responses to ids that are not pending (timed out, or garbage) are
//   counted in `lateResponses` and ignored.
import { EventEmitter } from "node:events";
import { encodeBody } from "./codec.js";
import {
  ArgumentError,
  DeviceResetError,
  DisconnectedError,
  deviceErrorFor,
  MbedlinkError,
  ProtocolError,
  TimeoutError,
} from "./errors.js";
import { DROP_REASON_NAMES, EventId, OP_INFO } from "./protocol.generated.js";
import type { Message, Transport } from "./transport.js";
import { DEFAULT_MAX_FRAME } from "./transport.js";

export const DEFAULT_TIMEOUT_MS = 10_000;

export interface CallOptions {
  /** Per-call timeout in ms, counted from when the request frame was written. */
  timeoutMs?: number;
}

export interface FrameDropInfo {
  /** "device": the device reported a frame_dropped event; "host": a frame from the device failed here. */
  side: "device" | "host";
  reason: string;
  /** Running count of drops on that side. */
  total: number;
}

export interface ResetInfo {
  /** The new boot id, when known. */
  bootId: Uint8Array | undefined;
  /** The session epoch after the reset. */
  epoch: number;
}

/** A busy event: a long request (key generation, prime search) is still running on the device. */
export interface BusyInfo {
  /** Op name of the running request, e.g. "pk_generate". */
  op: string;
  /** Its request id. */
  id: number;
  /** How long the device has been running it, in ms. */
  elapsedMs: number;
}

export interface RpcEventMap {
  /** A device event other than boot / frame_dropped / busy. */
  event: [msg: Message];
  /** A pending call is still running on the device; its timeout was re-armed. */
  busy: [info: BusyInfo];
  reset: [info: ResetInfo];
  frameDropped: [info: FrameDropInfo];
  disconnected: [err: Error];
}

export interface RpcOptions {
  timeoutMs?: number;
  /** Requests kept in flight; 1 until hello says otherwise. */
  window?: number;
  /** Largest request body we may send; DEFAULT_MAX_FRAME until hello. */
  mtu?: number;
}

interface Call {
  id: number;
  op: number;
  body: Uint8Array;
  timeoutMs: number;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  sent: boolean;
}

function opName(op: number): string {
  return OP_INFO.get(op)?.name ?? `op ${op}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Turns a response into finish() arguments: [error] or [null, result]. */
function settle(call: Call, msg: Message): [Error | null, unknown] {
  const status = msg[1];
  const op = opName(call.op);
  if (status === 0) {
    if (msg.length !== 3) return [new ProtocolError(`${op}: success response with ${msg.length} items`), undefined];
    return [null, msg[2]];
  }
  const [, , code, text] = msg;
  if (typeof status !== "number" || typeof code !== "number" || typeof text !== "string" || msg.length !== 4) {
    return [new ProtocolError(`${op}: malformed response ${JSON.stringify(msg)}`), undefined];
  }
  return [deviceErrorFor(status, code, text, op), undefined];
}

export class Rpc extends EventEmitter<RpcEventMap> {
  /** Default per-call timeout (ms). */
  timeoutMs: number;
  /** Requests kept in flight at most. */
  window: number;
  /** Largest request body accepted by the device. */
  mtu: number;
  /** Boot id of the session the host knows (set by noteBootId after hello). */
  bootId: Uint8Array | undefined;
  /** Bumped on every detected device reset; objects remember the epoch they were made in. */
  epoch = 0;
  /** Responses that matched no pending call (late, after a timeout). */
  lateResponses = 0;
  /** frame_dropped events received from the device. */
  deviceDrops = 0;

  private nextId = 1;
  private readonly pending = new Map<number, Call>();
  private readonly queue: Call[] = [];
  private readonly priority: Call[] = [];
  private inFlight = 0;
  private paused = false;
  private gone: Error | undefined;

  constructor(
    readonly transport: Transport,
    opts: RpcOptions = {},
  ) {
    super();
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.window = opts.window ?? 1;
    this.mtu = opts.mtu ?? DEFAULT_MAX_FRAME;
    transport.on("message", (m) => this.onMessage(m));
    transport.on("drop", (reason) => this.emit("frameDropped", { side: "host", reason, total: transport.counters.rxDropped }));
    transport.on("disconnected", (err) => this.onDisconnected(err));
  }

  /** Number of calls sent and not answered. */
  get inFlightCount(): number {
    return this.inFlight;
  }

  /** Number of calls waiting for the window (or for a re-hello). */
  get queuedCount(): number {
    return this.queue.length + this.priority.length;
  }

  /** The error every call fails with once the link is gone, else undefined. */
  get disconnectError(): Error | undefined {
    return this.gone;
  }

  /**
   * Sends `[id, op, ...args]` and resolves with the result item of the
   * success response; rejects with a DeviceError subclass on an error
   * response, or a local error (timeout, disconnect, reset, argument).
   */
  call(op: number, args: readonly unknown[] = [], opts: CallOptions = {}): Promise<unknown> {
    return this.enqueue(op, args, opts, false);
  }

  /** Like call(), but jumps the queue and is sent while the queue is paused (used for hello). */
  callPriority(op: number, args: readonly unknown[] = [], opts: CallOptions = {}): Promise<unknown> {
    return this.enqueue(op, args, opts, true);
  }

  /** Holds ordinary calls in the queue (e.g. until a re-hello is done). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /**
   * Records the boot id a hello returned. Returns true, and handles the
   * reset, when it differs from the one known before.
   */
  noteBootId(bootId: Uint8Array): boolean {
    const known = this.bootId;
    this.bootId = bootId;
    if (known === undefined || sameBytes(known, bootId)) return false;
    this.deviceReset(bootId, "device reset (new boot id in hello)");
    return true;
  }

  /** Fails every pending and queued call with `err`. */
  failAll(err: Error): void {
    const calls = [...this.priority, ...this.queue, ...this.pending.values()];
    this.priority.length = 0;
    this.queue.length = 0;
    for (const c of new Set(calls)) this.finish(c, err);
  }

  /** Fails everything with DisconnectedError and closes the transport. */
  async close(): Promise<void> {
    if (!this.gone) this.onDisconnected(new DisconnectedError("device closed"));
    await this.transport.close();
  }

  private enqueue(op: number, args: readonly unknown[], opts: CallOptions, priority: boolean): Promise<unknown> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.allocId();
    let body: Uint8Array;
    try {
      body = encodeBody([id, op, ...args]);
    } catch (e) {
      return Promise.reject(new ArgumentError(`${opName(op)}: cannot encode arguments: ${(e as Error).message}`));
    }
    if (body.length > this.mtu) {
      return Promise.reject(new ArgumentError(`${opName(op)}: request of ${body.length} bytes exceeds the device MTU of ${this.mtu}`));
    }
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return new Promise<unknown>((resolve, reject) => {
      const call: Call = { id, op, body, timeoutMs, resolve, reject, timer: undefined, sent: false };
      this.pending.set(id, call);
      (priority ? this.priority : this.queue).push(call);
      this.pump();
    });
  }

  private allocId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id >= 0xffffffff ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private pump(): void {
    while (!this.gone && this.inFlight < this.window) {
      const call = this.priority.shift() ?? (this.paused ? undefined : this.queue.shift());
      if (!call) return;
      this.send(call);
    }
  }

  private send(call: Call): void {
    call.sent = true;
    this.inFlight++;
    this.arm(call, 2 * call.timeoutMs);
    this.transport.sendBody(call.body, (err) => {
      if (!this.pending.has(call.id) || this.pending.get(call.id) !== call) return;
      if (err) this.finish(call, err instanceof MbedlinkError ? err : new DisconnectedError(`write failed: ${err.message}`));
      else this.arm(call, call.timeoutMs); // the timeout counts from the written frame
    });
  }

  private arm(call: Call, ms: number): void {
    if (call.timer) clearTimeout(call.timer);
    call.timer = setTimeout(() => {
      call.timer = undefined;
      this.finish(call, new TimeoutError(`${opName(call.op)} (id ${call.id}): no response within ${call.timeoutMs} ms`));
    }, ms);
  }

  /** Removes a call from the books and settles it. */
  private finish(call: Call, err: Error | null, value?: unknown): void {
    if (this.pending.get(call.id) !== call) return;
    this.pending.delete(call.id);
    if (call.timer) clearTimeout(call.timer);
    call.timer = undefined;
    if (call.sent) this.inFlight--;
    else {
      for (const q of [this.queue, this.priority]) {
        const i = q.indexOf(call);
        if (i >= 0) q.splice(i, 1);
      }
    }
    if (err) call.reject(err);
    else call.resolve(value);
    this.pump();
  }

  private onMessage(msg: Message): void {
    const id = msg[0];
    if (id === null) {
      this.onEvent(msg);
      return;
    }
    const call = this.pending.get(id);
    if (!call?.sent) {
      this.lateResponses++;
      return;
    }
    const [err, value] = settle(call, msg);
    this.finish(call, err, value);
  }

  private onEvent(msg: Message): void {
    const ev = msg[1];
    if (ev === EventId.boot) {
      const bootId = msg[2];
      if (!(bootId instanceof Uint8Array)) return;
      // Before the first hello there is no session to lose: the boot event
      // of a freshly started device is expected, and the hello that follows
      // records the boot id.
      if (this.bootId === undefined) return;
      if (sameBytes(this.bootId, bootId)) return;
      this.bootId = bootId;
      this.deviceReset(bootId, "device reset (boot event)");
    } else if (ev === EventId.frameDropped) {
      this.deviceDrops++;
      const reason = msg[2];
      const total = msg[3];
      this.emit("frameDropped", {
        side: "device",
        reason: (typeof reason === "number" ? DROP_REASON_NAMES.get(reason) : undefined) ?? `reason ${String(reason)}`,
        total: typeof total === "number" ? total : this.deviceDrops,
      });
    } else if (ev === EventId.busy) {
      // [null, 3, id, elapsed ms]: the call's timeout counts again from now.
      const id = msg[2];
      const call = typeof id === "number" ? this.pending.get(id) : undefined;
      if (!call?.sent) return;
      this.arm(call, call.timeoutMs);
      const elapsed = msg[3];
      this.emit("busy", { op: opName(call.op), id: call.id, elapsedMs: typeof elapsed === "number" ? elapsed : 0 });
    } else {
      this.emit("event", msg);
    }
  }

  private deviceReset(bootId: Uint8Array | undefined, why: string): void {
    this.epoch++;
    this.failAll(new DeviceResetError(why));
    this.emit("reset", { bootId, epoch: this.epoch });
  }

  private onDisconnected(err: Error): void {
    if (this.gone) return;
    this.gone = err instanceof DisconnectedError ? err : new DisconnectedError(err.message);
    this.failAll(this.gone);
    this.emit("disconnected", this.gone);
  }
}
