// `mbedlink sign` and `mbedlink verify`: a file hashed on the device (in
// chunks), its digest signed or checked with a slot's key. RSA signs PKCS#1
// v1.5, EC keys ECDSA with a DER signature: what `openssl dgst -verify` takes.
import { readFileSync, writeFileSync } from "node:fs";
import { type Device, type ECC, type RSA, SymmetricKey } from "../../src/index.js";
import { UsageError } from "../args.js";
import type { Context } from "../context.js";
import { digestFile, unreadable } from "../files.js";
import { CliError, describeError, EXIT_FAILURE, EXIT_OK } from "../output.js";
import { hashArg } from "./digest.js";
import { checkSlot, keyText, slotOption } from "./keys.js";

/** The slot's key as an RSA or ECC object (the caller closes it). */
async function signingKey(ctx: Context, dev: Device, slot: number): Promise<RSA | ECC> {
  checkSlot(ctx, dev, slot);
  const key = await dev.slots.load(slot);
  if (key instanceof SymmetricKey) {
    await key.close().catch(() => {});
    throw new CliError(`slot ${slot} holds a symmetric key; ${ctx.command.name} needs an RSA or EC key`);
  }
  return key;
}

function checkReadable(file: string): void {
  const problem = unreadable(file);
  if (problem) throw new CliError(problem);
}

/** The file's digest, computed on the device. */
async function fileDigest(ctx: Context, dev: Device, alg: string, file: string): Promise<Uint8Array> {
  await using h = dev.hash.new(alg);
  return await digestFile(dev, h, file, ctx.progress);
}

export async function sign(ctx: Context): Promise<number> {
  const slot = slotOption(ctx);
  const alg = hashArg(ctx, "hash");
  if (ctx.positionals.length !== 1) throw new UsageError("sign takes one FILE", "sign");
  const file = ctx.positionals[0] as string;
  const output = ctx.str("output") ?? (file === "-" ? undefined : `${file}.sig`);
  if (output === undefined) throw new UsageError("signing stdin needs -o SIG (- for stdout)", "sign");
  if (output === "-" && !ctx.out.json && ctx.out.stdoutIsTerminal) {
    throw new UsageError("refusing to write a binary signature to a terminal: use -o SIG or redirect stdout", "sign");
  }
  checkReadable(file);
  const dev = await ctx.device();
  await using key = await signingKey(ctx, dev, slot);
  const digest = await fileDigest(ctx, dev, alg, file);
  const what = key.name === "RSA" ? `RSA PKCS#1 v1.5 (${keyText(key.info)})` : `ECDSA ${key.info?.curve}`;
  const signature = await ctx.progress.during(`signing with slot ${slot}`, key.signDigest(digest, alg));
  try {
    if (output === "-") {
      if (!ctx.out.json) await ctx.out.write(signature);
    } else writeFileSync(output, signature);
  } catch (e) {
    throw new CliError(`cannot write the signature: ${describeError(e, "sign").message}`);
  }
  if (ctx.out.json) {
    ctx.out.document({
      file,
      signature: output,
      slot,
      hash: alg,
      scheme: key.name === "RSA" ? "pkcs1v15" : "ecdsa",
      key: keyText(key.info),
      size: signature.length,
      ...(output === "-" ? { hex: Buffer.from(signature).toString("hex") } : {}),
    });
  } else if (output !== "-") ctx.out.line(`${output}: ${what} signature with ${alg} of ${file} by slot ${slot}`);
  return EXIT_OK;
}

export async function verify(ctx: Context): Promise<number> {
  const slot = slotOption(ctx);
  const alg = hashArg(ctx, "hash");
  if (ctx.positionals.length !== 2) throw new UsageError("verify takes FILE and SIG", "verify");
  const [file, sigFile] = ctx.positionals as [string, string];
  checkReadable(file);
  checkReadable(sigFile);
  const signature = new Uint8Array(readFileSync(sigFile));
  const dev = await ctx.device();
  await using key = await signingKey(ctx, dev, slot);
  const digest = await fileDigest(ctx, dev, alg, file);
  const valid = await key.verifyDigest(digest, signature, alg);
  if (ctx.out.json) ctx.out.document({ file, signature: sigFile, slot, hash: alg, key: keyText(key.info), valid });
  else ctx.out.line(`${file}: ${valid ? "signature OK" : "signature INVALID"} (slot ${slot}, ${keyText(key.info)}, ${alg})`);
  return valid ? EXIT_OK : EXIT_FAILURE;
}
