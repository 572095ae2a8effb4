// What every target launcher shares: building a firmware image at most once
// across parallel test processes, and child processes that never outlive us.
//
// Children are stopped on close, on this process's 'exit', and, for a
// parent that dies without running 'exit' (SIGKILL), by the kernel: they
// are started under `setpriv --pdeathsig SIGTERM` (util-linux) unless they
// arrange it themselves (the native firmware's --die-with-parent).
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository checkout or the installed package: where build/, tools/ and firmware/ are. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** A clone of the repository (which builds its own images), not an installed package. */
export function isCheckout(): boolean {
  return existsSync(join(REPO_ROOT, "tools", "bootstrap.sh"));
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const c of live) c.kill("SIGTERM");
  });
}

/** Spawns a child that is SIGTERMed when this process exits. */
export function spawnTracked(cmd: string, args: readonly string[], opts: SpawnOptions): ChildProcess {
  installExitHook();
  const child = spawn(cmd, args, opts);
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const grace = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(grace);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Cross-process lock (test files run in parallel processes and must not run
 * CMake into the same tree at once): a directory created with mkdir holding
 * the owner's pid; a lock whose owner died is taken over.
 */
async function withLock<T>(lockDir: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, "pid"), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let owner = Number.NaN;
      try {
        owner = Number(readFileSync(join(lockDir, "pid"), "utf8"));
      } catch {
        // being created right now
      }
      if (Number.isInteger(owner) && !pidAlive(owner)) rmSync(lockDir, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`timed out waiting for the build lock ${lockDir}`);
      else await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function runScripts(root: string, scripts: readonly string[], product: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise<void>((ok, fail) => {
    for (const script of scripts) {
      if (!existsSync(join(root, script))) {
        fail(new Error(`${product} is missing and ${join(root, script)} does not exist to build it`));
        return;
      }
    }
    // The build's stdout goes to our stderr: a program's stdout stays its own.
    const p = spawn("bash", ["-e", "-c", scripts.map((s) => `bash ${s}`).join("\n")], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", process.stderr, "inherit"],
    });
    p.on("error", fail);
    p.on("exit", (code, signal) => {
      if (code === 0 && existsSync(product)) ok();
      else fail(new Error(`${scripts.join(" && ")} failed (${signal ?? `exit ${code}`}); ${product} not built`));
    });
  });
}

const building = new Map<string, Promise<void>>();

export interface BuildRecipe {
  /** Scripts relative to `root`, run one after the other in `root` (default: the repository). */
  scripts: readonly string[];
  root?: string;
  /** Runs first, under the same lock (e.g. copying sources into `root`). */
  prepare?: () => void;
  /** Extra environment for the scripts. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Builds `product` with the recipe when it is missing, under a lock shared
 * with other processes (test files run in parallel). Returns `product`.
 */
export async function ensureBuilt(product: string, recipe: BuildRecipe): Promise<string> {
  if (existsSync(product)) return product;
  const root = recipe.root ?? REPO_ROOT;
  let b = building.get(product);
  if (!b) {
    const lock = join(root, "build", `.${(recipe.scripts.at(-1) ?? "build").replace(/\W+/g, "_")}.lock`);
    b = withLock(lock, async () => {
      if (existsSync(product)) return; // another process built it meanwhile
      recipe.prepare?.();
      await runScripts(root, recipe.scripts, product, recipe.env ?? {});
    }).finally(() => building.delete(product));
    building.set(product, b);
  }
  await b;
  return product;
}

/**
 * Resolves with the first match of `pattern` in the child's output on
 * `stream`, or rejects when the child exits or `timeoutMs` passes first.
 * Later output keeps being drained.
 */
export function waitForLine(
  child: ChildProcess,
  stream: "stdout" | "stderr",
  pattern: RegExp,
  timeoutMs: number,
  what: string,
): Promise<RegExpMatchArray> {
  const src = child[stream];
  if (!src) return Promise.reject(new Error(`${what}: ${stream} is not piped`));
  return new Promise((ok, fail) => {
    let buf = "";
    const timer = setTimeout(() => done(new Error(`${what}: no ${pattern} within ${timeoutMs} ms; output: ${buf.slice(-500)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString("utf8");
      const m = buf.match(pattern);
      if (m) done(null, m);
    };
    const onExit = (code: number | null, signal: string | null) =>
      done(new Error(`${what} exited (${signal ?? `code ${code}`}) before it was ready; output: ${buf.slice(-500)}`));
    const onError = (e: Error) => done(e);
    function done(err: Error | null, m?: RegExpMatchArray) {
      clearTimeout(timer);
      src?.off("data", onData);
      child.off("exit", onExit);
      child.off("error", onError);
      src?.resume(); // drain anything printed later
      if (err || !m) fail(err ?? new Error(`${what}: no match`));
      else ok(m);
    }
    src.on("data", onData);
    child.on("exit", onExit);
    child.on("error", onError);
  });
}
