// Link fault injector: a relay between the host and a device's serial line
// (the native simulator's PTY, QEMU's USART PTY, or any tty) that damages the
// bytes going through it, each direction on its own terms.
//
// * The host side is a new PTY made by `socat PTY,raw,echo=0 STDIO`: its
//   master end is socat's, and socat's stdin/stdout are pipes to this
//   process, so every byte passes through Node where the faults are applied.
//   A keeper fd on the slave stays open so that the host may close and
//   reopen `hostPath` without socat seeing a hangup.
// * The device side is opened here with serialport (the same safe-write
//   binding the SDK uses). `setDevice(path)` points the relay at another
//   device (e.g. a restarted simulator) without changing `hostPath`.
// * Faults, per byte and per direction ("up" host→device, "down"
//   device→host), are drawn from a PRNG seeded with `seed` and the
//   direction, so the same byte stream with the same seed gets the same
//   faults: flip (one random bit of the byte), drop, dup (the byte is sent
//   twice), delay (the stream stalls before the byte). `baud` caps the byte
//   rate at baud/10 bytes per second (8N1), per direction, like a UART.
//   `cut(ms)` drops every byte that would be on the line in the next `ms`.
// * Targeted: `dropNext(direction, match)` drops exactly one whole frame,
//   the next one in that direction whose decoded message `match` accepts
//   (or the n-th frame from now), before the byte faults, and resolves with
//   what it carried: a test can lose exactly the answer to one request.
import type { ChildProcess } from "node:child_process";
import { closeSync, constants, openSync } from "node:fs";
import { SerialPortStream } from "@serialport/stream";
import { decodeBody } from "../host/src/link/codec.js";
import { END, SlipDecoder } from "../host/src/link/slip.js";
import { safeWriteBinding } from "../host/src/link/transport.js";
import { spawnTracked, stopChild, waitForLine } from "../host/src/targets/process.js";
import { requireTool } from "../tools/programs.js";

/** Faults of one direction. Probabilities are per byte, 0..1. */
export interface FaultSpec {
  /** Byte error rate: the byte gets one random bit flipped. */
  flip?: number;
  /** The byte is lost. */
  drop?: number;
  /** The byte is sent twice. */
  dup?: number;
  /** The stream stalls before the byte for `delayMs`. */
  delay?: number;
  /** Length of a stall: a fixed ms or a [min, max] range drawn uniformly (default 20). */
  delayMs?: number | readonly [number, number];
}

export interface LaneStats {
  /** Bytes that entered the relay in this direction. */
  bytesIn: number;
  /** Bytes written out (after drops, duplicates and cuts). */
  bytesOut: number;
  flipped: number;
  dropped: number;
  duplicated: number;
  delays: number;
  /** Total stall time in ms. */
  delayedMs: number;
  /** Bytes lost to cut(), or because the device side was not open. */
  cutDropped: number;
}

export interface RelayStats {
  up: LaneStats;
  down: LaneStats;
}

/** A line direction: "up" host → device, "down" device → host. */
export type Direction = "up" | "down";

/** A frame dropped by dropNext. */
export interface DroppedFrame {
  direction: Direction;
  /** The frame body (CBOR + CRC), SLIP escapes removed. */
  body: Uint8Array;
  /** The decoded message, or undefined when the body was not a valid frame. */
  message: unknown[] | undefined;
}

/** Which frame dropNext drops: the first whose message the predicate accepts, or the n-th frame from now (1: the next). */
export type FrameMatch = ((message: unknown[] | undefined, body: Uint8Array) => boolean) | number;

export interface RelayOptions {
  /** The device's serial line (PTY path). */
  devicePath: string;
  /** PRNG seed (uint32); the same seed replays the same faults on the same byte stream. */
  seed: number;
  /** host → device faults. */
  up?: FaultSpec;
  /** device → host faults. */
  down?: FaultSpec;
  /** Line rate cap in baud (8N1: 10 bits per byte), both directions; none when absent. */
  baud?: number;
}

