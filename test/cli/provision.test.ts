// `mbedlink provision` (issue 16, must-show 5), run as the built CLI against
// the target under test (native; the STM32 in QEMU on the QEMU pass), with
// CAs made by openssl: a root and an intermediate, the intermediate's key in
// PEM files (signed on the host) or in a slot of another mbedlink device
// (signed there). The chain read back passes `openssl verify`, the manifest
// verifies and one changed byte fails naming its line, a second run without
// --force is refused, the private key never crossed the line (frame scan,
// in-process through provisionDevice, the function the CLI runs per
// device), and --ports provisions three native devices in parallel.
import { execFileSync } from "node:child_process";
import { createPublicKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileCa, provisionDevice } from "../../host/cli/commands/provision.js";
import { fileSigner, ManifestWriter } from "../../host/cli/manifest.js";
import { DeviceBoard } from "../../host/cli/provision-progress.js";
import { open } from "../../host/src/index.js";
import { type NativeTarget, nativeStoreFile, startNative } from "../../host/src/targets/native.js";
import { captureDeviceBytes, findRun } from "../integration/frame-scan.js";
import { buildIfStale, cleanState, lines, run, startDevice, TARGET, type TestDevice } from "./cli-helpers.js";

let device: TestDevice;
let dir: string;
/** --port of the device under test. */
let at: string[];
const natives: NativeTarget[] = [];

const path = (name: string) => join(dir, name);
const ossl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

/** A native simulator with a fresh store of its own. */
async function nativeDevice(): Promise<NativeTarget> {
  const t = await startNative({ store: nativeStoreFile(mkdtempSync(join(dir, "store-"))) });
  natives.push(t);
  return t;
}

beforeAll(async () => {
  await buildIfStale();
  dir = mkdtempSync(join(tmpdir(), "mbedlink-provision-"));
  device = await startDevice();
  at = device.flags;
  // A root and an intermediate CA (EC P-256), as openssl makes them.
  writeFileSync(
    path("ca.cnf"),
    "[ca]\nbasicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
  );
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  ossl("req", "-x509", ...ec, "-keyout", "root.key", "-out", "root.pem", "-subj", "/O=mbedlink test/CN=Provisioning Root", "-days", "30");
  ossl("req", "-new", ...ec, "-keyout", "int.key", "-out", "int.csr", "-subj", "/O=mbedlink test/CN=Provisioning Intermediate");
  ossl(
    "x509",
    "-req",
    "-in",
    "int.csr",
    "-CA",
    "root.pem",
    "-CAkey",
    "root.key",
    "-set_serial",
    "2",
    "-days",
    "30",
    "-extfile",
    "ca.cnf",
    "-extensions",
    "ca",
    "-out",
    "int.pem",
  );
  writeFileSync(path("ca-chain.pem"), readFileSync(path("int.pem"), "utf8") + readFileSync(path("root.pem"), "utf8"));
  const station = generateKeyPairSync("ec", { namedCurve: "P-256" });
  writeFileSync(path("station.key"), station.privateKey.export({ type: "pkcs8", format: "pem" }));
  writeFileSync(path("station.pub"), station.publicKey.export({ type: "spki", format: "pem" }));
}, 120_000);

afterAll(async () => {
  await device?.stop();
  for (const t of natives) await t.stop().catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
  cleanState();
});

const caFiles = () => ["--ca-cert", path("ca-chain.pem"), "--ca-key", path("int.key")];
const stationFiles = (manifest: string) => ["--manifest", manifest, "--station-key", path("station.key")];

/** The PEM blocks of a chain, as separate files for openssl verify: leaf.pem, then the rest. */
function splitChain(pem: string, prefix: string): string[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g) ?? [];
  return blocks.map((b, i) => {
    writeFileSync(path(`${prefix}${i}.pem`), b);
    return path(`${prefix}${i}.pem`);
  });
}

function openSslVerify(leaf: string): string {
  return ossl("verify", "-CAfile", path("root.pem"), "-untrusted", path("int.pem"), leaf).trim();
}

