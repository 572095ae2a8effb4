// The provisioning manifest (host/cli/manifest.ts) and `mbedlink manifest
// verify`: lines signed with station keys made by node:crypto (EC P-256,
// RSA-2048, Ed25519), checked by the module, by the built CLI, and by
// openssl on its own (the format is meant to be checked without mbedlink);
// every single-byte change of a manifest is caught and named by its line.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canonicalJson, checkManifest, fileSigner, keyId, ManifestWriter, publicKeyFromPem } from "../../host/cli/manifest.js";
import { buildIfStale, cleanState, lines, run } from "./cli-helpers.js";

let dir: string;
beforeAll(async () => {
  await buildIfStale();
  dir = mkdtempSync(join(tmpdir(), "mbedlink-manifest-"));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  cleanState();
});

type KeyKind = "ec" | "rsa" | "ed25519";
function stationKey(kind: KeyKind): { priv: string; pub: string } {
  const pair =
    kind === "ec"
      ? generateKeyPairSync("ec", { namedCurve: "P-256" })
      : kind === "rsa"
        ? generateKeyPairSync("rsa", { modulusLength: 2048 })
        : generateKeyPairSync("ed25519");
  const priv = join(dir, `${kind}.key`);
  const pub = join(dir, `${kind}.pub`);
  writeFileSync(priv, pair.privateKey.export({ type: "pkcs8", format: "pem" }));
  writeFileSync(pub, pair.publicKey.export({ type: "spki", format: "pem" }));
  return { priv, pub };
}

const record = (i: number) => ({
  v: 1,
  time: `2026-12-06T08:0${i}:00.000Z`,
  device: { port: `/dev/pts/${i}`, board: "native-linux", bootId: `0011223344556${i}` },
  slot: 0,
  subject: `CN=dev-${i}, O=Ünïcode "quoted"`,
  serial: `4a${i}`,
  fingerprint: "ab".repeat(32),
});

async function writeManifest(file: string, priv: string, n: number): Promise<string> {
  const w = new ManifestWriter(file, fileSigner(readFileSync(priv)));
  await Promise.all(Array.from({ length: n }, (_, i) => w.append(record(i + 1))));
  return readFileSync(file, "utf8");
}

describe("canonical JSON", () => {
  it("sorts keys by UTF-16 code units at every level, no whitespace, integers only", () => {
    expect(canonicalJson({ b: 1, a: [true, null, { z: "x", é: 2, A: "\u2028\n" }], "": 0 })).toBe(
      '{"":0,"a":[true,null,{"A":"\u2028\\n","z":"x","é":2}],"b":1}',
    );
    expect(canonicalJson({ skipped: undefined, kept: 1 })).toBe('{"kept":1}');
    expect(() => canonicalJson({ x: 1.5 })).toThrow(/integers only/);
    expect(() => canonicalJson({ x: 2 ** 60 })).toThrow(/integers only/);
  });
});