export interface Relay {
  /** The PTY the host opens instead of the device. */
  readonly hostPath: string;
  /** The device path the relay currently talks to. */
  readonly devicePath: string;
  stats(): RelayStats;
  /** Replaces the fault specs (and the rate cap); directions not given keep theirs. */
  set(spec: { up?: FaultSpec; down?: FaultSpec; baud?: number | undefined }): void;
  /** Cuts the line for `ms`: every byte due on the line meanwhile is lost, both directions. */
  cut(ms: number): void;
  /**
   * Drops exactly one whole frame going `direction`: the next one (starting
   * after this call) that `match` selects. Resolves with it once dropped.
   * Several pending dropNext calls of one direction take frames in turn.
   */
  dropNext(direction: Direction, match: FrameMatch): Promise<DroppedFrame>;
  /**
   * Lets the next request `match` selects through and drops exactly its
   * answer (the next device frame with its id). Resolves with both.
   */
  dropAnswer(match: (request: unknown[]) => boolean): Promise<{ request: unknown[]; answer: DroppedFrame }>;
  /** Points the relay at another device path (the old one is closed). */
  setDevice(path: string): Promise<void>;
  /** Stops socat and closes both sides. Idempotent. */
  stop(): Promise<void>;
}

// ------------------------------------------------------------------- PRNG

/** splitmix32: seeds the generator from a uint32. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** xoshiro128**: uniform floats in [0, 1) from a uint32 seed. Deterministic. */
export function prng(seed: number): () => number {
  const sm = splitmix32(seed);
  let a = sm();
  let b = sm();
  let c = sm();
  let d = sm();
  return () => {
    const r = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return r / 0x100000000;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

// ------------------------------------------------------------------- lane

type Item = { bytes: Uint8Array } | { stallMs: number };

function checkProbability(name: string, p: number | undefined): void {
  if (p !== undefined && !(p >= 0 && p <= 1)) throw new RangeError(`fault ${name} must be in 0..1, got ${p}`);
}

function checkSpec(spec: FaultSpec): void {
  checkProbability("flip", spec.flip);
  checkProbability("drop", spec.drop);
  checkProbability("dup", spec.dup);
  checkProbability("delay", spec.delay);
  if ((spec.flip ?? 0) + (spec.drop ?? 0) + (spec.dup ?? 0) > 1) throw new RangeError("flip + drop + dup must not exceed 1");
}

export function emptyLaneStats(): LaneStats {
  return { bytesIn: 0, bytesOut: 0, flipped: 0, dropped: 0, duplicated: 0, delays: 0, delayedMs: 0, cutDropped: 0 };
}

/**
 * One direction of the line: `push` applies the byte faults at once (so the
 * faults depend only on the seed and the byte stream), and a pump releases
 * the result at the line rate, honouring stalls and cuts.
 */
export class FaultLane {
  readonly stats: LaneStats = emptyLaneStats();
  private readonly rand: () => number;
  private readonly queue: Item[] = [];
  private byteMs = 0;
  /** When the line is free for the next byte (performance.now() ms). */
  private lineAt = 0;
  private stallUntil = 0;
  private cutUntil = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    seed: number,
    private spec: FaultSpec,
    private readonly out: (bytes: Uint8Array) => void,
    baud?: number,
  ) {
    checkSpec(spec);
    this.rand = prng(seed);
    this.setBaud(baud);
  }

  setSpec(spec: FaultSpec): void {
    checkSpec(spec);
    this.spec = spec;
  }

  setBaud(baud: number | undefined): void {
    if (baud !== undefined && !(baud > 0)) throw new RangeError(`baud must be positive, got ${baud}`);
    this.byteMs = baud ? 10_000 / baud : 0;
  }

  cut(ms: number): void {
    this.cutUntil = Math.max(this.cutUntil, performance.now() + ms);
  }

  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  push(chunk: Uint8Array): void {
    if (this.stopped) return;
    const { flip = 0, drop = 0, dup = 0, delay = 0 } = this.spec;
    const st = this.stats;
    st.bytesIn += chunk.length;
    // An idle line does not bank time beyond one byte.
    if (this.queue.length === 0) this.lineAt = Math.max(this.lineAt, performance.now() - this.byteMs);
    const pDrop = drop;
    const pFlip = pDrop + flip;
    const pDup = pFlip + dup;
    let out: number[] = [];
    for (const byte of chunk) {
      if (delay > 0 && this.rand() < delay) {
        if (out.length) this.queue.push({ bytes: Uint8Array.from(out) });
        out = [];
        const ms = this.stallLength();
        st.delays++;
        st.delayedMs += ms;
        this.queue.push({ stallMs: ms });
      }
      const u = pDup > 0 ? this.rand() : 1;
      if (u < pDrop) {
        st.dropped++;
      } else if (u < pFlip) {
        st.flipped++;
        out.push(byte ^ (1 << Math.floor(this.rand() * 8)));
      } else if (u < pDup) {
        st.duplicated++;
        out.push(byte, byte);
      } else {
        out.push(byte);
      }
    }
    if (out.length) this.queue.push({ bytes: Uint8Array.from(out) });
    this.pump();
  }

  private stallLength(): number {
    const d = this.spec.delayMs ?? 20;
    if (typeof d === "number") return d;
    const [lo, hi] = d;
    return lo + this.rand() * (hi - lo);
  }

  private pump(): void {
    if (this.timer || this.stopped) return;
    for (;;) {
      const now = performance.now();
      if (now < this.stallUntil) {
        this.wake(this.stallUntil - now);
        return;
      }
      const item = this.queue[0];
      if (!item) return;
      if ("stallMs" in item) {
        this.queue.shift();
        this.stallUntil = now + item.stallMs;
        this.lineAt = Math.max(this.lineAt, this.stallUntil - this.byteMs);
        continue;
      }
      let n = item.bytes.length;
      if (this.byteMs > 0) {
        n = Math.min(n, Math.floor((now - this.lineAt) / this.byteMs));
        if (n === 0) {
          this.wake(this.lineAt + this.byteMs - now);
          return;
        }
        this.lineAt += n * this.byteMs;
      }
      const bytes = n === item.bytes.length ? item.bytes : item.bytes.subarray(0, n);
      if (n === item.bytes.length) this.queue.shift();
      else item.bytes = item.bytes.subarray(n);
      if (now < this.cutUntil) this.stats.cutDropped += bytes.length;
      else {
        this.stats.bytesOut += bytes.length;
        this.out(bytes);
      }
    }
  }

  private wake(ms: number): void {
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.max(1, Math.ceil(ms)),
    );
  }
}

