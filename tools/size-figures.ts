// Flash and RAM figures of the STM32F405 image, measured from the ELF, and
// the README block that shows them. Used by `npm run size` (tools/size.ts),
// which writes the block, and by test/readme-figures.test.ts, which recomputes
// the static rows and fails when README.md's differ.
//   flash = text + data (the initialised data is stored in flash too)
//   RAM   = data + bss  (bss holds the static Mbed TLS heap and the frame
//           buffers)
//   upper RAM: the 64 KiB (CCM on a chip) that holds the stack, the UART
//           ring and the record of answers by pointer
//           (firmware/src/hal/stm32f4/startup.c, stm32f4.h); its sizes
//           come from stm32f4.h and sources.json, not from the ELF
// The peaks (heap in use, stack high-water) come from test runs: the largest
// that the integration suite's QEMU sessions recorded in build/peaks-qemu.jsonl
// (written by test/integration/target.ts) since the image was built. Sessions
// in which the device answered a request out_of_memory (tests that fill the
// heap on purpose) count apart: their heap peak is the heap's limit, not what
// the work they did needs.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { requireTool } from "./programs.js";

export const FLASH_BYTES = 1024 * 1024;
export const RAM_BYTES = 128 * 1024;
export const IMAGE_PATH = "build/stm32/mbedlink-stm32f405.elf";
export const PEAKS_PATH = "build/peaks-qemu.jsonl";
export const repoPath = (p: string): string => fileURLToPath(new URL(`../${p}`, import.meta.url));

export interface StaticFigures {
  text: number;
  data: number;
  bss: number;
  /** text + data */
  flash: number;
  /** data + bss */
  ram: number;
  /** the static Mbed TLS heap (heap_buf) */
  heap: number;
  /** the stack region (in the upper RAM: STM32_STACK_SIZE) */
  stack: number | undefined;
  /** the UART ring (in the upper RAM: WINDOW x MTU) */
  ring: number | undefined;
  /** the record of answers (in the upper RAM: WINDOW x MTU, ml_hal_record_ram) */
  record?: number | undefined;
  /** the upper RAM (STM32_UPPER_RAM_SIZE) */
  upper: number | undefined;
  /** RAM between the end of bss and the reset stack (_ebss.._sreset_stack) */
  free: number | undefined;
}

export interface PeakFigures {
  /** The largest heap peak of the sessions where no request was answered out_of_memory. */
  heapPeak: number;
  /** The largest heap peak of the sessions that ran out of heap (undefined: none did). */
  exhaustedPeak?: number | undefined;
  /** How many sessions ran out of heap. */
  exhaustedSessions?: number;
  stackPeak: number;
  sessions: number;
  /** ISO time of the latest session counted */
  last: string;
}

/** Measures the ELF with arm-none-eabi-size and arm-none-eabi-nm. */
export function measureStatic(elf = repoPath(IMAGE_PATH)): StaticFigures {
  // "   text    data     bss     dec     hex filename"
  const sizeLine = execFileSync(requireTool("arm-none-eabi-size"), ["-B", elf], { encoding: "utf8" }).trim().split("\n")[1] ?? "";
  const [text = Number.NaN, data = Number.NaN, bss = Number.NaN] = sizeLine.trim().split(/\s+/).map(Number);
  const sizes = new Map<string, number>();
  const addrs = new Map<string, number>();
  for (const line of execFileSync(requireTool("arm-none-eabi-nm"), ["-S", elf], { encoding: "utf8" }).split("\n")) {
    const f = line.trim().split(/\s+/);
    // "addr size type name" or "addr type name"
    const name = f.at(-1);
    if (!name || f.length < 3 || !f[0]) continue;
    addrs.set(name, Number.parseInt(f[0], 16));
    if (f.length === 4 && f[1]) sizes.set(name, Number.parseInt(f[1], 16));
  }
  const span = (lo: string, hi: string): number | undefined => {
    const a = addrs.get(lo);
    const b = addrs.get(hi);
    return a !== undefined && b !== undefined ? b - a : undefined;
  };
  return {
    text,
    data,
    bss,
    flash: text + data,
    ram: data + bss,
    heap: sizes.get("heap_buf") ?? 0,
    ...upperRam(),
    free: span("_ebss", "_sreset_stack"),
  };
}

