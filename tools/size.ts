// `npm run size [-- --no-readme]`: flash and RAM of the STM32F405 image as a
// table, written into README.md between <!-- size:begin --> and
// <!-- size:end --> (test/readme-figures.test.ts fails when the static rows
// there differ from the built image). The measuring is in tools/size-figures.ts.
// The heap and stack peaks are the largest that the integration suite's QEMU
// sessions recorded on this image (build/peaks-qemu.jsonl, written by
// test/integration/target.ts); run `npm test` first to have them.
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { writeReadmeBlock } from "./readme-block.js";
import {
  DATE_LINE,
  FLASH_BYTES,
  IMAGE_PATH,
  imageBuilt,
  measureStatic,
  peakRows,
  RAM_BYTES,
  readPeaks,
  repoPath,
  sizeBlock,
  staticRows,
} from "./size-figures.js";

const { values: argv } = parseArgs({ options: { "no-readme": { type: "boolean", default: false } } });

if (!existsSync(repoPath(IMAGE_PATH))) {
  console.error(`${IMAGE_PATH} is missing: run \`bash tools/build-stm32.sh\` (or npm test) first`);
  process.exit(1);
}

const s = measureStatic();
const peaks = readPeaks(undefined, imageBuilt());
const block = sizeBlock(s, peaks, new Date());

console.log(`STM32F405 image: ${IMAGE_PATH}`);
// the README's table, as plain columns
for (const row of [...staticRows(s), ...peakRows(s, peaks)].slice(2)) {
  const [k = "", v = "", note = ""] = row
    .slice(1, -1)
    .split("|")
    .map((c) => c.trim().replaceAll("&nbsp;", " "));
  console.log(`${k.padEnd(46)} ${v.padStart(9)}  ${note}`);
}
if (peaks) console.log(`(peaks: ${peaks.sessions} QEMU sessions since the image was built, last ${peaks.last})`);

if (!argv["no-readme"]) {
  const changed = writeReadmeBlock("size", block, DATE_LINE);
  console.log(changed ? "README.md: size figures updated" : "README.md: size figures already current");
}
const fits = s.flash <= FLASH_BYTES && s.ram <= RAM_BYTES;
console.log(fits ? "fits 1 MiB flash and 128 KiB RAM" : "DOES NOT FIT the STM32F405");
process.exitCode = fits ? 0 : 1;
