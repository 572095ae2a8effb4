// RPC layer: request ids, the pending map with per-call timers, the
// in-flight window with its FIFO queue, typed errors and reset detection.
//
// * Ids are uint32, 1..2^32-1, wrapping, skipping ids still pending.
// * A call is encoded by the transport when it is made (so callers may
//   reuse their buffers at once) and waits, encoded, in a FIFO queue for
//   the window.
// * The window is anchored at the oldest unanswered request: the n-th new
//   request of the session (calls and link probes alike) goes out only
//   while the oldest request still unanswered is among the last `window`
//   sent, so a lost request is never more than `window - 1` requests behind
//   the newest. The device keeps a record of its last `window` answers
//   (spec §6); anchored, a resend always finds its answer there when the
//   first transmission ran. With nothing lost this is the plain count of
//   requests in flight.
// * A call's timer starts when its frame has been written to the OS. While
//   the write is pending a guard of twice the timeout runs, so a write that
//   never completes still fails the call.
// * A `boot` event with a new boot id, or `noteBootId` with a new one, fails
//   every sent and queued call with DeviceResetError, bumps `epoch`, and
//   emits 'reset'. The listener (Device) pauses the queue, re-runs hello as
//   a priority call and resumes. Nothing is resent into a new boot.
// * A `busy` event for a sent call re-arms its timer (a long op such as key
//   generation is alive) and is re-emitted as 'busy'.
// * Responses to ids that are not pending (timed out, already answered by
//   an earlier transmission, or garbage) are counted in `lateResponses` and
//   ignored: a call settles once, on the first answer to its id.
// * Link recovery (spec §6), on when `retries` > 0 / `inOrder` (Device sets
//   both): the device answers strictly in arrival order, so a response
//   proves every request sent before it and still unanswered lost (request
//   or response frame damaged). A lost call goes again under its own id,
//   byte for byte, as often as its own timeout allows: the device answers a
//   request it already ran from its record instead of running it twice, so
//   every op may be resent (OP_INFO.resend).
// * Order. A request that never arrived runs when its resend does, after
//   whatever was sent behind it. For an `ordered` op (creates, stream
//   updates and finishes, key exchange steps, slot writes: it changes state
//   later requests read) that would apply it out of order, so a lost one is
//   resent only while nothing sent after it can depend on it (nothing at
//   all, for an ordered op; no ordered op, for any other); else it fails
//   with TimeoutError as it is found lost, never giving a wrong result.
//   While the line loses frames (from the start of a session until
//   `cleanStreak` answers came without a loss) an ordered request goes out
//   alone, so its resend is always safe: pipelining of order-dependent
//   requests is the privilege of a clean line. Once damaged frames were
//   seen, losses are chased within a few response times (a dropped frame
//   with one call waiting resends it at once; attempt timers start at four
//   response times and double; a transmission left unanswered that long
//   brings a probe), and `frameLimit` suggests how large frames should be
//   for the loss rate seen. Those waits add the line time of the bytes
//   queued up to the transmission (lineMs), and no copy of a request goes
//   while an earlier one is still being written: a slow UART is never
//   flooded with copies of a large frame still on its way.
//   A request whose loss no later response reveals is resent when its
//   attempt timer (timeout / (retries + 1)) runs out. A dropped frame (host
//   CRC failure or device frame_dropped) sends a tiny probe (`echo`) whose
//   response reveals what was lost without waiting for that timer; when the
//   anchored window has no room for it, the oldest unanswered call is
//   resent instead.
import { EventEmitter } from "node:events";
import {
  ArgumentError,
  BadHandleError,
  DeviceResetError,
  DisconnectedError,
  deviceErrorFor,
  MbedlinkError,
  ProtocolError,
  TimeoutError,
} from "../base/errors.js";
import { DROP_REASON_NAMES, EventId, OP_INFO, Op, type Resend, STATUS_INFO } from "../base/protocol.generated.js";
import type { HostDropReason, Message, RequestBody, Transport } from "../link/transport.js";
import { DEFAULT_MAX_FRAME } from "../link/transport.js";
import { debug, debugLog } from "./debug.js";

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

