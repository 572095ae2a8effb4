// `npm run size`: flash and RAM of the STM32F405 image as a table.
//   flash = text + data (the initialised data is stored in flash too)
//   RAM   = data + bss (bss holds the static Mbed TLS heap, the frame
//           buffers and the UART ring; the stack region is reserved apart)
// The heap and stack high-water marks are the largest that the integration
// suite's QEMU sessions recorded (build/peaks-qemu.jsonl, written by
// test/integration/target.ts); run `npm test` first to have them.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../host/src/targets/process.js";
import { QEMU_IMAGE } from "../host/src/targets/qemu.js";

const FLASH = 1024 * 1024;
const RAM = 128 * 1024;

if (!existsSync(QEMU_IMAGE)) {
  console.error(`${QEMU_IMAGE} is missing: run \`bash tools/build-stm32.sh\` (or npm test) first`);
  process.exit(1);
}

// "   text    data     bss     dec     hex filename"
const sizeLine = execFileSync("arm-none-eabi-size", ["-B", QEMU_IMAGE], { encoding: "utf8" }).trim().split("\n")[1] ?? "";
const [text = 0, data = 0, bss = 0] = sizeLine.trim().split(/\s+/).map(Number);

/** Sizes of symbols by name, from `nm -S` (static symbols included). */
function symbolSizes(): Map<string, number> {
  const out = execFileSync("arm-none-eabi-nm", ["-S", "--size-sort", QEMU_IMAGE], { encoding: "utf8" });
  const m = new Map<string, number>();
  for (const line of out.split("\n")) {
    const [, size, , name] = line.trim().split(/\s+/);
    if (size && name) m.set(name, Number.parseInt(size, 16));
  }
  return m;
}
/** Addresses of symbols by name. */
function symbolAddresses(): Map<string, number> {
  const out = execFileSync("arm-none-eabi-nm", [QEMU_IMAGE], { encoding: "utf8" });
  const m = new Map<string, number>();
  for (const line of out.split("\n")) {
    const [addr, , name] = line.trim().split(/\s+/);
    if (addr && name) m.set(name, Number.parseInt(addr, 16));
  }
  return m;
}
const sizes = symbolSizes();
const addrs = symbolAddresses();
const heap = sizes.get("heap_buf") ?? 0;
// the stack region: between the linker script's stack symbols, when it names them
const stackLow = addrs.get("_sstack") ?? addrs.get("__stack_start__") ?? addrs.get("_stack_start");
const stackHigh = addrs.get("_estack") ?? addrs.get("__stack_end__") ?? addrs.get("_stack_end");
const stack = stackLow !== undefined && stackHigh !== undefined ? stackHigh - stackLow : undefined;

interface Peak {
  heapPeak: number;
  stackPeak: number;
  at: string;
}
const peaksFile = join(REPO_ROOT, "build", "peaks-qemu.jsonl");
let peakHeap: number | undefined;
let peakStack: number | undefined;
let peaksNote = "run `npm test` to measure";
if (existsSync(peaksFile)) {
  const peaks = readFileSync(peaksFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Peak);
  peakHeap = Math.max(...peaks.map((p) => p.heapPeak));
  peakStack = Math.max(...peaks.map((p) => p.stackPeak));
  peaksNote = `max over ${peaks.length} QEMU sessions, last ${statSync(peaksFile).mtime.toISOString()}`;
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const pct = (n: number, of: number) => `${((100 * n) / of).toFixed(1)}%`;
const rows: [string, string, string][] = [
  ["flash (text + data)", `${text + data} B  ${kib(text + data)}`, `${pct(text + data, FLASH)} of 1 MiB`],
  ["  text", `${text} B`, ""],
  ["  data", `${data} B`, ""],
  ["RAM (data + bss)", `${data + bss} B  ${kib(data + bss)}`, `${pct(data + bss, RAM)} of 128 KiB`],
  ["  static Mbed TLS heap", `${heap} B  ${kib(heap)}`, "in bss"],
  ["  stack region", stack === undefined ? "(not named in the linker script)" : `${stack} B  ${kib(stack)}`, ""],
  [
    "peak heap in use",
    peakHeap === undefined ? "-" : `${peakHeap} B`,
    peakHeap === undefined ? peaksNote : `${pct(peakHeap, heap || 1)} of the heap`,
  ],
  [
    "stack high-water",
    peakStack === undefined ? "-" : `${peakStack} B`,
    peakStack === undefined ? "" : stack ? `${pct(peakStack, stack)} of the stack` : "",
  ],
];
console.log(`STM32F405 image: ${QEMU_IMAGE.slice(REPO_ROOT.length + 1)}`);
for (const [k, v, note] of rows) console.log(`${k.padEnd(24)} ${v.padEnd(24)} ${note}`);
if (peakHeap !== undefined) console.log(`(peaks: ${peaksNote})`);
const fits = text + data <= FLASH && data + bss <= RAM;
console.log(fits ? "fits 1 MiB flash and 128 KiB RAM" : "DOES NOT FIT the STM32F405");
process.exitCode = fits ? 0 : 1;
