// `mbedlink hash` and `mbedlink hmac`: sha256sum-style lines, each file
// streamed through a digest or HMAC context on the device.
import { readFileSync } from "node:fs";
import { type Device, fromHex, type Hash, type Hmac } from "../../src/index.js";
import { lookupHash } from "../../src/modules/hash.js";
import { UsageError } from "../args.js";
import type { Context } from "../context.js";
import { digestFile, sumLine, unreadable } from "../files.js";
import { describeError, EXIT_FAILURE, EXIT_OK } from "../output.js";

/** The protocol's name of a digest (sha3-256 -> sha3_256); an unknown name is a usage error, before any device is opened. */
export function hashArg(ctx: Context, option: string): string {
  const name = ctx.str(option) ?? "sha256";
  try {
    return lookupHash(name).name;
  } catch (e) {
    throw new UsageError(`--${option}: ${(e as Error).message}`, ctx.command.name);
  }
}

function hmacKey(ctx: Context): Uint8Array {
  const hexKey = ctx.str("key");
  const keyFile = ctx.str("key-file");
  if ((hexKey === undefined) === (keyFile === undefined))
    throw new UsageError("give the key with --key HEX or --key-file F (one of them)", "hmac");
  if (hexKey !== undefined) {
    const clean = hexKey.replace(/^0x/i, "");
    if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new UsageError("--key must be hex digits, two per byte", "hmac");
    return fromHex(clean);
  }
  try {
    return new Uint8Array(readFileSync(keyFile as string));
  } catch (e) {
    throw new UsageError(`--key-file: ${describeError(e, "hmac").message}`, "hmac");
  }
}

async function sums(ctx: Context, alg: string, make: (dev: Device) => Hash | Hmac): Promise<number> {
  const files = ctx.positionals.length > 0 ? ctx.positionals : ["-"];
  const problems = files.map(unreadable);
  const results: { file: string; digest?: string; error?: string }[] = [];
  let status = EXIT_OK;
  // Nothing to read at all: say so without starting a device.
  const dev = problems.every((p) => p !== undefined) ? undefined : await ctx.device();
  for (const [i, file] of files.entries()) {
    let problem = problems[i];
    if (problem === undefined && dev) {
      try {
        await using h = make(dev);
        const digest = Buffer.from(await digestFile(dev, h, file, ctx.progress)).toString("hex");
        results.push({ file, digest });
        ctx.out.line(sumLine(digest, file));
        continue;
      } catch (e) {
        const { message } = describeError(e, ctx.command.name);
        // A file that vanished or cannot be read: name it, go on with the others.
        if ((e as NodeJS.ErrnoException).code === undefined) throw e;
        problem = message.startsWith(file) ? message : `${file}: ${message}`;
      }
    }
    status = EXIT_FAILURE;
    results.push({ file, error: problem });
    ctx.out.warn(problem as string);
  }
  if (ctx.out.json) ctx.out.document({ algorithm: alg, files: results });
  return status;
}

export function hash(ctx: Context): Promise<number> {
  const alg = hashArg(ctx, "alg");
  return sums(ctx, alg, (dev) => dev.hash.new(alg));
}

export function hmac(ctx: Context): Promise<number> {
  const alg = hashArg(ctx, "alg");
  const key = hmacKey(ctx);
  return sums(ctx, `hmac-${alg}`, (dev) => dev.hmac.new(key, { digestmod: alg }));
}
