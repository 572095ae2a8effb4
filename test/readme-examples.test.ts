// Every ```ts block in README.md tagged `example=NAME` is run as a program
// against the target under test, and its output must equal the ```text block
// tagged `output=NAME` byte for byte. This keeps the README's TypeScript
// twins of the python-mbedtls seed examples honest.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { targetOpenExpression } from "./integration/target.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const readme = readFileSync(join(repo, "README.md"), "utf8");

interface Example {
  name: string;
  code: string;
  output: string | undefined;
}

function extract(markdown: string): Example[] {
  const blocks = [...markdown.matchAll(/^```(\w+)[ \t]+(example|output)=([\w-]+)[ \t]*\n([\s\S]*?)^```[ \t]*$/gm)];
  const outputs = new Map<string, string>();
  for (const b of blocks) if (b[2] === "output") outputs.set(b[3] as string, b[4] as string);
  return blocks
    .filter((b) => b[2] === "example")
    .map((b) => ({ name: b[3] as string, code: b[4] as string, output: outputs.get(b[3] as string) }));
}

const examples = extract(readme);
// Examples live inside the repo so that `import ... from "mbedlink"` resolves
// through package.json's self-reference, as it would for a user.
const scratch = mkdtempSync(join(repo, "test-results-readme-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("README examples", () => {
  it("has the seed's examples", () => {
    expect(examples.map((e) => e.name)).toEqual(expect.arrayContaining(["hash-md5", "hash-sha224", "hash-new", "hmac"]));
  });

  it.each(examples.map((e) => [e.name, e] as const))("%s runs and prints what the README says", async (_name, ex) => {
    expect(ex.output, `README has no output=${ex.name} block`).toBeDefined();
    const code = ex.code.replaceAll('open({ target: "native" })', `open(${targetOpenExpression()})`);
    const file = join(scratch, `${ex.name}.mts`);
    writeFileSync(file, code);
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", file], { cwd: repo, timeout: 120_000 });
    expect(stdout).toBe(ex.output);
  });
});
