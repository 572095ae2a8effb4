// The package as a user gets it: `npm pack`, the tarball installed into a
// fresh project in a temp folder (outside the repository), a plain `.mjs`
// script run with `node` against the shipped STM32 image in QEMU and the
// shipped native simulator, and a TypeScript file type-checked against the
// shipped `.d.ts`. Runs once, in the native pass (it boots QEMU itself).
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const run = promisify(execFile);
const rootPackage = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
};
const installed = (name: string): string =>
  (JSON.parse(readFileSync(join(repo, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;

// The seed's sentence and its digests (python-mbedtls README; checked by Node's crypto in the hash tests).
const SEED_DIGESTS = {
  md5: "bb649c83dd1ea5c9d9dec9a18df0ffe9",
  sha224: "a4337bc45a8fc544c03f52dc550cd6e1e87021bc896588bd79e901e2",
  ripemd160: "cc4a5ce1b3df48aec5d22d1f16b894a0b894eccc",
};

// The user's script. It also reports the `-kernel` image of the QEMU process
// it started, read from /proc, so the test can see the shipped image booted.
const SCRIPT = `import { readFileSync, readdirSync } from "node:fs";
import { hex, open, utf8 } from "mbedlink";

function childImage() {
  for (const pid of readdirSync("/proc").filter((p) => /^\\d+$/.test(p))) {
    try {
      const stat = readFileSync(\`/proc/\${pid}/stat\`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) !== process.pid) continue;
      const argv = readFileSync(\`/proc/\${pid}/cmdline\`, "utf8").split("\\0");
      const i = argv.indexOf("-kernel");
      if (i >= 0) return argv[i + 1];
    } catch {}
  }
  return "none";
}

const target = process.argv[2];
const dev = await open({ target });
const text = utf8("Nobody inspects the spammish repetition");
const m = dev.hash.md5();
m.update(utf8("Nobody inspects"));
m.update(utf8(" the spammish repetition"));
console.log("md5", hex(await m.digest()));
console.log("sha224", await dev.hash.sha224(text).hexdigest());
const r = dev.hash.new("ripemd160");
r.update(text);
console.log("ripemd160", await r.hexdigest());
console.log("board", dev.info.board);
if (target === "qemu") console.log("kernel", childImage());
await dev.close();
`;

// A TypeScript user of the shipped types, and a file the types must reject.
const GOOD_TS = `import { type Device, DeviceError, type DeviceInfo, hex, open, TimeoutError } from "mbedlink";

async function main(): Promise<string> {
  const dev: Device = await open({ target: "qemu", timeoutMs: 5000 });
  const info: DeviceInfo = dev.info;
  const board: string = info.board;
  const digest: Uint8Array = await dev.hash.sha256(new Uint8Array([1, 2, 3])).digest();
  const key = dev.pk.ECC("secp256r1");
  await key.generate({ exportable: false });
  const sig: Uint8Array = await key.sign(new Uint8Array(32), "sha256");
  const valid: boolean = await key.verify(new Uint8Array(32), sig, "sha256");
  if (!valid) throw new Error("bad signature");
  await dev.close();
  return board + hex(digest) + hex(sig);
}

main().catch((e: unknown) => {
  if (e instanceof TimeoutError || e instanceof DeviceError) console.error(e.message);
});
`;
const BAD_TS = `import { open } from "mbedlink";
const dev = await open({ target: "qemu" });
const board: number = dev.info.board;
await dev.hash.sha256(123);
export { board };
`;

let scratch: string;
let project: string;
let packageDir: string;

beforeAll(async () => {
  scratch = realpathSync(mkdtempSync(join(tmpdir(), "mbedlink-user-")));
  const packs = join(scratch, "packs");
  mkdirSync(packs);
  // prepack runs the bootstrap (a no-op here) and checks the images and dist/ are there
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", packs], { cwd: repo, maxBuffer: 64 << 20 });
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf("["))) as { filename: string }[];
  if (!packed) throw new Error("npm pack reported no tarball");
  const app = join(scratch, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "mbedlink-user", private: true, type: "module" }, null, 2));
  // The same TypeScript and Node types the repository builds with, as a user would add them.
  await run(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      join(packs, packed.filename),
      `typescript@${installed("typescript")}`,
      `@types/node@${installed("@types/node")}`,
    ],
    { cwd: app, maxBuffer: 64 << 20, env: { ...process.env, npm_config_loglevel: "error" } },
  );
  project = app;
  packageDir = join(app, "node_modules", "mbedlink");
}, 600_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("the npm package", () => {
  it("ships dist/ with types, the STM32 images, the native simulator and the firmware sources, and no TypeScript sources or tests", () => {
    const pkg = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as {
      version: string;
      dependencies: Record<string, string>;
      bin: Record<string, string>;
    };
    expect(pkg.version).toBe(rootPackage.version);
    expect(Object.keys(pkg.dependencies)).not.toContain("tsx");
    for (const f of [
      "dist/src/index.js",
      "dist/src/index.d.ts",
      "dist/src/targets/qemu.js",
      "build/stm32/mbedlink-stm32f405.elf",
      "build/stm32/mbedlink-stm32f405.bin",
      "build/native/mbedlink-native",
      "firmware/CMakeLists.txt",
      "firmware/sources.json",
      "firmware/src/app/ml_core.c",
      "firmware/lib/mbedtls/mbedlink_config.h",
      "tools/build-native.sh",
      "tools/fetch-third-party.sh",
      "tools/third-party.lock",
      "LICENSE",
      "README.md",
    ]) {
      expect(existsSync(join(packageDir, f)), f).toBe(true);
    }
    for (const f of ["host", "hil", "test", "tools/bootstrap.sh", "firmware/lib/mbedtls/src", "dist/.tsbuildinfo"]) {
      expect(existsSync(join(packageDir, f)), f).toBe(false);
    }
    for (const bin of Object.values(pkg.bin)) expect(existsSync(join(packageDir, bin)), bin).toBe(true);
  });

  it.each(["qemu", "native"])("a plain .mjs script run with node opens the %s target and prints the seed's digests", async (target) => {
    writeFileSync(join(project, "seed.mjs"), SCRIPT);
    const { stdout } = await run(process.execPath, ["seed.mjs", target], { cwd: project, timeout: 120_000 });
    const lines = Object.fromEntries(
      stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" ") as [string, string]),
    );
    expect(lines.md5).toBe(SEED_DIGESTS.md5);
    expect(lines.sha224).toBe(SEED_DIGESTS.sha224);
    expect(lines.ripemd160).toBe(SEED_DIGESTS.ripemd160);
    if (target === "qemu") {
      expect(lines.board).toBe("stm32f405-qemu");
      // the image that booted is the one in the installed package, not the repository's
      expect(lines.kernel).toBe(join(packageDir, "build", "stm32", "mbedlink-stm32f405.elf"));
    } else {
      expect(lines.board).toMatch(/^native/);
    }
  });

  it("where the prebuilt simulator does not fit, the native target is built from the shipped sources into the cache folder on first use", async () => {
    writeFileSync(join(project, "seed.mjs"), SCRIPT);
    const cache = join(scratch, "cache");
    const env = {
      ...process.env,
      XDG_CACHE_HOME: cache,
      MBEDLINK_NATIVE_BUILD: "1", // as on a machine that is not linux-x64
      // the pinned tarballs the bootstrap fetched (SHA-256 checked again), so the test needs no network
      MBEDLINK_FETCH_CACHE: join(repo, "firmware", "lib", ".fetch"),
    };
    const first = await run(process.execPath, ["seed.mjs", "native"], { cwd: project, env, timeout: 600_000, maxBuffer: 64 << 20 });
    expect(first.stderr).toMatch(/mbedlink: building the native simulator for linux-x64 in .*native-[\d.]+-linux-x64 \(first use only\)/);
    expect(first.stdout).toContain(`md5 ${SEED_DIGESTS.md5}`);
    const binary = join(cache, "mbedlink", `native-${rootPackage.version}-linux-x64`, "build", "native", "mbedlink-native");
    expect(existsSync(binary)).toBe(true);
    const second = await run(process.execPath, ["seed.mjs", "native"], { cwd: project, env, timeout: 120_000 });
    expect(second.stderr).not.toMatch(/building/);
    expect(second.stdout).toContain(`sha224 ${SEED_DIGESTS.sha224}`);
    // Without the build tools: one line naming what to install, no build attempted.
    const bare = await run(process.execPath, ["seed.mjs", "native"], {
      cwd: project,
      env: { ...env, XDG_CACHE_HOME: join(scratch, "cache-empty"), PATH: join(scratch, "no-tools") },
      timeout: 60_000,
    }).then(
      () => "",
      (e: { stderr: string }) => e.stderr,
    );
    expect(bare).toMatch(/cmake, make, cc, curl, bzip2 are not installed: run sudo apt-get install -y cmake make gcc curl bzip2/);
  }, 600_000);

  it("a TypeScript file type-checks against the shipped types, and a wrong one does not", async () => {
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          noEmit: true,
          types: ["node"],
        },
      }),
    );
    const tsc = join(project, "node_modules", ".bin", "tsc");
    writeFileSync(join(project, "good.ts"), GOOD_TS);
    await run(tsc, ["-p", "."], { cwd: project });
    writeFileSync(join(project, "bad.ts"), BAD_TS);
    const bad = await run(tsc, ["-p", "."], { cwd: project }).then(
      () => "",
      (e: { stdout: string }) => e.stdout,
    );
    expect(bad).toMatch(/bad\.ts.*Type 'string' is not assignable to type 'number'/);
    expect(bad).toMatch(/bad\.ts.*Argument of type 'number' is not assignable/);
    expect(bad).not.toMatch(/good\.ts/);
  });
});
