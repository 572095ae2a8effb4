// Process inspection through /proc for the integration tests: which device
// processes this test process started, and whether one still runs.
import { readdirSync, readFileSync } from "node:fs";

/** The fields of /proc/PID/stat after the command name (state first), or undefined when the process is gone. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** The process state letter (R, S, T, Z, ...), or undefined when the process is gone. */
export function procState(pid: number): string | undefined {
  return statFields(pid)?.[0];
}

/** Pids of this process's children whose command line mentions `needle`. */
export function childrenMatching(needle: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const fields = statFields(name);
    if (fields === undefined || Number(fields[1]) !== process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").includes(needle)) pids.push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** True while `pid` runs (a zombie waiting for its reaper counts as gone). */
export function alive(pid: number): boolean {
  const state = procState(pid);
  return state !== undefined && state !== "Z";
}
