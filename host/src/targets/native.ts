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
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBuilt, isCheckout, REPO_ROOT, spawnTracked, stopChild, waitForLine } from "./process.js";
import { findProgram } from "./programs.js";

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

/** The platform of the prebuilt simulator the package ships (build/native/mbedlink-native). */
export const PREBUILT_PLATFORM = "linux-x64";

/**
 * Where an installed package builds the simulator when the prebuilt one does
 * not fit this machine: `${XDG_CACHE_HOME:-~/.cache}/mbedlink/native-<version>-<platform>-<arch>`.
 */
export function nativeCacheRoot(): string {
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  const { version } = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
  return join(cache, "mbedlink", `native-${version}-${process.platform}-${process.arch}`);
}

/** Programs the build in the cache runs, and their Debian packages. */
const BUILD_PROGRAMS: Record<string, string> = { cmake: "cmake", make: "make", cc: "gcc", curl: "curl", bzip2: "bzip2" };

/**
 * Builds the simulator from the sources the package ships, into the cache
 * folder: the pinned Mbed TLS and TinyCBOR are fetched (SHA-256 checked),
 * then CMake builds the one program. Fails at once, with the command to run,
 * when a build tool is missing.
 */
async function buildInCache(): Promise<string> {
  const root = nativeCacheRoot();
  const product = join(root, "build", "native", "mbedlink-native");
  if (existsSync(product)) return product;
  const missing = Object.keys(BUILD_PROGRAMS).filter((cmd) => findProgram(cmd) === undefined);
  if (missing.length > 0) {
    const pkgs = [...new Set(Object.values(BUILD_PROGRAMS))].join(" ");
    throw new Error(
      `the native simulator must be built for ${process.platform}-${process.arch} (the package's prebuilt one is ${PREBUILT_PLATFORM}), and ${missing.join(", ")} ${missing.length > 1 ? "are" : "is"} not installed: run sudo apt-get install -y ${pkgs}`,
    );
  }
  process.stderr.write(`mbedlink: building the native simulator for ${process.platform}-${process.arch} in ${root} (first use only)\n`);
  return ensureBuilt(product, {
    root,
    scripts: ["tools/fetch-third-party.sh", "tools/build-native.sh"],
    env: { MBEDLINK_BUILD_TARGET: "mbedlink-native" },
    prepare: () => {
      mkdirSync(join(root, "tools"), { recursive: true });
      cpSync(join(REPO_ROOT, "firmware"), join(root, "firmware"), { recursive: true });
      for (const f of ["build-native.sh", "fetch-third-party.sh", "third-party.lock"]) {
        cpSync(join(REPO_ROOT, "tools", f), join(root, "tools", f));
      }
    },
  });
}

/**
 * The simulator binary, built first when needed. In a clone of the repository:
 * build/native/mbedlink-native, built by tools/build-native.sh. In an
 * installed package: the prebuilt linux-x64 binary it ships, or elsewhere
 * (or with MBEDLINK_NATIVE_BUILD=1) one built from the shipped sources in the
 * cache folder on first use.
 */
export function ensureNativeBuilt(): Promise<string> {
  if (isCheckout()) return ensureBuilt(NATIVE_BINARY, { scripts: ["tools/build-native.sh"] });
  const prebuiltFits = `${process.platform}-${process.arch}` === PREBUILT_PLATFORM && process.env.MBEDLINK_NATIVE_BUILD !== "1";
  if (prebuiltFits && existsSync(NATIVE_BINARY)) return Promise.resolve(NATIVE_BINARY);
  return buildInCache();
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
