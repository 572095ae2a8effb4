// python-mbedtls parity, checked name by name: every row of
// docs/python-mbedtls-parity.json that gives a TypeScript name must resolve
// to something of the row's kind in the SDK (a Device's modules, the
// package's exports, members of its objects, curve names, cipher modes),
// every row without one must say why, and README.md's parity block must be
// the table rendered (tools/parity-table.ts). The Device is one connected to
// an in-memory scripted device: names are checked, not behaviour, and the
// modules exist as soon as a Device does.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Op } from "../host/src/base/protocol.generated.js";
import type { Device as DeviceT } from "../host/src/device.js";
import * as sdk from "../host/src/index.js";
import { ScriptedDevice } from "../host/src/link/testing/scripted-device.js";
import { lookupCurve } from "../host/src/modules/curves.js";
import { lookupHash } from "../host/src/modules/hash.js";
import { KINDS, type Kind, loadParity, PARITY_BLOCK, type ParityRow, parityRows, renderParity } from "../tools/parity-table.js";
import { README, readBlock } from "../tools/readme-block.js";

const table = loadParity();
const rows = parityRows(table);
const exports = sdk as unknown as Record<string, unknown>;

let scripted: ScriptedDevice;
let dev: DeviceT;
/** An object of each class the table names members of (`Class#member`): own fields are only on instances. */
let samples: Map<string, object>;

beforeAll(async () => {
  // hello lists md5..ripemd160 (ids 1..7), as the firmware does.
  scripted = new ScriptedDevice({ hashes: [1, 2, 3, 4, 5, 6, 7] });
  dev = await sdk.Device.connect(scripted, { timeoutMs: 2000 });
  const k16 = new Uint8Array(16);
  const p = (1n << 511n) + 187n; // a 64-byte modulus; kex_new is answered, not checked
  samples = new Map<string, object>([
    ["Hash", dev.hash.md5()],
    ["Hmac", dev.hmac.new(k16, { digestmod: "sha256" })],
    ["Cipher", dev.cipher.AES.new(k16, sdk.MODE_CBC, k16)],
    ["AEADCipher", dev.cipher.AES.new(k16, sdk.MODE_GCM, new Uint8Array(12))],
    ["PkKey", dev.pk.RSA()],
    ["RSA", dev.pk.RSA()],
    ["ECC", dev.pk.ECC()],
    ["DHServer", dev.pk.DHServer(p, 2n)],
    ["DHClient", dev.pk.DHClient(p, 2n)],
    ["ECDHServer", dev.pk.ECDHServer()],
    ["ECDHClient", dev.pk.ECDHClient()],
    ["TLSError", new sdk.TLSError(11, -0x10, "a message")],
    // The scripted device answers tls_conf_new and tls_new with null (ok).
    ["TLSConfiguration", new sdk.TLSConfiguration()],
    ["TLSContext", dev.tls.ClientContext(new sdk.TLSConfiguration({ validateCertificates: false }))],
    ["TLSWrappedBuffer", dev.tls.ClientContext(new sdk.TLSConfiguration({ validateCertificates: false })).wrapBuffers(null)],
  ]);
});
afterAll(async () => {
  await dev?.close();
});

type Resolved = { ok: true; value: unknown; accessor?: boolean } | { ok: false; why: string };

const isObj = (v: unknown): v is object => (typeof v === "object" && v !== null) || typeof v === "function";

/** Walks `a.b.c` from `root`, each step an existing property. */
function walk(root: unknown, path: string[], shown: string): Resolved {
  let cur = root;
  for (const seg of path) {
    if (!isObj(cur) || !(seg in cur)) return { ok: false, why: `${shown}: no "${seg}"` };
    cur = (cur as Record<string, unknown>)[seg];
  }
  return { ok: true, value: cur };
}

