// Which external programs the repository spawns, found by reading its own
// sources, and whether tools/bootstrap.sh installs each one. Used by
// test/bootstrap.test.ts: a program that a fresh Debian machine lacks and
// the bootstrap does not install fails `npm test` there (socat once did).
//
// TypeScript: spawn/spawnSync/execFile/execFileSync/exec/execSync/
// spawnTracked (and promisify(execFile)) calls whose program is a string
// literal, a constant holding one (`QEMU_BINARY = "qemu-system-arm"`) or
// process.execPath; the string command of exec/execSync as shell;
// requireProgram/requireTool/findProgram (the checks before a spawn); the
// program after `"--"` of wrappers such as setpriv.
// Shell (any *.sh, .ci/run, package.json scripts): the command words of a
// small tokenizer (after newline, `;`, `|`, `&&`, `||`, `(`, `$(`, `<(`,
// `if`, `!`, ...; the words after `command -v`; the program of env/exec/
// setpriv ... --), minus builtins, keywords, the script's own functions,
// variables and paths.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseBootstrapMap } from "../../tools/programs.js";

export interface ProgramUse {
  program: string;
  /** Repository-relative path. */
  file: string;
  line: number;
}

export interface SourceFile {
  /** Repository-relative path. */
  path: string;
  text: string;
  kind: "ts" | "sh" | "package.json";
}

/**
 * Programs the checker accepts without a bootstrap entry, because every
 * Debian machine that can run `npm test` has them before the bootstrap runs
 * (or the bootstrap itself installs them by other means). Program -> what
 * provides it.
 */
export const BASE_PROGRAMS: readonly { why: string; programs: Readonly<Record<string, string>> }[] = [
  {
    why: "the runtime `npm test` itself needs: bash runs every script (the bootstrap included), node/npm/npx run npm",
    programs: { bash: "bash", sh: "dash", node: "nodejs", npm: "npm", npx: "npm" },
  },
  {
    why: "the installer the bootstrap uses; a machine without it cannot run the bootstrap at all",
    programs: { "apt-get": "apt" },
  },
  {
    why: "npm packages' commands (node_modules/.bin) in package.json scripts, installed by the bootstrap's `npm ci`",
    programs: { tsc: "typescript (npm)", biome: "@biomejs/biome (npm)", vitest: "vitest (npm)", tsx: "tsx (npm)" },
  },
  {
    why: "coreutils basics and the other Essential: yes packages (grep, sed, findutils): part of every Debian base system, dpkg needs them",
    programs: Object.fromEntries(
      [
        ...["basename", "cat", "cp", "cut", "dirname", "echo", "env", "head", "id", "mkdir", "mktemp", "mv", "nproc", "pwd", "printf"],
        ...["rm", "sleep", "sort", "tail", "tee", "touch", "tr", "true", "false", "uname", "uniq", "wc"],
      ]
        .map((p) => [p, "coreutils"])
        .concat([
          ["grep", "grep"],
          ["sed", "sed"],
          ["find", "findutils"],
          ["xargs", "findutils"],
        ]),
    ),
  },
];

/** Program -> what provides it, over all of BASE_PROGRAMS. */
export function basePrograms(): Map<string, string> {
  return new Map(BASE_PROGRAMS.flatMap((g) => Object.entries(g.programs)));
}

// ---------------------------------------------------------------- sources

/** Folders whose *.ts (and *.js) files are scanned, and files that hold example source text as data. */
const TS_DIRS = ["host", "hil", "test", "tools", "bench", "protocol"];
const SKIP_DIRS = new Set(["node_modules", "build", "dist", ".git", "test-results", ".cache", "lib"]);
/** The scanner and its test: they hold source text to scan as data, not calls. */
export const SELF = ["test/support/program-scan.ts", "test/bootstrap.test.ts"];

function walk(root: string, dir: string, out: string[]): void {
  for (const name of readdirSync(join(root, dir))) {
    const rel = dir ? `${dir}/${name}` : name;
    if (SKIP_DIRS.has(name) || name.startsWith("test-results")) continue;
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(join(root, rel));
    } catch {
      continue; // removed meanwhile
    }
    if (st.isDirectory()) walk(root, rel, out);
    else out.push(rel);
  }
}

