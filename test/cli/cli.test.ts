// The mbedlink command line, run as `node dist/cli/mbedlink.js ...` (the
// build is refreshed in beforeAll when a source is newer) against the target
// under test: native by default, MBEDLINK_TARGET=qemu in the QEMU pass,
// MBEDLINK_PORT for a board. One device started here serves most commands
// through --port; the persistence test starts its own with --target.
import { execFileSync } from "node:child_process";
import { createHash, createHmac, createPublicKey, randomBytes, verify } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { open } from "../../host/src/index.js";
import { buildIfStale, cleanState, lines, type RunResult, run, startDevice, TARGET, type TestDevice } from "./cli-helpers.js";

const SLOW = TARGET !== "native";
let device: TestDevice;
let dir: string;
/** --port of the device under test. */
let at: string[];

beforeAll(async () => {
  await buildIfStale();
  device = await startDevice();
  at = device.flags;
  dir = mkdtempSync(join(tmpdir(), "mbedlink-cli-"));
});
afterAll(async () => {
  await device?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  cleanState();
});

/** A failed run: a non-zero exit and exactly one line on stderr, nothing on stdout. */
function expectOneLineError(r: RunResult, code: number, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(lines(r.stderr), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^mbedlink: /);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace without -v
}

const file = (name: string, data: string | Buffer) => {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
};

