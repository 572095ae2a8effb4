// Files through the device: reading a file or stdin in chunks, feeding a
// digest or HMAC context on the device with bounded memory, and printing a
// result the way sha256sum does.
import { createReadStream, statSync } from "node:fs";
import type { Device, Hash, Hmac } from "../src/index.js";
import { errnoText } from "./output.js";
import type { Progress } from "./progress.js";

const READ_CHUNK = 64 * 1024;

/** The file's bytes in chunks; "-" is stdin. */
export function readInput(file: string): AsyncIterable<Uint8Array> {
  return file === "-" ? process.stdin : createReadStream(file, { highWaterMark: READ_CHUNK });
}

/** Why `file` cannot be read (coreutils wording), or undefined when it looks readable. */
export function unreadable(file: string): string | undefined {
  if (file === "-") return undefined;
  try {
    if (statSync(file).isDirectory()) return `${file}: Is a directory`;
    return undefined;
  } catch (e) {
    return `${file}: ${errnoText(e as NodeJS.ErrnoException)}`;
  }
}

function size(n: number): string {
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(0)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Feeds `file` into a digest context on the device and returns the digest.
 * update() only queues; every `window × 4` frames' worth of data the loop
 * waits for an intermediate digest, so at most that much is held in memory
 * however large the file and however slow the link.
 */
export async function digestFile(dev: Device, ctx: Hash | Hmac, file: string, progress: Progress): Promise<Uint8Array> {
  const syncEvery = Math.max(READ_CHUNK, dev.chunkSize * dev.info.window * 4);
  let fed = 0;
  let sinceSync = 0;
  const work = (async () => {
    for await (const chunk of readInput(file)) {
      const bytes = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk as ArrayBuffer);
      ctx.update(bytes);
      fed += bytes.length;
      sinceSync += bytes.length;
      if (sinceSync >= syncEvery) {
        sinceSync = 0;
        await ctx.digest();
      }
    }
    return ctx.digest();
  })();
  const name = file === "-" ? "stdin" : file;
  return progress.during(() => `${ctx.name} ${name}: ${size(fed)}`, work);
}

/** A sha256sum output line: names with a backslash or newline are escaped and the line starts with "\". */
export function sumLine(hexDigest: string, file: string): string {
  if (!/[\\\n\r]/.test(file)) return `${hexDigest}  ${file}`;
  const escaped = file.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r");
  return `\\${hexDigest}  ${escaped}`;
}