/** The repository's own sources that may spawn programs. */
export function repoSources(root: string): SourceFile[] {
  const all: string[] = [];
  walk(root, "", all);
  const files: SourceFile[] = [];
  for (const path of all.sort()) {
    if (SELF.includes(path)) continue;
    const top = path.split("/")[0] ?? "";
    let kind: SourceFile["kind"] | undefined;
    if (/\.(ts|mts|cts|js|mjs|cjs)$/.test(path) && (TS_DIRS.includes(top) || /^firmware\/fuzz\/[^/]+\.ts$/.test(path))) kind = "ts";
    else if (path.endsWith(".sh") || path === ".ci/run") kind = "sh";
    else if (path === "package.json") kind = "package.json";
    if (kind) files.push({ path, kind, text: readFileSync(join(root, path), "utf8") });
  }
  return files;
}

/** Every program use in `files`. */
export function scanSources(files: readonly SourceFile[]): ProgramUse[] {
  const exported = exportedConstants(files.filter((f) => f.kind === "ts"));
  const uses: ProgramUse[] = [];
  for (const f of files) {
    if (f.kind === "ts") uses.push(...scanTypeScript(f.path, f.text, exported));
    else if (f.kind === "sh") uses.push(...scanShell(f.path, f.text));
    else uses.push(...scanPackageJson(f.path, f.text));
  }
  return uses;
}

export function scanRepo(root: string): ProgramUse[] {
  return scanSources(repoSources(root));
}

// ---------------------------------------------------------------- TypeScript

const lineAt = (text: string, index: number): number => {
  let n = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < index; i = text.indexOf("\n", i + 1)) n++;
  return n;
};

/** True when `index` is inside a // line comment or on a line of a block comment. */
function inComment(text: string, index: number): boolean {
  const start = text.lastIndexOf("\n", index - 1) + 1;
  const before = text.slice(start, index);
  const t = before.trimStart();
  return t.startsWith("//") || t.startsWith("*") || t.startsWith("/*") || /(^|\s)\/\/\s/.test(before);
}

const STRING = String.raw`"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\x60[^\x60$]*\x60`;
const IDENT = String.raw`[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*`;
const ARG = new RegExp(`^(?:(${STRING})|(${IDENT}))`);
/** Functions whose first argument is a program. */
const CALLEES = [
  "spawn",
  "spawnSync",
  "execFile",
  "execFileSync",
  "execSync",
  "exec",
  "spawnTracked",
  "requireProgram",
  "requireTool",
  "findProgram",
];
/** Calls whose first argument is a shell command line rather than a program. */
const SHELL_CALLEES = new Set(["exec", "execSync"]);
/** Programs that run the program after their `--` argument. */
const DASHDASH_WRAPPERS = new Set(["setpriv", "unshare", "sudo", "env", "nice", "nohup", "timeout", "taskset", "chrt", "stdbuf"]);

const unquote = (s: string): string => s.slice(1, -1);

/** `const NAME = "literal"`, `= OTHER_NAME` or `= requireProgram("x")`: name -> the literal or name it stands for. */
function constants(text: string, exportedOnly: boolean): Map<string, string> {
  const m = new Map<string, string>();
  const re = new RegExp(
    String.raw`${exportedOnly ? "export\\s+" : ""}(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=;\n]+)?=\s*(?:(?:requireProgram|requireTool|findProgram)\(\s*)?(${STRING}|${IDENT})\s*[;,\n)]`,
    "g",
  );
  for (const c of text.matchAll(re)) if (!m.has(c[1] as string)) m.set(c[1] as string, c[2] as string);
  return m;
}

function exportedConstants(files: readonly SourceFile[]): Map<string, string> {
  const all = new Map<string, string>();
  for (const f of files) for (const [k, v] of constants(f.text, true)) if (!all.has(k)) all.set(k, v);
  return all;
}

