// Which device a command talks to and opening it: --port, --target,
// $MBEDLINK_PORT, $MBEDLINK_TARGET, else the emulated STM32 when QEMU is
// installed, else the native simulator. A target the CLI starts keeps its key
// store in a per-user directory, so `keygen` and a later `sign` see the same
// slots. Open failures become one plain line (no device, port busy, ...).
import { existsSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { type Device, open, TimeoutError } from "../src/index.js";
import { QEMU_IMAGE, qemuAvailable } from "../src/targets/qemu.js";
import { type CommonOptions, UsageError } from "./args.js";
import { CliError } from "./output.js";

export type DeviceChoice =
  | { kind: "port"; path: string; why: string }
  | { kind: "target"; target: "native" | "qemu"; storeDir: string; why: string };

/** The default key store directory of a target the CLI starts. */
export function defaultStoreDir(target: "native" | "qemu"): string {
  const state = process.env.XDG_STATE_HOME || join(homedir(), ".local", "state");
  return join(state, "mbedlink", target);
}

export function chooseDevice(common: CommonOptions): DeviceChoice {
  const target = (t: "native" | "qemu", why: string): DeviceChoice => ({
    kind: "target",
    target: t,
    storeDir: resolve(common.store ?? defaultStoreDir(t)),
    why,
  });
  if (common.port) return { kind: "port", path: common.port, why: "--port" };
  if (common.target) return target(common.target, "--target");
  const envPort = process.env.MBEDLINK_PORT;
  if (envPort) {
    if (common.store) throw new UsageError("--store is for a target the CLI starts; MBEDLINK_PORT names a device with its own store");
    return { kind: "port", path: envPort, why: "MBEDLINK_PORT" };
  }
  const envTarget = process.env.MBEDLINK_TARGET;
  if (envTarget) {
    if (envTarget !== "native" && envTarget !== "qemu")
      throw new UsageError(`MBEDLINK_TARGET must be native or qemu, got ${JSON.stringify(envTarget)}`);
    return target(envTarget, "MBEDLINK_TARGET");
  }
  return qemuAvailable() && existsSync(QEMU_IMAGE) ? target("qemu", "default") : target("native", "default (no QEMU here)");
}

/** How messages name the device. */
export function deviceLabel(c: DeviceChoice): string {
  return c.kind === "port" ? c.path : c.target === "qemu" ? "the STM32F405 in QEMU" : "the native simulator";
}

/** Opens the chosen device; open failures become a CliError with one plain line. */
export async function connect(c: DeviceChoice, timeoutMs: number | undefined): Promise<Device> {
  const opts = timeoutMs !== undefined ? { timeoutMs } : {};
  try {
    if (c.kind === "port") return await open(c.path, opts);
    mkdirSync(c.storeDir, { recursive: true });
    return await open({ target: c.target, storeDir: c.storeDir, ...opts });
  } catch (e) {
    throw openError(e, c, timeoutMs);
  }
}

function openError(e: unknown, c: DeviceChoice, timeoutMs: number | undefined): Error {
  const msg = e instanceof Error ? e.message : String(e);
  if (c.kind !== "port") return new CliError(`cannot start ${deviceLabel(c)}: ${msg}`);
  const path = c.path;
  if (e instanceof TimeoutError) {
    return new CliError(`no answer from ${path} within ${timeoutMs ?? 10_000} ms: no mbedlink device on that port?`);
  }
  if (/no such file/i.test(msg)) return new CliError(`no device at ${path}: no such file`);
  if (/cannot lock|resource temporarily unavailable|busy/i.test(msg))
    return new CliError(`port ${path} is busy: another program has it open`);
  if (/permission denied/i.test(msg)) return new CliError(`cannot open ${path}: permission denied (is your user in the dialout group?)`);
  if (/inappropriate ioctl/i.test(msg)) return new CliError(`${path} is not a serial port`);
  return new CliError(msg);
}