/** How one call ended (the 'settled' event, for measurements). */
export interface CallSettledInfo {
  op: string;
  /** Transmissions (1 + retries). */
  attempts: number;
  /** Time waiting in the queue for the window, ms. */
  queuedMs: number;
  /** From the first written frame to the settlement, ms (0 when never written). */
  activeMs: number;
  /** The call's time budget from its first written frame (its timeout, plus busy re-arms), ms. */
  budgetMs: number;
  error: Error | null;
}

/** The events of a session that its owner (Device) passes on to its users. */
export interface SessionEventMap {
  /** The device rebooted: in-flight calls failed with DeviceResetError, older objects are stale. */
  reset: [info: ResetInfo];
  /** A frame was dropped, by the device (frame_dropped event) or by the host (CRC, escape, ...). */
  frameDropped: [info: FrameDropInfo];
  /** The link is gone; every call fails with DisconnectedError. */
  disconnected: [err: Error];
  /** A long request (key generation, prime search) is still running; its timeout was extended. */
  busy: [info: BusyInfo];
}

export interface RpcEventMap extends SessionEventMap {
  /** A call settled (emitted only while someone listens). */
  settled: [info: CallSettledInfo];
  /** A device event other than boot / frame_dropped / busy. */
  event: [msg: Message];
  /** The device answered bad_handle: a reset nobody saw (lost boot event) would look like this. */
  badHandle: [op: string];
}

export interface RpcOptions {
  timeoutMs?: number;
  /** Requests kept in flight; 1 until hello says otherwise. */
  window?: number;
  /** Largest request body we may send; DEFAULT_MAX_FRAME until hello. */
  mtu?: number;
  /**
   * 0: no resends. Otherwise a lost call is resent within its timeout, and a
   * call whose loss nothing reveals is resent after timeout / (retries + 1).
   */
  retries?: number;
  /** The peer answers in request order, so a response reveals earlier losses (spec §5). */
  inOrder?: boolean;
  /**
   * Answers in a row without a loss before ordered requests are pipelined
   * again (default CLEAN_STREAK; 0: pipelined from the start).
   */
  cleanStreak?: number;
}

interface Call {
  /** The request id: every transmission of the call carries it. */
  id: number;
  op: number;
  /** The encoded request, sent byte for byte again on a resend. */
  request: RequestBody;
  timeoutMs: number;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  sent: boolean;
  /** Settled (answered, failed or timed out). */
  done: boolean;
  /** Place among the session's new requests (calls and probes), counted when first sent: the window's anchor. */
  seq: number;
  /** OP_INFO's `resend` lets a lost transmission of the op go again. */
  retryable: boolean;
  /** OP_INFO's `resend` is "ordered": it changes state later requests read. */
  ordered: boolean;
  attempts: number;
  /** performance.now() by which the call must settle (valid once written). */
  deadline: number;
  queuedAt: number;
  writtenAt: number | undefined;
  /** Dropped frames seen while it was the only call waiting (see probeSoon). */
  dropsAlone: number;
  /** performance.now() of its newest transmission. */
  lastTxAt: number;
  /** Transmissions handed to the transport and not yet written to the OS. */
  unwritten: number;
  /** A resend waits for the copy still being written (see resend). */
  resendDue: boolean;
  /** A link probe made by the Rpc itself. */
  probe: boolean;
}

/** How a lost call of `op` may be resent (spec §6, ids.json's `resend`); an op this SDK does not know never is. */
function resendOf(op: number): Resend {
  return OP_INFO.get(op)?.resend ?? "never";
}

/** True when a lost call of `op` may be sent again, under its id, byte for byte (spec §6). */
export function mayResend(op: number): boolean {
  return resendOf(op) !== "never";
}

/** Shortest attempt before a resend, ms. */
const MIN_ATTEMPT_MS = 50;
/** Answers in a row without a loss before ordered requests are pipelined again. */
export const CLEAN_STREAK = 256;
/** Losses remembered for the loss-rate estimate behind frameLimit. */
const LOSS_MEMORY = 16;
/** Smallest frame frameLimit suggests (a device's MTU is at least this, spec §1). */
const MIN_FRAME = 256;
/** Line time per byte of a 115200 baud UART (10 bits a byte), ms: assumed until measured. */
const UART_MS_PER_BYTE = 10 / 115.2;
/** Exchanges (request plus answer bytes) at least this large measure the line's rate. */
const LINE_SAMPLE_BYTES = 128;
/** Shortest wait after a dropped frame before a probe, ms. */
const PROBE_DELAY_MIN_MS = 20;

