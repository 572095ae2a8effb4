// The SDK ships on its own (dist/ in the npm package, without hil/, test/,
// tools/ or bench/), so nothing under host/src may import from outside it,
// and the library never imports the command line built on top of it.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const sdk = join(repo, "host", "src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [p] : [];
  });
}

/** Relative module specifiers of static and dynamic imports and re-exports. */
function relativeImports(text: string): string[] {
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+["']([^"']+)["']/gms),
    ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
    ...text.matchAll(/^\s*import\s+["']([^"']+)["']/gm),
  ].map((m) => m[1] as string);
  return specs.filter((s) => s.startsWith("."));
}

describe("SDK layering", () => {
  const files = sources(sdk).filter((f) => !f.includes(`${join("host", "src", "testing")}`));

  it("finds the SDK's sources and their imports", () => {
    expect(files.length).toBeGreaterThan(20);
    expect(relativeImports(readFileSync(join(sdk, "device.ts"), "utf8"))).toContain("./targets/qemu.js");
  });

  it("no file under host/src imports from outside host/src (hil/, test/, tools/, bench/, host/cli/)", () => {
    const outside: string[] = [];
    for (const file of files) {
      for (const spec of relativeImports(readFileSync(file, "utf8"))) {
        const target = resolve(dirname(file), spec);
        if (relative(sdk, target).startsWith("..")) outside.push(`${relative(repo, file)} imports ${spec}`);
      }
    }
    expect(outside).toEqual([]);
  });

  it("the checker sees an import that reaches out", () => {
    expect(relativeImports('const { startQemu } = await import("../../hil/qemu.js");')).toEqual(["../../hil/qemu.js"]);
    expect(relativeImports('import { x } from "../../test/integration/target.js";')).toEqual(["../../test/integration/target.js"]);
    expect(relativeImports('export {\n  a,\n  b,\n} from "../cli/args.js";')).toEqual(["../cli/args.js"]);
  });
});
