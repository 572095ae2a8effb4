// `npm start`: a demo session against the default target. Prints the
// device's identity and runs python-mbedtls's hash examples on the device.
//   MBEDLINK_PORT=/dev/ttyACM0 npm start   uses a real board instead
//   MBEDLINK_TARGET=native npm start       picks a target explicitly
import { hex, open, utf8 } from "../src/index.js";

const port = process.env.MBEDLINK_PORT;
const target = process.env.MBEDLINK_TARGET ?? "native";
if (target !== "native" && target !== "qemu") throw new Error(`MBEDLINK_TARGET must be native or qemu, not ${target}`);

const started = performance.now();
await using dev = port ? await open(port) : await open({ target });
const opened = performance.now() - started;

console.log(`mbedlink demo: ${port ?? `${target} target`} (session opened in ${opened.toFixed(0)} ms)`);
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
const sha224 = await dev.hash.sha224(utf8("Nobody inspects the spammish repetition")).hexdigest();
console.log(`  sha224(...).hexdigest()  ${sha224}`);
const h = dev.hash.new("ripemd160");
h.update(utf8("Nobody inspects the spammish repetition"));
console.log(`  new("ripemd160")         ${await h.hexdigest()}`);
for (const x of [m, h]) await x.close();