function opName(op: number): string {
  return OP_INFO.get(op)?.name ?? `op ${op}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const EVENT_NAMES: ReadonlyMap<number, string> = new Map([
  [EventId.boot, "boot"],
  [EventId.frameDropped, "frame_dropped"],
  [EventId.busy, "busy"],
]);

/** The debug log's line for a settled call: how long it took and how it ended. */
function logSettled(call: Call, err: Error | null): void {
  const now = performance.now();
  const w = call.writtenAt;
  const active = w === undefined ? "never sent" : `${(now - w).toFixed(1)} ms`;
  const queued = (w ?? now) - call.queuedAt;
  const tries = call.attempts > 1 ? `, ${call.attempts} attempts` : "";
  debugLog(
    `   ${opName(call.op)} id ${call.id} ${err ? `failed (${err.name})` : "done"} in ${active} (queued ${queued.toFixed(1)} ms${tries})`,
  );
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
  /** Resends of lost calls (same id, same bytes). */
  retries = 0;
  /** Transmissions found lost: a response to a later one came first. */
  lostFrames = 0;
  /** Link probes sent after a dropped frame. */
  probes = 0;
  /** 0: lost calls are not resent; else the attempt timer is timeout / (maxRetries + 1). */
  maxRetries: number;
  /** The peer answers in request order (spec §5). */
  inOrder: boolean;
  /** Answers in a row without a loss before ordered requests are pipelined again. */
  cleanStreak: number;
  /**
   * Set by an owner that can bring the link back (Device with a restartable
   * target): a lost link is then a device reset (calls fail with
   * DeviceResetError, 'reset' is emitted) and the queue waits for
   * `replaceTransport` instead of failing with DisconnectedError. The hook
   * is told why; `giveUp` ends the wait.
   */
  onLinkLost: ((err: Error) => void) | undefined = undefined;

  private nextId = 1;
  private readonly pending = new Map<number, Call>();
  private readonly queue: Call[] = [];
  private readonly priority: Call[] = [];
  private inFlight = 0;
  /** Sent calls and probes in the order first sent; settled ones leave from the front (see oldestSeq). */
  private readonly live: Call[] = [];
  /** `seq` of the next new request. */
  private nextSeq = 0;
  /** `seq` of the newest call (not probe) sent, and of the newest ordered one. */
  private lastCallSeq = -1;
  private lastOrderedSeq = -1;
  /** Ordered calls sent and not settled. */
  private orderedInFlight = 0;
  /** Answers since the last loss. */
  private cleanAnswers = 0;
  /** Link bytes (both ways) when each of the last LOSS_MEMORY losses was seen. */
  private readonly lossBytes: number[] = [];
  private paused = false;
  private gone: Error | undefined;
  /** Transmissions waiting for their answer, in wire order (a call appears once per transmission). */
  private readonly txs: Call[] = [];
  private probing = false;
  private probeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Smoothed response time of first attempts, ms. */
  private srtt = 0;
  /**
   * Smoothed line time per byte (request plus answer), ms: what a 115200 baud
   * UART takes until exchanges of at least LINE_SAMPLE_BYTES were measured.
   */
  private msPerByte = UART_MS_PER_BYTE;
  /** performance.now() of the last answer received: the line was busy with the next one from then on. */
  private lastAnswerAt = 0;
  private lineSamples = 0;
  private linkDown = false;
  private _transport: Transport;
  private readonly linkHandlers = {
    message: (m: Message) => this.onMessage(m),
    drop: (reason: HostDropReason) => {
      this.emit("frameDropped", { side: "host", reason, total: this._transport.counters.rxDropped });
      this.noteLoss(true);
      this.probeSoon(true);
    },
    disconnected: (err: Error) => this.onDisconnected(err),
  };

  constructor(transport: Transport, opts: RpcOptions = {}) {
    super();
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.window = opts.window ?? 1;
    this.mtu = opts.mtu ?? DEFAULT_MAX_FRAME;
    this.maxRetries = opts.retries ?? 0;
    this.inOrder = opts.inOrder ?? false;
    this.cleanStreak = opts.cleanStreak ?? CLEAN_STREAK;
    this._transport = transport;
    this.attach(transport);
  }

  /** The link in use (replaced by `replaceTransport` after a reconnect). */
  get transport(): Transport {
    return this._transport;
  }

  /**
   * Continues on a new link after the old one was lost (a restarted device):
   * calls made from now on go to `t`. The caller runs hello next.
   */
  replaceTransport(t: Transport): void {
    const old = this._transport;
    old.off("message", this.linkHandlers.message);
    old.off("drop", this.linkHandlers.drop);
    old.off("disconnected", this.linkHandlers.disconnected);
    // Calls sent on the old link are lost with it; queued ones go on the new one.
    const lost = new DisconnectedError("link replaced");
    for (const c of [...this.pending.values()]) if (c.sent) this.finish(c, lost);
    this._transport = t;
    this.gone = undefined;
    this.linkDown = false;
    this.attach(t);
    this.pump();
  }

  /** True while the link is lost and the owner is bringing it back. */
  get isLinkDown(): boolean {
    return this.linkDown;
  }

  /** Ends a reconnect that failed: every waiting and later call fails with `err`. */
  giveUp(err: Error): void {
    this.linkDown = false;
    this.onLinkLost = undefined;
    this.onDisconnected(err);
  }

  private attach(t: Transport): void {
    t.on("message", this.linkHandlers.message);
    t.on("drop", this.linkHandlers.drop);
    t.on("disconnected", this.linkHandlers.disconnected);
  }

  /** Number of calls sent and not answered. */
  get inFlightCount(): number {
    return this.inFlight;
  }

  /**
   * True while the line loses frames (or has not yet shown it does not): an
   * ordered request then goes out alone.
   */
  get careful(): boolean {
    return this.cleanAnswers < this.cleanStreak;
  }

  /** Careful because frames were seen damaged (not only because the session is new). */
  private get lossy(): boolean {
    return this.careful && this.lossBytes.length > 0;
  }

  /**
   * Largest frame body worth sending now: on a clean line, no limit; while
   * the line loses frames, about 0.5 / (losses per byte) over the last
   * LOSS_MEMORY losses (a frame then gets through about six times in ten),
   * at least MIN_FRAME. Modules that split bulk data take it into account.
   */
  get frameLimit(): number {
    if (!this.lossy) return Number.POSITIVE_INFINITY;
    const c = this._transport.counters;
    const span = c.txBytes + c.rxBytes - (this.lossBytes[0] as number);
    return Math.max(MIN_FRAME, Math.floor((0.5 * Math.max(span, 1)) / this.lossBytes.length));
  }

  /**
   * A frame was lost: pipelining of ordered requests waits for a clean
   * streak. `dropped`: a damaged frame was seen (a drop on either side),
   * which the loss-rate estimate counts (a loss found by order or timer
   * mostly follows one).
   */
  private noteLoss(dropped = false): void {
    if (!this.careful) this.lossBytes.length = 0; // a new careful spell: the rate seen in the last one is history
    this.cleanAnswers = 0;
    if (!dropped) return;
    const c = this._transport.counters;
    this.lossBytes.push(c.txBytes + c.rxBytes);
    if (this.lossBytes.length > LOSS_MEMORY) this.lossBytes.shift();
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
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.onLinkLost = undefined;
    this.linkDown = false;
    if (!this.gone) this.onDisconnected(new DisconnectedError("device closed"));
    await this.transport.close();
  }

  private enqueue(op: number, args: readonly unknown[], opts: CallOptions, priority: boolean): Promise<unknown> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.allocId();
    let request: RequestBody;
    try {
      request = this._transport.encodeRequest(id, [op, ...args]);
    } catch (e) {
      return Promise.reject(new ArgumentError(`${opName(op)}: cannot encode arguments: ${(e as Error).message}`));
    }
    if (request.size > this.mtu) {
      return Promise.reject(new ArgumentError(`${opName(op)}: request of ${request.size} bytes exceeds the device MTU of ${this.mtu}`));
    }
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return new Promise<unknown>((resolve, reject) => {
      const call = this.newCall(id, op, request, timeoutMs, resolve, reject);
      this.pending.set(id, call);
      (priority ? this.priority : this.queue).push(call);
      this.pump();
    });
  }

  private newCall(
    id: number,
    op: number,
    request: RequestBody,
    timeoutMs: number,
    resolve: (v: unknown) => void,
    reject: (e: Error) => void,
    probe = false,
  ): Call {
    return {
      id,
      op,
      request,
      timeoutMs,
      resolve,
      reject,
      timer: undefined,
      sent: false,
      done: false,
      seq: -1,
      retryable: !probe && mayResend(op),
      ordered: !probe && resendOf(op) === "ordered",
      attempts: 0,
      deadline: Number.POSITIVE_INFINITY,
      queuedAt: performance.now(),
      writtenAt: undefined,
      dropsAlone: 0,
      lastTxAt: 0,
      unwritten: 0,
      resendDue: false,
      probe,
    };
  }

  private allocId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id >= 0xffffffff ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  /** `seq` of the oldest sent request still unanswered (nextSeq when none is). */
  private oldestSeq(): number {
    const live = this.live;
    while (live.length > 0 && (live[0] as Call).done) live.shift();
    return live[0]?.seq ?? this.nextSeq;
  }

  /** The anchored window has room for one more new request. */
  private hasRoom(): boolean {
    return this.nextSeq - this.oldestSeq() < this.window;
  }

  private pump(): void {
    while (!this.gone && !this.linkDown && this.hasRoom()) {
      const q = this.priority.length > 0 ? this.priority : this.paused ? undefined : this.queue;
      const call = q?.[0];
      if (!call || this.mustWait(call)) return;
      q?.shift();
      this.send(call);
    }
  }

  /** While the line loses frames, an ordered call goes out alone: after everything before it is answered, and before anything after it. */
  private mustWait(call: Call): boolean {
    return this.careful && (this.orderedInFlight > 0 || (call.ordered && this.inFlight > 0));
  }

  /**
   * A lost call may go again without running out of order: nothing sent
   * after it (for an ordered call), or no ordered call sent after it (for
   * any other) can depend on it having run.
   */
  private orderSafe(call: Call): boolean {
    return call.ordered ? this.lastCallSeq === call.seq : this.lastOrderedSeq < call.seq;
  }

  private send(call: Call): void {
    call.sent = true;
    call.attempts = 1;
    call.seq = this.nextSeq++;
    if (!call.probe) this.lastCallSeq = call.seq;
    if (call.ordered) {
      this.lastOrderedSeq = call.seq;
      this.orderedInFlight++;
    }
    this.live.push(call);
    this.inFlight++;
    // Until the frame is written, a guard of twice the timeout runs.
    if (call.timer) clearTimeout(call.timer);
    call.timer = setTimeout(() => {
      call.timer = undefined;
      this.finish(call, new TimeoutError(`${opName(call.op)} (id ${call.id}): request not written within ${2 * call.timeoutMs} ms`));
    }, 2 * call.timeoutMs);
    this.txs.push(call);
    if (this.lossy && !call.probe) this.probeSoon(false);
    if (debug.enabled) debugLog(`-> ${opName(call.op)} id ${call.id}, ${call.request.size} B${call.probe ? " (link probe)" : ""}`);
    call.lastTxAt = performance.now();
    call.unwritten++;
    this._transport.sendRequest(call.request, (err) => {
      call.unwritten--;
      if (call.done) return;
      if (err) this.writeFailed(call, err);
      else {
        call.writtenAt = performance.now();
        this.arm(call, call.timeoutMs); // the timeout counts from the written frame
        this.resendIfDue(call);
      }
    });
  }

  /**
   * A write failed: the link is gone. When the owner can bring it back, that
   * is a device reset for every call (the transport's own 'disconnected'
   * may come later); otherwise the call fails with DisconnectedError.
   */
  private writeFailed(call: Call, err: Error): void {
    const gone = err instanceof MbedlinkError ? err : new DisconnectedError(`write failed: ${err.message}`);
    if (this.onLinkLost) this.onDisconnected(gone);
    else this.finish(call, gone);
  }

  /**
   * Sends a lost call again: the same id and the same bytes, so the device
   * answers it from its record if the first transmission ran (spec §6).
   */
  private resend(call: Call): void {
    if (call.unwritten > 0) {
      // An earlier copy still waits for the OS (a slow line's buffer is
      // full): a second one would only lengthen the queue it waits in. It
      // goes once that copy is written.
      call.resendDue = true;
      return;
    }
    call.attempts++;
    call.lastTxAt = performance.now();
    call.unwritten++;
    this.retries++;
    this.txs.push(call);
    if (this.lossy) this.probeSoon(false);
    if (debug.enabled) debugLog(`-> ${opName(call.op)} id ${call.id}, ${call.request.size} B (resend ${call.attempts - 1})`);
    this.armAttempt(call);
    this._transport.sendRequest(call.request, (err) => {
      call.unwritten--;
      if (err && !call.done) this.writeFailed(call, err);
      else this.resendIfDue(call);
    });
  }

  /** Sends the resend that waited for the last copy to be written, if the call still needs it. */
  private resendIfDue(call: Call): void {
    if (!call.resendDue || call.unwritten > 0) return;
    call.resendDue = false;
    if (!call.done && this.canResend(call)) this.resend(call);
  }

  /** The call may run `ms` more from now (its timeout; a busy event re-arms it). */
  private arm(call: Call, ms: number): void {
    call.deadline = performance.now() + ms;
    this.armAttempt(call);
  }

  /** Whether a lost call may go again: resending is on, the op allows it, in order, and its timeout leaves room for an attempt. */
  private canResend(call: Call): boolean {
    return call.retryable && this.maxRetries > 0 && this.orderSafe(call) && call.deadline - performance.now() > MIN_ATTEMPT_MS / 2;
  }

  /**
   * How long an attempt waits for its answer before the call is resent:
   * timeout / (retries + 1); while the line is seen losing frames, a few response
   * times at first, doubling with each attempt up to that (a lost frame is
   * the likely reason then, and a resend of a request that is merely slow
   * is answered from the record).
   */
  private attemptMs(call: Call): number {
    const full = Math.max(MIN_ATTEMPT_MS, call.timeoutMs / (this.maxRetries + 1));
    if (!this.lossy) return full;
    return Math.min(full, this.quickMs(call) * 2 ** (call.attempts - 1));
  }

  /**
   * A few response times, plus the time the line needs for the bytes queued
   * ahead of `call`'s newest transmission and for its own: how long a lost
   * frame goes unnoticed at most while the line loses frames. Without the
   * byte term a 4 KiB frame on a slow UART (about 0.2 s on QEMU's) would be
   * resent many times while its first copy is still on its way.
   */
  private quickMs(call?: Call): number {
    return Math.max(MIN_ATTEMPT_MS, 4 * this.srtt) + (call ? this.lineMs(call) : 0);
  }

  /** How long after its newest copy went out `call`'s answer is overdue: a couple of response times plus the line time. */
  private answerDueMs(call: Call): number {
    return Math.max(PROBE_DELAY_MIN_MS, 2 * this.srtt) + this.lineMs(call);
  }

  /**
   * Line time for the transmissions waiting up to and including `call`'s
   * newest one: request bytes plus about as many answer bytes, at the rate
   * seen so far.
   */
  private lineMs(call: Call): number {
    const last = this.txs.lastIndexOf(call);
    let bytes = 0;
    for (let i = 0; i <= last; i++) bytes += 2 * (this.txs[i] as Call).request.size;
    if (last < 0) bytes = 2 * call.request.size;
    return bytes * this.msPerByte;
  }

  /** Timer for the current attempt: the deadline, or sooner when a resend is still possible. */
  private armAttempt(call: Call): void {
    if (call.timer) clearTimeout(call.timer);
    const left = call.deadline - performance.now();
    const ms = this.canResend(call) ? Math.min(left, this.attemptMs(call)) : left;
    call.timer = setTimeout(() => this.onTimer(call), Math.max(0, ms));
  }

  private onTimer(call: Call): void {
    call.timer = undefined;
    if (call.done) return;
    // libuv schedules a timer from the loop's cached clock, which lags by as
    // long as the current tick has run: on a busy host a timer set late in a
    // long tick fires that much early. A call never times out before its time.
    const early = call.deadline - performance.now();
    if (early > 1 && !this.canResend(call)) {
      call.timer = setTimeout(() => this.onTimer(call), Math.ceil(early));
      return;
    }
    if (this.canResend(call)) {
      this.noteLoss();
      this.resend(call); // earlier transmissions stay on the books: an answer to any of them settles the call
      return;
    }
    const tries = call.attempts > 1 ? ` (${call.attempts} attempts)` : "";
    this.noteLoss();
    this.finish(call, new TimeoutError(`${opName(call.op)} (id ${call.id}): no response within ${call.timeoutMs} ms${tries}`));
  }

  /**
   * `call` was answered: in-order peers never answer an earlier request
   * later, so the transmissions before its earliest one still waiting are
   * lost. (Which of a call's transmissions an answer belongs to cannot be
   * told, the bytes being the same; taking the earliest reveals no loss
   * that did not happen.)
   */
  private revealLosses(call: Call): void {
    const k = this.txs.indexOf(call);
    if (k <= 0) return;
    this.lostFrames += k;
    this.noteLoss();
    const lost = new Set(this.txs.splice(0, k));
    for (const c of lost) {
      if (c.done) continue;
      if (this.txs.includes(c)) continue; // a later transmission is still on its way
      if (this.canResend(c)) this.resend(c);
      else {
        this.finish(c, new TimeoutError(`${opName(c.op)} (id ${c.id}): request or response lost on the link (${this.whyNot(c)})`));
      }
    }
  }

  /** Why a lost call is not resent. */
  private whyNot(c: Call): string {
    if (c.probe) return "link probe";
    if (!c.retryable) return "the op is never resent";
    if (this.maxRetries === 0) return "resending is off";
    if (!this.orderSafe(c)) return "not resent: requests sent after it may depend on it";
    return `${c.attempts} attempts`;
  }

  /**
   * After a dropped frame: with one call waiting, it is the one lost (a
   * transmission of it, or its answer): once as many frames were dropped as
   * it has transmissions waiting, it goes again at once, as its own probe.
   * Else, unless an
   * answer comes soon anyway (about two response times), a probe goes. While
   * the line loses frames, every transmission arms the same timer: a frame
   * whose closing END was lost waits for the next frame to end it, which the
   * probe is.
   */
  private probeSoon(afterDrop: boolean): void {
    if (!this.inOrder || this.txs.length === 0) return;
    const only = this.txs[0] as Call;
    if (afterDrop && !only.probe && this.txs.every((c) => c === only)) {
      // Each transmission comes back as one answer or one dropped frame:
      // once the drops seen cover all of its transmissions, none is left.
      if (++only.dropsAlone >= this.txs.length && this.canResend(only)) {
        this.probes++; // the call is its own probe
        this.resend(only);
        return;
      }
    }
    if (this.probing || this.probeTimer) return;
    this.armProbe(this.answerDueMs(this.txs[0] as Call));
  }

  /**
   * The probe timer: when it runs out with the same transmission still first
   * in line, a probe goes; when that one was answered meanwhile, it waits on
   * for the answer of the next one, due from its own newest copy.
   */
  private armProbe(ms: number): void {
    const head = this.txs[0] as Call;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      const next = this.txs[0];
      if (next === head) this.probe();
      else if (next && this.inOrder && !this.probing)
        this.armProbe(Math.max(0, next.lastTxAt + this.answerDueMs(next) - performance.now()));
    }, ms);
  }

  /**
   * A tiny request whose answer reveals which calls were lost. A probe is a
   * new request like any other and takes its place in the anchored window;
   * when the window is full, the oldest unanswered call is resent instead
   * (its answer comes from the device's record if it ran).
   */
  private probe(): void {
    if (!this.inOrder || this.probing || this.gone || this.linkDown || this.txs.length === 0) return;
    if (!this.hasRoom()) {
      const head = this.live.find((c) => !c.done);
      if (!head) return;
      // ... once its newest copy has had the time the line needs for it
      const wait = head.lastTxAt + this.answerDueMs(head) - performance.now();
      if (wait > 0) {
        if (!this.probeTimer) {
          this.probeTimer = setTimeout(() => {
            this.probeTimer = undefined;
            this.probe();
          }, Math.ceil(wait));
        }
        return;
      }
      if (this.canResend(head)) {
        this.probes++;
        this.resend(head);
      }
      return;
    }
    const id = this.allocId();
    const timeoutMs = this.quickMs();
    const done = () => {
      this.probing = false;
    };
    const call = this.newCall(id, Op.echo, this._transport.encodeRequest(id, [Op.echo, new Uint8Array(0)]), timeoutMs, done, done, true);
    this.probing = true;
    this.probes++;
    this.pending.set(id, call);
    this.send(call);
  }

  /** Removes a call from the books and settles it. */
  private finish(call: Call, err: Error | null, value?: unknown): void {
    if (call.done) return;
    call.done = true;
    this.pending.delete(call.id);
    for (let i = this.txs.length - 1; i >= 0; i--) if (this.txs[i] === call) this.txs.splice(i, 1);
    if (call.timer) clearTimeout(call.timer);
    call.timer = undefined;
    if (call.sent) {
      this.inFlight--;
      if (call.ordered) this.orderedInFlight--;
    } else {
      for (const q of [this.queue, this.priority]) {
        const i = q.indexOf(call);
        if (i >= 0) q.splice(i, 1);
      }
    }
    if (debug.enabled && !call.probe) logSettled(call, err);
    if (err) call.reject(err);
    else call.resolve(value);
    if (!call.probe && this.listenerCount("settled") > 0) {
      const now = performance.now();
      const w = call.writtenAt;
      this.emit("settled", {
        op: opName(call.op),
        attempts: call.attempts,
        queuedMs: (w ?? now) - call.queuedAt,
        activeMs: w === undefined ? 0 : now - w,
        budgetMs: w === undefined ? 0 : call.deadline - w,
        error: err,
      });
    }
    this.pump();
  }

  private onMessage(msg: Message): void {
    const id = msg[0];
    if (debug.enabled) this.logReceived(msg);
    if (id === null) {
      this.onEvent(msg);
      return;
    }
    const now = performance.now();
    const answeredBefore = this.lastAnswerAt;
    this.lastAnswerAt = now;
    const call = this.pending.get(id);
    if (!call?.sent) {
      this.lateResponses++; // timed out, a second answer (a resend's), or garbage
      return;
    }
    if (this.inOrder) this.revealLosses(call);
    if (call.done) return;
    this.cleanAnswers++;
    if (call.attempts === 1 && call.writtenAt !== undefined && !call.probe) {
      const rtt = now - call.writtenAt;
      this.srtt = this.srtt === 0 ? rtt : 0.875 * this.srtt + 0.125 * rtt;
      // Its service time: from when it was written or the answer before came, whichever is later.
      const bytes = call.request.size + this._transport.lastFrameSize;
      if (bytes >= LINE_SAMPLE_BYTES) {
        const perByte = (now - Math.max(call.writtenAt, answeredBefore)) / bytes;
        this.msPerByte = this.lineSamples++ === 0 ? perByte : 0.875 * this.msPerByte + 0.125 * perByte;
      }
    }
    const [err, value] = settle(call, msg);
    if (err instanceof BadHandleError) this.emit("badHandle", opName(call.op));
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
      this.noteLoss(true);
      const reason = msg[2];
      const total = msg[3];
      this.emit("frameDropped", {
        side: "device",
        reason: (typeof reason === "number" ? DROP_REASON_NAMES.get(reason) : undefined) ?? `reason ${String(reason)}`,
        total: typeof total === "number" ? total : this.deviceDrops,
      });
      this.probeSoon(true);
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

  private logReceived(msg: Message): void {
    const [id, kind] = msg;
    const size = this._transport.lastFrameSize;
    if (id === null) {
      const args = msg.slice(2).map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : String(v)));
      debugLog(`<- event ${EVENT_NAMES.get(kind as number) ?? String(kind)} [${args.join(", ")}], ${size} B`);
      return;
    }
    const call = this.pending.get(id);
    const status = kind === 0 ? "ok" : (STATUS_INFO.get(kind as number)?.name ?? `status ${String(kind)}`);
    debugLog(`<- ${call ? opName(call.op) : "(no pending call)"} id ${id}, ${status}, ${size} B`);
  }

  private deviceReset(bootId: Uint8Array | undefined, why: string): void {
    this.epoch++;
    this.failAll(new DeviceResetError(why));
    this.emit("reset", { bootId, epoch: this.epoch });
  }

  private onDisconnected(err: Error): void {
    if (this.gone || this.linkDown) return;
    const recover = this.onLinkLost;
    if (recover) {
      this.linkDown = true;
      this.deviceReset(undefined, `device lost (${err.message}); reconnecting`);
      recover(err);
      return;
    }
    this.gone = err instanceof DisconnectedError ? err : new DisconnectedError(err.message);
    this.failAll(this.gone);
    this.emit("disconnected", this.gone);
  }
}
