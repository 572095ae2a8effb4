// `mbedlink random N`: bytes from the device's CTR_DRBG, raw (never to a
// terminal), hex or base64, fetched and written a piece at a time.
import { intArg, UsageError } from "../args.js";
import type { Context } from "../context.js";
import { EXIT_OK } from "../output.js";

/** Bytes fetched per step: a multiple of 3, so base64 pieces join without padding in between. */
const PIECE = 3 * 256 * 1024;

export async function random(ctx: Context): Promise<number> {
  if (ctx.positionals.length !== 1) throw new UsageError("random takes one argument: the number of bytes", "random");
  const n = intArg(ctx.positionals[0], "N", 0, Number.MAX_SAFE_INTEGER, "random");
  const asHex = ctx.flag("hex");
  const asBase64 = ctx.flag("base64");
  if (asHex && asBase64) throw new UsageError("give --hex or --base64, not both", "random");
  const raw = !asHex && !asBase64;
  if (raw && !ctx.out.json && ctx.out.stdoutIsTerminal) {
    throw new UsageError("refusing to write raw random bytes to a terminal: redirect stdout, or use --hex or --base64", "random");
  }
  const dev = await ctx.device();
  const encoding = asBase64 ? "base64" : "hex";
  if (ctx.out.json) {
    const bytes = await ctx.progress.during(`random: ${n} bytes`, dev.random.randbytes(n));
    ctx.out.document({ length: n, [encoding]: Buffer.from(bytes).toString(encoding) });
    return EXIT_OK;
  }
  let done = 0;
  const work = (async () => {
    while (done < n) {
      const piece = Buffer.from(await dev.random.randbytes(Math.min(PIECE, n - done)));
      done += piece.length;
      await ctx.out.write(raw ? piece : piece.toString(encoding));
    }
    if (!raw) await ctx.out.write("\n");
  })();
  await ctx.progress.during(() => `random: ${done} of ${n} bytes`, work);
  return EXIT_OK;
}
