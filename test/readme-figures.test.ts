// README.md's generated blocks: the size block's static rows must be what the
// built STM32 image measures (`npm run size` writes them), and the bench
// block's rendering and replacement behave (`npm run bench` writes it after a
// full native run, which is too long for a test).
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type BenchResults, benchBlock, summaryLines } from "../tools/bench-readme.js";
import { README, readBlock, replaceBlock } from "../tools/readme-block.js";
import { IMAGE_PATH, measureStatic, peakRowsOf, repoPath, sizeBlock, staticRows, staticRowsOf } from "../tools/size-figures.js";

const readme = readFileSync(README, "utf8");

describe("README size block", () => {
  const block = readBlock(readme, "size");

  it("is there, with the static rows, the three peak rows and the date line", () => {
    expect(block, "README.md has no <!-- size:begin --> ... <!-- size:end --> block").toBeDefined();
    const b = block ?? "";
    expect(staticRowsOf(b).length).toBeGreaterThan(2);
    expect(peakRowsOf(b)).toHaveLength(3);
    expect(b).toMatch(/^Measured \d{4}-\d{2}-\d{2} by `npm run size` from `build\/stm32\/mbedlink-stm32f405\.elf`/m);
  });

  // The STM32 image and arm-none-eabi-size come with the bootstrap's optional
  // STM32 packages; without them this fails (naming what to install), never skips.
  it("static rows are what the built image measures (else: run npm run size)", () => {
    expect(existsSync(repoPath(IMAGE_PATH)), `${IMAGE_PATH} is missing: run bash tools/bootstrap.sh`).toBe(true);
    const measured = staticRows(measureStatic());
    expect(staticRowsOf(block ?? ""), "README.md's size figures are stale: run `npm run size`").toEqual(measured);
  });

  it("a block without peaks says how to get them", () => {
    const s = { text: 1000, data: 24, bss: 4000, flash: 1024, ram: 4024, heap: 2048, stack: 1024, ring: 512, upper: 4096, free: 100 };
    const b = sizeBlock(s, undefined, new Date("2026-01-02T03:04:05Z"));
    expect(staticRowsOf(b)).toEqual(staticRows(s));
    expect(peakRowsOf(b)[0]).toContain("run `npm test`");
    expect(b).toContain("Measured 2026-01-02 by `npm run size`");
    const withPeaks = sizeBlock(s, { heapPeak: 1024, stackPeak: 256, sessions: 3, last: "2026-01-02T00:00:00Z" }, new Date());
    expect(peakRowsOf(withPeaks)).toEqual([
      "| peak heap in use | 1,024 | 50.0 % of the heap (sessions with no out_of_memory answer) |",
      "| heap peak of out-of-memory tests | - | no session ran out of heap |",
      "| stack high-water | 256 | 25.0 % of the stack |",
    ]);
    const exhausted = sizeBlock(
      s,
      { heapPeak: 1024, exhaustedPeak: 2000, exhaustedSessions: 2, stackPeak: 256, sessions: 3, last: "2026-01-02T00:00:00Z" },
      new Date(),
    );
    expect(peakRowsOf(exhausted)[1]).toBe(
      "| heap peak of out-of-memory tests | 2,000 | 97.7 % of the heap, in 2 sessions that filled it on purpose |",
    );
    expect(withPeaks).toContain("the largest of 3 QEMU integration-test sessions on this image");
  });
});

describe("README bench block", () => {
  const sample = JSON.parse(readFileSync(repoPath("test/fixtures/bench-results-2026-11-27.json"), "utf8")) as BenchResults;

  it("renders the figures and targets of a results file", () => {
    const b = benchBlock(sample);
    expect(b).toContain("A native run of 2026-11-27 on a 2-core machine (3 passes, medians):");
    expect(summaryLines(sample)).toEqual(
      expect.arrayContaining([
        "sha256(32 B)   sequential p50 70 µs (p99 282 µs); pipelined 50,200 ops/s (window 32)",
        "HMAC-SHA256    pipelined 46,500 ops/s            Mbed TLS 693,000/s, Node 304,000/s",
        "line rate      115200: 99.2 %, 921600: 99.1 %, 3 Mbaud: 99.1 % of baud/10 as sha256 payload",
        "firmware       2971 instructions per request besides Mbed TLS (sha256 of 32 B: 7169 in all)",
      ]),
    );
    expect(b).toContain("| 2. pipelined ≥ 5 × sequential rate | 2.9 | 4.8 | missed by 4% |");
    expect(b).toContain("| 3. streaming sha256 ≥ 60% of min(raw PTY, raw Mbed TLS) | 18% | 28% | missed |");
    expect(b).toContain("| 5. firmware overhead ≤ 3,000 instructions per request | 5215 | 2971 | met |");
  });

  it("marks what a run did not measure", () => {
    const partial: BenchResults = {
      ...sample,
      quick: true,
      repeat: 1,
      lineRate: [],
      instructions: undefined,
      targets: sample.targets.slice(0, 3),
    };
    const b = benchBlock(partial);
    expect(b).toContain("(1 pass, --quick sizes)");
    expect(b).not.toContain("line rate ");
    expect(b).toMatch(/\| 4\. .* \| 99\.2% \| n\/a \| n\/a \|/);
  });

  it("replaces only the text between its markers", () => {
    const doc = "# t\n\nbefore\n<!-- bench:begin: note -->\nold\n<!-- bench:end -->\nafter $1 $&\n";
    const out = replaceBlock(doc, "bench", "new $& text");
    expect(out).toBe("# t\n\nbefore\n<!-- bench:begin: note -->\nnew $& text\n<!-- bench:end -->\nafter $1 $&\n");
    expect(replaceBlock(out, "bench", "new $& text")).toBe(out);
    expect(readBlock(out, "size")).toBeUndefined();
    expect(() => replaceBlock(doc, "size", "x")).toThrow(/no <!-- size:begin -->/);
    expect(() => readBlock(`${doc}${doc}`, "bench")).toThrow(/2 "bench" blocks/);
  });

  it("README.md has the block", () => {
    expect(readBlock(readme, "bench")).toMatch(/^A native run of \d{4}-\d{2}-\d{2}/);
  });
});
