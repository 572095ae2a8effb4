#!/usr/bin/env node
// mbedlink: the command line of the SDK, for people at a terminal and for
// scripts. `mbedlink --help` lists the commands; README "Command line" has
// the details. Exit codes: 0 success, 1 failure, 2 usage error; errors are
// one line on stderr (with a stack trace under -v).
import { readFileSync } from "node:fs";
import { PROTOCOL_VERSION } from "../src/base/protocol.generated.js";
import { setDebug } from "../src/index.js";
import { parse } from "./args.js";
import { hash, hmac } from "./commands/digest.js";
import { info, ports } from "./commands/info.js";
import { keygen, pubkey, slots } from "./commands/keys.js";
import { manifest } from "./commands/manifest.js";
import { provision } from "./commands/provision.js";
import { random } from "./commands/random.js";
import { selftest } from "./commands/selftest.js";
import { sign, verify } from "./commands/sign.js";
import { Context } from "./context.js";
import { describeError, EXIT_OK, Output, oneLine } from "./output.js";
import { Progress } from "./progress.js";

const HANDLERS: Record<string, (ctx: Context) => Promise<number>> = {
  info,
  ports,
  hash,
  hmac,
  random,
  keygen,
  slots,
  sign,
  verify,
  pubkey,
  selftest,
  provision,
  manifest,
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return `mbedlink ${pkg.version} (protocol ${PROTOCOL_VERSION})`;
}

async function main(argv: readonly string[]): Promise<number> {
  const progress = new Progress();
  // Known before parsing succeeds, so a parse error's stack can be shown too.
  let verbose = argv.includes("-v") || argv.includes("--verbose");
  let command: string | undefined;
  const started = performance.now();
  try {
    const parsed = parse(argv);
    if (parsed.kind === "help") {
      process.stdout.write(`${parsed.text}\n`);
      return EXIT_OK;
    }
    if (parsed.kind === "version") {
      process.stdout.write(`${version()}\n`);
      return EXIT_OK;
    }
    command = parsed.command.name;
    verbose = parsed.common.verbose;
    if (verbose) setDebug(true);
    const out = new Output(parsed.common.json, progress);
    const ctx = new Context(parsed.command, parsed.values, parsed.positionals, parsed.common, out, progress);
    const handler = HANDLERS[command];
    if (!handler) throw new Error(`no handler for ${command}`);
    try {
      return await handler(ctx);
    } finally {
      await ctx.close().catch(() => {});
      if (verbose) process.stderr.write(`mbedlink: ${command} took ${(performance.now() - started).toFixed(0)} ms\n`);
    }
  } catch (e) {
    progress.clear();
    const { message, exitCode } = describeError(e, command);
    process.stderr.write(`mbedlink: ${oneLine(message)}\n`);
    if (verbose && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    return exitCode;
  }
}

// A reader that went away (`mbedlink random 1000000 | head -c 16`) is not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(EXIT_OK);
  throw e;
});

process.exit(await main(process.argv.slice(2)));
