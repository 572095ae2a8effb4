// `npm run protocol:check` must fail when a generated file is edited by hand,
// and when the id table has a duplicate or an undocumented entry.
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GENERATED } from "./generate.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const generator = join(repo, "protocol/generate.ts");

function runCheck(root: string): { code: number; output: string } {
  try {
    const out = execFileSync(process.execPath, ["--import", "tsx", generator, "--check", "--root", root], {
      cwd: repo,
      stdio: ["ignore", "pipe", "pipe"],
      encoding: "utf8",
    });
    return { code: 0, output: out };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, output: err.stdout + err.stderr };
  }
}

describe("protocol:check", () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "mbedlink-proto-"));
    cpSync(join(repo, "protocol"), join(root, "protocol"), { recursive: true });
    for (const rel of Object.values(GENERATED)) cpSync(join(repo, rel), join(root, rel), { recursive: true });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("passes on the committed files", () => {
    expect(runCheck(root)).toMatchObject({ code: 0 });
  });

  it.each(Object.values(GENERATED))("fails when %s is edited by hand", (rel) => {
    const path = join(root, rel);
    writeFileSync(path, `${readFileSync(path, "utf8")}\n/* hand edit */\n`);
    const r = runCheck(root);
    expect(r.code).toBe(1);
    expect(r.output).toContain(rel);
  });

  it("fails on a duplicated op id", () => {
    const path = join(root, "protocol/ids.json");
    const ids = JSON.parse(readFileSync(path, "utf8"));
    ids.ops.push({ name: "twin_of_echo", id: 1, module: "sys", idempotent: true, doc: "Duplicate id for the test." });
    writeFileSync(path, JSON.stringify(ids));
    const r = runCheck(root);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/id 1 used by both echo and twin_of_echo/);
  });

  it("fails on an undocumented status", () => {
    const path = join(root, "protocol/ids.json");
    const ids = JSON.parse(readFileSync(path, "utf8"));
    ids.statuses.push({ name: "mystery", id: 99, doc: "" });
    writeFileSync(path, JSON.stringify(ids));
    const r = runCheck(root);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/statuses\.mystery: undocumented/);
  });

  it("fails when an op has no schema rule", () => {
    const path = join(root, "protocol/ids.json");
    const ids = JSON.parse(readFileSync(path, "utf8"));
    ids.ops.push({ name: "frobnicate", id: 99, module: "sys", idempotent: false, doc: "An op missing from the CDDL." });
    writeFileSync(path, JSON.stringify(ids));
    const r = runCheck(root);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/frobnicate-req/);
  });
});