describe.each(["ec", "rsa", "ed25519"] as const)("a manifest signed by a %s station key", (kind) => {
  let keys: { priv: string; pub: string };
  let file: string;
  let text: string;
  beforeAll(async () => {
    keys = stationKey(kind);
    file = join(dir, `${kind}.jsonl`);
    text = await writeManifest(file, keys.priv, 3);
  });

  it("has one canonical line per record, chained, and verifies", () => {
    const rows = lines(text);
    expect(rows).toHaveLength(3);
    const parsed = rows.map((r) => JSON.parse(r));
    expect(parsed[0]).toMatchObject({ alg: kind === "ec" ? "ecdsa-sha256" : kind === "rsa" ? "rsa-pkcs1-sha256" : "ed25519", prev: "" });
    expect(parsed.every((p) => p.kid === keyId(publicKeyFromPem(readFileSync(keys.pub))))).toBe(true);
    expect(new Set(parsed.map((p) => p.serial)).size).toBe(3);
    expect(checkManifest(text, publicKeyFromPem(readFileSync(keys.pub)))).toEqual({ lines: 3, problems: [] });
  });

  it("openssl alone verifies each line's signature over the line without its sig field", () => {
    for (const [i, row] of lines(text).entries()) {
      const { sig, ...body } = JSON.parse(row);
      const bodyFile = join(dir, `${kind}-body${i}`);
      const sigFile = join(dir, `${kind}-sig${i}`);
      writeFileSync(bodyFile, canonicalJson(body));
      expect(row).toBe(canonicalJson({ ...body, sig }));
      writeFileSync(sigFile, Buffer.from(sig, "base64"));
      const args =
        kind === "ed25519"
          ? ["pkeyutl", "-verify", "-pubin", "-inkey", keys.pub, "-rawin", "-in", bodyFile, "-sigfile", sigFile]
          : ["dgst", "-sha256", "-verify", keys.pub, "-signature", sigFile, bodyFile];
      expect(execFileSync("openssl", args, { encoding: "utf8" })).toMatch(/Verified OK|Signature Verified Successfully/);
    }
  });

  it("every single-byte change is caught, naming the line that holds the byte", () => {
    const pub = publicKeyFromPem(readFileSync(keys.pub));
    const bytes = Buffer.from(text, "utf8");
    const lineOf: number[] = [];
    let ln = 1;
    for (const b of bytes) {
      lineOf.push(ln);
      if (b === 0x0a) ln++;
    }
    // Every byte; RSA verifications are slower, so every 7th byte of that manifest.
    const stride = kind === "rsa" ? 7 : 1;
    let tried = 0;
    for (let i = 0; i < bytes.length; i += stride) {
      const changed = Buffer.from(bytes);
      changed[i] = (changed[i] as number) ^ 0x01;
      const r = checkManifest(changed.toString("utf8"), pub);
      expect(r.problems[0]?.line, `byte ${i}`).toBe(lineOf[i]);
      tried++;
    }
    expect(tried).toBeGreaterThan(bytes.length / 8);
  });

  it("a removed line or swapped lines are named by the first line whose prev does not match", () => {
    const pub = publicKeyFromPem(readFileSync(keys.pub));
    const [a, b, c] = lines(text) as [string, string, string];
    expect(checkManifest(`${a}\n${c}\n`, pub).problems[0]).toEqual({ line: 2, reason: expect.stringMatching(/"prev" does not match/) });
    expect(checkManifest(`${a}\n${c}\n${b}\n`, pub).problems[0]?.line).toBe(2);
    expect(checkManifest(`${b}\n${c}\n`, pub).problems[0]?.line).toBe(1);
  });
});

describe("mbedlink manifest verify", () => {
  let keys: { priv: string; pub: string };
  let file: string;
  beforeAll(async () => {
    keys = stationKey("ec");
    file = join(dir, "cli.jsonl");
    await writeManifest(file, keys.priv, 3);
  });

  it("exit 0 for a good manifest (text and --json); a certificate or the private key PEM serve as --pubkey too", async () => {
    const r = await run(["manifest", "verify", file, "--pubkey", keys.pub]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${file}: 3 lines, every one signed by key [0-9a-f]{16}\\.\\.\\. and chained\\n$`));
    const j = await run(["manifest", "verify", file, "--pubkey", keys.priv, "--json"]);
    expect(j.code, j.stderr).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ file, lines: 3, valid: true, problems: [] });
  });

  it("one byte changed: exit 1, one line naming the line", async () => {
    const bytes = readFileSync(file);
    const second = bytes.indexOf(0x0a) + 1;
    const at = bytes.indexOf(Buffer.from('"slot":0'), second) + 7;
    const bad = Buffer.from(bytes);
    bad[at] = "1".charCodeAt(0);
    const badFile = join(dir, "cli-bad.jsonl");
    writeFileSync(badFile, bad);
    const r = await run(["manifest", "verify", badFile, "--pubkey", keys.pub]);
    expect(r.code).toBe(1);
    // line 3 is named too: its "prev" is the hash of line 2 as it was
    expect(lines(r.stderr)).toEqual([`mbedlink: ${badFile} line 2: signature does not verify (2 bad lines in all)`]);
    const j = await run(["manifest", "verify", badFile, "--pubkey", keys.pub, "--json"]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({
      valid: false,
      problems: [
        { line: 2, reason: "signature does not verify" },
        { line: 3, reason: expect.stringMatching(/"prev"/) },
      ],
    });
  });

  it("another station's key: every line named as signed by another key", async () => {
    const other = stationKey("ed25519");
    const r = await run(["manifest", "verify", file, "--pubkey", other.pub]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/line 1: signed by key "[0-9a-f]{64}", not by the given public key .*\(3 bad lines in all\)/);
  });

  it("usage errors exit 2; an unreadable file exits 1", async () => {
    expect((await run(["manifest", "verify", file])).code).toBe(2);
    expect((await run(["manifest", "check", file, "--pubkey", keys.pub])).code).toBe(2);
    const missing = await run(["manifest", "verify", join(dir, "nope.jsonl"), "--pubkey", keys.pub]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read the manifest: .*nope\.jsonl: No such file or directory/);
  });
});