/** The upper RAM's sizes: the stack and upper RAM from stm32f4.h, the ring and the record from sources.json's STM32 defines. */
function upperRam(): Pick<StaticFigures, "stack" | "ring" | "record" | "upper"> {
  const header = readFileSync(repoPath("firmware/src/hal/stm32f4/stm32f4.h"), "utf8");
  const constant = (name: string): number | undefined => {
    const m = new RegExp(`#define ${name}\\s+(0x[0-9a-fA-F]+|\\d+)u`).exec(header);
    return m?.[1] ? Number(m[1]) : undefined;
  };
  const sources = JSON.parse(readFileSync(repoPath("firmware/sources.json"), "utf8")) as {
    targets: { stm32f405: { defines: string[] } };
  };
  const define = (name: string): number =>
    Number(sources.targets.stm32f405.defines.find((d) => d.startsWith(`${name}=`))?.slice(name.length + 1) ?? Number.NaN);
  return {
    stack: constant("STM32_STACK_SIZE"),
    ring: define("ML_CFG_WINDOW") * define("ML_CFG_MTU"),
    record: define("ML_CFG_WINDOW") * define("ML_CFG_MTU"),
    upper: constant("STM32_UPPER_RAM_SIZE"),
  };
}

/**
 * The largest heap and stack peaks in the peaks file among sessions recorded
 * at or after `since` (the image's build time: older sessions ran another
 * image). Undefined when there are none.
 */
export function readPeaks(file = repoPath(PEAKS_PATH), since?: Date): PeakFigures | undefined {
  if (!existsSync(file)) return undefined;
  const peaks = readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { heapPeak: number; stackPeak: number; oomAnswers?: number; at: string })
    .filter((p) => !since || Date.parse(p.at) >= since.getTime());
  if (peaks.length === 0) return undefined;
  const exhausted = peaks.filter((p) => (p.oomAnswers ?? 0) > 0);
  const ordinary = peaks.filter((p) => (p.oomAnswers ?? 0) === 0);
  return {
    heapPeak: Math.max(0, ...ordinary.map((p) => p.heapPeak)),
    exhaustedPeak: exhausted.length > 0 ? Math.max(...exhausted.map((p) => p.heapPeak)) : undefined,
    exhaustedSessions: exhausted.length,
    stackPeak: Math.max(...peaks.map((p) => p.stackPeak)),
    sessions: peaks.length,
    last:
      peaks
        .map((p) => p.at)
        .sort()
        .at(-1) ?? "",
  };
}

/** The image's build time (its mtime). */
export const imageBuilt = (elf = repoPath(IMAGE_PATH)): Date => statSync(elf).mtime;

const n = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? "-" : v.toLocaleString("en-US"));
const pct = (v: number, of: number): string => `${((100 * v) / of).toFixed(1)} %`;

/** Where the static rows end and the peak rows begin. */
const PEAK_ROW = /^\| (peak heap in use|heap peak of out-of-memory tests|stack high-water) \|/;

