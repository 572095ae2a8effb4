// The python-mbedtls parity table: docs/python-mbedtls-parity.json lists every
// public name of python-mbedtls 2.x with its TypeScript name, or the reason
// it has none; this renders it as README.md's "parity" block.
// test/parity.test.ts resolves each TypeScript name against the SDK and
// checks that the README block is this rendering.
//
//   node --import tsx tools/parity-table.ts           print the block
//   node --import tsx tools/parity-table.ts --write   rewrite README.md's block
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { writeReadmeBlock } from "./readme-block.js";

export const PARITY_JSON = fileURLToPath(new URL("../docs/python-mbedtls-parity.json", import.meta.url));
export const PARITY_BLOCK = "parity";

export const KINDS = ["module", "class", "function", "method", "property", "constant", "exception", "mode"] as const;
export type Kind = (typeof KINDS)[number];

/**
 * One python name. Exactly one of `ts` and `none`: `ts` is the TypeScript
 * name (README.md's "python-mbedtls parity" says how to read it), `none` why
 * there is none. `pending` marks a `ts` another change is adding now (the
 * test accepts it unresolved) and says whose it is.
 */
export interface ParityRow {
  py: string;
  kind: Kind;
  ts?: string;
  none?: string;
  pending?: string;
  note?: string;
}

export interface ParityGroup {
  /** python-mbedtls module, e.g. "hash" ("mbedtls" for the package's own names). */
  module: string;
  rows: ParityRow[];
}

export interface ParityTable {
  about: string;
  python: { package: string; version: string; repository: string; how: string; files: Record<string, string> };
  groups: ParityGroup[];
}

export function loadParity(file = PARITY_JSON): ParityTable {
  return JSON.parse(readFileSync(file, "utf8")) as ParityTable;
}

/** Every row with its group's module. */
export function parityRows(t: ParityTable): (ParityRow & { module: string })[] {
  return t.groups.flatMap((g) => g.rows.map((r) => ({ ...r, module: g.module })));
}

const cell = (s: string): string => s.replaceAll("|", "\\|").replaceAll("\n", " ");
const code = (s: string): string => `\`${s}\``;

function tsCell(r: ParityRow): string {
  const note = r.note ? ` (${r.note})` : "";
  if (r.none !== undefined) return `none: ${r.none}`;
  const name = code(r.ts ?? "");
  return r.pending ? `${name}, pending: ${r.pending}` : `${name}${note}`;
}

function counts(rows: readonly ParityRow[]): { named: number; pending: number; none: number } {
  const pending = rows.filter((r) => r.pending).length;
  const none = rows.filter((r) => r.none !== undefined).length;
  return { named: rows.length - pending - none, pending, none };
}

/** The README block: a summary per module, then each module's rows in a collapsible table. */
export function renderParity(t: ParityTable): string {
  const all = parityRows(t);
  const total = counts(all);
  const adding = total.pending > 0; // the "being added" column only while something is
  const out: string[] = [
    `${all.length} public names of ${t.python.package} 2.x (package version ${t.python.version}; read from ${t.python.repository}; files and commits in \`docs/python-mbedtls-parity.json\`): ${total.named} have a TypeScript name, ${adding ? `${total.pending} ${total.pending === 1 ? "is" : "are"} being added, ` : ""}${total.none} have none.`,
    "",
    `| python-mbedtls module | names | TypeScript name |${adding ? " being added |" : ""} none |`,
    `|---|--:|--:|${adding ? "--:|" : ""}--:|`,
  ];
  for (const g of t.groups) {
    const c = counts(g.rows);
    const name = g.module === "mbedtls" ? "mbedtls" : `mbedtls.${g.module}`;
    out.push(`| \`${name}\` | ${g.rows.length} | ${c.named} |${adding ? ` ${c.pending} |` : ""} ${c.none} |`);
  }
  for (const g of t.groups) {
    const title = g.module === "mbedtls" ? "mbedtls (the package)" : `mbedtls.${g.module}`;
    out.push("", `<details><summary><code>${title}</code>: ${g.rows.length} names</summary>`, "");
    out.push("| python-mbedtls | kind | TypeScript |", "|---|---|---|");
    for (const r of g.rows) out.push(`| ${cell(code(r.py))} | ${r.kind} | ${cell(tsCell(r))} |`);
    out.push("", "</details>");
  }
  return `${out.join("\n")}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const block = renderParity(loadParity());
  if (process.argv.includes("--write")) {
    const changed = writeReadmeBlock(PARITY_BLOCK, block);
    console.log(changed ? "README.md: parity block rewritten" : "README.md: parity block already up to date");
  } else {
    process.stdout.write(block);
  }
}
