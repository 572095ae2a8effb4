// `npm run docs` (tools/docs/build.sh) runs TypeDoc from its own pinned
// toolchain, which neither the bootstrap nor `npm test` installs. These cheap
// checks keep its configuration valid without running it: the entry point is
// the package's public one, the versions are exact and locked, and the locked
// TypeScript is one TypeDoc accepts.
import { existsSync, readFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { repoPath } from "../tools/size-figures.js";

const json = <T>(p: string): T => JSON.parse(readFileSync(repoPath(p), "utf8")) as T;
const docsDir = repoPath("tools/docs");
const typedoc = json<{ entryPoints: string[]; out: string; tsconfig: string }>("tools/docs/typedoc.json");
const manifest = json<{ devDependencies: Record<string, string> }>("tools/docs/package.json");
const lock = json<{
  packages: Record<string, { version?: string; devDependencies?: Record<string, string>; peerDependencies?: Record<string, string> }>;
}>("tools/docs/package-lock.json");
const pkg = json<{ exports: { ".": { types: string } }; scripts: Record<string, string> }>("package.json");

describe("docs toolchain (npm run docs)", () => {
  it("documents the package's public entry point into build/docs/api", () => {
    const entries = typedoc.entryPoints.map((e) => relative(repoPath(""), resolve(docsDir, e)));
    // exports["."].types is dist/src/index.d.ts, compiled from host/src/index.ts
    expect(pkg.exports["."].types).toBe("./dist/src/index.d.ts");
    expect(entries).toEqual(["host/src/index.ts"]);
    expect(relative(repoPath(""), resolve(docsDir, typedoc.out))).toBe("build/docs/api");
    expect(existsSync(resolve(docsDir, typedoc.tsconfig))).toBe(true);
    expect(pkg.scripts.docs).toBe("bash tools/docs/build.sh");
  });

  it("pins exact versions, locked, and a TypeScript that TypeDoc accepts", () => {
    for (const [name, version] of Object.entries(manifest.devDependencies)) {
      expect(version, `${name} must be an exact version`).toMatch(/^\d+\.\d+\.\d+$/);
      expect(
        lock.packages[`node_modules/${name}`]?.version,
        `package-lock.json is stale for ${name}: run npm install --prefix tools/docs`,
      ).toBe(version);
    }
    expect(lock.packages[""]?.devDependencies).toEqual(manifest.devDependencies);
    const ts = manifest.devDependencies.typescript ?? "";
    const accepted = (lock.packages["node_modules/typedoc"]?.peerDependencies?.typescript ?? "").split("||").map((r) => r.trim());
    // TypeDoc's ranges are all of the form "MAJOR.MINOR.x"
    expect(
      accepted.some((r) => r === `${ts.split(".").slice(0, 2).join(".")}.x`),
      `typescript ${ts} is outside ${accepted.join(" || ")}`,
    ).toBe(true);
  });

  it("keeps its node_modules out of the project's tsc and Biome runs", () => {
    const biome = json<{ files: { includes: string[] } }>("biome.json");
    expect(biome.files.includes).toContain("!**/node_modules");
    // tsc's include globs skip node_modules folders unless named outright
    const tsconfig = json<{ include: string[] }>("tsconfig.json");
    expect(tsconfig.include.some((g) => g.includes("node_modules"))).toBe(false);
  });
});
