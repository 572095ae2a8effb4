// Which device the integration suite talks to, and how to control it.
//   (default)                  the native firmware, a Linux process behind a PTY
//   MBEDLINK_TARGET=qemu       the STM32F405 image in QEMU (issue 3)
//   MBEDLINK_PORT=/dev/ttyX    a real board on a serial port
// Every test file opens one session (one boot, useSession() in session.ts)
// and shares it between its tests, except tests that kill, stop or reset the
// device, which start their own with startSession().
import type { ChildProcess } from "node:child_process";
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Device, open } from "../../host/src/index.js";
import { nativeStoreFile, REPO_ROOT, startNative } from "../../host/src/targets/native.js";
import { startQemu } from "../../host/src/targets/qemu.js";
import { procState } from "./procs.js";

export type TargetKind = "native" | "qemu" | "port";

export const PORT = process.env.MBEDLINK_PORT;
export const TARGET: TargetKind = PORT ? "port" : process.env.MBEDLINK_TARGET === "qemu" ? "qemu" : "native";

/** The argument README examples pass to open() for the target under test, as source text. */
export function targetOpenExpression(): string {
  return PORT ? JSON.stringify(PORT) : `{ target: "${TARGET}" }`;
}

/** Slow links (QEMU's emulated UART, a real board's) get smaller bulk data. */
export const SLOW_LINK = TARGET !== "native";
/** `native` on the native target, `slow` elsewhere. */
export const bulk = (native: number, slow: number): number => (SLOW_LINK ? slow : native);

/** What a test can do to the device besides talking to it (absent on a real board). */
export interface TargetControl {
  readonly pid: number;
  /** Freezes the device (native: SIGSTOP; QEMU: the monitor stops the CPU): it neither reads nor answers. */
  pause(): void | Promise<void>;
  resume(): void | Promise<void>;
  /** A board reset: new boot id, all state lost (native: SIGUSR1; QEMU: monitor system_reset). */
  reset(): void | Promise<void>;
  /** Sudden death (SIGKILL). */
  kill(): void;
  /** Clean stop; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface Session {
  dev: Device;
  control: TargetControl | undefined;
  close(): Promise<void>;
}

interface Launched {
  path: string;
  child: ChildProcess;
  reset(): void | Promise<void>;
  pause?(): Promise<void>;
  resume?(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * SIGSTOP is asynchronous: kill() returns before the process has stopped,
 * and a request written in between would still be answered. Waits until
 * /proc shows the process stopped (state T).
 */
async function stopProcess(child: ChildProcess): Promise<void> {
  child.kill("SIGSTOP");
  const pid = child.pid;
  if (pid === undefined) return;
  const deadline = Date.now() + 5000;
  for (;;) {
    const state = procState(pid);
    if (state === undefined || state === "T" || state === "t" || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 2));
  }
}

function controlOf(t: Launched): TargetControl {
  return {
    pid: t.child.pid ?? -1,
    pause: () => (t.pause ? t.pause() : stopProcess(t.child)),
    resume: () => (t.resume ? t.resume() : void t.child.kill("SIGCONT")),
    reset: () => t.reset(),
    kill: () => t.child.kill("SIGKILL"),
    stop: async () => {
      t.child.kill("SIGCONT");
      await t.stop();
      return t.child.exitCode;
    },
  };
}

/**
 * Appends the device's heap and stack high-water marks to
 * build/peaks-<target>.jsonl (read by `npm run size`), when it still answers.
 */
async function recordPeaks(dev: Device): Promise<void> {
  try {
    const st = await dev.stats({ timeoutMs: 2000 });
    const dir = join(REPO_ROOT, "build");
    mkdirSync(dir, { recursive: true });
    const line = {
      target: TARGET,
      board: dev.info.board,
      heapSize: st.heapSize,
      heapPeak: st.heapPeak,
      stackPeak: st.stackPeak,
      oomAnswers: st.oomAnswers,
      at: new Date().toISOString(),
    };
    appendFileSync(join(dir, `peaks-${TARGET}.jsonl`), `${JSON.stringify(line)}\n`);
  } catch {
    // the test killed or froze the device: nothing to record
  }
}

export interface StartOptions {
  /** open()'s request timeout (default 20 s). */
  timeoutMs?: number;
  /**
   * Keep the key store in this directory, so a later session with the same
   * directory sees the same slots (a restart); default: a fresh store per session.
   */
  storeDir?: string;
}

/** Starts the device (test files use useSession() from session.ts, which calls this once per file). */
export async function startSession(opts: StartOptions = {}): Promise<Session> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  if (TARGET === "port") {
    const dev = await open(PORT as string, { timeoutMs });
    return {
      dev,
      control: undefined,
      close: async () => {
        await recordPeaks(dev);
        await dev.close();
      },
    };
  }
  const { storeDir } = opts;
  const launched: Launched =
    TARGET === "qemu"
      ? await startQemu(storeDir ? { storeDir } : {})
      : await startNative(storeDir ? { store: nativeStoreFile(storeDir) } : {});
  try {
    const dev = await open(launched.path, { timeoutMs });
    return {
      dev,
      control: controlOf(launched),
      close: async () => {
        launched.child.kill("SIGCONT");
        await recordPeaks(dev);
        await dev.close();
        await launched.stop();
      },
    };
  } catch (e) {
    await launched.stop();
    throw e;
  }
}

/** Waits until `cond` holds, polling; throws after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
