// The firmware's folders are layers (README "Repository layout", issue 13):
//   hal/<board> mains -> app -> link -> dispatch -> ops -> store -> core -> hal/ml_hal.h
// A file may include files of its own folder and of the folders below it;
// hal/<board>/ (mains, drivers) may include anything. And no include loop:
// in the graph of modules (a .c and its .h are one module) no module reaches
// itself. This test parses every `#include "..."` under firmware/src and
// fails naming file:line of each include against the direction and of each
// edge of a loop, so a new upward include or loop cannot come back unseen.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { findCycles, graphOf } from "./support/graph.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(repo, "firmware", "src");

/** Layers from the top (0) down; a file may include its own rank or a higher one. */
const LAYERS = ["board", "app", "link", "dispatch", "ops", "store", "core", "hal"] as const;
type Layer = (typeof LAYERS)[number];

interface Include {
  from: string; // path relative to firmware/src, "/"-separated
  line: number;
  to: string; // resolved path relative to firmware/src
}

/** The layer of a file under firmware/src, or undefined for a folder that is no layer. */
function layerOf(path: string): Layer | undefined {
  const parts = path.split("/");
  if (parts[0] === "hal") return parts.length > 2 ? "board" : "hal";
  return (LAYERS as readonly string[]).includes(parts[0] ?? "") && parts.length > 1 ? (parts[0] as Layer) : undefined;
}

/** A .c and its .h are one module: the path without its extension. */
function moduleOf(path: string): string {
  return path.replace(/\.[ch]$/, "");
}

/** `#include "..."` lines outside comments, with 1-based line numbers. */
function quotedIncludes(text: string): { spec: string; line: number }[] {
  const out: { spec: string; line: number }[] = [];
  let inComment = false;
  text.split("\n").forEach((raw, i) => {
    let line = "";
    for (let j = 0; j < raw.length; j++) {
      if (inComment) {
        if (raw.startsWith("*/", j)) {
          inComment = false;
          j++;
        }
      } else if (raw.startsWith("/*", j)) {
        inComment = true;
        j++;
      } else if (raw.startsWith("//", j)) {
        break;
      } else {
        line += raw[j];
      }
    }
    const m = /^\s*#\s*include\s*"([^"]+)"/.exec(line);
    if (m) out.push({ spec: m[1] as string, line: i + 1 });
  });
  return out;
}

/**
 * Include edges between the given files (paths relative to firmware/src).
 * A quoted include is looked up next to the including file first, then under
 * firmware/src (the include directory), as the compiler does; includes that
 * name no file of the set (Mbed TLS, TinyCBOR, the C library) are no edges.
 */
function includeGraph(files: ReadonlyMap<string, string>): Include[] {
  const edges: Include[] = [];
  for (const [from, text] of files) {
    for (const { spec, line } of quotedIncludes(text)) {
      const candidates = [posix.normalize(posix.join(posix.dirname(from), spec)), posix.normalize(spec)];
      const to = candidates.find((c) => files.has(c));
      if (to !== undefined) edges.push({ from, line, to });
    }
  }
  return edges;
}

/** Includes that go up the layers (or out of them), as "file:line includes target (why)". */
function upwardIncludes(edges: readonly Include[]): string[] {
  const bad: string[] = [];
  for (const e of edges) {
    const from = layerOf(e.from);
    const to = layerOf(e.to);
    if (from === undefined || to === undefined) {
      const which = from === undefined ? e.from : e.to;
      bad.push(`${e.from}:${e.line} includes ${e.to} (${which} is in no layer folder)`);
    } else if (from !== "board" && LAYERS.indexOf(to) < LAYERS.indexOf(from)) {
      bad.push(`${e.from}:${e.line} includes ${e.to} (${from} is below ${to})`);
    }
  }
  return bad;
}

/**
 * Include loops between modules: each loop as its chain of includes
 * "a.c:3 includes b.h -> b.c:5 includes a.h". One loop per strongly connected
 * group of modules, walked from its first module (test/support/graph.ts).
 */
function includeCycles(edges: readonly Include[]): string[] {
  const between = edges.filter((e) => moduleOf(e.from) !== moduleOf(e.to)); // not foo.c including foo.h
  const graph = graphOf(between.map((e) => [moduleOf(e.from), moduleOf(e.to)]));
  /** The first include that makes the edge a -> b. */
  const include = (a: string, b: string) => between.find((e) => moduleOf(e.from) === a && moduleOf(e.to) === b) as Include;
  return findCycles(graph).map((path) =>
    path
      .slice(1)
      .map((b, i) => include(path[i] as string, b))
      .map((e) => `${e.from}:${e.line} includes ${e.to}`)
      .join(" -> "),
  );
}

