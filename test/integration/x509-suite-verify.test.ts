// Mbed TLS's own chain verification cases, run through the device: the
// x509_verify, x509_verify_callback, mbedtls_x509_crt_verify_chain and
// mbedtls_x509_crt_verify_max lines of tests/suites/test_suite_x509parse.data
// with the data files they name (framework/data_files/, fetched with Mbed TLS
// by the build). Each case's certificates, CA certificates and CRLs are
// parsed on the device, the CAs and CRLs go into a dev.x509.TrustStore, and
// verify() must give what the suite expects (the flag bits; for
// x509_verify_callback the text its verify_print callback writes, rebuilt
// from the verdict's path; MBEDTLS_ERR_X509_FATAL_ERROR as a CryptoError with
// that code). The suite's other verify functions and the cases this wire API
// cannot express are listed with the reason.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CRL,
  type CRT,
  CryptoError,
  type Device,
  type VerifyOptions,
  type VerifyProfile,
  type VerifyResult,
} from "../../host/src/index.js";
import { derBlocksOfFile } from "../../host/src/modules/x509-common.js";
import { useSession } from "./session.js";
import { TARGET } from "./target.js";

const MBEDTLS = resolve(__dirname, "../../firmware/lib/mbedtls");
const TESTS = join(MBEDTLS, "src/tests");
const SUITE = join(TESTS, "suites/test_suite_x509parse.data");

interface SuiteCase {
  title: string;
  fn: string;
  deps: string[];
  args: string[];
}

/** The suite's argument list: fields split at unescaped ':', quotes dropped, "\:" "\n" unescaped. */
function fields(call: string): string[] {
  return call.split(/(?<!\\):/).map((f) => f.replace(/^"(.*)"$/s, "$1").replace(/\\(.)/g, (_m, ch: string) => (ch === "n" ? "\n" : ch)));
}

function suiteCases(): SuiteCase[] {
  const blocks = readFileSync(SUITE, "utf8").split(/\n\s*\n/);
  const out: SuiteCase[] = [];
  for (const b of blocks) {
    const lines = b.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
    const call = lines.find((l) => /^(mbedtls_)?x509_(crt_)?verify\w*:/.test(l));
    if (!call || lines.length < 2) continue;
    const dep = lines.find((l) => l.startsWith("depends_on:"));
    const [fn, ...args] = fields(call);
    out.push({
      title: lines[0] as string,
      fn: fn as string,
      deps: dep ? dep.slice("depends_on:".length).split(":") : [],
      args,
    });
  }
  return out;
}

/** The firmware configuration's answer for each depends_on name ("!X": X is not defined), from the C preprocessor. */
function firmwareHas(names: readonly string[]): Set<string> {
  const bare = [...new Set(names.map((n) => n.replace(/^!/, "")))];
  const probe = ["#include <mbedtls/build_info.h>", ...bare.map((n, i) => `#ifdef ${n}\nHAVE ${i}\n#endif`)].join("\n");
  const out = execFileSync(
    "cc",
    ["-E", "-P", "-x", "c", `-I${MBEDTLS}`, `-I${join(MBEDTLS, "src/include")}`, '-DMBEDTLS_CONFIG_FILE="mbedlink_config.h"', "-"],
    {
      input: probe,
      encoding: "utf8",
    },
  );
  const defined = new Set([...out.matchAll(/^HAVE (\d+)$/gm)].map((m) => bare[Number(m[1])] as string));
  return new Set(names.filter((n) => (n.startsWith("!") ? !defined.has(n.slice(1)) : defined.has(n))));
}

