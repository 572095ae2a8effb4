// `mbedlink keygen`, `slots list|delete`, `pubkey`: keys in the device's
// persistent slots. Private parts never come back from the device here:
// keygen prints the public key, list shows descriptions.
import { writeFileSync } from "node:fs";
import { type Device, type ECC, type PkInfo, pemEncode, type RSA, type SlotInfo, SlotInUseError, utf8 } from "../../src/index.js";
import { lookupCurve } from "../../src/modules/curves.js";
import { intArg, UsageError } from "../args.js";
import type { Context } from "../context.js";
import { CliError, EXIT_OK } from "../output.js";

/** --slot N: a number first, checked against the device's slot count once it is open. */
export function slotOption(ctx: Context): number {
  return intArg(ctx.str("slot"), "--slot", 0, 0xffff, ctx.command.name);
}

export function checkSlot(ctx: Context, dev: Device, slot: number): void {
  const count = dev.info.slots;
  if (count === 0) throw new CliError(`${ctx.deviceLabel} has no key store (0 slots)`);
  if (slot >= count)
    throw new UsageError(`slot ${slot} is out of range: this device has ${count} slots (0..${count - 1})`, ctx.command.name);
}

/** "EC secp256r1", "RSA-2048". */
export function keyText(info: PkInfo | undefined): string {
  if (!info) return "symmetric";
  return info.type === "ec" ? `EC ${info.curve}` : `RSA-${info.bits}`;
}

/** A slot's entry, or a CliError naming the empty slot. */
export async function slotEntry(dev: Device, slot: number): Promise<SlotInfo> {
  const entry = (await dev.slots.list()).find((e) => e.slot === slot);
  if (!entry) throw new CliError(`slot ${slot} is empty`);
  return entry;
}

function slotJson(e: SlotInfo): Record<string, unknown> {
  return {
    slot: e.slot,
    label: e.label,
    kind: e.kind,
    type: e.info?.type,
    bits: e.info?.bits,
    curve: e.info?.curve,
    exportable: e.exportable,
    size: e.size,
    publicKey: e.publicKey ? pemEncode("PUBLIC KEY", e.publicKey) : undefined,
  };
}

export async function keygen(ctx: Context): Promise<number> {
  const type = ctx.str("type");
  if (type !== "ec" && type !== "rsa") throw new UsageError("--type must be ec or rsa", "keygen");
  const slot = slotOption(ctx);
  const curveArg = ctx.str("curve");
  const bitsArg = ctx.str("bits");
  if (type === "rsa" && curveArg !== undefined) throw new UsageError("--curve is for EC keys", "keygen");
  if (type === "ec" && bitsArg !== undefined) throw new UsageError("--bits is for RSA keys (an EC key's size is its curve's)", "keygen");
  let curve = "secp256r1";
  if (curveArg !== undefined) {
    try {
      curve = lookupCurve(curveArg).name;
    } catch (e) {
      throw new UsageError(`--curve: ${(e as Error).message}`, "keygen");
    }
  }
  const bits = bitsArg === undefined ? 2048 : intArg(bitsArg, "--bits", 1024, 4096, "keygen");
  const label = ctx.str("label") ?? "";
  if (utf8(label).length > 32) throw new UsageError(`--label must be at most 32 bytes of UTF-8, got ${utf8(label).length}`, "keygen");
  const exportable = !ctx.flag("non-exportable");
  const force = ctx.flag("force");

  const dev = await ctx.device();
  checkSlot(ctx, dev, slot);
  if (!force) {
    // Refuse before a generation that may take minutes, not after it.
    const taken = (await dev.slots.list()).find((e) => e.slot === slot);
    if (taken) {
      const what = `${keyText(taken.info)}${taken.label ? ` "${taken.label}"` : ""}`;
      throw new CliError(`slot ${slot} is in use (${what}); delete it first or use --force`);
    }
  }
  const what = type === "ec" ? `EC ${curve}` : `RSA-${bits}`;
  const key: RSA | ECC = type === "ec" ? dev.pk.ECC(curve) : dev.pk.RSA();
  try {
    const generating = type === "ec" ? (key as ECC).generate({ exportable }) : (key as RSA).generate(bits, 65537, { exportable });
    await ctx.progress.during(`generating an ${what} key on the device`, generating);
    await dev.slots.store(key, slot, { label, overwrite: force });
  } catch (e) {
    if (e instanceof SlotInUseError) throw new CliError(`slot ${slot} is in use; delete it first or use --force`);
    throw e;
  } finally {
    await key.close().catch(() => {});
  }
  const entry = await slotEntry(dev, slot);
  if (ctx.out.json) ctx.out.document({ ...ctx.deviceJson, ...slotJson(entry) });
  else
    ctx.out.line(
      `slot ${slot}: ${what} key generated on the device${exportable ? "" : ", non-exportable"}${label ? `, label "${label}"` : ""}`,
    );
  return EXIT_OK;
}

