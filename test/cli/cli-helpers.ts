// Running the built CLI (dist/cli/mbedlink.js, plain node) as a child process
// against the target the suite tests: MBEDLINK_TARGET=qemu, MBEDLINK_PORT, or
// the native simulator. One device is started per test file and most
// invocations reach it with --port; a few use --target to start their own.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nativeStoreFile, REPO_ROOT, startNative } from "../../host/src/targets/native.js";
import { startQemu } from "../../host/src/targets/qemu.js";
import { PORT, TARGET } from "../integration/target.js";

export { PORT, TARGET };

export const CLI = join(REPO_ROOT, "dist", "cli", "mbedlink.js");

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * Compiles the SDK and the CLI (`npm run build`'s tsc) when a source under
 * host/ is newer than the last build; `npm test`'s bootstrap has
 * normally built it already, so this costs a stat of each source.
 */
export async function buildIfStale(): Promise<void> {
  let built = 0;
  try {
    // tsc rewrites its build info on every build that changed something; the CLI must exist too.
    statSync(CLI);
    built = statSync(join(REPO_ROOT, "dist", ".tsbuildinfo")).mtimeMs;
  } catch {
    // not built yet
  }
  if (built >= newest(join(REPO_ROOT, "host"))) return;
  const r = await run(["--no-install", "tsc", "-p", "tsconfig.build.json"], { command: "npx", cwd: REPO_ROOT });
  if (r.code !== 0) throw new Error(`npm run build failed:\n${r.stdout}${r.stderr}`);
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Run this program instead of `node dist/cli/mbedlink.js`. */
  command?: string;
}

/** A state directory per test process, so the CLI's default store never touches the user's. */
const stateHome = mkdtempSync(join(tmpdir(), "mbedlink-cli-state-"));

/** Runs the CLI (or `opts.command`) and collects its exit code and output. */
export function run(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const [cmd, argv] = opts.command ? [opts.command, args] : [process.execPath, [CLI, ...args]];
  const env: Record<string, string | undefined> = { ...process.env, XDG_STATE_HOME: stateHome, MBEDLINK_DEBUG: undefined, ...opts.env };
  // The suite picks the device explicitly; the CLI's own defaults are tested on purpose only.
  if (!opts.env || !("MBEDLINK_PORT" in opts.env)) delete env.MBEDLINK_PORT;
  if (!opts.env || !("MBEDLINK_TARGET" in opts.env)) delete env.MBEDLINK_TARGET;
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: opts.cwd ?? REPO_ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({
        code,
        stdout: stdoutBytes.toString("utf8"),
        stdoutBytes,
        stderr: Buffer.concat(err).toString("utf8"),
        ms: performance.now() - started,
      });
    });
    child.stdin.on("error", () => {}); // a CLI that exits before reading all of it
    child.stdin.end(opts.input ?? "");
  });
}

/** The stderr lines of a run (no trailing empty line). */
export const lines = (s: string): string[] => s.split("\n").filter((l) => l !== "");

export interface TestDevice {
  /** The flags that reach it: --port PATH. */
  flags: string[];
  /** Whether the suite started it (so its store is fresh and its port can be held to test "busy"). */
  owned: boolean;
  stop(): Promise<void>;
}

/** The device the suite talks to: a board on MBEDLINK_PORT, or a native/QEMU target started with a fresh store. */
export async function startDevice(): Promise<TestDevice> {
  if (TARGET === "port") return { flags: ["--port", PORT as string], owned: false, stop: async () => {} };
  const storeDir = mkdtempSync(join(tmpdir(), "mbedlink-cli-store-"));
  const t = TARGET === "qemu" ? await startQemu({ storeDir }) : await startNative({ store: nativeStoreFile(storeDir) });
  return {
    flags: ["--port", t.path],
    owned: true,
    stop: async () => {
      await t.stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

/** Removes the per-process state directory. */
export function cleanState(): void {
  rmSync(stateHome, { recursive: true, force: true });
}
