// Builds what `npm run bench` runs besides the firmware: the PTY echo peer,
// the raw Mbed TLS benchmark, the in-process TLS baseline and the callgrind
// driver. The latter three link
// the native build's own libraries (build/native/libml_*.a), so they use the
// exact sources, config and flags of firmware/sources.json; include dirs,
// defines and warning flags are read from that file, never copied.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../host/src/targets/process.js";

export const BENCH_BUILD = join(REPO_ROOT, "build", "bench");
const FW = join(REPO_ROOT, "firmware");
const NATIVE = join(REPO_ROOT, "build", "native");

interface Lib {
  include_dirs?: string[];
  defines?: string[];
  cflags?: string[];
}
interface SourcesJson {
  libraries: Record<string, Lib>;
  core: Lib;
  targets: Record<string, Lib>;
}

export interface BenchBinaries {
  ptyEcho: string;
  mbedtlsBench: string;
  tlsBaseline: string;
  overheadDriver: string;
}

function cc(args: string[]): void {
  execFileSync("cc", args, { cwd: FW, stdio: ["ignore", "inherit", "inherit"] });
}

/** Builds the native firmware (tools/build-native.sh, unless `firmware` is false) and the four bench programs. */
export function buildAll(firmware = true): BenchBinaries {
  if (firmware) execFileSync("bash", [join(REPO_ROOT, "tools", "build-native.sh")], { stdio: ["ignore", "ignore", "inherit"] });
  mkdirSync(BENCH_BUILD, { recursive: true });
  const src = JSON.parse(readFileSync(join(FW, "sources.json"), "utf8")) as SourcesJson;
  const mbedtls = src.libraries.mbedtls ?? {};
  const tinycbor = src.libraries.tinycbor ?? {};
  const native = src.targets.native ?? {};
  const strict = ["-O3", "-g", ...(src.core.cflags ?? []), "-D_GNU_SOURCE"];
  const sys = (lib: Lib) => (lib.include_dirs ?? []).flatMap((d) => ["-isystem", d]);
  const defs = (lib: Lib) => (lib.defines ?? []).map((d) => `-D${d}`);
  const out = {
    ptyEcho: join(BENCH_BUILD, "pty_echo"),
    mbedtlsBench: join(BENCH_BUILD, "mbedtls_bench"),
    tlsBaseline: join(BENCH_BUILD, "tls_baseline"),
    overheadDriver: join(BENCH_BUILD, "overhead_driver"),
  };
  cc([...strict, "../bench/pty_echo.c", "-o", out.ptyEcho]);
  cc([...strict, ...sys(mbedtls), ...defs(mbedtls), "../bench/mbedtls_bench.c", join(NATIVE, "libml_mbedtls.a"), "-o", out.mbedtlsBench]);
  cc([...strict, ...sys(mbedtls), ...defs(mbedtls), "../bench/tls_baseline.c", join(NATIVE, "libml_mbedtls.a"), "-o", out.tlsBaseline]);
  cc([
    ...strict,
    ...(src.core.include_dirs ?? []).flatMap((d) => ["-I", d]),
    ...sys(mbedtls),
    ...sys(tinycbor),
    ...defs(mbedtls),
    ...defs(tinycbor),
    ...defs(src.core),
    ...defs(native),
    "../bench/overhead_driver.c",
    ...["core", "tinycbor", "mbedtls"].map((l) => join(NATIVE, `libml_${l}.a`)),
    "-o",
    out.overheadDriver,
  ]);
  return out;
}
