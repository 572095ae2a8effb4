// The package map of tools/bootstrap.sh (command -> Debian package), read
// from the script itself so that there is one list, and requireTool(): the
// repository's tools, benches and tests call it before spawning a program,
// so a missing one fails with one line naming the package to install.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { requireProgram } from "../host/src/targets/programs.js";

export const BOOTSTRAP_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "bootstrap.sh");

export interface BootstrapEntry {
  pkg: string;
  /** In `need` (the bootstrap fails without it) rather than `want` (optional). */
  required: boolean;
}

/**
 * The `[cmd]=pkg` entries of the `declare -A need=(...)` and
 * `declare -A want=(...)` arrays in the bootstrap's text.
 */
export function parseBootstrapMap(text: string): Map<string, BootstrapEntry> {
  const map = new Map<string, BootstrapEntry>();
  for (const m of text.matchAll(/^\s*declare\s+-A\s+(need|want)=\(([^)]*)\)/gm)) {
    const body = (m[2] as string).replace(/#[^\n]*/g, "");
    for (const e of body.matchAll(/\[([^\]\s]+)\]=("[^"]*"|'[^']*'|[^\s)]+)/g)) {
      map.set(e[1] as string, { pkg: (e[2] as string).replace(/^["']|["']$/g, ""), required: m[1] === "need" });
    }
  }
  return map;
}

let cached: Map<string, BootstrapEntry> | undefined;

/** tools/bootstrap.sh's package map. */
export function bootstrapMap(): Map<string, BootstrapEntry> {
  cached ??= parseBootstrapMap(readFileSync(BOOTSTRAP_SCRIPT, "utf8"));
  return cached;
}

/** The path of `name` on PATH; throws `NAME is not installed: apt-get install -y PKG ...` with the bootstrap's package. */
export function requireTool(name: string): string {
  return requireProgram(name, bootstrapMap().get(name)?.pkg);
}
