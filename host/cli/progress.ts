// A one-line progress display on stderr (spinner, what runs, elapsed time)
// for operations that take seconds: RSA key generation on a microcontroller,
// a big file through a 115200-baud UART. The device's busy events (a long
// request is still running) bring it up at once and give the device's own
// elapsed time; otherwise it appears after a second. Silent when stderr is
// not a terminal.
import type { BusyInfo, Device } from "../src/index.js";

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const TICK_MS = 100;
/** An activity shows up after this long even without busy events. */
const SHOW_AFTER_MS = 1000;
/** A busy event outside any activity shows this long after the last one. */
const BUSY_LINGER_MS = 3000;

interface Activity {
  label: () => string;
  started: number;
  /** The device's elapsed time from its latest busy event, and when it came. */
  deviceMs: number;
  busyAt: number;
  /** Made by a busy event, not by during(): ends when the events stop. */
  implicit: boolean;
}

export class Progress {
  private activity: Activity | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private frame = 0;
  private shown = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    readonly enabled: boolean = stream.isTTY === true,
  ) {}

  /** Shows the device's busy events. */
  attach(dev: Device): void {
    dev.on("busy", (info) => this.busy(info));
  }

  /** Runs `work`, showing `label` (text, or a function read at every redraw) while it takes long. */
  async during<T>(label: string | (() => string), work: Promise<T>): Promise<T> {
    if (!this.enabled) return work;
    const previous = this.activity;
    this.start({
      label: typeof label === "string" ? () => label : label,
      started: performance.now(),
      deviceMs: 0,
      busyAt: 0,
      implicit: false,
    });
    try {
      return await work;
    } finally {
      this.stop();
      if (previous && !previous.implicit) this.start(previous);
    }
  }

  /** Erases the line (before anything else is written to the terminal); the next tick redraws it. */
  clear(): void {
    if (!this.shown) return;
    this.stream.write("\r\x1b[2K");
    this.shown = false;
  }

  private busy(info: BusyInfo): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (!this.activity)
      this.start({ label: () => `${info.op} running on the device`, started: now, deviceMs: 0, busyAt: 0, implicit: true });
    const a = this.activity as Activity;
    a.deviceMs = info.elapsedMs;
    a.busyAt = now;
    this.draw();
  }

  private start(a: Activity): void {
    this.activity = a;
    this.timer ??= setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  private stop(): void {
    this.clear();
    this.activity = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const a = this.activity;
    if (!a) return;
    const now = performance.now();
    if (a.implicit && now - a.busyAt > BUSY_LINGER_MS) {
      this.stop();
      return;
    }
    if (a.busyAt > 0 || now - a.started >= SHOW_AFTER_MS) this.draw();
  }

  private draw(): void {
    const a = this.activity;
    if (!a) return;
    const now = performance.now();
    const deviceNow = a.busyAt > 0 ? a.deviceMs + (now - a.busyAt) : 0;
    const seconds = Math.max(now - a.started, deviceNow) / 1000;
    this.frame = (this.frame + 1) % FRAMES.length;
    const columns = this.stream.columns;
    const width = columns && columns > 1 ? columns - 1 : 79;
    const text = `${FRAMES[this.frame]} ${a.label()}  ${seconds.toFixed(1)} s`;
    this.stream.write(`\r\x1b[2K${text.length > width ? text.slice(0, width) : text}`);
    this.shown = true;
  }
}