// -------------------------------------------------------------- frame tap

interface Target {
  match: FrameMatch;
  /** Frames seen so far (for a count). */
  seen: number;
  /** Watch only: the frame selected goes on. */
  pass: boolean;
  resolve: (f: DroppedFrame) => void;
}

/**
 * Sits in front of a lane and drops chosen whole frames. With nothing to
 * drop, bytes pass as they come. Once a target is set, it passes the frame
 * in progress on, then holds each following frame's body until its closing
 * END to decide: dropped (only its END delimiters go on, an empty frame
 * every SLIP receiver ignores) or passed whole.
 */
export class FrameTap {
  private readonly targets: Target[] = [];
  /** Between frames (after an END), where holding may start. */
  private atBoundary = true;
  /** The body being held, when holding. */
  private held: Uint8Array[] | undefined;

  constructor(private readonly direction: Direction) {}

  /** Drops the next frame `match` selects; resolves with it when dropped. */
  dropNext(match: FrameMatch): Promise<DroppedFrame> {
    return this.target(match, false);
  }

  /** Resolves with the next frame `match` selects, which goes on. */
  watchNext(match: FrameMatch): Promise<DroppedFrame> {
    return this.target(match, true);
  }

  private target(match: FrameMatch, pass: boolean): Promise<DroppedFrame> {
    if (typeof match === "number" && !(Number.isInteger(match) && match >= 1))
      throw new RangeError(`frame count must be 1 or more, got ${match}`);
    // At a boundary the next frame may start without an opening END: hold from here.
    if (this.atBoundary) this.held ??= [];
    return new Promise((resolve) => this.targets.push({ match, seen: 0, pass, resolve }));
  }

  /** The bytes to pass on for `chunk`. */
  feed(chunk: Uint8Array): Uint8Array {
    if (this.targets.length === 0 && this.held === undefined) {
      const last = chunk.lastIndexOf(END);
      if (last >= 0) this.atBoundary = last === chunk.length - 1;
      else if (chunk.length > 0) this.atBoundary = false;
      return chunk;
    }
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < chunk.length) {
      const at = chunk.indexOf(END, i);
      const stop = at < 0 ? chunk.length : at;
      if (stop > i) {
        const part = chunk.subarray(i, stop);
        if (this.held) this.held.push(part);
        else {
          out.push(part);
          this.atBoundary = false;
        }
      }
      if (at < 0) break;
      const body = this.held;
      this.held = undefined;
      if (body && body.length > 0 && this.decide(Buffer.concat(body))) out.push(...body);
      out.push(chunk.subarray(at, at + 1));
      this.atBoundary = true;
      if (this.targets.length > 0) this.held = [];
      i = at + 1;
    }
    return out.length === 1 ? (out[0] as Uint8Array) : Buffer.concat(out);
  }

  /** A whole held frame: false when a target drops it. */
  private decide(body: Uint8Array): boolean {
    let decoded: Uint8Array | undefined;
    new SlipDecoder(body.length + 2, { frame: (b) => (decoded = b), drop: () => {} }).push(
      Buffer.concat([Uint8Array.of(END), body, Uint8Array.of(END)]),
    );
    const plain = decoded ?? body;
    const r = decoded ? decodeBody(decoded) : undefined;
    const message = r?.ok && Array.isArray(r.message) ? (r.message as unknown[]) : undefined;
    // Targets in the order set; a drop ends the round (later targets never see the frame).
    for (let k = 0; k < this.targets.length; ) {
      const t = this.targets[k] as Target;
      t.seen++;
      if (!(typeof t.match === "number" ? t.seen === t.match : t.match(message, plain))) {
        k++;
        continue;
      }
      this.targets.splice(k, 1);
      t.resolve({ direction: this.direction, body: plain, message });
      if (!t.pass) return false;
    }
    return true;
  }
}

