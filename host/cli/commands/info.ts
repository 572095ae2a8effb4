// `mbedlink info`: the device's hello. `mbedlink ports`: serial ports and
// which of them an mbedlink device answers on.
import { existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { open } from "../../src/index.js";
import type { Context } from "../context.js";
import { EXIT_OK } from "../output.js";

export async function info(ctx: Context): Promise<number> {
  const dev = await ctx.device();
  const i = dev.info;
  if (ctx.out.json) {
    ctx.out.document({ ...ctx.deviceJson, ...i, mbedtls: dev.version.version });
    return EXIT_OK;
  }
  const store = ctx.choice.kind === "target" ? ` (${ctx.choice.storeDir})` : "";
  const rows: [string, string][] = [
    ["device", `${ctx.deviceLabel}${ctx.choice.kind === "port" ? "" : ` [${ctx.choice.why}]`}`],
    ["board", i.board],
    ["firmware", i.firmwareVersion],
    ["Mbed TLS", i.mbedtlsVersion],
    ["protocol", String(i.protocolVersion)],
    ["entropy", i.entropy],
    ["MTU", `${i.mtu} bytes`],
    ["window", `${i.window} requests`],
    ["handles", String(i.maxHandles)],
    ["heap", `${i.heapSize} bytes (${i.heapUsed} used, peak ${i.heapPeak})`],
    ["key store", `${i.keyStore}, ${i.persistent ? "persistent" : "volatile"}${store}`],
    ["slots", String(i.slots)],
    ["digests", i.hashes.join(", ")],
    ["boot id", i.bootId],
  ];
  for (const [k, v] of rows) ctx.out.line(`${k.padEnd(10)} ${v}`);
  return EXIT_OK;
}

interface PortEntry {
  path: string;
  vendorId: string | undefined;
  productId: string | undefined;
  manufacturer: string | undefined;
  serialNumber: string | undefined;
}

/** Device names serialport's Linux lister keeps. */
const SERIAL_NAME = /^(tty(S|WCH|ACM|USB|AMA|MFD|O|XRUSB)|rfcomm)/;

function readSys(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** A ttyS line without a UART behind it (the 8250 driver's placeholders): sysfs type 0. */
function placeholder(name: string): boolean {
  return name.startsWith("ttyS") && readSys(`/sys/class/tty/${name}/type`) === "0";
}

/** The USB device above a tty in sysfs: vendor and product ids, manufacturer, serial. */
function usbOf(name: string): Omit<PortEntry, "path"> {
  const none = { vendorId: undefined, productId: undefined, manufacturer: undefined, serialNumber: undefined };
  let dir: string;
  try {
    dir = realpathSync(`/sys/class/tty/${name}/device`);
  } catch {
    return none;
  }
  for (let up = 0; up < 4 && dir !== "/"; up++, dir = dirname(dir)) {
    const vendorId = readSys(join(dir, "idVendor"));
    if (vendorId) {
      return {
        vendorId,
        productId: readSys(join(dir, "idProduct")),
        manufacturer: readSys(join(dir, "manufacturer")),
        serialNumber: readSys(join(dir, "serial")),
      };
    }
  }
  return none;
}

/** usbOf() for a device path (a /dev/serial/by-id link too), `none` when it is no tty in sysfs. */
function usbOfPath(path: string, none: Omit<PortEntry, "path">): Omit<PortEntry, "path"> {
  try {
    return usbOf(basename(realpathSync(path)));
  } catch {
    return none;
  }
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? "").split(":").some((d) => d !== "" && existsSync(join(d, cmd)));
}

/**
 * serialport's SerialPort.list() (it runs `udevadm info -e`); where udevadm is
 * missing (containers), the same names from /sys/class/tty.
 */
async function listPorts(): Promise<PortEntry[]> {
  if (onPath("udevadm")) {
    try {
      const { SerialPort } = await import("serialport");
      const ports = await SerialPort.list();
      return ports
        .filter((p) => !placeholder(basename(p.path)))
        .map((p) => ({
          path: p.path,
          vendorId: p.vendorId,
          productId: p.productId,
          manufacturer: p.manufacturer,
          serialNumber: p.serialNumber,
        }));
    } catch {
      // fall through to sysfs
    }
  }
  let names: string[];
  try {
    names = readdirSync("/sys/class/tty");
  } catch {
    return [];
  }
  return names
    .filter((n) => SERIAL_NAME.test(n) && existsSync(`/sys/class/tty/${n}/device`) && !placeholder(n))
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }))
    .map((n) => ({ path: `/dev/${n}`, ...usbOf(n) }));
}

interface Probe {
  answers: boolean;
  board?: string;
  firmwareVersion?: string;
  error?: string;
}

async function probe(path: string, timeoutMs: number): Promise<Probe> {
  try {
    const dev = await open(path, { timeoutMs, retries: 0, reconnect: false });
    const { board, firmwareVersion } = dev.info;
    await dev.close().catch(() => {});
    return { answers: true, board, firmwareVersion };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const why = /no response|timed out|within/i.test(msg) ? "no answer" : msg.replace(/^cannot open \S+: (Error:? )?/, "");
    return { answers: false, error: why };
  }
}

export async function ports(ctx: Context): Promise<number> {
  const none = { vendorId: undefined, productId: undefined, manufacturer: undefined, serialNumber: undefined };
  const named = [...new Set(ctx.positionals)];
  const listed: PortEntry[] = named.length > 0 ? named.map((path) => ({ path, ...usbOfPath(path, none) })) : await listPorts();
  const timeoutMs = ctx.common.timeoutMs ?? 1000;
  const probing = ctx.flag("no-probe") ? undefined : Promise.all(listed.map((p) => probe(p.path, timeoutMs)));
  const probes = probing ? await ctx.progress.during(`probing ${listed.length} ports`, probing) : [];
  const rows = listed.map((p, i) => ({ ...p, ...probes[i] }));
  if (ctx.out.json) {
    ctx.out.document(rows);
    return EXIT_OK;
  }
  if (rows.length === 0) ctx.out.line("no serial ports found");
  const width = Math.max(4, ...rows.map((r) => r.path.length));
  for (const r of rows) {
    const usb = r.vendorId ? `${r.vendorId}:${r.productId ?? "????"}` : "-";
    const what = r.answers === undefined ? "" : r.answers ? `mbedlink ${r.board} firmware ${r.firmwareVersion}` : `- (${r.error})`;
    const maker = r.manufacturer ? `  ${r.manufacturer}` : "";
    ctx.out.line(`${r.path.padEnd(width)}  ${usb.padEnd(9)}  ${what}${maker}`.trimEnd());
  }
  return EXIT_OK;
}
