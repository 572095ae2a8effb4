// A fake mbedlink device for SDK tests until the native firmware exists: it
// speaks protocol v1 over a PTY master inherited as fd 3 (see openpty.py),
// computes digests with node:crypto, sends a boot event at start and on
// SIGUSR1 (new boot id, handles lost), and exits on SIGTERM.
// Run: python3 openpty.py node --import tsx fake-device.ts   (not the tsx CLI: it takes fd 3)
// Env: FAKE_MTU (1024), FAKE_WINDOW (4), FAKE_MAX_HANDLES (16), FAKE_NO_SHA3=1, FAKE_MUTE_OPS="1,18" (never answer those ops).
import type { Hash as NodeHash } from "node:crypto";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as tty from "node:tty";
import { decodeBody, encodeBody } from "../codec.js";
import { DropReason, EventId, HASH_ALGS, Op, PROTOCOL_VERSION, Status } from "../protocol.generated.js";
import { SlipDecoder, slipEncode } from "../slip.js";

const FD = 3;
const mtu = Number(process.env.FAKE_MTU ?? 1024);
const window = Number(process.env.FAKE_WINDOW ?? 4);
const maxHandles = Number(process.env.FAKE_MAX_HANDLES ?? 16);
const muted = new Set((process.env.FAKE_MUTE_OPS ?? "").split(",").filter(Boolean).map(Number));
const algs = HASH_ALGS.filter((a) => !(process.env.FAKE_NO_SHA3 && a.name.startsWith("sha3")));
const nodeName = (name: string) => name.replace("_", "-");

let bootId = randomBytes(8);
const handles = new Map<number, NodeHash>();
const st = { rxFrames: 0, rxDropped: 0, txFrames: 0, byReason: new Map<number, number>() };

// ---- non-blocking writer (a blocking write can deadlock against the host)
const wq: Buffer[] = [];
let flushing = false;
function flush(): void {
  flushing = false;
  while (wq.length) {
    const b = wq[0] as Buffer;
    let n = 0;
    try {
      n = fs.writeSync(FD, b);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") process.exit(4);
    }
    if (n === b.length) {
      wq.shift();
      continue;
    }
    wq[0] = b.subarray(n);
    flushing = true;
    setTimeout(flush, 1);
    return;
  }
}
function send(msg: unknown[]): void {
  st.txFrames++;
  wq.push(Buffer.from(slipEncode(encodeBody(msg))));
  if (!flushing) flush();
}

function drop(reason: number): void {
  st.rxDropped++;
  st.byReason.set(reason, (st.byReason.get(reason) ?? 0) + 1);
  send([null, EventId.frameDropped, reason, st.rxDropped]);
}

class Fail {
  constructor(
    readonly status: number,
    readonly msg: string,
  ) {}
}
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const isUint = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;

function handle(v: unknown, pos: number): number {
  if (!isUint(v)) throw new Fail(Status.badRequest, `arg ${pos}: expected an unsigned integer`);
  if (v === 0 || v > 0xffffffff) throw new Fail(Status.badArgument, `arg ${pos}: handle must be 1..4294967295`);
  return v;
}
function live(h: number): NodeHash {
  const ctx = handles.get(h);
  if (!ctx) throw new Fail(Status.badHandle, `handle ${h} is not live`);
  return ctx;
}
function create(h: number, ctx: NodeHash): null {
  if (handles.has(h)) throw new Fail(Status.handleInUse, `handle ${h} is already live`);
  if (handles.size >= maxHandles) throw new Fail(Status.tooManyHandles, "handle table is full");
  handles.set(h, ctx);
  return null;
}
function alg(v: unknown, pos: number) {
  if (!isUint(v)) throw new Fail(Status.badRequest, `arg ${pos}: expected an unsigned integer`);
  const a = algs.find((x) => x.id === v);
  if (!a) throw new Fail(Status.unsupportedAlgorithm, `hash algorithm ${v} is not supported`);
  return a;
}
function arity(args: unknown[], n: number, op: number): void {
  if (args.length !== n) throw new Fail(Status.badRequest, `op ${op} takes ${n} args, got ${args.length}`);
}