async function slotsList(ctx: Context, dev: Device): Promise<number> {
  const entries = await dev.slots.list();
  if (ctx.out.json) {
    ctx.out.document({
      ...ctx.deviceJson,
      slots: dev.info.slots,
      keyStore: dev.info.keyStore,
      persistent: dev.info.persistent,
      keys: entries.map(slotJson),
    });
    return EXIT_OK;
  }
  const rows = entries.map((e) => [
    String(e.slot),
    e.kind,
    e.info ? keyText(e.info) : `${e.size} bytes`,
    e.exportable ? "yes" : "no",
    e.label,
  ]);
  const table = [["slot", "kind", "key", "exportable", "label"], ...rows];
  const widths = [0, 1, 2, 3].map((c) => Math.max(...table.map((r) => (r[c] as string).length)));
  for (const r of table)
    ctx.out.line(
      r
        .map((cell, c) => (c < 4 ? cell.padEnd(widths[c] as number) : cell))
        .join("  ")
        .trimEnd(),
    );
  ctx.out.line(
    `${entries.length} of ${dev.info.slots} slots used (${dev.info.keyStore} store, ${dev.info.persistent ? "persistent" : "volatile"})`,
  );
  return EXIT_OK;
}

export async function slots(ctx: Context): Promise<number> {
  const [sub, ...args] = ctx.positionals;
  if (sub === "list" || sub === undefined) {
    if (args.length > 0) throw new UsageError("slots list takes no arguments", "slots");
    return slotsList(ctx, await ctx.device());
  }
  if (sub !== "delete") throw new UsageError(`unknown slots command ${JSON.stringify(sub)}: use list or delete N`, "slots");
  if (args.length !== 1) throw new UsageError("slots delete takes one slot number", "slots");
  const slot = intArg(args[0], "the slot number", 0, 0xffff, "slots");
  const dev = await ctx.device();
  checkSlot(ctx, dev, slot);
  await dev.slots.delete(slot);
  if (ctx.out.json) ctx.out.document({ ...ctx.deviceJson, slot, deleted: true });
  else ctx.out.line(`slot ${slot} deleted`);
  return EXIT_OK;
}

export async function pubkey(ctx: Context): Promise<number> {
  const slot = slotOption(ctx);
  if (ctx.flag("pem") && ctx.flag("der")) throw new UsageError("give --pem or --der, not both", "pubkey");
  const der = ctx.flag("der");
  const output = ctx.str("output");
  if (der && !ctx.out.json && (output === undefined || output === "-") && ctx.out.stdoutIsTerminal) {
    throw new UsageError("refusing to write DER bytes to a terminal: use -o F, redirect stdout, or --pem", "pubkey");
  }
  const dev = await ctx.device();
  checkSlot(ctx, dev, slot);
  const entry = await slotEntry(dev, slot);
  if (!entry.publicKey) throw new CliError(`slot ${slot} holds a symmetric key, which has no public key`);
  const pem = pemEncode("PUBLIC KEY", entry.publicKey);
  const data = der ? entry.publicKey : pem;
  if (output !== undefined && output !== "-") writeFileSync(output, data);
  if (ctx.out.json) ctx.out.document({ ...ctx.deviceJson, ...slotJson(entry), ...(output ? { file: output } : {}) });
  else if (output === undefined || output === "-") await ctx.out.write(data);
  return EXIT_OK;
}
