// Generated blocks in README.md: the text between `<!-- NAME:begin ... -->`
// and `<!-- NAME:end -->` belongs to a script (`npm run size` writes "size",
// `npm run bench` writes "bench"); everything around it is hand-written.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const README = fileURLToPath(new URL("../README.md", import.meta.url));

function markers(name: string): RegExp {
  // begin marker (with an optional note up to its "-->"), body, end marker
  return new RegExp(`(<!-- ${name}:begin\\b[^\\n]*?-->\\n)([\\s\\S]*?)(<!-- ${name}:end -->)`, "g");
}

/** The body between the markers of block `name`, or undefined when the markers are missing. */
export function readBlock(markdown: string, name: string): string | undefined {
  const found = [...markdown.matchAll(markers(name))];
  if (found.length > 1) throw new Error(`README has ${found.length} "${name}" blocks; expected one`);
  return found[0]?.[2];
}

/** `markdown` with the body of block `name` replaced by `body` (markers kept). Throws when the markers are missing. */
export function replaceBlock(markdown: string, name: string, body: string): string {
  if (readBlock(markdown, name) === undefined) {
    throw new Error(`README has no <!-- ${name}:begin --> ... <!-- ${name}:end --> markers`);
  }
  const text = body.endsWith("\n") ? body : `${body}\n`;
  return markdown.replace(markers(name), (_all, begin: string, _old: string, end: string) => `${begin}${text}${end}`);
}

/**
 * Rewrites block `name` of README.md with `body`, unless it already says the
 * same once `ignore` (e.g. a date line) is blanked out on both sides, so that
 * rerunning a script that measured nothing new leaves the file alone.
 * Returns whether the file changed.
 */
export function writeReadmeBlock(name: string, body: string, ignore?: RegExp, file = README): boolean {
  const markdown = readFileSync(file, "utf8");
  const old = readBlock(markdown, name);
  const blank = (s: string) => (ignore ? s.replace(ignore, "") : s);
  if (old !== undefined && blank(old) === blank(body.endsWith("\n") ? body : `${body}\n`)) return false;
  writeFileSync(file, replaceBlock(markdown, name, body));
  return true;
}
