// The bootstrap installs every program the repository spawns: the sources
// are read for the programs they run (test/support/program-scan.ts), and
// each must be in tools/bootstrap.sh's package map or in the short
// allowlist of what every Debian with Node has. On a fresh machine a
// program missing from the map was a failing `npm test` (socat, once).
// At run time a missing program is one line naming its Debian package.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { PROGRAM_PACKAGES, requireProgram } from "../host/src/targets/programs.js";
import { BOOTSTRAP_SCRIPT, parseBootstrapMap, requireTool } from "../tools/programs.js";
import { basePrograms, checkPrograms, scanRepo, scanShell, scanTypeScript } from "./support/program-scan.js";

const REPO_ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const bootstrapText = readFileSync(BOOTSTRAP_SCRIPT, "utf8");
const uses = scanRepo(REPO_ROOT);
const found = new Set(uses.map((u) => u.program));

describe("the bootstrap's package map covers every program spawned", () => {
  it("each program spawned is installed by tools/bootstrap.sh or on every Debian with Node", () => {
    const problems = checkPrograms(uses, bootstrapText);
    expect(problems, problems.join("\n")).toEqual([]);
  });

  it("the scanner finds the programs the repository is known to spawn (a broken scanner cannot pass on nothing)", () => {
    const known = ["socat", "qemu-system-arm", "openssl", "setpriv", "valgrind", "cmake", "cc", "flock", "sha256sum", "bash", "node"];
    expect(known.filter((p) => !found.has(p))).toEqual([]);
    expect(found.size).toBeGreaterThanOrEqual(25);
    // where they are found, file:line
    const at = (p: string) => uses.filter((u) => u.program === p).map((u) => `${u.file}:${u.line}`);
    expect(at("socat").some((w) => w.startsWith("hil/fault-relay.ts:"))).toBe(true);
    expect(at("openssl").some((w) => w.startsWith("test/integration/pk-fixtures.ts:"))).toBe(true);
    expect(at("valgrind").some((w) => w.startsWith("bench/callgrind.ts:"))).toBe(true);
    expect(at("flock").some((w) => w.startsWith("tools/build-native.sh:"))).toBe(true);
  });

  it("the check bites: with socat taken out of the map it fails, naming socat and where it is spawned", () => {
    const withoutSocat = bootstrapText.replace(/\s*\[socat\]=socat\b/, "");
    expect(withoutSocat).not.toBe(bootstrapText);
    expect(parseBootstrapMap(withoutSocat).has("socat")).toBe(false);
    const problems = checkPrograms(uses, withoutSocat);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^socat \(spawned at hil\/fault-relay\.ts:\d+\b/);
  });

  it("socat, valgrind and the DTLS peers are required, the STM32/QEMU/fuzz programs optional", () => {
    const map = parseBootstrapMap(bootstrapText);
    for (const p of ["socat", "valgrind", "openssl", "setpriv", "flock", "cmake", "cc", "sha256sum"])
      expect(map.get(p)?.required, p).toBe(true);
    for (const p of ["qemu-system-arm", "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "clang"]) {
      expect(map.get(p)?.required, p).toBe(false);
    }
    expect(map.get("socat")?.pkg).toBe("socat");
    // the DTLS tests' third-party peers
    for (const p of ["gnutls-serv", "gnutls-cli"]) expect(map.get(p), p).toEqual({ pkg: "gnutls-bin", required: true });
    for (const p of ["coap-server-openssl", "coap-client-openssl", "coap-server-gnutls", "coap-client-gnutls"])
      expect(map.get(p), p).toEqual({ pkg: "libcoap3-bin", required: true });
    expect(uses.some((u) => u.program === "gnutls-serv" && u.file === "test/integration/dtls-peers.ts")).toBe(true);
    expect(map.get("arm-none-eabi-nm")?.pkg).toBe("binutils-arm-none-eabi");
  });

  it("the SDK's own program -> package table agrees with the bootstrap map (or the base allowlist)", () => {
    const map = parseBootstrapMap(bootstrapText);
    const base = basePrograms();
    for (const [program, pkg] of Object.entries(PROGRAM_PACKAGES)) {
      expect(map.get(program)?.pkg ?? base.get(program), program).toBe(pkg);
    }
  });
});

describe("the scanner", () => {
  it("TypeScript: literals, constants, process.execPath, wrappers, exec's command line; not RegExp.exec nor comments", () => {
    const exported = new Map([["EXPORTED_BIN", '"from-elsewhere"']]);
    const src = [
      'import { execFile, execFileSync, execSync, spawn } from "node:child_process";',
      'const TOOL = "tool-a";',
      "spawn(TOOL, []);",
      'execFileSync("tool-b", ["x"]);',
      "spawnTracked(",
      '  "setpriv", ["--pdeathsig", "SIGTERM", "--", EXPORTED_BIN, ...args], {});',
      'execSync("tool-c --flag | tool-d && tool-e");',
      'await promisify(execFile)("tool-f", []);',
      "spawn(process.execPath, []);",
      'const p = requireTool("tool-g");',
      "spawn(p, []);",
      'const m = /x/.exec("not-a-program");',
      '// spawn("in-a-comment")',
      "spawn(computed, []);",
    ].join("\n");
    const got = scanTypeScript("f.ts", src, exported).map((u) => `${u.program}@${u.line}`);
    expect(got).toEqual([
      "tool-a@3",
      "tool-b@4",
      "setpriv@6",
      "from-elsewhere@6",
      "tool-c@7",
      "tool-d@7",
      "tool-e@7",
      "tool-f@8",
      "node@9",
      "tool-g@10",
      "tool-g@11",
    ]);
  });

  it("shell: command words, not builtins, functions, variables, paths, data or case patterns", () => {
    const src = [
      "#!/usr/bin/env bash",
      'root=$(cd "$(dirname "$0")/.." && pwd)',
      "say() { printf '%s\\n' \"$*\" >&2; }",
      "say hello # not-a-program",
      'command -v prog-a >/dev/null || { echo "prog-b is missing" >&2; exit 1; }',
      'if ! prog-c --x | prog-d -y; then files=(prog-e "$x"); fi',
      'n=$((count + 1)); CC=clang prog-f "$root"/x; "$var" arg; ./local.sh',
      "cat >out.txt <<EOF",
      "not-a-program here",
      "EOF",
      'case "$1" in',
      "  --fix) prog-g ;;",
      "  *) exit 2 ;;",
      "esac",
      'for f in prog-h prog-i; do [ -f "$f" ] && prog-j; done',
      'env -u X "$@" prog-k --arg; exec 9>lock; flock 9',
      "read -r a < <(prog-l -e 'not-a-program' \"$x\")",
      "function helper {",
      "  prog-m",
      "}",
      "helper; timeout 5 prog-n",
    ].join("\n");
    const got = scanShell("s.sh", src).map((u) => `${u.program}@${u.line}`);
    expect(got).toEqual([
      "dirname@2",
      "prog-a@5",
      "prog-c@6",
      "prog-d@6",
      "prog-f@7",
      "cat@8",
      "prog-g@12",
      "prog-j@15",
      "env@16",
      "prog-k@16",
      "flock@16",
      "prog-l@17",
      "prog-m@19",
      "timeout@21",
      "prog-n@21",
    ]);
  });
});

describe("a missing program is one line naming its Debian package", () => {
  const savedPath = process.env.PATH;
  afterEach(() => {
    process.env.PATH = savedPath;
  });

  it("requireProgram resolves a program on PATH and throws for a missing one", () => {
    expect(requireProgram("bash")).toMatch(/\/bash$/);
    expect(() => requireProgram("mbedlink-no-such-program", "some-package")).toThrow(
      /^mbedlink-no-such-program is not installed: apt-get install -y some-package \(or run bash tools\/bootstrap\.sh\)$/,
    );
  });

  it("requireTool takes the package from the bootstrap map (socat, valgrind, qemu-system-arm)", () => {
    process.env.PATH = join(REPO_ROOT, "build", "no-such-dir");
    expect(() => requireTool("socat")).toThrow("socat is not installed: apt-get install -y socat (or run bash tools/bootstrap.sh)");
    expect(() => requireTool("arm-none-eabi-size")).toThrow("apt-get install -y binutils-arm-none-eabi");
    expect(() => requireProgram("qemu-system-arm")).toThrow("apt-get install -y qemu-system-arm");
  });
});
