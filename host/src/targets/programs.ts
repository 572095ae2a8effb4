// External programs the SDK spawns, found on PATH. A missing one is an
// error naming the Debian package to install, never a silent fallback: the
// caller gets one line saying what to do.
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";
import { isCheckout } from "./process.js";

/**
 * Program -> Debian package, for what the SDK itself spawns: QEMU and the
 * setpriv wrapper it runs under (targets/qemu.ts), bash running the build
 * scripts (targets/process.ts), which run cmake and the C compiler.
 * test/bootstrap.test.ts checks that this agrees with tools/bootstrap.sh.
 */
export const PROGRAM_PACKAGES: Readonly<Record<string, string>> = {
  "qemu-system-arm": "qemu-system-arm",
  setpriv: "util-linux",
  cmake: "cmake",
  cc: "gcc",
  bash: "bash",
};

function isExecutableFile(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The path of `name` on PATH (or `name` itself when it is a path to an executable), or undefined. */
export function findProgram(name: string): string | undefined {
  if (name.includes("/")) return isExecutableFile(name) ? name : undefined;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const p = join(dir, name);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}

/** The one-line message for a missing program. */
export function missingProgramMessage(name: string, pkg: string | undefined = PROGRAM_PACKAGES[name]): string {
  // In a clone of the repository the bootstrap installs everything; an installed package has no bootstrap.
  const checkout = isCheckout();
  if (pkg) return `${name} is not installed: apt-get install -y ${pkg}${checkout ? " (or run bash tools/bootstrap.sh)" : ""}`;
  return `${name} is not installed (not found on PATH${checkout ? "; run bash tools/bootstrap.sh" : ""})`;
}

/**
 * The resolved path of `name` on PATH. Throws when it is missing, with a
 * message naming the Debian package (`pkg`, else this module's table).
 */
export function requireProgram(name: string, pkg?: string): string {
  const found = findProgram(name);
  if (found === undefined) throw new Error(missingProgramMessage(name, pkg ?? PROGRAM_PACKAGES[name]));
  return found;
}
