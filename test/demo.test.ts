// `npm start`'s demo session (host/cli/demo.ts, run from dist/ as npm start
// runs it) against the target under test: every step it reports must have
// the right result, not just run.
import { execFile } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { PORT, TARGET } from "./integration/target.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");

describe("npm start (the demo session)", () => {
  it("shows hello, the seed's digests, a non-exportable device key verified by Node and an ECDH secret Node agrees with", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, MBEDLINK_TARGET: TARGET === "port" ? "native" : TARGET };
    if (PORT) env.MBEDLINK_PORT = PORT;
    const { stdout } = await promisify(execFile)(process.execPath, [join(repo, "dist", "cli", "demo.js")], {
      cwd: repo,
      env,
      timeout: 120_000,
    });
    expect(stdout).toMatch(/^mbedlink demo: .* \(session opened in \d+ ms\)$/m);
    expect(stdout).toMatch(/^ {2}Mbed TLS +Mbed TLS 3\.6\.\d+$/m);
    expect(stdout).toContain("md5, fed in two updates: bb649c83dd1ea5c9d9dec9a18df0ffe9");
    expect(stdout).toContain("sha224(...).hexdigest(): a4337bc45a8fc544c03f52dc550cd6e1e87021bc896588bd79e901e2");
    expect(stdout).toContain('new("ripemd160"): cc4a5ce1b3df48aec5d22d1f16b894a0b894eccc');
    expect(stdout).toContain('exportKey("PEM") asked for the private key: refused, NotExportableError');
    expect(stdout).toContain("Node's crypto verifies that signature: valid");
    expect(stdout).toContain("Node's crypto verifies it on a changed message: invalid, as it must be");
    expect(stdout).toContain("Node computes the same secret: equal");
    // every step says where it ran and how long it took
    const steps = stdout.split("\n").filter((l) => l.startsWith("  ["));
    expect(steps.length).toBeGreaterThanOrEqual(12);
    for (const l of steps) expect(l).toMatch(/^ {2}\[(device|host) +[\d.]+ ms\] {2}\S/);
  });
});