/** The table's header and its static rows: a function of the ELF alone. */
export function staticRows(s: StaticFigures): string[] {
  return [
    "| | bytes | of the chip |",
    "|---|---:|---|",
    `| flash (text + data) | ${n(s.flash)} | ${pct(s.flash, FLASH_BYTES)} of 1 MiB (code may use 768 KiB: sectors 10-11 hold the key store) |`,
    `| &nbsp;&nbsp;text | ${n(s.text)} | |`,
    `| &nbsp;&nbsp;data | ${n(s.data)} | also in RAM |`,
    `| static RAM (data + bss, incl. the heap) | ${n(s.ram)} | ${pct(s.ram, RAM_BYTES)} of 128 KiB |`,
    `| &nbsp;&nbsp;static Mbed TLS heap | ${n(s.heap)} | ${pct(s.heap, RAM_BYTES)} |`,
    `| RAM left free (between bss and the reset stack) | ${n(s.free)} | ${s.free === undefined ? "" : pct(s.free, RAM_BYTES)} |`,
    `| upper RAM (CCM; under QEMU the 64 KiB it maps at 0x20020000) | ${n(s.upper)} | stack, UART ring, record of answers |`,
    `| &nbsp;&nbsp;stack region | ${n(s.stack)} | ${s.stack === undefined || !s.upper ? "" : pct(s.stack, s.upper)} of the upper RAM |`,
    `| &nbsp;&nbsp;UART ring (WINDOW x MTU) | ${n(s.ring)} | ${s.ring === undefined || !s.upper ? "" : pct(s.ring, s.upper)} of the upper RAM |`,
    `| &nbsp;&nbsp;record of answers (WINDOW x MTU) | ${n(s.record)} | ${s.record === undefined || !s.upper ? "" : pct(s.record, s.upper)} of the upper RAM |`,
  ];
}

/** The three rows measured by test runs. */
export function peakRows(s: StaticFigures, p: PeakFigures | undefined): string[] {
  if (!p) {
    const how = "not measured for this image: run `npm test` (its QEMU pass records them), then `npm run size`";
    return [
      `| peak heap in use | - | ${how} |`,
      "| heap peak of out-of-memory tests | - | likewise |",
      "| stack high-water | - | likewise |",
    ];
  }
  const ofHeap = (v: number): string => (s.heap ? `${pct(v, s.heap)} of the heap` : "");
  const runs = p.exhaustedSessions ?? 0;
  const exhausted =
    p.exhaustedPeak === undefined
      ? "| heap peak of out-of-memory tests | - | no session ran out of heap |"
      : `| heap peak of out-of-memory tests | ${n(p.exhaustedPeak)} | ${ofHeap(p.exhaustedPeak)}, in ${runs} session${runs === 1 ? "" : "s"} that filled it on purpose |`;
  return [
    `| peak heap in use | ${n(p.heapPeak)} | ${ofHeap(p.heapPeak)}${p.heapPeak > 0 ? " (sessions with no out_of_memory answer)" : ""} |`,
    exhausted,
    `| stack high-water | ${n(p.stackPeak)} | ${s.stack ? `${pct(p.stackPeak, s.stack)} of the stack` : ""} |`,
  ];
}

/** The line under the table; the only one that changes when nothing was measured anew. */
export const DATE_LINE = /^Measured .*$/m;

/** The whole body of README.md's "size" block. */
export function sizeBlock(s: StaticFigures, p: PeakFigures | undefined, date: Date): string {
  const day = date.toISOString().slice(0, 10);
  const peaks = p
    ? `; peaks: the largest of ${p.sessions} QEMU integration-test session${p.sessions === 1 ? "" : "s"} on this image (${PEAKS_PATH}, last ${p.last.slice(0, 10)})`
    : "";
  return [...staticRows(s), ...peakRows(s, p), "", `Measured ${day} by \`npm run size\` from \`${IMAGE_PATH}\`${peaks}.`, ""].join("\n");
}

/** The static rows (with the header) of a block as found in README.md. */
export function staticRowsOf(block: string): string[] {
  const table = block.split("\n").filter((l) => l.startsWith("|"));
  const firstPeak = table.findIndex((l) => PEAK_ROW.test(l));
  return firstPeak < 0 ? table : table.slice(0, firstPeak);
}

/** The peak rows of a block as found in README.md. */
export function peakRowsOf(block: string): string[] {
  return block.split("\n").filter((l) => PEAK_ROW.test(l));
}