/** A program argument's value: a literal, process.execPath (node), or a constant's; undefined when computed. */
function resolveArg(arg: string, local: Map<string, string>, exported: Map<string, string>, depth = 0): string | undefined {
  if (/^["'\x60]/.test(arg)) return unquote(arg);
  if (arg === "process.execPath" || arg === "process.argv0") return "node";
  const next = local.get(arg) ?? exported.get(arg);
  return next === undefined || depth > 5 ? undefined : resolveArg(next, local, exported, depth + 1);
}

/** The text of the bracketed array starting at `open` (a "["), brackets balanced. */
function bracketed(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length && i < open + 2000; i++) {
    const ch = text[i];
    if (ch === "[") depth++;
    else if (ch === "]" && --depth === 0) return text.slice(open + 1, i);
  }
  return "";
}

const isProgramName = (s: string): boolean => /^[A-Za-z_][A-Za-z0-9_.+-]*$/.test(s);

export function scanTypeScript(file: string, text: string, exported: Map<string, string> = new Map()): ProgramUse[] {
  const local = constants(text, false);
  const uses: ProgramUse[] = [];
  const add = (program: string, index: number) => {
    if (isProgramName(program)) uses.push({ program, file, line: lineAt(text, index) });
  };
  const call = new RegExp(String.raw`(?<![\w$])(?:promisify\(\s*(execFile|exec)\s*\)|(${CALLEES.join("|")}))\s*\(\s*`, "g");
  for (const m of text.matchAll(call)) {
    const callee = (m[1] ?? m[2]) as string;
    const at = m.index;
    if (inComment(text, at)) continue;
    // `re.exec(...)` is a RegExp, not child_process.exec
    if (text[at - 1] === "." && SHELL_CALLEES.has(callee) && !/(child_process|childProcess|cp)\.$/.test(text.slice(at - 20, at))) continue;
    const rest = text.slice(at + m[0].length);
    const a = ARG.exec(rest);
    if (!a) continue;
    const argAt = at + m[0].length;
    if (SHELL_CALLEES.has(callee)) {
      // a command line for /bin/sh
      if (a[1]) for (const u of scanShell(file, unquote(a[1]), lineAt(text, argAt) - 1)) uses.push(u);
      continue;
    }
    const program = resolveArg(a[0], local, exported);
    if (program === undefined) continue;
    add(program, argAt);
    // setpriv --pdeathsig SIGTERM -- PROGRAM ...
    const after = /^\s*,\s*\[/.exec(rest.slice(a[0].length));
    if (after && DASHDASH_WRAPPERS.has(program)) {
      const open = argAt + a[0].length + after[0].length - 1;
      const items = bracketed(text, open);
      const dd = new RegExp(String.raw`(?:^|,)\s*"--"\s*,\s*(${STRING}|${IDENT})`).exec(items);
      if (dd) {
        const wrapped = resolveArg(dd[1] as string, local, exported);
        if (wrapped !== undefined) add(wrapped, open + 1 + dd.index + dd[0].length - (dd[1] as string).length);
      }
    }
  }
  return uses;
}

// ---------------------------------------------------------------- shell

type Tok = { t: "word" | "op" | "funcdef"; v: string; line: number };

/** Bash's builtins and keywords: never programs. */
const SHELL_BUILTINS = new Set(
  (
    ". : [ [[ ]] alias bg bind break builtin caller cd command compgen complete continue declare dirs disown echo enable eval exec " +
    "exit export false fc fg getopts hash help history jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly " +
    "return set shift shopt source suspend test times trap true type typeset ulimit umask unalias unset wait"
  ).split(" "),
);
const STAY_COMMAND = new Set(["if", "then", "else", "elif", "do", "while", "until", "{", "!", "time"]);
const END_COMMAND = new Set(["fi", "done", "}", "esac", "]]"]);

/** Index just past the `close` matching the `open` at `i` (quotes skipped). */
function skipBalanced(s: string, i: number, open: string, close: string): number {
  let depth = 0;
  for (let j = i; j < s.length; j++) {
    const ch = s[j];
    if (ch === "\\") j++;
    else if (ch === "'") j = s.indexOf("'", j + 1) === -1 ? s.length : s.indexOf("'", j + 1);
    else if (ch === open) depth++;
    else if (ch === close && --depth === 0) return j + 1;
  }
  return s.length;
}

/** Words and operators of a shell script; `$(`, `<(` and `(` open a nested command list closed by ")". */
export function lexShell(src: string, firstLine = 1): Tok[] {
  const toks: Tok[] = [];
  const modes: ("cmd" | "dq" | "sub")[] = ["cmd"];
  let line = firstLine;
  let cur = "";
  let curLine = line;
  const heredocs: { delim: string; strip: boolean }[] = [];
  const flush = () => {
    if (cur) toks.push({ t: "word", v: cur, line: curLine });
    cur = "";
  };
  const append = (s: string) => {
    if (!cur) curLine = line;
    cur += s;
    line += s.split("\n").length - 1;
  };
  const op = (v: string) => {
    flush();
    toks.push({ t: "op", v, line });
  };
  let i = 0;
  while (i < src.length) {
    const ch = src[i] as string;
    const next = src[i + 1];
    const mode = modes[modes.length - 1];
    // expansions are the same inside and outside double quotes
    if (ch === "\\") {
      if (next === "\n") line++;
      else append(src.slice(i, i + 2));
      i += 2;
      continue;
    }
    if (ch === "$" && next === "(" && src[i + 2] === "(") {
      const end = skipBalanced(src, i + 1, "(", ")");
      append(src.slice(i, end));
      i = end;
      continue;
    }
    if (ch === "$" && next === "(") {
      op("$(");
      modes.push("sub");
      i += 2;
      continue;
    }
    if (ch === "$" && next === "{") {
      const end = skipBalanced(src, i + 1, "{", "}");
      append(src.slice(i, end));
      i = end;
      continue;
    }
    if (ch === "`") {
      const end = src.indexOf("`", i + 1);
      append(src.slice(i, end === -1 ? src.length : end + 1));
      i = end === -1 ? src.length : end + 1;
      continue;
    }
    if (mode === "dq") {
      if (ch === '"') modes.pop();
      append(ch);
      i++;
      continue;
    }
    if (ch === "'") {
      const end = src.indexOf("'", i + 1);
      append(src.slice(i, end === -1 ? src.length : end + 1));
      i = end === -1 ? src.length : end + 1;
      continue;
    }
    if (ch === '"') {
      modes.push("dq");
      append(ch);
      i++;
      continue;
    }
    if (ch === "#" && !cur) {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (ch === " " || ch === "\t") {
      flush();
      i++;
      continue;
    }
    if (ch === "\n") {
      op("\n");
      line++;
      i++;
      // here-document bodies are data
      for (const h of heredocs.splice(0)) {
        for (;;) {
          const end = src.indexOf("\n", i);
          const body = src.slice(i, end === -1 ? src.length : end);
          i = end === -1 ? src.length : end + 1;
          line++;
          if ((h.strip ? body.replace(/^\t+/, "") : body) === h.delim || end === -1) break;
        }
      }
      continue;
    }
    if (src.startsWith("<<<", i)) {
      append("<<<"); // here-string
      i += 3;
      continue;
    }
    if (ch === "<" && next === "<") {
      const m = /^<<(-?)\s*(?:'([^']*)'|"([^"]*)"|([^\s;|&<>()]+))/.exec(src.slice(i));
      if (m) {
        heredocs.push({ delim: (m[2] ?? m[3] ?? m[4]) as string, strip: m[1] === "-" });
        append(m[0]);
        i += m[0].length;
        continue;
      }
    }
    if (ch === "<" && next === "(") {
      op("<(");
      modes.push("sub");
      i += 2;
      continue;
    }
    if (ch === "(") {
      if (cur.endsWith("=")) {
        // array assignment: data
        const end = skipBalanced(src, i, "(", ")");
        append(src.slice(i, end));
        i = end;
        continue;
      }
      const fn = /^\(\s*\)/.exec(src.slice(i));
      if (fn && /^[A-Za-z_][\w-]*$/.test(cur)) {
        toks.push({ t: "funcdef", v: cur, line: curLine });
        cur = "";
        i += fn[0].length;
        continue;
      }
      op("(");
      modes.push("sub");
      i++;
      continue;
    }
    if (ch === ")") {
      op(")");
      if (mode === "sub") modes.pop();
      i++;
      continue;
    }
    if (ch === "&" && (cur.endsWith(">") || cur.endsWith("<"))) {
      append(ch); // >&2, 2>&1
      i++;
      continue;
    }
    if (ch === ";" || ch === "|" || ch === "&") {
      const two = src.slice(i, i + 2);
      const v = ["&&", "||", ";;", ";&", "|&"].includes(two) ? two : ch;
      op(v);
      i += v.length;
      continue;
    }
    append(ch);
    i++;
  }
  flush();
  return toks;
}

const plainWord = (w: string): string | undefined => {
  if (w.includes("$") || w.includes("`")) return undefined;
  const s = w.replace(/["']/g, "");
  return isProgramName(s) ? s : undefined;
};

/** The programs a shell script runs. `lineOffset` is added to line numbers (for scripts inside other files). */
export function scanShell(file: string, text: string, lineOffset = 0): ProgramUse[] {
  const toks = lexShell(text, 1 + lineOffset);
  const functions = new Set(toks.filter((t) => t.t === "funcdef").map((t) => t.v));
  for (const m of text.matchAll(/^\s*function\s+([A-Za-z_][\w-]*)/gm)) functions.add(m[1] as string);
  type Skip = "none" | "for" | "caseWord" | "pattern" | "command" | "commandV" | "env" | "envArg" | "exec" | "dashdash" | "funcname";
  interface Ctx {
    cmd: boolean;
    skip: Skip;
  }
  const stack: Ctx[] = [{ cmd: true, skip: "none" }];
  const uses: ProgramUse[] = [];
  for (const tok of toks) {
    const ctx = stack[stack.length - 1] as Ctx;
    if (tok.t === "funcdef") {
      ctx.cmd = true;
      continue;
    }
    if (tok.t === "op") {
      const v = tok.v;
      if (v === "$(" || v === "<(" || v === "(") {
        stack.push({ cmd: true, skip: "none" });
      } else if (v === ")") {
        if (ctx.skip === "pattern") {
          ctx.skip = "none";
          ctx.cmd = true;
        } else if (stack.length > 1) stack.pop();
      } else if (ctx.skip === "pattern" || ctx.skip === "caseWord") {
        // newlines and | between case patterns
      } else if (v === ";;" || v === ";&") {
        ctx.skip = "pattern";
      } else {
        ctx.cmd = true;
        ctx.skip = "none";
      }
      continue;
    }
    const w = tok.v;
    switch (ctx.skip) {
      case "pattern":
        if (w === "esac") {
          ctx.skip = "none";
          ctx.cmd = false;
        }
        continue;
      case "caseWord":
        if (w === "in") ctx.skip = "pattern";
        continue;
      case "for":
        continue; // the loop's words, up to `;` or a newline
      case "funcname":
        functions.add(w);
        ctx.skip = "none";
        ctx.cmd = true; // the body's `{`
        continue;
      case "command":
        ctx.skip = "none";
        if (w === "-v" || w === "-V") {
          ctx.skip = "commandV";
          continue;
        }
        ctx.cmd = true;
        break;
      case "commandV": {
        const p = plainWord(w);
        if (p && !SHELL_BUILTINS.has(p) && !functions.has(p)) uses.push({ program: p, file, line: tok.line });
        continue;
      }
      case "envArg":
        ctx.skip = "env";
        continue;
      case "env":
        if (w === "-u" || w === "--unset" || w === "-C" || w === "--chdir") ctx.skip = "envArg";
        if (w.startsWith("-") || w.includes("=") || w.includes("$") || /^[\d.]+[smhd]?$/.test(w)) continue;
        ctx.skip = "none";
        ctx.cmd = true;
        break;
      case "exec":
        if (/^\d*[<>]/.test(w)) continue;
        ctx.skip = "none";
        ctx.cmd = true;
        break;
      case "dashdash":
        if (w === "--") {
          ctx.skip = "none";
          ctx.cmd = true;
        }
        continue;
      default:
        break;
    }
    if (!ctx.cmd) continue;
    if (/^[A-Za-z_]\w*(\[[^\]]*\])?\+?=/.test(w) || /^\d*[<>]/.test(w)) continue; // assignment, redirection
    if (STAY_COMMAND.has(w)) continue;
    ctx.cmd = false;
    if (END_COMMAND.has(w)) continue;
    if (w === "for" || w === "select") ctx.skip = "for";
    else if (w === "case") ctx.skip = "caseWord";
    else if (w === "function") ctx.skip = "funcname";
    else if (w === "command") ctx.skip = "command";
    else if (w === "exec") ctx.skip = "exec";
    if (SHELL_BUILTINS.has(w) || ["for", "select", "case", "function"].includes(w) || functions.has(w)) continue;
    const p = plainWord(w);
    if (!p) continue;
    uses.push({ program: p, file, line: tok.line });
    if (["env", "sudo", "nice", "nohup", "stdbuf", "timeout"].includes(p)) ctx.skip = "env";
    else if (DASHDASH_WRAPPERS.has(p)) ctx.skip = "dashdash";
  }
  return uses;
}

/** package.json "scripts": each a shell command line run by npm. */
export function scanPackageJson(file: string, text: string): ProgramUse[] {
  const scripts = (JSON.parse(text) as { scripts?: Record<string, string> }).scripts ?? {};
  const uses: ProgramUse[] = [];
  for (const [name, cmd] of Object.entries(scripts)) {
    const at = text.indexOf(`${JSON.stringify(name)}:`);
    uses.push(...scanShell(file, cmd, at < 0 ? 0 : lineAt(text, at) - 1));
  }
  return uses;
}

// ---------------------------------------------------------------- check

/**
 * The problems with `uses` against the bootstrap's text: one line per
 * program that is neither in its package map nor in BASE_PROGRAMS, naming
 * where it is spawned.
 */
export function checkPrograms(uses: readonly ProgramUse[], bootstrapText: string): string[] {
  const map = parseBootstrapMap(bootstrapText);
  const base = basePrograms();
  const missing = new Map<string, string[]>();
  for (const u of uses) {
    if (map.has(u.program) || base.has(u.program)) continue;
    const at = missing.get(u.program) ?? [];
    at.push(`${u.file}:${u.line}`);
    missing.set(u.program, at);
  }
  return [...missing].map(
    ([program, at]) =>
      `${program} (spawned at ${at.join(", ")}) is not in tools/bootstrap.sh's package map (need/want) nor in the base allowlist`,
  );
}