/** The value of each MBEDTLS_X509_BADCERT_* / BADCRL_* name, from x509.h. */
function flagValues(): Map<string, number> {
  const h = readFileSync(join(MBEDTLS, "src/include/mbedtls/x509.h"), "utf8");
  return new Map(
    [...h.matchAll(/#define\s+(MBEDTLS_X509_BAD(?:CERT|CRL)_\w+)\s+(0x[0-9A-Fa-f]+)/g)].map((m) => [m[1] as string, Number(m[2])]),
  );
}

const PROFILES: Record<string, VerifyProfile> = { "": "default", next: "next", suite_b: "suiteb", suiteb: "suiteb", compat: "compat" };

/** The suite's verify functions this file does not run, and why. */
const OTHER_FUNCTIONS: Record<string, string> = {
  x509_verify_info: "formats flags as Mbed TLS's text (mbedtls_x509_crt_verify_info): no device operation; the SDK names the flags itself",
  x509_verify_restart: "restartable ECC verification (MBEDTLS_ECP_RESTARTABLE, not in the firmware: a verification runs to its end)",
  x509_verify_ca_cb_failure: "a trusted-CA callback (MBEDTLS_X509_TRUSTED_CERTIFICATE_CALLBACK, C code the wire does not carry)",
};

/** Why a case cannot run through the wire API (undefined: it runs). */
function leftOut(k: SuiteCase, have: Set<string>): string | undefined {
  const other = OTHER_FUNCTIONS[k.fn];
  if (other !== undefined) return `${k.fn}: ${other}`;
  const missing = k.deps.filter((d) => !have.has(d));
  if (missing.length > 0) return `the firmware lacks ${missing.join(", ")}`;
  let profile = "";
  let callback = "NULL";
  if (k.fn === "x509_verify") [profile = "", callback = "NULL"] = [k.args[6], k.args[7]];
  if (k.fn === "mbedtls_x509_crt_verify_chain")
    [profile = "", callback = "NULL"] = [k.args[4], k.args[5] === "0" ? "NULL" : "verify_fatal"];
  if (callback !== "NULL")
    return `verify callback ${callback} (C code run inside the verification; the wire reports the flags, it takes no callback)`;
  if (!(profile in PROFILES))
    return `profile "${profile}" (a test-only profile of the suite; the device offers default, next, suiteb, compat)`;
  return undefined;
}

/** A number x509.h defines (MBEDTLS_X509_MAX_INTERMEDIATE_CA, MBEDTLS_ERR_X509_FATAL_ERROR, ...). */
function headerValue(name: string): number {
  const m = readFileSync(join(MBEDTLS, "src/include/mbedtls/x509.h"), "utf8").match(
    new RegExp(`#define\\s+${name}\\s+(-?(?:0x[0-9A-Fa-f]+|\\d+))`),
  );
  if (!m) throw new Error(`no ${name} in x509.h`);
  return Number.parseInt(m[1] as string, (m[1] as string).includes("0x") ? 16 : 10);
}

/** The suite's intermediate count: "MBEDTLS_X509_MAX_INTERMEDIATE_CA", "+1" or "-1" after it. */
function intermediates(expr: string): number {
  const m = expr.match(/^(\w+)\s*(?:([+-])\s*(\d+))?$/);
  if (!m) throw new Error(`intermediate count ${expr}`);
  const base = /^\d+$/.test(m[1] as string) ? Number(m[1]) : headerValue(m[1] as string);
  return m[2] === undefined ? base : m[2] === "+" ? base + Number(m[3]) : base - Number(m[3]);
}

/** mbedtls_x509_serial_gets's text. */
function serialText(b: Uint8Array): string {
  const n = b.length <= 32 ? b.length : 28;
  const hex: string[] = [];
  for (let i = 0; i < n; i++) {
    if (i === 0 && n > 1 && b[i] === 0) continue;
    hex.push((b[i] as number).toString(16).toUpperCase().padStart(2, "0"));
  }
  return hex.join(":") + (n !== b.length ? "...." : "");
}

/** What the suite's verify_print callback writes for a verdict: the path from the top down. */
function printed(r: VerifyResult): string {
  return r.path
    .map(
      (p, depth) =>
        `depth ${depth} - serial ${serialText(p.serialBytes)} - subject ${p.subject} - flags 0x${p.bits.toString(16).padStart(8, "0")}\n`,
    )
    .reverse()
    .join("");
}

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const all = suiteCases();
const have = firmwareHas(all.flatMap((k) => k.deps));
const runnable = all.filter((k) => leftOut(k, have) === undefined);
const results: string[] = [];

beforeAll(() => {
  dev = session.dev;
});

afterAll(() => {
  const skipped = all.filter((k) => leftOut(k, have) !== undefined);
  console.log(
    `[x509-suite-verify] ${TARGET}: ${results.length} of ${all.length} verify cases ran (${[...new Set(all.map((k) => k.fn))].join(", ")})` +
      "; left out:\n" +
      skipped.map((k) => `  ${k.title}: ${leftOut(k, have)}`).join("\n"),
  );
});

const file = (f: string) => join(TESTS, f);

async function verifyCase(crtFiles: string, caFile: string, crlFile: string, name: string, profile: VerifyProfile): Promise<VerifyResult> {
  const chain: CRT[] = [];
  for (const f of crtFiles.split(" ")) chain.push(...(await dev.x509.CRT.chainFromFile(file(f))));
  const cas: CRT[] = await dev.x509.CRT.chainFromFile(file(caFile));
  const crls: CRL[] = [];
  const trust = new dev.x509.TrustStore();
  try {
    if (crlFile !== "") {
      for (const der of await derBlocksOfFile(file(crlFile), "X509 CRL")) crls.push(await dev.x509.CRL.fromDER(der));
    }
    await trust.add(cas);
    if (crls.length > 0) await trust.addCRL(crls);
    const opts: VerifyOptions = { profile };
    if (name !== "NULL") opts.hostname = name;
    return await trust.verify(chain, opts);
  } finally {
    await trust.close();
    for (const o of [...chain, ...cas, ...crls]) await o.close();
  }
}

describe("Mbed TLS's chain verification cases (test_suite_x509parse), through the device", () => {
  it("the suite has the cases this file expects", () => {
    expect(all.filter((k) => k.fn === "x509_verify").length).toBeGreaterThanOrEqual(100);
    expect(all.filter((k) => k.fn === "x509_verify_callback").length).toBeGreaterThanOrEqual(20);
    expect(all.filter((k) => k.fn === "mbedtls_x509_crt_verify_chain").length).toBeGreaterThanOrEqual(20);
    expect(runnable.length).toBeGreaterThanOrEqual(150);
  });

  const bits = flagValues();
  const expectedBits = (expr: string): number =>
    expr
      .split(/[|+]/)
      .map((t) => t.trim())
      .reduce((m, t) => {
        if (t === "0") return m;
        const v = bits.get(t);
        if (v === undefined) throw new Error(`unknown flag ${t}`);
        return m | v;
      }, 0);

  it.each(runnable.map((k) => [k.title, k] as const))("%s", async (_t, k) => {
    if (k.fn === "x509_verify") {
      const [crtFile, caFile, crlFile, name, result, flags, profile] = k.args as [string, string, string, string, string, string, string];
      const r = await verifyCase(crtFile, caFile, crlFile, name, PROFILES[profile] as VerifyProfile);
      expect(r.bits.toString(16)).toBe(expectedBits(flags).toString(16));
      expect(r.valid).toBe(result === "0");
    } else if (k.fn === "x509_verify_callback") {
      const [crtFile, caFile, name, result, text] = k.args as [string, string, string, string, string];
      const r = await verifyCase(crtFile, caFile, "", name, "compat");
      expect(printed(r)).toBe(text);
      expect(r.valid).toBe(result === "0");
    } else if (k.fn === "mbedtls_x509_crt_verify_chain") {
      const [chainFiles, caFile, flags, result, profile] = k.args as [string, string, string, string, string];
      const r = await verifyCase(chainFiles, caFile, "", "NULL", PROFILES[profile] as VerifyProfile);
      expect(r.bits.toString(16)).toBe(expectedBits(flags).toString(16));
      expect(r.valid).toBe(result === "0");
    } else {
      // mbedtls_x509_crt_verify_max: the default profile, nb_int intermediates (chain_dir/cNN.pem, NN = nb_int + 1)
      const [caFile, dir, nbInt, result, flags] = k.args as [string, string, string, string, string];
      const run = verifyCase(`${dir}/c${String(intermediates(nbInt) + 1).padStart(2, "0")}.pem`, caFile, "", "NULL", "default");
      if (result === "MBEDTLS_ERR_X509_FATAL_ERROR") {
        const e = await run.then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(e).toBeInstanceOf(CryptoError);
        expect((e as CryptoError).mbedtlsCode).toBe(headerValue("MBEDTLS_ERR_X509_FATAL_ERROR"));
      } else {
        const r = await run;
        expect(r.bits.toString(16)).toBe(expectedBits(flags).toString(16));
        expect(r.valid).toBe(result === "0");
      }
    }
    results.push(k.title);
  });
});