function readSources(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.[ch]$/.test(e.name)) files.set(relative(src, p).split("\\").join("/"), readFileSync(p, "utf8"));
    }
  };
  walk(dir);
  return files;
}

describe("firmware layers", () => {
  const files = readSources(src);
  const edges = includeGraph(files);

  it("finds the firmware's sources and their includes", () => {
    expect(files.size).toBeGreaterThan(40);
    expect(edges).toContainEqual(expect.objectContaining({ from: "link/ml_link.c", to: "dispatch/ml_dispatch.h" }));
    expect(edges).toContainEqual(expect.objectContaining({ from: "hal/native/main.c", to: "hal/native/hal_native.h" }));
    for (const path of files.keys()) expect(layerOf(path), path).toBeDefined();
  });

  it("every include goes down the layers (hal/<board> > app > link > dispatch > ops > store > core > hal/ml_hal.h)", () => {
    expect(upwardIncludes(edges)).toEqual([]);
  });

  it("no include loop between modules (a .c and its .h are one module)", () => {
    expect(includeCycles(edges)).toEqual([]);
  });
});

describe("the layer checker", () => {
  const check = (sources: Record<string, string>) => {
    const edges = includeGraph(new Map(Object.entries(sources)));
    return { upward: upwardIncludes(edges), cycles: includeCycles(edges) };
  };

  it("passes includes that go down, stay in a folder or start in a board folder", () => {
    expect(
      check({
        "link/ml_link.c": '#include "link/ml_link.h"\n#include "link/ml_slip.h"\n#include "dispatch/ml_dispatch.h"\n',
        "link/ml_link.h": '#include "core/ml_device.h"\n',
        "link/ml_slip.h": "",
        "dispatch/ml_dispatch.h": '#include "core/ml_call.h"\n',
        "core/ml_call.h": "#include <cbor.h>\n",
        "core/ml_device.h": '#include "hal/ml_hal.h"\n',
        "hal/ml_hal.h": "",
        "hal/native/main.c": '#include "board.h"\n#include "app/ml_core.h"\n',
        "hal/native/board.h": '#include "link/ml_link.h"\n',
        "app/ml_core.h": "",
      }),
    ).toEqual({ upward: [], cycles: [] });
  });

  it("catches a planted upward include, naming file and line", () => {
    const { upward } = check({
      "core/ml_busy.c": '#include "core/ml_busy.h"\n\n#include "link/ml_link.h"\n',
      "core/ml_busy.h": "",
      "link/ml_link.h": "",
      "ops/op_sys.c": '/* #include "app/ml_core.h" in a comment is no include */\n#include "hal/native/board.h"\n',
      "hal/native/board.h": "",
      "app/ml_core.h": "",
    });
    expect(upward).toEqual([
      "core/ml_busy.c:3 includes link/ml_link.h (core is below link)",
      "ops/op_sys.c:2 includes hal/native/board.h (ops is below board)",
    ]);
  });

  it("catches a planted include loop through three modules, naming each include", () => {
    const { cycles } = check({
      "link/ml_link.c": '#include "link/ml_link.h"\n#include "dispatch/ml_dispatch.h"\n',
      "link/ml_link.h": "",
      "dispatch/ml_dispatch.c": '#include "dispatch/ml_dispatch.h"\n#include "core/ml_busy.h"\n',
      "dispatch/ml_dispatch.h": "",
      "core/ml_busy.c": '#include "core/ml_busy.h"\n#include "link/ml_link.h"\n',
      "core/ml_busy.h": "",
    });
    expect(cycles).toEqual([
      "core/ml_busy.c:2 includes link/ml_link.h -> link/ml_link.c:2 includes dispatch/ml_dispatch.h -> dispatch/ml_dispatch.c:2 includes core/ml_busy.h",
    ]);
  });

  it("sees a loop made by a header and the other module's source (x.h -> y.h, y.c -> x.h)", () => {
    const { cycles } = check({
      "ops/x.h": '#include "ops/y.h"\n',
      "ops/y.h": "",
      "ops/y.c": '#include "ops/x.h"\n',
    });
    expect(cycles).toEqual(["ops/x.h:1 includes ops/y.h -> ops/y.c:1 includes ops/x.h"]);
  });
});
