// Line-rate mode: the native device behind the fault relay's rate cap
// (hil/fault-relay.ts, `baud`: baud/10 bytes per second each way, 8N1).
// Streams sha256 hash_update requests of the device's chunk size at the
// window from hello and reports the steady-state payload rate (from the
// first to the last answered update, so the pipeline filling up is not
// counted) as a fraction of the line's payload capacity.
import * as crypto from "node:crypto";
import { type Relay, startRelay } from "../hil/fault-relay.js";
import { Op } from "../host/src/base/protocol.generated.js";
import { type Device, open } from "../host/src/index.js";
import { startNative } from "../host/src/targets/native.js";

export interface LineRateFigure {
  baud: number;
  workload: string;
  payloadBytesPerSecond: number;
  /** payload bytes/s over the line's payload capacity (baud / 10 bytes/s, 8N1). */
  fraction: number;
  /** Bytes on the line (host → device) per payload byte. */
  wireOverhead: number;
}

export const BAUDS = [115200, 921600, 3_000_000] as const;

/** Runs `fn` on a fresh native device behind the fault relay's `baud` cap (no faults), the relay passed too. */
export async function withCappedDevice<T>(baud: number, fn: (dev: Device, relay: Relay) => Promise<T>): Promise<T> {
  const native = await startNative();
  try {
    const relay = await startRelay({ devicePath: native.path, seed: 1, baud });
    try {
      const dev = await open(relay.hostPath, { timeoutMs: 120_000 });
      try {
        return await fn(dev, relay);
      } finally {
        await dev.close();
      }
    } finally {
      await relay.stop();
    }
  } finally {
    await native.stop();
  }
}

function streamAt(baud: number, seconds: number): Promise<LineRateFigure> {
  return withCappedDevice(baud, async (dev, relay) => {
    const chunk = dev.chunkSize;
    const frames = Math.max(dev.info.window + 4, Math.ceil(((baud / 10) * seconds) / chunk));
    const data = crypto.randomBytes(chunk);
    const handle = dev._nextHandle();
    await dev.rpc.call(Op.hashNew, [handle, 4]);
    const before = relay.stats().up.bytesOut;
    const done: number[] = [];
    await Promise.all(
      Array.from({ length: frames }, (_, i) =>
        dev.rpc.call(Op.hashUpdate, [handle, data]).then(() => {
          done[i] = performance.now();
        }),
      ),
    );
    const wire = relay.stats().up.bytesOut - before;
    const digest = await dev.rpc.call(Op.hashDigest, [handle]);
    await dev.rpc.call(Op.free, [handle]);
    const ref = crypto.createHash("sha256");
    for (let i = 0; i < frames; i++) ref.update(data);
    if (!(digest instanceof Uint8Array) || Buffer.compare(Buffer.from(digest), ref.digest()) !== 0)
      throw new Error(`bench: sha256 through the ${baud}-baud relay does not match Node crypto`);
    const first = done[0] ?? 0;
    const last = done[frames - 1] ?? 0;
    const rate = ((frames - 1) * chunk) / ((last - first) / 1000);
    return {
      baud,
      workload: `streaming sha256, ${chunk} B updates`,
      payloadBytesPerSecond: rate,
      fraction: rate / (baud / 10),
      wireOverhead: wire / (frames * chunk),
    };
  });
}

export async function lineRate(opts: { quick: boolean; log: (m: string) => void }): Promise<LineRateFigure[]> {
  const out: LineRateFigure[] = [];
  for (const baud of BAUDS) {
    opts.log(`  ${baud} baud`);
    out.push(await streamAt(baud, opts.quick ? 4 : 10));
  }
  return out;
}