/** The SDK value a TypeScript name of the table stands for (README.md's "python-mbedtls parity" says how to read them). */
function resolve(ts: string): Resolved {
  const str = /^"([^"]+)"$/.exec(ts);
  if (str) {
    const s = str[1] as string;
    const known = [lookupCurve, lookupHash].some((look) => {
      try {
        look(s);
        return true;
      } catch {
        return false;
      }
    });
    return known ? { ok: true, value: s } : { ok: false, why: `${ts}: neither a curve nor a digest name` };
  }
  const mode = /^dev\.cipher\.(\w+)\.new\(key, (MODE_\w+)\)$/.exec(ts);
  if (mode) {
    const fam = walk(dev, ["cipher", mode[1] as string], ts);
    const m = walk(dev, ["cipher", mode[2] as string], ts);
    if (!fam.ok || !m.ok) return fam.ok ? m : fam;
    const modes = (fam.value as { modes?: unknown }).modes;
    if (!Array.isArray(modes) || !modes.includes(m.value)) return { ok: false, why: `${ts}: ${mode[1]} does not offer ${mode[2]}` };
    return { ok: true, value: (fam.value as { new: unknown }).new };
  }
  if (ts === "mbedlink") return { ok: true, value: sdk };
  const member = /^(\w+)#(\w+)$/.exec(ts);
  if (member) {
    const [, cls, name] = member as unknown as [string, string, string];
    if (typeof exports[cls] !== "function") return { ok: false, why: `${ts}: the package exports no class ${cls}` };
    const sample = samples.get(cls);
    if (sample)
      return name in sample ? { ok: true, value: (sample as Record<string, unknown>)[name] } : { ok: false, why: `${ts}: no member` };
    // No sample: a prototype member (methods, getters), read without running a getter.
    for (let o: object | null = (exports[cls] as { prototype: object }).prototype; o; o = Object.getPrototypeOf(o)) {
      const d = Object.getOwnPropertyDescriptor(o, name);
      if (d) return d.get ? { ok: true, value: undefined, accessor: true } : { ok: true, value: d.value };
    }
    return { ok: false, why: `${ts}: no member on ${cls}.prototype (and no sample ${cls} in the test)` };
  }
  if (!/^\w+(\.\w+)*$/.test(ts)) return { ok: false, why: `${ts}: not a name this test can read` };
  const [head, ...rest] = ts.split(".") as [string, ...string[]];
  if (head === "dev") return walk(dev, rest, ts);
  if (!(head in exports)) return { ok: false, why: `${ts}: the package exports no ${head}` };
  return walk(exports[head], rest, ts);
}

/** Whether a resolved value fits the python kind. */
function fits(kind: Kind, r: Resolved & { ok: true }): string | undefined {
  const v = r.value;
  switch (kind) {
    case "function":
    case "method":
    case "mode":
      return typeof v === "function" ? undefined : `not a function (${typeof v})`;
    case "exception":
      return typeof v === "function" && (v as { prototype: unknown }).prototype instanceof Error ? undefined : "not an Error class";
    case "class":
      return isObj(v) ? undefined : `not a class, factory or object (${typeof v})`;
    case "module":
      return typeof v === "object" && v !== null ? undefined : `not an object (${typeof v})`;
    case "constant":
    case "property":
      return typeof v === "function" && !r.accessor ? "a function, not a value" : undefined;
  }
}

/** What is wrong with a row, or undefined; `landed` is set for a pending row that already resolves. */
function check(row: ParityRow): { problem?: string; landed?: boolean } {
  if (row.ts === undefined) return {};
  const r = resolve(row.ts);
  const problem = r.ok ? fits(row.kind, r) : r.why;
  if (row.pending) return { landed: problem === undefined };
  return problem === undefined ? {} : { problem: `${row.py} -> ${row.ts}: ${problem}` };
}

