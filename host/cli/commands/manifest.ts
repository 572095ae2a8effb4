// `mbedlink manifest verify FILE --pubkey PEM`: checks every line of a
// provisioning manifest (host/cli/manifest.ts has the format): canonical
// JSON, signed by the station key the PEM names, chained to the line before.
// Exit 0 when every line is good, 1 naming the first bad line.
import { readFileSync } from "node:fs";
import { UsageError } from "../args.js";
import type { Context } from "../context.js";
import { checkManifest, keyId, publicKeyFromPem } from "../manifest.js";
import { CliError, describeError, EXIT_FAILURE, EXIT_OK } from "../output.js";

function readOrFail(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new CliError(`cannot read ${what}: ${describeError(e, "manifest").message}`);
  }
}

export async function manifest(ctx: Context): Promise<number> {
  const [sub, ...files] = ctx.positionals;
  if (sub !== "verify")
    throw new UsageError(`unknown manifest command ${JSON.stringify(sub ?? "")}: use verify FILE --pubkey PEM`, "manifest");
  if (files.length !== 1) throw new UsageError("manifest verify takes one FILE", "manifest");
  const file = files[0] as string;
  const pubFile = ctx.str("pubkey");
  if (pubFile === undefined) throw new UsageError("--pubkey PEM (the station's public key or certificate) is required", "manifest");
  let pub: ReturnType<typeof publicKeyFromPem>;
  try {
    pub = publicKeyFromPem(readOrFail(pubFile, "the public key"));
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`${pubFile}: not a PEM public key, certificate or private key (${(e as Error).message})`);
  }
  const result = checkManifest(readOrFail(file, "the manifest"), pub);
  const first = result.problems[0];
  if (ctx.out.json) {
    ctx.out.document({ file, kid: keyId(pub), lines: result.lines, valid: first === undefined, problems: result.problems });
    return first ? EXIT_FAILURE : EXIT_OK;
  }
  if (first) {
    const more = result.problems.length > 1 ? ` (${result.problems.length} bad lines in all)` : "";
    throw new CliError(`${file} line ${first.line}: ${first.reason}${more}`);
  }
  ctx.out.line(
    `${file}: ${result.lines} line${result.lines === 1 ? "" : "s"}, every one signed by key ${keyId(pub).slice(0, 16)}... and chained`,
  );
  return EXIT_OK;
}
