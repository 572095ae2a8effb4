// QEMU target launcher: the STM32F405 image on QEMU's `netduinoplus2`
// machine, its USART1 (the first -serial) on a PTY.
//
// * Image: <repo>/build/stm32/mbedlink-stm32f405.elf, built with
//   `bash tools/build-stm32.sh` when missing (once across processes).
// * QEMU's STM32 RNG is a stub, so the emulated board has no TRNG. Each boot
//   gets 32 fresh random bytes from this host, written into a reserved RAM
//   region (0x2001FFE0..0x2001FFFF) by QEMU's generic loader before the CPU
//   starts; the firmware mixes them with the seed the SDK sends in `hello`
//   and says so in hello's `entropy` field.
// * Key slots: QEMU runs with semihosting on (`-semihosting-config
//   enable=on,target=native`) and a loader writes a magic word at 0x2001FFD8
//   telling the firmware so; the store is then the file
//   `mbedlink-store.bin` in QEMU's working directory: by default the
//   per-boot temp dir (removed by stop()), or `storeDir` to keep it across
//   restarts. `semihosting: false` leaves both out (the firmware then uses
//   the flash driver, which QEMU does not model: slot ops fail).
// * QEMU runs under `setpriv --pdeathsig SIGTERM`, so it stops when the
//   process that started it dies, even by SIGKILL; stop() and this process's
//   'exit' stop it too.
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBuilt, REPO_ROOT, spawnTracked, stopChild, waitForLine } from "./process.js";
import { findProgram, requireProgram } from "./programs.js";

export const QEMU_IMAGE = join(REPO_ROOT, "build", "stm32", "mbedlink-stm32f405.elf");
export const QEMU_BINARY = "qemu-system-arm";
/** Where the firmware expects the per-boot nonce (see firmware/src/hal/stm32f4). */
export const NONCE_ADDRESS = 0x2001ffe0;
/** Where the firmware looks for the semihosting magic (firmware/src/hal/stm32f4/store_stm32.c). */
export const SEMIHOST_FLAG_ADDRESS = 0x2001ffd8;
const SEMIHOST_MAGIC = "6b4c6d3153484f53"; // little-endian words 0x53484F53, 0x6B4C6D31
/** The store file's name in QEMU's working directory. */
export const QEMU_STORE_FILE = "mbedlink-store.bin";

export interface QemuTarget {
  /** PTY of the board's USART1. */
  readonly path: string;
  readonly child: ChildProcess;
  /** Runs a QEMU monitor command (HMP) and resolves with its output. */
  monitor(command: string): Promise<string>;
  /** A board reset (monitor `system_reset`): the firmware reboots with a new boot id. */
  reset(): Promise<void>;
  /** Stops the emulated CPU (monitor `stop`): the board neither reads nor answers. */
  pause(): Promise<void>;
  /** Lets the CPU run again (monitor `cont`). */
  resume(): Promise<void>;
  /** SIGTERM and wait for QEMU to exit. Idempotent. */
  stop(): Promise<void>;
}

export interface QemuOptions {
  /** Extra QEMU arguments (e.g. ["-icount", "shift=0"]). */
  extraArgs?: readonly string[];
  startTimeoutMs?: number;
  /** Semihosting for the key store (default true). */
  semihosting?: boolean;
  /** Directory of the key store file (QEMU's cwd), kept after stop(); default: the per-boot temp dir. */
  storeDir?: string;
}

/** True when qemu-system-arm is installed. */
export function qemuAvailable(): boolean {
  return findProgram(QEMU_BINARY) !== undefined;
}

