// Mbed TLS's own X.509 parse cases, run through the device: every parse case
// of tests/suites/test_suite_x509parse.data (x509parse_crt, x509parse_crl,
// x509_cert_info, mbedtls_x509_crl_info, mbedtls_x509_crt_parse_file,
// x509parse_crt_file, mbedtls_x509_crl_parse) with the verdict the suite
// expects: the same Mbed TLS return code, and for the ones that parse, the
// same mbedtls_x509_crt_info / mbedtls_x509_crl_info text. The host reads
// the suite's files (as mbedtls_x509_crt_parse_file would: the bytes and a
// NUL) and sends them as they are, so the device's Mbed TLS decides PEM or
// DER. A case runs when the firmware has what its depends_on names,
// decided by the C preprocessor over the firmware's own configuration;
// the cases left out are listed with the reason (the verify cases are
// x509-verify.test.ts's; CSR cases x509-write's).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Op } from "../../host/src/base/protocol.generated.js";
import { CertificateError, type Device, DeviceError } from "../../host/src/index.js";
import { sendInPieces } from "../../host/src/modules/x509-common.js";
import { withTemporaryHandle } from "../../host/src/session/device-object.js";
import { useSession } from "./session.js";
import { TARGET } from "./target.js";

const MBEDTLS = resolve(__dirname, "../../firmware/lib/mbedtls");
const SUITE_DIR = join(MBEDTLS, "src/tests");
const DATA = join(SUITE_DIR, "suites/test_suite_x509parse.data");

/** The parse functions this file runs, and what each takes. */
const RUN = new Set([
  "x509parse_crt",
  "x509parse_crl",
  "x509_cert_info",
  "mbedtls_x509_crl_info",
  "mbedtls_x509_crt_parse_file",
  "x509parse_crt_file",
  "mbedtls_x509_crl_parse",
]);
/** Parse functions left out, with the reason. */
const LEFT_OUT: Record<string, string> = {
  x509parse_crt_cb: "parses with an extension callback (parse_crt_ext_cb), C code that cannot cross the wire",
  mbedtls_x509_crt_parse_path:
    "parses every file of a directory (mbedtls_x509_crt_parse_path): a host filesystem walk, not a device operation",
};

interface Case {
  line: number;
  title: string;
  fn: string;
  args: string[];
  deps: string[];
}

/** Splits on the suite's unescaped ':' and unescapes each argument. */
function splitArgs(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === "\\" && i + 1 < s.length) {
      const n = s[++i] as string;
      cur += n === "n" ? "\n" : n === "t" ? "\t" : n;
    } else if (c === ":") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out.map((a) => (a.length >= 2 && a.startsWith('"') && a.endsWith('"') ? a.slice(1, -1) : a));
}

function readCases(): Case[] {
  const lines = readFileSync(DATA, "utf8").split("\n");
  const cases: Case[] = [];
  for (let i = 0; i < lines.length; i++) {
    const title = (lines[i] as string).trim();
    if (title === "" || title.startsWith("#")) continue;
    let deps: string[] = [];
    let j = i + 1;
    if ((lines[j] ?? "").startsWith("depends_on:")) deps = (lines[j++] as string).slice("depends_on:".length).trim().split(":");
    const call = (lines[j] ?? "").trim();
    const colon = call.indexOf(":");
    const fn = colon < 0 ? call : call.slice(0, colon);
    cases.push({ line: i + 1, title, fn, args: colon < 0 ? [] : splitArgs(call.slice(colon + 1)), deps });
    i = j;
  }
  return cases;
}

