// `npm run protocol:check` must fail when a generated file is edited by hand,
// when the id table has a duplicate or an undocumented entry, and when an
// op's arity disagrees with messages.cddl; adding an op needs no hand edit.
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GENERATED } from "./generate.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const generator = join(repo, "protocol/generate.ts");

function run(root: string, ...flags: string[]): { code: number; output: string } {
  try {
    const out = execFileSync(process.execPath, ["--import", "tsx", generator, ...flags, "--root", root], {
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

function runCheck(root: string): { code: number; output: string } {
  return run(root, "--check");
}

/** Runs the check and expects it to fail, saying each of `says`. */
function expectCheckFails(root: string, ...says: (string | RegExp)[]): void {
  const r = runCheck(root);
  expect(r.code).toBe(1);
  for (const what of says) {
    if (typeof what === "string") expect(r.output).toContain(what);
    else expect(r.output).toMatch(what);
  }
}

/** Rewrites a file of the temp tree. */
function edit(root: string, rel: string, change: (text: string) => string): void {
  const path = join(root, rel);
  writeFileSync(path, change(readFileSync(path, "utf8")));
}

/** Rewrites protocol/ids.json of the temp tree. */
function editIds(root: string, change: (ids: Ids) => void): void {
  edit(root, "protocol/ids.json", (text) => {
    const ids = JSON.parse(text) as Ids;
    change(ids);
    return JSON.stringify(ids);
  });
}

interface Ids {
  ops: Record<string, unknown>[];
  statuses: Record<string, unknown>[];
  enums: Record<string, { doc: string; flags: boolean; values: { name: string; id: number; doc: string }[] }>;
}

/** An op entry as ids.json holds it. */
function op(name: string, id: number, arity: [number, number], resend = "never"): Record<string, unknown> {
  return { name, id, module: "sys", arity, resend, resend_why: "Made up for the test.", doc: "An op made up for the test." };
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
    expectCheckFails(root, rel);
  });

  it("fails on a duplicated op id", () => {
    editIds(root, (ids) => {
      ids.ops.push(op("twin_of_echo", 1, [1, 1], "idempotent"));
    });
    expectCheckFails(root, /id 1 used by both echo and twin_of_echo/);
  });

  it("fails on an undocumented status", () => {
    editIds(root, (ids) => {
      ids.statuses.push({ name: "mystery", id: 99, doc: "" });
    });
    expectCheckFails(root, /statuses\.mystery: undocumented/);
  });

  it("fails when an op has no schema rule", () => {
    editIds(root, (ids) => {
      ids.ops.push(op("frobnicate", 99, [0, 0]));
    });
    expectCheckFails(root, /frobnicate-req/);
  });

  it("fails when an arity in the generated op table is edited by hand", () => {
    edit(root, GENERATED.cOpTable, (t) => t.replace("{ML_OP_ECHO, 1, 1, ml_op_echo}", "{ML_OP_ECHO, 0, 1, ml_op_echo}"));
    expectCheckFails(root, GENERATED.cOpTable);
  });

  it("fails, naming the op, when an arity in ids.json disagrees with messages.cddl", () => {
    editIds(root, (ids) => {
      const echo = ids.ops.find((o) => o.name === "echo");
      if (echo) echo.arity = [0, 1];
    });
    expectCheckFails(root, "ops.echo: arity [0,1] disagrees with messages.cddl echo-req, which takes [1,1] arguments");
  });

  it("fails when an op lacks its arity, resend class or the reason for it", () => {
    const drop: Record<string, string> = { echo: "arity", stats: "resend", free: "resend_why" };
    editIds(root, (ids) => {
      for (const o of ids.ops) {
        const key = drop[String(o.name)];
        if (key) delete o[key];
      }
    });
    expectCheckFails(
      root,
      "ops.echo: arity must be [min, max]",
      "ops.stats: resend must be one of record, ordered, never",
      "ops.free: resend_why missing",
    );
  });

  it("fails on an undocumented enum, an enum value id used twice and a flag that is not one bit", () => {
    editIds(root, (ids) => {
      const role = ids.enums.kex_role;
      if (role) role.doc = "";
      ids.enums.kex_kind?.values.push({ name: "ecdh_again", id: 1, doc: "A second name for ECDH." });
      ids.enums.mpi_prime_flag?.values.push({ name: "both", id: 3, doc: "Two bits at once." });
    });
    expectCheckFails(
      root,
      "enums.kex_role: undocumented",
      "enums.kex_kind: id 1 used by both ecdh and ecdh_again",
      "enums.mpi_prime_flag.both: a flag's id must be a single bit",
    );
  });

  it("puts a new op of ids.json and messages.cddl into the op table and the prototypes, with no hand edit", () => {
    editIds(root, (ids) => {
      ids.ops.push(op("frobnicate", 99, [1, 2]));
    });
    edit(
      root,
      "protocol/messages.cddl",
      (t) => `${t}\nfrobnicate-req = [request-id, 99, handle, ? extra: bstr / [uint, uint]]\nfrobnicate-res = null\n`,
    );
    expect(runCheck(root).code).toBe(1); // stale until generated
    expect(run(root).code).toBe(0);
    const read = (rel: string) => readFileSync(join(root, rel), "utf8");
    expect(read(GENERATED.cOpTable)).toContain("{ML_OP_FROBNICATE, 1, 2, ml_op_frobnicate},");
    expect(read(GENERATED.cOps)).toContain("int ml_op_frobnicate(struct ml_call *call, CborValue *args, CborEncoder *result);");
    expect(read(GENERATED.cHeader)).toContain("ML_OP_FROBNICATE = 99,");
    expect(read(GENERATED.tsModule)).toContain('[99, { name: "frobnicate", module: "sys", resend: "never", minArgs: 1, maxArgs: 2 }],');
    expect(runCheck(root)).toMatchObject({ code: 0 });
  });
});