// ------------------------------------------------------------------ relay

function openDevice(path: string): Promise<SerialPortStream> {
  return new Promise((resolve, reject) => {
    const port = new SerialPortStream({ binding: safeWriteBinding, path, baudRate: 115200, autoOpen: false });
    port.open((err) => (err ? reject(new Error(`fault relay: cannot open ${path}: ${err.message}`)) : resolve(port)));
  });
}

function closePort(port: SerialPortStream): Promise<void> {
  return new Promise((resolve) => {
    if (!port.isOpen) resolve();
    else port.close(() => resolve());
  });
}

/** Starts a relay in front of `devicePath`. */
export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const seed = opts.seed >>> 0;
  let device: SerialPortStream | undefined;
  let devicePath = opts.devicePath;
  let stopping: Promise<void> | undefined;

  // a missing socat is one line naming its package, not a spawn ENOENT
  const socat: ChildProcess = spawnTracked(requireTool("socat"), ["-d", "-d", "PTY,raw,echo=0", "STDIO"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  socat.on("error", () => {}); // reported by waitForLine
  socat.stdin?.on("error", () => {}); // socat gone while we write: stop() is on its way
  let hostPath: string;
  try {
    const m = await waitForLine(socat, "stderr", /PTY is (\/dev\/pts\/\d+)/, 10_000, "socat");
    hostPath = m[1] as string;
  } catch (e) {
    await stopChild(socat);
    throw e;
  }
  // Keeps the slave open so a host closing it does not hang up socat's master.
  const keeper = openSync(hostPath, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);

  const up = new FaultLane(
    seed ^ 0x55500000,
    opts.up ?? {},
    (bytes) => {
      if (device?.isOpen) device.write(bytes);
      else up.stats.cutDropped += bytes.length;
    },
    opts.baud,
  );
  const down = new FaultLane(seed ^ 0xd0e00000, opts.down ?? {}, (bytes) => socat.stdin?.write(bytes), opts.baud);
  const taps = { up: new FrameTap("up"), down: new FrameTap("down") };
  socat.stdout?.on("data", (d: Buffer) => up.push(taps.up.feed(d)));

  const attach = async (path: string): Promise<void> => {
    const old = device;
    device = undefined;
    if (old) await closePort(old);
    const port = await openDevice(path);
    port.on("data", (d: Buffer) => {
      if (device === port) down.push(taps.down.feed(d));
    });
    port.on("error", () => {});
    devicePath = path;
    device = port;
  };
  try {
    await attach(opts.devicePath);
  } catch (e) {
    closeSync(keeper);
    await stopChild(socat);
    throw e;
  }

  return {
    hostPath,
    get devicePath() {
      return devicePath;
    },
    stats: () => ({ up: { ...up.stats }, down: { ...down.stats } }),
    set(spec) {
      if (spec.up) up.setSpec(spec.up);
      if (spec.down) down.setSpec(spec.down);
      if ("baud" in spec) {
        up.setBaud(spec.baud);
        down.setBaud(spec.baud);
      }
    },
    cut(ms) {
      up.cut(ms);
      down.cut(ms);
    },
    dropNext: (direction, match) => taps[direction].dropNext(match),
    async dropAnswer(match) {
      let answer: Promise<DroppedFrame> | undefined;
      const req = await taps.up.watchNext((m) => {
        if (!m || !match(m)) return false;
        // armed before the request goes on, so before its answer can come
        answer = taps.down.dropNext((a) => a?.[0] === m[0]);
        return true;
      });
      return { request: req.message as unknown[], answer: await (answer as Promise<DroppedFrame>) };
    },
    setDevice: (path) => attach(path),
    stop() {
      stopping ??= (async () => {
        up.stop();
        down.stop();
        const port = device;
        device = undefined;
        if (port) await closePort(port);
        try {
          closeSync(keeper);
        } catch {
          // already closed
        }
        await stopChild(socat);
      })();
      return stopping;
    },
  };
}