describe("the parity table", () => {
  it("covers the python-mbedtls modules the issue names, each name once", () => {
    const modules = new Set(table.groups.map((g) => g.module));
    for (const m of ["hash", "hmac", "cipher", "pk", "mpi", "x509", "tls", "exceptions", "version"]) expect(modules).toContain(m);
    const names = rows.map((r) => r.py);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
    expect(rows.length).toBeGreaterThan(250);
  });

  it("says which python-mbedtls files (and commits) it was read from", () => {
    expect(table.python.version).toMatch(/^2\.\d+\.\d+$/);
    for (const [file, commit] of Object.entries(table.python.files)) {
      expect(file).toMatch(/^src\/mbedtls\//);
      expect(commit).toMatch(/^[0-9a-f]{40}$/);
    }
  });

  it("has, on every row, a known kind and either a TypeScript name or a reason", () => {
    const bad = rows.filter((r) => {
      if (!(KINDS as readonly string[]).includes(r.kind)) return true;
      if (!(r.py.startsWith(`${r.module}.`) || r.py.startsWith("mbedtls."))) return true;
      if ((r.ts === undefined) === (r.none === undefined)) return true;
      if (r.none !== undefined && r.none.trim().length < 5) return true;
      if (r.pending !== undefined && (r.ts === undefined || r.pending.trim().length < 5)) return true;
      return false;
    });
    expect(bad.map((r) => r.py)).toEqual([]);
  });
});

describe("every TypeScript name resolves in the SDK", () => {
  it.each(table.groups.map((g) => [g.module, g] as const))("mbedtls.%s", (_m, g) => {
    const problems = g.rows.map((r) => check(r).problem).filter((p) => p !== undefined);
    expect(problems).toEqual([]);
  });

  it("pending rows name what is being added; those that resolve already are listed here to be flipped", () => {
    const landed = rows.filter((r) => r.pending && check(r).landed).map((r) => r.py);
    if (landed.length > 0) console.info(`parity: pending rows that now resolve (drop their "pending"): ${landed.join(", ")}`);
    expect(rows.filter((r) => r.pending).every((r) => r.ts !== undefined)).toBe(true);
  });

  it("the resolver rejects names that do not exist", () => {
    for (const ts of [
      "dev.hash.sha4",
      "dev.nothing",
      "NoSuchExport",
      "Hash#nothing",
      "RSA#nothing",
      "NoClass#digest",
      '"secp999r1"',
      "dev.cipher.DES.new(key, MODE_GCM)",
      "dev.cipher.AES.new(key, MODE_NOPE)",
    ]) {
      expect(resolve(ts).ok, ts).toBe(false);
    }
    const sha = resolve("dev.hash.sha256");
    expect(sha.ok && fits("constant", sha)).toBe("a function, not a value");
    const mod = resolve("dev.hash");
    expect(mod.ok && fits("function", mod)).toMatch(/not a function/);
  });

  it("the families Mbed TLS 3 removed exist and say so", () => {
    expect(() => dev.cipher.ARC4.new(new Uint8Array(16))).toThrow(sdk.UnsupportedAlgorithmError);
    expect(() => dev.cipher.Blowfish.new(new Uint8Array(16))).toThrow(/removed from Mbed TLS 3/);
  });

  it("TLSError is DeviceError, so ported `except TLSError` catches what the device refuses", () => {
    expect(sdk.TLSError).toBe(sdk.DeviceError);
    expect(new sdk.BadArgumentError(3, 0, "bad key size")).toBeInstanceOf(sdk.TLSError);
  });

  it("hmac's named constructors and algorithm sets match hash's", async () => {
    expect([...dev.hmac.algorithmsAvailable]).toEqual([...dev.hash.algorithmsAvailable]);
    expect([...dev.hmac.algorithmsGuaranteed]).toEqual(["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]);
    const key = Uint8Array.of(1, 2, 3);
    const msg = Uint8Array.of(4, 5);
    const m = dev.hmac.sha384(key, msg);
    expect([m.name, m.digestSize, m.blockSize]).toEqual(["hmac-sha384", 48, 128]);
    // It is new(key, { digestmod: "sha384", msg }): one hmac_oneshot of sha384 (id 5) over key and msg.
    scripted.answers.set(Op.hmacOneshot, () => new Uint8Array(48));
    await m.digest();
    expect(scripted.sentOp(Op.hmacOneshot)).toEqual([[5, key, msg]]);
    await m.close();
  });
});

describe("README.md", () => {
  it("parity block is the table rendered (else: node --import tsx tools/parity-table.ts --write)", () => {
    const block = readBlock(readFileSync(README, "utf8"), PARITY_BLOCK);
    expect(block, "README.md has no <!-- parity:begin --> ... <!-- parity:end --> block").toBeDefined();
    expect(block).toBe(renderParity(table));
  });
});
