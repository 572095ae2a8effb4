// The SDK's structure, checked on its import graph (relative imports,
// type-only ones included, tests left out):
// * it ships on its own (dist/ in the npm package, without hil/, test/,
//   tools/ or bench/), so nothing under host/src may import from outside it,
//   and the library never imports the command line built on top of it;
// * its folders are layers and imports go one way: device.ts / index.ts ->
//   modules -> session -> rpc -> link -> base (a folder may use its own
//   files and any folder below it); targets/ (the launchers) is used by
//   device.ts only and uses nothing but base/;
// * there is no import cycle.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { findCycle, type Graph } from "./support/graph.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const sdk = join(repo, "host", "src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [p] : [];
  });
}

/** Relative module specifiers of static and dynamic imports and re-exports (type-only ones included). */
function relativeImports(text: string): string[] {
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+["']([^"']+)["']/gms),
    ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
    ...text.matchAll(/^\s*import\s+["']([^"']+)["']/gm),
  ].map((m) => m[1] as string);
  return specs.filter((s) => s.startsWith("."));
}

/** Import graph: SDK-relative path ("modules/hash.ts") -> the SDK-relative paths it imports. */
function importGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const targets = relativeImports(readFileSync(file, "utf8")).map((spec) =>
      relative(sdk, resolve(dirname(file), spec.replace(/\.js$/, ".ts")))
        .split(sep)
        .join("/"),
    );
    graph.set(relative(sdk, file).split(sep).join("/"), [...new Set(targets)]);
  }
  return graph;
}

/** Layer of an SDK file: its top folder, or "top" for device.ts and index.ts. */
function layerOf(path: string): string {
  const slash = path.indexOf("/");
  return slash < 0 ? "top" : path.slice(0, slash);
}

/** Allowed direction, lowest first: a layer may import its own files and any layer before it. */
const LAYERS = ["base", "link", "rpc", "session", "modules", "top"] as const;

/** Why `from` may not import `to`, or undefined when it may. */
function violation(from: string, to: string): string | undefined {
  const [a, b] = [layerOf(from), layerOf(to)];
  if (b === "targets") return a === "targets" || from === "device.ts" ? undefined : "targets/ is used by device.ts only";
  if (a === "targets") return b === "base" ? undefined : "targets/ may use base/ only";
  const [ra, rb] = [LAYERS.indexOf(a as (typeof LAYERS)[number]), LAYERS.indexOf(b as (typeof LAYERS)[number])];
  if (ra < 0 || rb < 0) return `unknown folder (${ra < 0 ? a : b}): add it to the layers`;
  return rb <= ra ? undefined : `${a} is below ${b}`;
}

function directionViolations(graph: Graph): string[] {
  const out: string[] = [];
  for (const [from, tos] of graph) {
    for (const to of tos) {
      const why = violation(from, to);
      if (why) out.push(`${from} imports ${to}: ${why}`);
    }
  }
  return out;
}

describe("SDK layering", () => {
  const files = sources(sdk);
  const graph = importGraph(files);

  it("finds the SDK's sources and their imports, type-only and dynamic ones included", () => {
    expect(files.length).toBeGreaterThan(20);
    expect(graph.get("device.ts")).toContain("targets/qemu.ts");
    expect(graph.get("session/context.ts")).toContain("rpc/rpc.ts"); // `import type` only
    expect(graph.get("index.ts")).toContain("device.ts");
  });

  it("no file under host/src imports from outside host/src (hil/, test/, tools/, bench/, host/cli/)", () => {
    const outside = [...graph].flatMap(([from, tos]) => tos.filter((to) => to.startsWith("../")).map((to) => `${from} imports ${to}`));
    expect(outside).toEqual([]);
  });

  it("the checker sees an import that reaches out", () => {
    expect(relativeImports('const { startQemu } = await import("../../hil/qemu.js");')).toEqual(["../../hil/qemu.js"]);
    expect(relativeImports('import { x } from "../../test/integration/target.js";')).toEqual(["../../test/integration/target.js"]);
    expect(relativeImports('export {\n  a,\n  b,\n} from "../cli/args.js";')).toEqual(["../cli/args.js"]);
    expect(relativeImports('import type { Rpc } from "../rpc/rpc.js";')).toEqual(["../rpc/rpc.js"]);
  });

  it("imports go one way: device.ts/index.ts -> modules -> session -> rpc -> link -> base; targets/ from device.ts only", () => {
    expect(directionViolations(graph)).toEqual([]);
  });

  it("the direction check refuses an upward import, targets/ from elsewhere, and an unknown folder", () => {
    const planted: Graph = new Map([
      ["modules/hash.ts", ["device.ts", "session/context.ts", "base/errors.ts"]],
      ["link/transport.ts", ["rpc/rpc.ts"]],
      ["session/context.ts", ["targets/qemu.ts"]],
      ["targets/qemu.ts", ["link/slip.ts", "targets/process.ts"]],
      ["device.ts", ["targets/qemu.ts", "modules/hash.ts"]],
      ["extra/x.ts", ["base/util.ts"]],
    ]);
    expect(directionViolations(planted)).toEqual([
      "modules/hash.ts imports device.ts: modules is below top",
      "link/transport.ts imports rpc/rpc.ts: link is below rpc",
      "session/context.ts imports targets/qemu.ts: targets/ is used by device.ts only",
      "targets/qemu.ts imports link/slip.ts: targets/ may use base/ only",
      "extra/x.ts imports base/util.ts: unknown folder (extra): add it to the layers",
    ]);
  });

  it("has no import cycle", () => {
    expect(findCycle(graph)).toBeUndefined();
  });

  it("the cycle check finds a planted cycle and names it, and passes a diamond", () => {
    const diamond = new Map<string, string[]>([
      ["a.ts", ["b.ts", "c.ts"]],
      ["b.ts", ["d.ts"]],
      ["c.ts", ["d.ts"]],
    ]);
    expect(findCycle(diamond)).toBeUndefined();
    diamond.set("d.ts", ["e.ts"]);
    diamond.set("e.ts", ["c.ts"]);
    expect(findCycle(diamond)).toEqual(["c.ts", "d.ts", "e.ts", "c.ts"]);
    // Planted in the real graph: modules/kex.ts -> modules/pk-key.ts closes pk-key -> kex.
    const real = new Map(graph);
    real.set("modules/kex.ts", [...(graph.get("modules/kex.ts") ?? []), "modules/pk-key.ts"]);
    expect(findCycle(real)).toEqual(["modules/kex.ts", "modules/pk-key.ts", "modules/kex.ts"]);
  });
});
