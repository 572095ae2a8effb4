// `npm start`: a demo session against the default target, the emulated
// STM32F405 (QEMU), or the native simulator where QEMU is not installed.
// Prints the device's identity and runs python-mbedtls's hash examples on it.
//   MBEDLINK_PORT=/dev/ttyACM0 npm start   uses a real board instead
//   MBEDLINK_TARGET=native npm start       picks a target explicitly
import { existsSync } from "node:fs";
import { hex, open, utf8 } from "../src/index.js";
import { QEMU_IMAGE, qemuAvailable } from "../src/targets/qemu.js";

const port = process.env.MBEDLINK_PORT;
const wanted = process.env.MBEDLINK_TARGET ?? "qemu";
if (wanted !== "native" && wanted !== "qemu") throw new Error(`MBEDLINK_TARGET must be native or qemu, not ${wanted}`);
let target: "native" | "qemu" = wanted;
if (!port && target === "qemu" && !(qemuAvailable() && existsSync(QEMU_IMAGE))) {
  console.log("QEMU or the STM32 image is not available here (see the bootstrap's message above); using the native target.");
  target = "native";
}

const started = performance.now();
await using dev = port ? await open(port) : await open({ target });
const opened = performance.now() - started;
const label = port ?? (target === "qemu" ? "STM32F405 in QEMU (netduinoplus2)" : "native target");

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
  ["boot id", info.bootId],
  ["digests", [...dev.hash.algorithmsAvailable].join(", ")],
];
for (const [k, v] of rows) console.log(`  ${k.padEnd(13)} ${v}`);

console.log("");
console.log("python-mbedtls README, hash examples, computed on the device:");
const m = dev.hash.md5();
m.update(utf8("Nobody inspects"));
m.update(utf8(" the spammish repetition"));
console.log(`  md5(...).digest()        ${hex(await m.digest())}  (digest_size ${m.digestSize}, block_size ${m.blockSize})`);
const s = dev.hash.sha224(utf8("Nobody inspects the spammish repetition"));
console.log(`  sha224(...).hexdigest()  ${await s.hexdigest()}`);
const h = dev.hash.new("ripemd160");
h.update(utf8("Nobody inspects the spammish repetition"));
console.log(`  new("ripemd160")         ${await h.hexdigest()}`);
for (const x of [m, s, h]) await x.close();
