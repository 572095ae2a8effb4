// Native target launcher: the firmware built as a Linux process that opens a
// PTY and behaves like a board.
//
// * Binary: <repo>/build/native/mbedlink-native, built with
//   `bash tools/build-native.sh` when missing (once across processes).
// * Spawned as `mbedlink-native --die-with-parent` with stdin ignored,
//   stdout piped, stderr inherited; the first stdout line is the PTY slave
//   path to open.
// * stop(): SIGTERM, wait for the exit (SIGKILL after a 5 s grace).
// * reset(): SIGUSR1, which makes the simulator act like a board reset (new
//   boot id, boot event).
// * Key slots: `--store <file>`. By default each start gets a fresh file in
//   a temp dir (removed by stop()), so sessions never share slots; pass
//   `store` to keep a file across restarts, or `store: false` for RAM slots.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBuilt, REPO_ROOT, spawnTracked, stopChild, waitForLine } from "./process.js";

export { REPO_ROOT };
export const NATIVE_BINARY = join(REPO_ROOT, "build", "native", "mbedlink-native");

export interface NativeTarget {
  /** PTY slave path printed by the simulator. */
  readonly path: string;
  readonly child: ChildProcess;
  /** Simulates a board reset (SIGUSR1). */
  reset(): void;
  /** SIGTERM and wait for the exit. Idempotent. */
  stop(): Promise<void>;
}

export interface NativeOptions {
  /** argv to run instead of the built simulator (must behave the same). */
  command?: readonly string[];
  /** How long to wait for the PTY path line (ms, default 15000). */
  startTimeoutMs?: number;
  /** Key store file (`--store`), kept after stop(); default: a fresh temp file; false: volatile slots. */
  store?: string | false;
}

/** The key store file of the native target in `dir` (open()'s `storeDir`). */
export function nativeStoreFile(dir: string): string {
  return join(dir, "native-store.bin");
}

/** Builds the simulator with tools/build-native.sh if the binary is missing. Returns its path. */
export function ensureNativeBuilt(): Promise<string> {
  return ensureBuilt(NATIVE_BINARY, "tools/build-native.sh");
}

/** Starts the native simulator (building it first when needed) and returns its PTY path. */
export async function startNative(opts: NativeOptions = {}): Promise<NativeTarget> {
  let tempDir: string | undefined;
  let store = opts.store;
  if (store === undefined && !opts.command) {
    tempDir = mkdtempSync(join(tmpdir(), "mbedlink-store-"));
    store = join(tempDir, "store.bin");
  }
  const storeArgs = typeof store === "string" ? ["--store", store] : [];
  const argv = opts.command ? [...opts.command] : [await ensureNativeBuilt(), "--die-with-parent", ...storeArgs];
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error("startNative: empty command");
  const child = spawnTracked(cmd, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= stopChild(child).finally(() => {
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    });
    return stopping;
  };
  let path: string;
  try {
    const m = await waitForLine(child, "stdout", /^([^\n]*)\n/, opts.startTimeoutMs ?? 15000, cmd);
    path = (m[1] as string).trim();
    if (!path.startsWith("/")) throw new Error(`${cmd} printed ${JSON.stringify(path)} instead of a PTY path`);
  } catch (e) {
    await stop();
    throw e;
  }
  return { path, child, reset: () => child.kill("SIGUSR1"), stop };
}
