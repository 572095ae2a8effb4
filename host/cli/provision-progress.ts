// The progress display of `mbedlink provision`: one line per device (what
// runs on it now and for how long, then its outcome), redrawn in place on a
// terminal. Progress (progress.ts) shows one activity; several devices
// provisioned at once need a line each. Silent when stderr is not a
// terminal: the results on stdout say everything then.

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const TICK_MS = 100;

interface Row {
  label: string;
  status: string;
  started: number;
  /** Final text ("ok ..." / "FAILED ..."): the line stops changing. */
  done: string | undefined;
}

export class DeviceBoard {
  private readonly rows: Row[] = [];
  private drawn = 0;
  private frame = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private stopped = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    readonly enabled: boolean = stream.isTTY === true,
  ) {}

  /** Adds a device's line; returns its index. */
  add(label: string): number {
    this.rows.push({ label, status: "waiting", started: performance.now(), done: undefined });
    if (this.enabled && !this.timer) {
      this.timer = setInterval(() => this.draw(), TICK_MS);
      this.timer.unref();
    }
    return this.rows.length - 1;
  }

  /** What runs on device `i` now. */
  step(i: number, status: string): void {
    const r = this.rows[i];
    if (r) r.status = status;
  }

  /** Device `i` is finished: its line shows `text` from now on. */
  finish(i: number, text: string): void {
    const r = this.rows[i];
    if (r) r.done = text;
  }

  /** The lines as drawn now (also for tests). */
  lines(now = performance.now()): string[] {
    const width = Math.max(...this.rows.map((r) => r.label.length));
    const spin = FRAMES[this.frame % FRAMES.length] as string;
    return this.rows.map((r) => {
      const head = `${r.label.padEnd(width)}  `;
      if (r.done !== undefined) return `${head}${r.done}`;
      return `${head}${spin} ${r.status}  ${((now - r.started) / 1000).toFixed(1)} s`;
    });
  }

  /** Redraws every line in place. */
  draw(): void {
    if (!this.enabled || this.stopped || this.rows.length === 0) return;
    this.frame++;
    const columns = this.stream.columns && this.stream.columns > 1 ? this.stream.columns - 1 : 79;
    const up = this.drawn > 0 ? `\x1b[${this.drawn}F` : "";
    const body = this.lines()
      .map((l) => `\x1b[2K${l.length > columns ? l.slice(0, columns) : l}\n`)
      .join("");
    this.stream.write(up + body);
    this.drawn = this.rows.length;
  }

  /** A last redraw (every line final), then no more; later calls do nothing. */
  stop(): void {
    if (this.stopped) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.draw();
    this.stopped = true;
  }
}