describe(`provision on ${TARGET} with a CA in PEM files`, () => {
  const manifest = () => path("manifest.jsonl");
  let first: Record<string, unknown>;

  it("makes the key on the device, writes the chain into the slot; openssl verify accepts it; the manifest verifies", async () => {
    const r = await run(["provision", "--slot", "3", ...caFiles(), "--cn", "dev-{bootid}", ...stationFiles(manifest()), "--json", ...at]);
    expect(r.code, r.stderr).toBe(0);
    first = JSON.parse(r.stdout);
    const info = JSON.parse((await run(["info", "--json", ...at])).stdout);
    if (TARGET !== "port") expect(info.board).toBe(TARGET === "qemu" ? "stm32f405-qemu" : "native-linux");
    expect(first).toMatchObject({
      ok: true,
      slot: 3,
      keyType: "EC secp256r1",
      subject: `CN=dev-${info.bootId}`,
      issuer: "O=mbedlink test, CN=Provisioning Intermediate",
      chainLength: 3,
      deviceVerified: true,
      hostVerified: true,
    });
    const [leaf] = splitChain(first.chainPem as string, "first");
    expect(openSslVerify(leaf as string)).toBe(`${leaf}: OK`);
    const x = new X509Certificate(readFileSync(leaf as string));
    expect(x.fingerprint256.replace(/:/g, "").toLowerCase()).toBe(first.fingerprint);
    expect(x.serialNumber.toLowerCase()).toBe(first.serial);
    // Valid from a minute back (a device clock a little behind still accepts it), for --days (365 by default).
    const from = Date.parse(x.validFrom);
    expect(Date.now() - from).toBeGreaterThan(55_000);
    expect(Date.parse(x.validTo) - from).toBe(365 * 86_400_000);
    // The slot's key, non-exportable, is the one in the certificate.
    const slots = JSON.parse((await run(["slots", "list", "--json", ...at])).stdout);
    const slot3 = slots.keys.find((k: { slot: number }) => k.slot === 3);
    expect(slot3).toMatchObject({ exportable: false, type: "ec", curve: "secp256r1" });
    expect(createPublicKey(slot3.publicKey).equals(x.publicKey)).toBe(true);

    const v = await run(["manifest", "verify", manifest(), "--pubkey", path("station.pub")]);
    expect(v.code, v.stderr).toBe(0);
    const line = JSON.parse(lines(readFileSync(manifest(), "utf8"))[0] as string);
    expect(line).toMatchObject({
      slot: 3,
      serial: first.serial,
      fingerprint: first.fingerprint,
      subject: first.subject,
      alg: "ecdsa-sha256",
    });
    expect(line.device).toMatchObject({ port: at[1], bootId: info.bootId, board: info.board });
  });

  it("a manifest with one byte changed fails verification naming the line", async () => {
    const bytes = readFileSync(manifest());
    const at1 = bytes.indexOf(Buffer.from(first.fingerprint as string)) + 5;
    const bad = Buffer.from(bytes);
    bad[at1] = (bad[at1] as number) === 0x61 ? 0x62 : 0x61;
    writeFileSync(path("manifest-bad.jsonl"), bad);
    const r = await run(["manifest", "verify", path("manifest-bad.jsonl"), "--pubkey", path("station.pub")]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([`mbedlink: ${path("manifest-bad.jsonl")} line 1: signature does not verify`]);
  });

  it("a second run without --force refuses and leaves the slot alone; --force replaces key and certificate", async () => {
    const again = await run(["provision", "--slot", "3", ...caFiles(), ...stationFiles(manifest()), ...at]);
    expect(again.code).toBe(1);
    expect(lines(again.stderr)).toEqual(["mbedlink: slot 3 is provisioned already (a key and a certificate); use --force to replace it"]);
    expect(lines(readFileSync(manifest(), "utf8"))).toHaveLength(1);
    const leafKey = new X509Certificate(first.chainPem as string).publicKey;
    const slotKey = createPublicKey((await run(["pubkey", "--slot", "3", ...at])).stdout);
    expect(slotKey.equals(leafKey)).toBe(true); // the same key as the first run certified
    const forced = await run([
      "provision",
      "--slot",
      "3",
      "--force",
      ...caFiles(),
      "--cn",
      "{board}-{serial}",
      ...stationFiles(manifest()),
      ...at,
    ]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(
      /^slot 3: EC secp256r1 key made on the device, certificate CN=\S+-([0-9a-f]{32}), serial \1, SHA-256 [0-9a-f]{64}, verified on the device and the host\n$/,
    );
    expect(forced.stdout).not.toContain(first.serial as string);
    const v = await run(["manifest", "verify", manifest(), "--pubkey", path("station.pub"), "--json"]);
    expect(JSON.parse(v.stdout)).toMatchObject({ lines: 2, valid: true });
  });

  it("usage errors exit 2 before any device is touched", async () => {
    expect((await run(["provision", "--slot", "3", ...at])).stderr).toMatch(/name the CA/);
    expect((await run(["provision", "--slot", "3", ...caFiles(), "--cn", "x-{nope}", ...at])).stderr).toMatch(
      /unknown placeholder \{nope\}/,
    );
    expect((await run(["provision", "--slot", "3", ...caFiles(), "--key-type", "dsa:1024", ...at])).code).toBe(2);
    expect((await run(["provision", "--slot", "3", ...caFiles(), "--manifest", path("m.jsonl"), ...at])).stderr).toMatch(
      /--station-key PEM or --station-slot/,
    );
  });
});

describe(`provision on ${TARGET} with the CA key in a slot of another mbedlink device`, () => {
  it("the certificate is signed on the CA's device; the station's manifest key is in a slot there too", async () => {
    const caDevice = await nativeDevice();
    // The intermediate's key goes into the CA device's slot 1 (non-exportable), a station key is made in slot 2.
    const station = join(dir, "station-slot.pub");
    {
      const ca = await open(caDevice.path);
      try {
        const key = await ca.pk.ECC.fromPEM(readFileSync(path("int.key"), "utf8"), { exportable: false });
        await ca.slots.store(key, 1, { label: "intermediate CA" });
        const st = ca.pk.ECC("secp256r1");
        await st.generate({ exportable: false });
        await ca.slots.store(st, 2, { label: "station" });
        writeFileSync(station, await st.exportPublicKey("PEM"));
        await key.close();
        await st.close(); // the CLI's session numbers its handles from 1 again
      } finally {
        await ca.close();
      }
    }
    const manifest = path("manifest-slot.jsonl");
    const r = await run([
      "provision",
      "--slot",
      "4",
      "--ca-port",
      caDevice.path,
      "--ca-slot",
      "1",
      "--ca-cert",
      path("ca-chain.pem"),
      "--manifest",
      manifest,
      "--station-slot",
      "2",
      "--json",
      ...at,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ slot: 4, chainLength: 3, deviceVerified: true, hostVerified: true });
    const [leaf] = splitChain(doc.chainPem, "slotca");
    expect(openSslVerify(leaf as string)).toBe(`${leaf}: OK`);
    const x = ossl("x509", "-in", leaf as string, "-noout", "-text");
    expect(x).toMatch(/CA:FALSE/);
    expect(x).toMatch(/TLS Web Client Authentication/);
    expect((await run(["manifest", "verify", manifest, "--pubkey", station])).code).toBe(0);
  });
});

describe(`the private key never leaves ${TARGET}`, () => {
  it("a known key imported non-exportable and certified with --keep-key: no 8-byte run of its scalar in anything the device sent", async () => {
    const known = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const scalar = Buffer.from(known.privateKey.export({ format: "jwk" }).d as string, "base64url");
    const sec1 = known.privateKey.export({ type: "sec1", format: "der" });
    const point = Buffer.from(known.publicKey.export({ type: "spki", format: "der" })).subarray(-65);
    const dev = await open(at[1] as string);
    const ca = fileCa(path("ca-chain.pem"), path("int.key"));
    try {
      const received = captureDeviceBytes(dev);
      const key = await dev.pk.ECC.fromDER(new Uint8Array(sec1), { exportable: false });
      await dev.slots.store(key, 5, { label: "known" });
      await key.close();
      const manifest = new ManifestWriter(path("manifest-scan.jsonl"), fileSigner(readFileSync(path("station.key"))));
      const name = { label: "scan", index: 1, json: { port: at[1] as string } };
      const base = {
        slot: 5,
        keyType: { type: "ec", curve: "secp256r1" } as const,
        cn: "scan-{keyid}",
        days: 30,
        label: "known",
        ca,
        manifest,
      };
      const r = await provisionDevice(dev, name, { ...base, force: false, keepKey: true });
      expect(r).toMatchObject({ deviceVerified: true, hostVerified: true, chainLength: 3 });
      expect(new X509Certificate(r.chainPem).publicKey.equals(known.publicKey)).toBe(true);
      // The scan sees the traffic: the public point did cross (in the slot listing, the CSR, the certificate).
      expect(findRun(received, point, 8)).toBe(0);
      expect(findRun(received, scalar, 8)).toBeUndefined();
      expect(findRun(received, sec1.subarray(0, 7 + 32), 8)).toBeUndefined(); // the SEC1 DER up to the scalar (the public point follows)

      // A key generated on the device (the default): nobody knows its bytes, but nothing the device sent was a private key.
      const gen = await provisionDevice(dev, name, { ...base, slot: 6, force: false, keepKey: false });
      expect(gen.deviceVerified).toBe(true);
      const sec1P256Prefix = Buffer.from("307702010104", "hex"); // SEQUENCE { INTEGER 1, OCTET STRING (32) ... }: an ECPrivateKey
      const pkcs8Prefix = Buffer.from("020100301306072a8648ce3d0201", "hex"); // PrivateKeyInfo's version and id-ecPublicKey
      expect(findRun(received, sec1P256Prefix, sec1P256Prefix.length)).toBeUndefined();
      expect(findRun(received, pkcs8Prefix, pkcs8Prefix.length)).toBeUndefined();
    } finally {
      await ca.close();
      await dev.close();
    }
    // Through the CLI: --keep-key on a slot with a certificate is refused unless --force, which certifies the same key again.
    const kept = await run(["provision", "--slot", "5", "--keep-key", ...caFiles(), ...at]);
    expect(lines(kept.stderr)).toEqual([
      "mbedlink: slot 5 is provisioned already (it holds a certificate); use --force to replace the certificate",
    ]);
    const again = await run(["provision", "--slot", "5", "--keep-key", "--force", ...caFiles(), "--json", ...at]);
    expect(again.code, again.stderr).toBe(0);
    const doc = JSON.parse(again.stdout);
    expect(doc).toMatchObject({ keyMade: false, deviceVerified: true });
    expect(new X509Certificate(doc.chainPem).publicKey.equals(known.publicKey)).toBe(true);
  });
});

describe("--ports: several native devices in parallel", () => {
  it("three devices get distinct certificates and a manifest of three lines; a failing port does not stop the others", async () => {
    const three = await Promise.all([nativeDevice(), nativeDevice(), nativeDevice()]);
    const manifest = path("manifest-three.jsonl");
    const ports = three.map((t) => t.path).join(",");
    const r = await run([
      "provision",
      "--slot",
      "0",
      "--ports",
      ports,
      ...caFiles(),
      "--cn",
      "unit-{n}-{bootid}",
      ...stationFiles(manifest),
      "--json",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ provisioned: 3, failed: 0 });
    const devices = doc.devices as { port: string; subject: string; serial: string; fingerprint: string; ok: boolean }[];
    expect(devices.map((d) => d.port)).toEqual(three.map((t) => t.path));
    for (const [i, d] of devices.entries()) expect(d.subject).toMatch(new RegExp(`^CN=unit-${i + 1}-[0-9a-f]{16}$`));
    for (const key of ["subject", "serial", "fingerprint"] as const) expect(new Set(devices.map((d) => d[key])).size).toBe(3);
    const rows = lines(readFileSync(manifest, "utf8")).map((l) => JSON.parse(l));
    expect(rows).toHaveLength(3);
    expect(new Set(rows.map((x) => x.device.port))).toEqual(new Set(three.map((t) => t.path)));
    expect((await run(["manifest", "verify", manifest, "--pubkey", path("station.pub")])).code).toBe(0);

    // One more device (RSA this time) and a port with nothing on it: the device is provisioned, the port reported.
    const fourth = await nativeDevice();
    const mixed = await run([
      "provision",
      "--slot",
      "0",
      "--ports",
      `/nonexistent/ttyMBED9,${fourth.path}`,
      "--key-type",
      "rsa:2048",
      ...caFiles(),
      ...stationFiles(manifest),
    ]);
    expect(mixed.code).toBe(1);
    expect(lines(mixed.stderr)).toEqual(["mbedlink: /nonexistent/ttyMBED9: no device at /nonexistent/ttyMBED9: no such file"]);
    expect(lines(mixed.stdout)).toEqual([
      expect.stringMatching(new RegExp(`^${fourth.path}: slot 0: RSA-2048 key made on the device, certificate CN=mbedlink-[0-9a-f]{16}, `)),
      "provisioned 1 of 2 devices; failed: /nonexistent/ttyMBED9",
    ]);
    expect(JSON.parse((await run(["manifest", "verify", manifest, "--pubkey", path("station.pub"), "--json"])).stdout)).toMatchObject({
      lines: 4,
      valid: true,
    });
  });

  it("the progress display has a line per device, redrawn in place on a terminal", () => {
    const written: string[] = [];
    const stream = { isTTY: true, columns: 100, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
    const board = new DeviceBoard(stream);
    const a = board.add("/dev/pts/1");
    const b = board.add("/dev/pts/22");
    board.step(a, "making the CSR on the device");
    board.finish(b, "FAILED: no device");
    board.draw();
    board.step(a, "signing the certificate");
    board.stop();
    board.stop(); // once only: output written after it stays
    board.draw();
    expect(written).toHaveLength(2);
    expect(written[1]?.startsWith("\x1b[2F")).toBe(true); // back up over the two lines drawn before
    const [l1, l2] = board.lines();
    expect(l1).toMatch(/^\/dev\/pts\/1 {3}. signing the certificate {2}\d+\.\d s$/);
    expect(l2).toBe("/dev/pts/22  FAILED: no device");
    expect(new DeviceBoard(stream, false).enabled).toBe(false);
  });
});
