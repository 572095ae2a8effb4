// Native target launcher: the firmware built as a Linux process that opens a
// PTY and behaves like a board.
//
// * Binary: <repo>/build/native/mbedlink-native (repo root = the parent of
//   this hil/ folder). When missing, `bash tools/build-native.sh` is run once
//   from the repo root, under a cross-process lock (build/.native-build.lock);
//   its output goes to our stderr, so a program's stdout stays clean.
// * Spawned as `mbedlink-native --die-with-parent` with stdin ignored,
//   stdout piped, stderr inherited; the first stdout line is the PTY slave
//   path to open. Later stdout is drained.
// * stop(): SIGTERM, wait for the exit (SIGKILL after a 5 s grace). Every
//   child still running gets SIGTERM when this process exits (and
//   --die-with-parent covers a parent that dies without running 'exit').
// * reset(): SIGUSR1, which makes the simulator act like a board reset (new
//   boot id, boot event).
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
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
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const c of live) c.kill("SIGTERM"); // a clean exit (storage files); --die-with-parent backs it up
  });
}

let building: Promise<void> | undefined;

const LOCK_DIR = join(REPO_ROOT, "build", ".native-build.lock");

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Cross-process lock around the build (test files run in parallel processes
 * and must not run CMake into the same tree at once): a directory created
 * with mkdir, holding the owner's pid; a lock whose owner died is taken over.
 */
async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(LOCK_DIR), { recursive: true });
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      writeFileSync(join(LOCK_DIR, "pid"), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let owner = Number.NaN;
      try {
        owner = Number(readFileSync(join(LOCK_DIR, "pid"), "utf8"));
      } catch {
        // being created right now
      }
      if (Number.isInteger(owner) && !pidAlive(owner)) rmSync(LOCK_DIR, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`timed out waiting for the native build lock ${LOCK_DIR}`);
      else await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}

function runBuild(): Promise<void> {
  return new Promise<void>((ok, fail) => {
    const script = join(REPO_ROOT, "tools", "build-native.sh");
    if (!existsSync(script)) {
      fail(new Error(`${NATIVE_BINARY} is missing and ${script} does not exist to build it`));
      return;
    }
    // The build's stdout goes to our stderr: a program's stdout stays its own.
    const p = spawn("bash", [script], { cwd: REPO_ROOT, stdio: ["ignore", process.stderr, "inherit"] });
    p.on("error", fail);
    p.on("exit", (code, signal) => {
      if (code === 0 && existsSync(NATIVE_BINARY)) ok();
      else fail(new Error(`tools/build-native.sh failed (${signal ?? `exit ${code}`}); ${NATIVE_BINARY} not built`));
    });
  });
}

/** Builds the simulator with tools/build-native.sh if the binary is missing. Returns its path. */
export async function ensureNativeBuilt(): Promise<string> {
  if (existsSync(NATIVE_BINARY)) return NATIVE_BINARY;
  building ??= withBuildLock(async () => {
    if (!existsSync(NATIVE_BINARY)) await runBuild(); // another process may have built it meanwhile
  }).finally(() => {
    building = undefined;
  });
  await building;
  return NATIVE_BINARY;
}

/** Starts the native simulator (building it first when needed) and returns its PTY path. */
export async function startNative(opts: NativeOptions = {}): Promise<NativeTarget> {
  const argv = opts.command ? [...opts.command] : [await ensureNativeBuilt(), "--die-with-parent"];
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error("startNative: empty command");
  installExitHook();
  const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
  live.add(child);
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once("exit", () => r());
  });
  exited.then(() => live.delete(child));

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const grace = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(grace);
      }
    })();
    return stopping;
  };

  const path = await new Promise<string>((ok, fail) => {
    let buf = "";
    const timer = setTimeout(
      () => done(new Error(`${cmd} printed no PTY path within ${opts.startTimeoutMs ?? 15000} ms`)),
      opts.startTimeoutMs ?? 15000,
    );
    const onData = (d: Buffer) => {
      buf += d.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl >= 0) done(null, buf.slice(0, nl).trim());
    };
    const onExit = (code: number | null, signal: string | null) =>
      done(new Error(`${cmd} exited (${signal ?? `code ${code}`}) before printing its PTY path`));
    const onError = (e: Error) => done(e);
    function done(err: Error | null, line?: string) {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.off("exit", onExit);
      child.off("error", onError);
      child.stdout?.resume(); // drain anything printed later
      if (err) fail(err);
      else if (!line?.startsWith("/")) fail(new Error(`${cmd} printed ${JSON.stringify(line)} instead of a PTY path`));
      else ok(line);
    }
    child.stdout?.on("data", onData);
    child.on("exit", onExit);
    child.on("error", onError);
  }).catch(async (e: unknown) => {
    await stop();
    throw e;
  });

  return {
    path,
    child,
    reset: () => {
      child.kill("SIGUSR1");
    },
    stop,
  };
}
