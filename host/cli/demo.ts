// `npm start`: a demo session against the default target, the emulated
// STM32F405 (QEMU), or the native simulator where QEMU is not installed.
// Shows what a co-processor is for: the device's identity, the seed's hash
// examples computed on it, and a key born on the device that cannot leave
// it, whose signature Node verifies and whose ECDH secret Node agrees with.
// Every line says where it ran and how long it took.
//   MBEDLINK_PORT=/dev/ttyACM0 npm start   uses a real board instead
//   MBEDLINK_TARGET=native npm start       picks a target explicitly
import { createECDH, createPublicKey, verify } from "node:crypto";
import { existsSync } from "node:fs";
import { hex, NotExportableError, open, utf8 } from "../src/index.js";
import { findProgram } from "../src/targets/programs.js";
import { QEMU_BINARY, QEMU_IMAGE } from "../src/targets/qemu.js";

const port = process.env.MBEDLINK_PORT;
const wanted = process.env.MBEDLINK_TARGET ?? "qemu";
if (wanted !== "native" && wanted !== "qemu") throw new Error(`MBEDLINK_TARGET must be native or qemu, not ${wanted}`);
let target: "native" | "qemu" = wanted;
if (!port && target === "qemu" && !(findProgram(QEMU_BINARY) && existsSync(QEMU_IMAGE))) {
  console.log("QEMU or the STM32 image is not available here (see the bootstrap's message above); using the native target.");
  target = "native";
}

/** Runs `fn`, then prints `[where  time] what: result`. */
async function step<T>(where: "device" | "host", what: string, fn: () => Promise<T>, show: (v: T) => string): Promise<T> {
  const t0 = performance.now();
  const v = await fn();
  const ms = performance.now() - t0;
  const time = ms < 10 ? ms.toFixed(1) : ms.toFixed(0);
  console.log(`  [${where.padEnd(6)} ${time.padStart(6)} ms]  ${what}: ${show(v)}`);
  return v;
}

const started = performance.now();
await using dev = port ? await open(port) : await open({ target });
const opened = performance.now() - started;
const label = port ?? (target === "qemu" ? "STM32F405 in QEMU (netduinoplus2)" : "native simulator (Linux process behind a PTY)");

console.log(`mbedlink demo: ${label} (session opened in ${opened.toFixed(0)} ms)`);
console.log("");
console.log("device (hello):");
const info = dev.info;
const rows: [string, string][] = [
  ["board", info.board],
  ["firmware", info.firmwareVersion],
  ["Mbed TLS", dev.version.version],
  ["protocol", String(info.protocolVersion)],
  ["MTU / window", `${info.mtu} bytes / ${info.window} requests`],
  ["handles", String(info.maxHandles)],
  ["heap", `${info.heapSize} bytes (${info.heapUsed} used, peak ${info.heapPeak})`],
  ["entropy", info.entropy],
  ["key store", `${info.keyStore}, ${info.slots} slots${info.persistent ? ", persistent" : ""}`],
  ["boot id", info.bootId],
  ["digests", [...dev.hash.algorithmsAvailable].join(", ")],
];
for (const [k, v] of rows) console.log(`  ${k.padEnd(13)} ${v}`);

console.log("");
console.log("python-mbedtls README, hash examples, computed on the device:");
const seed = "Nobody inspects the spammish repetition";
await step(
  "device",
  "md5, fed in two updates",
  async () => {
    await using m = dev.hash.md5();
    m.update(utf8("Nobody inspects"));
    m.update(utf8(" the spammish repetition"));
    return hex(await m.digest());
  },
  (d) => d,
);
await step(
  "device",
  "sha224(...).hexdigest()",
  async () => {
    await using s = dev.hash.sha224(utf8(seed));
    return await s.hexdigest();
  },
  (d) => d,
);
await step(
  "device",
  'new("ripemd160")',
  async () => {
    await using h = dev.hash.new("ripemd160");
    h.update(utf8(seed));
    return await h.hexdigest();
  },
  (d) => d,
);

console.log("");
console.log("A key born on the device that cannot leave it:");
await using key = dev.pk.ECC("secp256r1");
await step(
  "device",
  "ECC secp256r1 key generated, exportable: false",
  () => key.generate({ exportable: false }),
  () => "private part stays on the device",
);
await step(
  "device",
  'exportKey("PEM") asked for the private key',
  () =>
    key.exportKey("PEM").then(
      () => "exported (unexpected!)",
      (e: unknown) => (e instanceof NotExportableError ? `refused, ${e.name}` : `failed: ${String(e)}`),
    ),
  (r) => r,
);
const publicPem = await step(
  "device",
  "public key exported (SubjectPublicKeyInfo)",
  () => key.exportPublicKey("PEM"),
  (pem) => `${pem.length} bytes of PEM`,
);
const message = utf8("mbedlink demo: signed on the device, verified by Node");
const signature = await step(
  "device",
  "message signed (ECDSA with SHA-256)",
  () => key.sign(message, "sha256"),
  (sig) => `${sig.length}-byte DER signature`,
);
const nodeKey = createPublicKey(publicPem);
await step(
  "host",
  "Node's crypto verifies that signature",
  async () => verify("sha256", message, nodeKey, signature),
  (ok) => (ok ? "valid" : "INVALID"),
);
await step(
  "host",
  "Node's crypto verifies it on a changed message",
  async () => verify("sha256", utf8("mbedlink demo: changed"), nodeKey, signature),
  (ok) => (ok ? "valid (unexpected!)" : "invalid, as it must be"),
);

console.log("");
console.log("ECDH with that key: the device and Node agree on a secret; the device's half never leaves it:");
const node = createECDH("prime256v1");
const nodePoint = node.generateKeys();
await using srv = key.toECDHServer();
const ske = await step(
  "device",
  "ServerKeyExchange from the device key (static ECDH)",
  () => srv.generate(),
  (b) => `${b.length} bytes`,
);
// RFC 8422 ServerKeyExchange: curve type (1), named curve (2), point length (1), point.
const devicePoint = ske.subarray(4, 4 + (ske[3] ?? 0));
await step(
  "device",
  "Node's public point imported as the ClientKeyExchange",
  () => srv.importCKE(Uint8Array.of(nodePoint.length, ...nodePoint)),
  () => "done",
);
const deviceSecret = await step(
  "device",
  "shared secret computed",
  () => srv.generateSecret(),
  (s) => `${s.toString(16).slice(0, 16)}...`,
);
await step(
  "host",
  "Node computes the same secret",
  async () => BigInt(`0x${node.computeSecret(devicePoint).toString("hex")}`) === deviceSecret,
  (same) => (same ? "equal" : "DIFFERENT"),
);

console.log("");
console.log("Certificates (x509) and TLS sessions on the device are not in this firmware yet.");