/** Which of `names` (optionally "!NAME") hold for the firmware's configuration, asked of the C preprocessor. */
function configHolds(names: string[]): Map<string, boolean> {
  const ids = [...new Set(names.map((n) => n.replace(/^!/, "")))];
  const dir = mkdtempSync(join(tmpdir(), "x509-suite-"));
  try {
    const src = join(dir, "deps.c");
    // Numbered lines: the names themselves are macros the preprocessor would expand.
    const body = ids.map((id, i) => `#if defined(${id})\ndep_yes_${i}\n#endif`).join("\n");
    writeFileSync(src, `#include <mbedtls/build_info.h>\n${body}\n`);
    const out = execFileSync(
      "cc",
      ["-E", "-P", `-I${MBEDTLS}`, `-I${join(MBEDTLS, "src/include")}`, '-DMBEDTLS_CONFIG_FILE="mbedlink_config.h"', src],
      { encoding: "utf8" },
    );
    const yes = new Set([...out.matchAll(/^dep_yes_(\d+)$/gm)].map((m) => ids[Number(m[1])]));
    return new Map(names.map((n) => [n, n.startsWith("!") ? !yes.has(n.slice(1)) : yes.has(n)]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** MBEDTLS_ERR_* values from Mbed TLS's headers. */
function errorCodes(): Map<string, number> {
  const codes = new Map<string, number>();
  const inc = join(MBEDTLS, "src/include/mbedtls");
  for (const f of readdirSync(inc)) {
    for (const m of readFileSync(join(inc, f), "utf8").matchAll(/^#define\s+(MBEDTLS_ERR_\w+)\s+(-0x[0-9A-Fa-f]+)/gm)) {
      codes.set(m[1] as string, Number.parseInt(m[2] as string, 16));
    }
  }
  return codes;
}

/** A result expression of the suite ("0", "MBEDTLS_ERR_X509_INVALID_FORMAT + MBEDTLS_ERR_ASN1_OUT_OF_DATA", "1"). */
function evalResult(expr: string, codes: Map<string, number>): number {
  // The suite's expressions are pasted into C (a trailing ';' is harmless there).
  return expr
    .replace(/;$/, "")
    .split("+")
    .map((t) => t.trim())
    .reduce((sum, t) => {
      if (/^-?\d+$/.test(t)) return sum + Number(t);
      const v = codes.get(t);
      if (v === undefined) throw new Error(`unknown result term ${t}`);
      return sum + v;
    }, 0);
}

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

const cases = readCases();
const codes = errorCodes();
const holds = configHolds(cases.flatMap((c) => c.deps));
const skipped: string[] = [];
const runnable: Case[] = [];
for (const c of cases) {
  if (!RUN.has(c.fn)) {
    const why = LEFT_OUT[c.fn];
    if (why) skipped.push(`line ${c.line} ${c.fn} "${c.title}": ${why}`);
    continue;
  }
  const missing = c.deps.filter((d) => !holds.get(d));
  if (missing.length > 0) skipped.push(`line ${c.line} ${c.fn} "${c.title}": the firmware lacks ${missing.join(", ")}`);
  else runnable.push(c);
}

/** The input of a case: hex DER, or a file's bytes with a NUL (mbedtls_pk_load_file). */
function inputOf(c: Case): Uint8Array {
  const a = c.args[0] as string;
  if (c.fn === "x509parse_crt" || c.fn === "x509parse_crl") return new Uint8Array(Buffer.from(a, "hex"));
  const bytes = readFileSync(join(SUITE_DIR, a));
  const z = new Uint8Array(bytes.length + 1);
  z.set(bytes);
  return z;
}

interface Outcome {
  /** 0, Mbed TLS's positive return (PEM certificates that failed), or its error code. */
  ret: number;
  /** Objects in the chain / CRL list afterwards. */
  count: number;
  /** The info text of the first object (when it parsed). */
  text: string | undefined;
}

/** Parses the input under a temporary handle, as the suite's function does. */
async function runOnDevice(c: Case, crl: boolean): Promise<Outcome> {
  const ctx = dev._context;
  const data = inputOf(c);
  return withTemporaryHandle(ctx, async (h) => {
    let r: unknown;
    try {
      r = await sendInPieces(ctx, crl ? Op.x509CrlParse : Op.x509CrtParse, h, data, {});
    } catch (e) {
      if (e instanceof CertificateError) return { ret: e.mbedtlsCode, count: 0, text: undefined };
      if (e instanceof DeviceError) throw new Error(`line ${c.line}: ${e.message} (status ${e.status})`);
      throw e;
    }
    const [count, failed] = crl ? [r as number, 0] : (r as [number, number]);
    const text = (await ctx.call(crl ? Op.x509CrlText : Op.x509CrtText, [h, 0])) as string;
    return { ret: failed, count, text };
  });
}

describe("Mbed TLS test_suite_x509parse parse cases on the device", () => {
  afterAll(() => {
    const byFn = new Map<string, number>();
    for (const c of runnable) byFn.set(c.fn, (byFn.get(c.fn) ?? 0) + 1);
    console.log(
      `[x509-suite ${TARGET}] ran ${runnable.length} parse cases (${[...byFn].map(([f, n]) => `${f} ${n}`).join(", ")}); left out ${skipped.length}:\n  ${skipped.join("\n  ")}`,
    );
  });

  it("reads the suite and every case it runs has what it needs", () => {
    expect(runnable.length).toBeGreaterThan(300);
    // What the firmware lacks leaves out only a handful of cases (see the list printed after the run).
    expect(skipped.length).toBeLessThan(40);
  });

  it("gives each parse case the suite's verdict and info text", async () => {
    const failures: string[] = [];
    for (const c of runnable) {
      const crl = c.fn === "x509parse_crl" || c.fn === "mbedtls_x509_crl_info" || c.fn === "mbedtls_x509_crl_parse";
      const out = await runOnDevice(c, crl);
      const where = `line ${c.line} ${c.fn} "${c.title}"`;
      const fail = (what: string) => failures.push(`${where}: ${what}`);
      switch (c.fn) {
        case "x509parse_crt":
        case "x509parse_crl": {
          const want = evalResult(c.args[2] as string, codes);
          if (out.ret !== want) fail(`returned ${out.ret}, the suite expects ${want}`);
          else if (want === 0 && out.text !== c.args[1]) fail(`info text\n${out.text}\n!= expected\n${c.args[1]}`);
          break;
        }
        case "x509_cert_info":
        case "mbedtls_x509_crl_info":
          if (out.ret !== 0) fail(`returned ${out.ret}`);
          else if (out.text !== c.args[1]) fail(`info text\n${out.text}\n!= expected\n${c.args[1]}`);
          break;
        case "mbedtls_x509_crt_parse_file": {
          const want = evalResult(c.args[1] as string, codes);
          const nb = Number(c.args[2]);
          if (out.ret !== want || out.count !== nb)
            fail(`returned ${out.ret} with ${out.count} certificates, the suite expects ${want} with ${nb}`);
          break;
        }
        default: {
          const want = evalResult(c.args[1] as string, codes);
          if (out.ret !== want) fail(`returned ${out.ret}, the suite expects ${want}`);
        }
      }
    }
    expect(failures).toEqual([]);
  }, 240_000);
});