function serve(op: number, args: unknown[]): unknown {
  switch (op) {
    case Op.hello:
      return {
        proto: PROTOCOL_VERSION,
        fw: "0.0.0-fake",
        mbedtls: "3.6.6",
        board: "fake-node",
        mtu,
        window,
        max_handles: maxHandles,
        heap_size: 65536,
        heap_used: 0,
        heap_peak: 0,
        boot_id: bootId,
        entropy: "fake: node:crypto (test double, not a device)",
        hashes: algs.map((a) => a.id),
      };
    case Op.echo:
      arity(args, 1, op);
      if (!isBytes(args[0])) throw new Fail(Status.badRequest, "arg 1: expected a byte string");
      return args[0];
    case Op.stats:
      return {
        heap_size: 65536,
        heap_used: 0,
        heap_peak: 0,
        heap_blocks: 0,
        handles_used: handles.size,
        max_handles: maxHandles,
        rx_frames: st.rxFrames,
        rx_dropped: st.rxDropped,
        rx_bad_crc: st.byReason.get(DropReason.badCrc) ?? 0,
        rx_bad_escape: st.byReason.get(DropReason.badEscape) ?? 0,
        rx_oversize: st.byReason.get(DropReason.oversize) ?? 0,
        rx_too_short: st.byReason.get(DropReason.tooShort) ?? 0,
        rx_bad_message: st.byReason.get(DropReason.badMessage) ?? 0,
        tx_frames: st.txFrames,
        stack_peak: 0,
      };
    case Op.free: {
      arity(args, 1, op);
      const h = handle(args[0], 1);
      live(h);
      handles.delete(h);
      return null;
    }
    case Op.hashNew: {
      arity(args, 2, op);
      const h = handle(args[0], 1);
      return create(h, createHash(nodeName(alg(args[1], 2).name)));
    }
    case Op.hashUpdate: {
      arity(args, 2, op);
      const ctx = live(handle(args[0], 1));
      if (!isBytes(args[1])) throw new Fail(Status.badRequest, "arg 2: expected a byte string");
      ctx.update(args[1]);
      return null;
    }
    case Op.hashDigest:
      arity(args, 1, op);
      return live(handle(args[0], 1)).copy().digest();
    case Op.hashCopy: {
      arity(args, 2, op);
      const src = live(handle(args[0], 1));
      return create(handle(args[1], 2), src.copy());
    }
    case Op.hashOneshot: {
      arity(args, 2, op);
      const a = alg(args[0], 1);
      if (!isBytes(args[1])) throw new Fail(Status.badRequest, "arg 2: expected a byte string");
      return createHash(nodeName(a.name)).update(args[1]).digest();
    }
    default:
      throw new Fail(Status.unknownOp, `unknown op ${op}`);
  }
}

const decoder = new SlipDecoder(mtu, {
  frame(body) {
    const r = decodeBody(body);
    if (!r.ok)
      return drop(r.reason === "bad_crc" ? DropReason.badCrc : r.reason === "too_short" ? DropReason.tooShort : DropReason.badMessage);
    const m = r.message;
    if (!Array.isArray(m) || !isUint(m[0])) return drop(DropReason.badMessage);
    st.rxFrames++;
    const [id, op, ...args] = m as [number, unknown, ...unknown[]];
    if (!isUint(op)) return send([id, Status.badRequest, 0, "op must be an unsigned integer"]);
    if (muted.has(op)) return;
    try {
      send([id, 0, serve(op, args) ?? null]);
    } catch (e) {
      if (e instanceof Fail) send([id, e.status, 0, e.msg]);
      else send([id, Status.internalError, 0, String(e)]);
    }
  },
  drop(reason) {
    drop(reason === "bad_escape" ? DropReason.badEscape : DropReason.oversize);
  },
});

const rs = new tty.ReadStream(FD);
rs.on("data", (chunk: Buffer) => decoder.push(chunk));
rs.on("error", () => process.exit(0));

function boot(): void {
  send([null, EventId.boot, bootId]);
}
process.on("SIGUSR1", () => {
  bootId = randomBytes(8);
  handles.clear();
  boot();
});
process.on("SIGTERM", () => process.exit(0));
boot();