describe("without a device", () => {
  it("--version, --help and a command's --help exit 0 on stdout", async () => {
    const v = await run(["--version"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^mbedlink \d+\.\d+\.\d+ \(protocol \d+\)\n$/);
    const h = await run(["--help"]);
    expect(h.code).toBe(0);
    for (const cmd of ["info", "ports", "hash", "hmac", "random", "keygen", "slots", "sign", "verify", "pubkey", "selftest"]) {
      expect(h.stdout).toMatch(new RegExp(`^  ${cmd} `, "m"));
    }
    const hh = await run(["hash", "--help"]);
    expect(hh.code).toBe(0);
    expect(hh.stdout).toMatch(/^usage: mbedlink hash /);
    expect(hh.stdout).toContain("--alg ALG");
  });

  it("usage errors exit 2 with one line naming the problem", async () => {
    expectOneLineError(await run([]), 2, /no command given/);
    expectOneLineError(await run(["frobnicate"]), 2, /unknown command "frobnicate"/);
    expectOneLineError(await run(["info", "--bogus"]), 2, /--bogus/);
    expectOneLineError(await run(["random"]), 2, /number of bytes/);
    expectOneLineError(await run(["random", "-5", "--hex"]), 2, /-5|N must/);
    expectOneLineError(await run(["info", "--target", "esp32"]), 2, /--target must be native or qemu/);
    expectOneLineError(await run(["keygen", "--type", "dsa", "--slot", "1"]), 2, /--type must be ec or rsa/);
    expectOneLineError(await run(["keygen", "--type", "ec", "--slot", "1", "--curve", "nistp999"]), 2, /unknown curve/);
  });

  it("an unknown algorithm is a usage error before any device is started", async () => {
    const r = await run(["hash", "--alg", "sha257", ...at, file("alg.txt", "x")]);
    expectOneLineError(r, 2, /unknown hash algorithm "sha257"/);
  });

  it("no device on a bogus port path: one line, exit 1", async () => {
    expectOneLineError(await run(["info", "--port", "/nonexistent/ttyMBED0"]), 1, /no device at \/nonexistent\/ttyMBED0/);
  });
});

describe("against the device", () => {
  it("info prints the device's identity; --json parses", async () => {
    const r = await run(["info", ...at]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^board\s+\S+/m);
    expect(r.stdout).toMatch(/^Mbed TLS\s+3\.\d+\.\d+/m);
    expect(r.stdout).toMatch(/^MTU\s+\d+ bytes/m);
    const j = await run(["info", "--json", ...at]);
    expect(j.code, j.stderr).toBe(0);
    const info = JSON.parse(j.stdout);
    expect(info.board).toBe(TARGET === "qemu" ? "stm32f405-qemu" : TARGET === "native" ? "native-linux" : info.board);
    expect(info.mtu).toBeGreaterThanOrEqual(256);
    expect(info.window).toBeGreaterThanOrEqual(1);
    expect(typeof info.heapSize).toBe("number");
    expect(info.slots).toBeGreaterThan(0);
    expect(info.port).toBe(at[1]);
  });

  it("-v logs frames and timings on stderr, stdout unchanged", async () => {
    const r = await run(["info", "-v", "--json", ...at]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).board).toBeTruthy();
    expect(r.stderr).toMatch(/-> hello id \d+, \d+ B/);
    expect(r.stderr).toMatch(/<- hello id \d+, ok, \d+ B/);
    expect(r.stderr).toMatch(/hello id \d+ done in [\d.]+ ms/);
  });

  it("hash prints exactly what sha256sum prints (several files, a name with spaces, stdin)", async () => {
    const big = randomBytes(SLOW ? 20_000 : 1_000_000);
    const files = [file("a.txt", "hello\n"), file("big.bin", big), file("with space.txt", ""), file("b.txt", "abc")];
    const r = await run(["hash", ...at, ...files]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(execFileSync("sha256sum", files, { encoding: "utf8" }));
    const s = await run(["hash", ...at, "-"], { input: big });
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toBe(execFileSync("sha256sum", ["-"], { input: big, encoding: "utf8" }));
    const j = await run(["hash", "--json", "--alg", "sha3-256", ...at, files[0] as string]);
    expect(JSON.parse(j.stdout)).toEqual({
      algorithm: "sha3_256",
      files: [{ file: files[0], digest: createHash("sha3-256").update("hello\n").digest("hex") }],
    });
  });

  it("hash reports an unreadable file, goes on with the others, exits 1", async () => {
    const ok = file("ok.txt", "fine");
    const r = await run(["hash", ...at, join(dir, "missing.txt"), ok]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([`mbedlink: ${join(dir, "missing.txt")}: No such file or directory`]);
    expect(r.stdout).toBe(execFileSync("sha256sum", [ok], { encoding: "utf8" }));
  });

  it("hmac matches node:crypto, with --key and --key-file", async () => {
    const data = file("mac.txt", randomBytes(3000));
    const key = randomBytes(40);
    const want = createHmac("sha512", key).update(readFileSync(data)).digest("hex");
    const r = await run(["hmac", "--alg", "sha512", "--key", key.toString("hex"), ...at, data]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${want}  ${data}\n`);
    const f = await run(["hmac", "--alg", "sha512", "--key-file", file("key.bin", key), ...at, data]);
    expect(f.stdout).toBe(r.stdout);
    expectOneLineError(await run(["hmac", ...at, data]), 2, /--key HEX or --key-file/);
  });

  it("random: raw bytes to a pipe, --hex, --base64, --json", async () => {
    const raw = await run(["random", "1000", ...at]);
    expect(raw.code, raw.stderr).toBe(0);
    expect(raw.stdoutBytes.length).toBe(1000);
    const h = await run(["random", "32", "--hex", ...at]);
    expect(h.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    const b = await run(["random", "30", "--base64", ...at]);
    expect(Buffer.from(b.stdout.trim(), "base64").length).toBe(30);
    const j = JSON.parse((await run(["random", "8", "--json", ...at])).stdout);
    expect(j.length).toBe(8);
    expect(j.hex).toMatch(/^[0-9a-f]{16}$/);
  });

  it("keygen (EC), sign, pubkey --pem: openssl verifies the signature; verify exits 0 valid, 1 invalid", async () => {
    const kg = await run(["keygen", "--type", "ec", "--slot", "2", "--label", "cli test", ...at]);
    expect(kg.code, kg.stderr).toBe(0);
    expect(kg.stdout).toMatch(/^slot 2: EC secp256r1 key generated on the device, label "cli test"\n$/);
    const doc = file("doc.bin", randomBytes(SLOW ? 10_000 : 200_000));
    const sg = await run(["sign", "--slot", "2", doc, ...at]);
    expect(sg.code, sg.stderr).toBe(0);
    const pub = await run(["pubkey", "--slot", "2", "--pem", ...at]);
    expect(pub.code, pub.stderr).toBe(0);
    expect(pub.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const pem = file("pub2.pem", pub.stdout);
    // openssl reads both the key and the DER ECDSA signature
    const ossl = execFileSync("openssl", ["dgst", "-sha256", "-verify", pem, "-signature", `${doc}.sig`, doc], { encoding: "utf8" });
    expect(ossl.trim()).toBe("Verified OK");
    execFileSync("openssl", ["pkey", "-pubin", "-in", pem, "-noout"]);

    const ok = await run(["verify", "--slot", "2", doc, `${doc}.sig`, ...at]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(lines(ok.stdout)).toEqual([`${doc}: signature OK (slot 2, EC secp256r1, sha256)`]);
    const other = file("other.bin", "not the signed file");
    const bad = await run(["verify", "--slot", "2", other, `${doc}.sig`, ...at]);
    expect(bad.code).toBe(1);
    expect(lines(bad.stdout)).toEqual([`${other}: signature INVALID (slot 2, EC secp256r1, sha256)`]);
    const j = JSON.parse((await run(["verify", "--json", "--slot", "2", other, `${doc}.sig`, ...at])).stdout);
    expect(j.valid).toBe(false);

    // --der and -o: the same key as DER in a file
    const derPath = join(dir, "pub2.der");
    expect((await run(["pubkey", "--slot", "2", "--der", "-o", derPath, ...at])).code).toBe(0);
    const fromDer = createPublicKey({ key: readFileSync(derPath), format: "der", type: "spki" });
    expect(verify("sha256", readFileSync(doc), fromDer, readFileSync(`${doc}.sig`))).toBe(true);
  });

  it("keygen (RSA-2048, non-exportable), sign -o --json: openssl verifies the PKCS#1 v1.5 signature", async () => {
    const kg = await run(["keygen", "--type", "rsa", "--bits", "2048", "--slot", "4", "--non-exportable", "--json", ...at]);
    expect(kg.code, kg.stderr).toBe(0);
    const key = JSON.parse(kg.stdout);
    expect(key).toMatchObject({ slot: 4, type: "rsa", bits: 2048, exportable: false });
    const pem = file("pub4.pem", key.publicKey);
    const doc = file("rsa-doc.txt", "signed by a key that never left the device\n");
    const sig = join(dir, "rsa-doc.sig");
    const sg = await run(["sign", "--slot", "4", doc, "-o", sig, "--json", ...at]);
    expect(JSON.parse(sg.stdout)).toMatchObject({ file: doc, signature: sig, scheme: "pkcs1v15", key: "RSA-2048", size: 256 });
    const ossl = execFileSync("openssl", ["dgst", "-sha256", "-verify", pem, "-signature", sig, doc], { encoding: "utf8" });
    expect(ossl.trim()).toBe("Verified OK");
  });

  it("slots list (text and --json), slots delete, and an occupied slot refused", async () => {
    const taken = await run(["keygen", "--type", "ec", "--slot", "2", ...at]);
    expectOneLineError(taken, 1, /slot 2 is in use .*--force/);
    const l = await run(["slots", "list", ...at]);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toMatch(/^slot\s+kind\s+key\s+exportable\s+label$/m);
    expect(l.stdout).toMatch(/^2\s+pk\s+EC secp256r1\s+yes\s+cli test$/m);
    const j = JSON.parse((await run(["slots", "list", "--json", ...at])).stdout);
    const two = j.keys.find((k: { slot: number }) => k.slot === 2);
    expect(two).toMatchObject({ slot: 2, kind: "pk", type: "ec", curve: "secp256r1", label: "cli test", exportable: true });
    expect(two.publicKey).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    const d = await run(["slots", "delete", "2", ...at]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toBe("slot 2 deleted\n");
    expectOneLineError(await run(["slots", "delete", "2", ...at]), 1, /slot 2 is empty/);
    const after = JSON.parse((await run(["slots", "list", "--json", ...at])).stdout);
    expect(after.keys.some((k: { slot: number }) => k.slot === 2)).toBe(false);
  });

  it("errors: unknown slot, empty slot, slot out of range, each one line", async () => {
    const doc = file("e.txt", "x");
    expectOneLineError(await run(["sign", "--slot", "7", doc, ...at]), 1, /slot 7 is empty/);
    expectOneLineError(await run(["pubkey", "--slot", "7", ...at]), 1, /slot 7 is empty/);
    expectOneLineError(await run(["sign", "--slot", "999", doc, ...at]), 2, /slot 999 is out of range: this device has \d+ slots/);
    expectOneLineError(await run(["sign", "--slot", "7", join(dir, "nope.txt"), ...at]), 1, /nope\.txt: No such file or directory/);
  });

  it.skipIf(TARGET === "port")("a port another program holds is busy: one line, exit 1", async () => {
    // Holding the port here: the CLI must say so rather than hang.
    const path = at[1] as string;
    const held = await open(path);
    try {
      expectOneLineError(await run(["info", "--port", path]), 1, /port .* is busy/);
    } finally {
      await held.close();
    }
  });

  it("ports lists a named port as answering hello, a dead path as not; --json parses", async () => {
    const r = await run(["ports", "--json", at[1] as string, "/nonexistent/ttyMBED1", "--timeout", "3000"]);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { path: string; answers: boolean; board?: string }[];
    expect(rows.find((p) => p.path === at[1])).toMatchObject({ answers: true });
    expect(rows.find((p) => p.path === "/nonexistent/ttyMBED1")).toMatchObject({ answers: false });
    expect(rows).toHaveLength(2); // named ports only: nothing else on this machine was written to
    const listed = await run(["ports", "--no-probe", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(Array.isArray(JSON.parse(listed.stdout))).toBe(true);
  });

  it("selftest passes (one line per check, the summary line); --json parses", async () => {
    const r = await run(["selftest", ...at]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = lines(r.stdout);
    const checks = out.filter((l) => /^(PASS|FAIL|SKIP) /.test(l));
    expect(checks.length).toBeGreaterThanOrEqual(30);
    expect(checks.every((l) => /^(PASS|SKIP) +\S+ +\d+ ms|^SKIP/.test(l))).toBe(true);
    expect(out.at(-1)).toMatch(/^selftest: \d+ passed, 0 failed/);
    console.log(`selftest on ${TARGET}: ${out.at(-1)}, ${r.ms.toFixed(0)} ms with node's start`);
    const j = await run(["selftest", "--json", "--only", "kat-sha256,x-ecdh,slots", ...at]);
    const doc = JSON.parse(j.stdout);
    expect(doc).toMatchObject({ failed: 0 });
    expect(doc.passed).toBeGreaterThanOrEqual(4);
    expect(doc.checks.map((c: { name: string }) => c.name)).toEqual(["kat-sha256-abc", "kat-sha256-2block", "x-ecdh", "slots"]);
  });

  it("selftest fails with a non-zero exit when MBEDLINK_SELFTEST_CORRUPT alters a known answer", async () => {
    const env = { MBEDLINK_SELFTEST_CORRUPT: "kat-sha256-abc" };
    const r = await run(["selftest", "--only", "kat-sha256,x-rsa-sign", ...at], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL +kat-sha256-abc +\d+ ms +sha256: got ba7816bf.*expected bb7816bf/m);
    expect(r.stdout).toMatch(/^PASS +x-rsa-sign /m);
    expect(lines(r.stdout).at(-1)).toMatch(/^selftest: 2 passed, 1 failed/);
    const cross = await run(["selftest", "--json", "--only", "x-aes-gcm", ...at], { env: { MBEDLINK_SELFTEST_CORRUPT: "x-aes-gcm" } });
    expect(cross.code).toBe(1);
    expect(JSON.parse(cross.stdout)).toMatchObject({ passed: 0, failed: 1, corrupt: "x-aes-gcm" });
    expectOneLineError(await run(["selftest", ...at], { env: { MBEDLINK_SELFTEST_CORRUPT: "no-such-check" } }), 2, /names no check/);
  });
});

describe.skipIf(TARGET === "port")(`--target ${TARGET} --store DIR: the CLI starts the target, slots persist between invocations`, () => {
  it("keygen in one invocation, sign in the next, openssl verifies; slots list sees the key", async () => {
    const store = mkdtempSync(join(tmpdir(), "mbedlink-cli-own-store-"));
    try {
      const own = ["--target", TARGET, "--store", store];
      const kg = await run(["keygen", "--type", "ec", "--curve", "secp384r1", "--slot", "0", "--non-exportable", ...own]);
      expect(kg.code, kg.stderr).toBe(0);
      const doc = file("persist.txt", "two invocations, one key\n");
      const sg = await run(["sign", "--slot", "0", "--hash", "sha384", doc, ...own]);
      expect(sg.code, sg.stderr).toBe(0);
      const pub = await run(["pubkey", "--slot", "0", "--json", ...own]);
      const pem = file("persist.pem", JSON.parse(pub.stdout).publicKey);
      const ossl = execFileSync("openssl", ["dgst", "-sha384", "-verify", pem, "-signature", `${doc}.sig`, doc], { encoding: "utf8" });
      expect(ossl.trim()).toBe("Verified OK");
      const list = JSON.parse((await run(["slots", "list", "--json", ...own])).stdout);
      expect(list).toMatchObject({ target: TARGET, storeDir: store, persistent: true });
      expect(list.keys).toEqual([expect.objectContaining({ slot: 0, curve: "secp384r1", exportable: false })]);
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  });
});