/** The QEMU command line for one boot, with a fresh nonce and the monitor on a unix socket. */
export function qemuArgs(image: string, monitorSocket: string, extra: readonly string[] = [], semihosting = false): string[] {
  const nonce = randomBytes(32);
  const loaders: string[] = [];
  for (let i = 0; i < 4; i++) {
    const word = nonce.subarray(8 * i, 8 * i + 8).toString("hex");
    loaders.push("-device", `loader,addr=0x${(NONCE_ADDRESS + 8 * i).toString(16)},data=0x${word},data-len=8`);
  }
  return [
    "-M",
    "netduinoplus2",
    "-nographic",
    "-monitor",
    `unix:${monitorSocket},server=on,wait=off`,
    "-serial",
    "pty",
    "-kernel",
    image,
    ...loaders,
    ...(semihosting
      ? [
          "-semihosting-config",
          "enable=on,target=native",
          "-device",
          `loader,addr=0x${SEMIHOST_FLAG_ADDRESS.toString(16)},data=0x${SEMIHOST_MAGIC},data-len=8`,
        ]
      : []),
    ...extra,
  ];
}

/** Boots the image (building it first when needed) and returns its PTY path. */
export async function startQemu(opts: QemuOptions = {}): Promise<QemuTarget> {
  // Both must be there: a missing one is an error naming its package, and
  // QEMU never runs without the parent-death signal.
  const qemu = requireProgram(QEMU_BINARY);
  const setpriv = requireProgram("setpriv");
  const image = await ensureBuilt(QEMU_IMAGE, { scripts: ["tools/build-stm32.sh"] });
  const dir = mkdtempSync(join(tmpdir(), "mbedlink-qemu-"));
  const monitor = join(dir, "monitor.sock");
  const args = qemuArgs(image, monitor, opts.extraArgs, opts.semihosting ?? true);
  const cwd = opts.storeDir ?? dir;
  const child = spawnTracked(setpriv, ["--pdeathsig", "SIGTERM", "--", qemu, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  // QEMU's stderr is kept (last 4 KiB) for error messages rather than
  // printed: it ends every run with "terminating on signal 15".
  let stderrTail = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderrTail = (stderrTail + d.toString("utf8")).slice(-4096);
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= stopChild(child).finally(() => {
      hmp.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return stopping;
  };
  const hmp = monitorClient(monitor);
  const reset = async (): Promise<void> => {
    await hmp("system_reset");
  };
  const pause = async (): Promise<void> => {
    await hmp("stop");
  };
  const resume = async (): Promise<void> => {
    await hmp("cont");
  };
  try {
    const m = await waitForLine(
      child,
      "stdout",
      /char device redirected to (\/dev\/pts\/\d+) \(label serial0\)/,
      opts.startTimeoutMs ?? 20000,
      QEMU_BINARY,
    );
    return { path: m[1] as string, child, monitor: hmp, reset, pause, resume, stop };
  } catch (e) {
    await stop();
    throw stderrTail ? new Error(`${(e as Error).message}\nqemu stderr: ${stderrTail.trim()}`) : e;
  }
}

/**
 * A client for QEMU's human monitor on a unix socket: one connection, made
 * on first use; commands run one at a time, each answered when the next
 * "(qemu) " prompt arrives.
 */
function monitorClient(socketPath: string): ((command: string) => Promise<string>) & { close(): void } {
  let sock: Socket | undefined;
  let buf = "";
  let ready: Promise<void> | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  let waiter: ((text: string) => void) | undefined;
  const PROMPT = "(qemu) ";
  const onData = (d: Buffer) => {
    buf += d.toString("utf8");
    const at = buf.indexOf(PROMPT);
    if (at >= 0 && waiter) {
      const text = buf.slice(0, at);
      buf = buf.slice(at + PROMPT.length);
      const w = waiter;
      waiter = undefined;
      w(text);
    }
  };
  const nextPrompt = () =>
    new Promise<string>((ok) => {
      waiter = ok;
      onData(Buffer.alloc(0));
    });
  const open = (): Promise<void> => {
    ready ??= new Promise<void>((ok, fail) => {
      const s = connect(socketPath);
      sock = s;
      s.on("data", onData);
      s.once("error", fail);
      s.once("connect", () => {
        nextPrompt().then(() => ok(), fail); // the banner ends with the first prompt
      });
    });
    return ready;
  };
  const run = (command: string): Promise<string> => {
    const result = chain.then(async () => {
      await open();
      const answer = nextPrompt();
      sock?.write(`${command}\n`);
      return answer;
    });
    chain = result.catch(() => {});
    return result;
  };
  return Object.assign(run, { close: () => sock?.destroy() });
}
