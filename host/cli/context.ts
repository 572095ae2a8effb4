// What a command gets: its parsed arguments, the output, the progress line,
// and the device (opened on first use, closed when the command ends).
import type { Device } from "../src/index.js";
import type { CommandSpec, CommonOptions, Values } from "./args.js";
import type { Output } from "./output.js";
import type { Progress } from "./progress.js";
import { chooseDevice, connect, type DeviceChoice, deviceLabel } from "./session.js";

export class Context {
  private dev: Device | undefined;
  private chosen: DeviceChoice | undefined;

  constructor(
    readonly command: CommandSpec,
    readonly values: Values,
    readonly positionals: string[],
    readonly common: CommonOptions,
    readonly out: Output,
    readonly progress: Progress,
  ) {}

  /** The device the options and environment name (decided on first use). */
  get choice(): DeviceChoice {
    this.chosen ??= chooseDevice(this.common);
    return this.chosen;
  }

  /** A string option's value. */
  str(name: string): string | undefined {
    const v = this.values[name];
    return typeof v === "string" ? v : undefined;
  }

  /** A boolean option's value. */
  flag(name: string): boolean {
    return this.values[name] === true;
  }

  /** How messages name the device. */
  get deviceLabel(): string {
    return deviceLabel(this.choice);
  }

  /** The device, opened on first use. */
  async device(): Promise<Device> {
    if (!this.dev) {
      const opening = connect(this.choice, this.common.timeoutMs);
      this.dev = await this.progress.during(`opening ${this.deviceLabel}`, opening);
      this.progress.attach(this.dev);
    }
    return this.dev;
  }

  /** Closes the device if it was opened (stopping a target the CLI started). */
  async close(): Promise<void> {
    const dev = this.dev;
    this.dev = undefined;
    await dev?.close();
  }

  /** What --json documents say about the device used. */
  get deviceJson(): Record<string, unknown> {
    return this.choice.kind === "port" ? { port: this.choice.path } : { target: this.choice.target, storeDir: this.choice.storeDir };
  }
}
