// The fault relay does what it says: fault rates measured on its output (not
// on its own counters) are within tolerance of what was asked, the same seed
// replays the same faults, the rate cap holds the line to baud/10 bytes/s,
// a cut loses what was on the line, and a frame tap drops exactly the frame
// it is asked for. The last tests run the native firmware behind the relay.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { Op } from "../host/src/base/protocol.generated.js";
import { open, TimeoutError, utf8 } from "../host/src/index.js";
import { encodeBody } from "../host/src/link/codec.js";
import { SlipDecoder, slipEncode } from "../host/src/link/slip.js";
import { type NativeTarget, startNative } from "../host/src/targets/native.js";
import { FaultLane, type FaultSpec, FrameTap, prng, type Relay, startRelay } from "./fault-relay.js";

/** Pushes `input` through a lane and resolves with what came out once the lane is idle. */
async function through(
  spec: FaultSpec,
  input: Uint8Array,
  seed = 1,
  baud?: number,
): Promise<{ out: Uint8Array; ms: number; lane: FaultLane }> {
  const parts: Uint8Array[] = [];
  const lane = new FaultLane(seed, spec, (b) => parts.push(Uint8Array.from(b)), baud);
  const t0 = performance.now();
  let lastAt = t0;
  const expectOut = (spec.drop ?? 0) === 0 && (spec.dup ?? 0) === 0 ? input.length : -1;
  lane.push(input);
  // Wait until the lane has emitted everything it will (stats say so).
  for (;;) {
    const st = lane.stats;
    const done = st.bytesOut + st.cutDropped === st.bytesIn - st.dropped + st.duplicated;
    if (done && (expectOut < 0 || st.bytesOut + st.cutDropped === expectOut)) break;
    await new Promise((r) => setTimeout(r, 1));
    lastAt = performance.now();
  }
  lane.stop();
  const out = Buffer.concat(parts);
  return { out, ms: lastAt - t0, lane };
}

const N = 1_000_000;
/** |observed - n p| within 5 standard deviations of a binomial. */
function withinBinomial(observed: number, n: number, p: number): void {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(observed - n * p), `observed ${observed}, expected ${n * p} ± ${5 * sd}`).toBeLessThan(5 * sd);
}

describe("FaultLane", () => {
  it("the PRNG is deterministic and roughly uniform", () => {
    const a = prng(42);
    const b = prng(42);
    const c = prng(43);
    const xs = Array.from({ length: 10000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 10000 }, () => b()));
    expect(xs.slice(0, 10)).not.toEqual(Array.from({ length: 10 }, () => c()));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });

  it("bit flips: the byte error rate on the output matches, each damaged byte has exactly one bit flipped", async () => {
    const input = new Uint8Array(randomBytes(N));
    const { out } = await through({ flip: 1e-3 }, input);
    expect(out.length).toBe(N);
    let damaged = 0;
    for (let i = 0; i < N; i++) {
      const x = (input[i] as number) ^ (out[i] as number);
      if (x !== 0) {
        damaged++;
        expect(x & (x - 1)).toBe(0); // one bit
      }
    }
    withinBinomial(damaged, N, 1e-3);
  });

  it("drops and duplicates: output length moves by the asked rates", async () => {
    const input = new Uint8Array(N).fill(0x41);
    withinBinomial(N - (await through({ drop: 1e-3 }, input)).out.length, N, 1e-3);
    withinBinomial((await through({ dup: 2e-3 }, input)).out.length - N, N, 2e-3);
  });

  it("the same seed replays the same faults; another seed does not", async () => {
    const input = new Uint8Array(randomBytes(200_000));
    const spec = { flip: 1e-3, drop: 1e-3, dup: 1e-3 };
    const a = await through(spec, input, 7);
    const b = await through(spec, input, 7);
    const c = await through(spec, input, 8);
    expect(Buffer.compare(a.out, b.out)).toBe(0);
    expect(a.lane.stats).toEqual(b.lane.stats);
    expect(Buffer.compare(a.out, c.out)).not.toBe(0);
  });

  it("the rate cap holds the line to baud/10 bytes per second", async () => {
    const input = new Uint8Array(23_040); // 2 s at 115200 baud
    const { out, ms } = await through({}, input, 1, 115200);
    expect(out.length).toBe(input.length);
    expect(ms).toBeGreaterThan(2000 * 0.95);
    expect(ms).toBeLessThan(2000 * 1.15);
  });

  it("delays stall the stream for the asked time", async () => {
    const input = new Uint8Array(2000);
    const { out, ms, lane } = await through({ delay: 5e-3, delayMs: 20 }, input);
    expect(out.length).toBe(2000);
    expect(lane.stats.delays).toBeGreaterThan(0);
    expect(ms).toBeGreaterThanOrEqual(lane.stats.delays * 20 * 0.95);
  });

  it("a cut loses the bytes due on the line during it, and only those", async () => {
    const parts: Uint8Array[] = [];
    const lane = new FaultLane(1, {}, (b) => parts.push(Uint8Array.from(b)));
    lane.push(utf8("before "));
    lane.cut(100);
    lane.push(utf8("during "));
    await new Promise((r) => setTimeout(r, 120));
    lane.push(utf8("after"));
    lane.stop();
    expect(Buffer.concat(parts).toString()).toBe("before after");
    expect(lane.stats.cutDropped).toBe(7);
  });

  it("rejects nonsense", () => {
    expect(() => new FaultLane(1, { drop: 2 }, () => {})).toThrow(RangeError);
    expect(() => new FaultLane(1, {}, () => {}, -5)).toThrow(RangeError);
  });
});

/** A SLIP receiver behind a tap: `got` collects the frame bodies it decodes. */
function receiver(tap: FrameTap) {
  const got: number[][] = [];
  const rx = new SlipDecoder(1 << 16, {
    frame: (b) => got.push([...b]),
    drop: (r) => {
      throw new Error(`receiver dropped a frame: ${r}`);
    },
  });
  /** Feeds `bytes` through the tap in chunks of the given sizes (cycled). */
  const feed = (bytes: Uint8Array, sizes: readonly number[]) => {
    for (let off = 0, k = 0; off < bytes.length; k++) {
      const n = sizes[k % sizes.length] as number;
      rx.push(tap.feed(bytes.subarray(off, off + n)));
      off += n;
    }
    return got;
  };
  return { got, feed };
}

const tapThrough = (tap: FrameTap, bytes: Uint8Array, sizes: readonly number[]) => receiver(tap).feed(bytes, sizes);

const frame = (msg: unknown[]) => slipEncode(encodeBody(msg));
const bodyOf = (msg: unknown[]) => [...encodeBody(msg)];

describe("FrameTap", () => {
  // three requests, one with bytes that need SLIP escapes
  const msgs = [
    [1, Op.echo, Uint8Array.of(1, 2, 3)],
    [2, Op.hashUpdate, 7, Uint8Array.of(0xc0, 0xdb, 0xc0)],
    [3, Op.stats],
  ];
  const stream = Buffer.concat(msgs.map(frame));

  it("with nothing to drop, passes the bytes as they are", () => {
    const tap = new FrameTap("up");
    expect(tapThrough(tap, stream, [5, 1, 17])).toEqual(msgs.map(bodyOf));
  });

  for (const sizes of [[stream.length], [1], [3, 7, 2]]) {
    it(`drops exactly the frame a predicate selects, and says what it carried (chunks of ${sizes.join(", ")})`, async () => {
      const tap = new FrameTap("up");
      const dropped = tap.dropNext((m) => m?.[1] === Op.hashUpdate);
      expect(tapThrough(tap, stream, sizes)).toEqual([bodyOf(msgs[0] as unknown[]), bodyOf(msgs[2] as unknown[])]);
      const d = await dropped;
      expect(d.direction).toBe("up");
      expect(d.message).toEqual(msgs[1]);
      expect([...d.body]).toEqual(bodyOf(msgs[1] as unknown[]));
      // only one: the same stream again passes whole
      expect(tapThrough(tap, stream, sizes)).toEqual(msgs.map(bodyOf));
    });
  }

  it("drops the n-th frame from now; armed mid-frame, the frame in progress goes on whole", async () => {
    const tap = new FrameTap("down");
    const rx = receiver(tap);
    const first = frame(msgs[0] as unknown[]);
    rx.feed(first.subarray(0, 4), [4]);
    const dropped = tap.dropNext(2);
    rx.feed(Buffer.concat([first.subarray(4), frame(msgs[1] as unknown[]), frame(msgs[2] as unknown[])]), [2]);
    expect(rx.got).toEqual([bodyOf(msgs[0] as unknown[]), bodyOf(msgs[1] as unknown[])]);
    expect((await dropped).message).toEqual(msgs[2]);
    expect(() => tap.dropNext(0)).toThrow(RangeError);
  });

  it("two targets take frames in turn; a watch sees its frame and lets it go on", async () => {
    const tap = new FrameTap("up");
    const watched = tap.watchNext((m) => m?.[0] === 2);
    const a = tap.dropNext((m) => m?.[0] !== 2);
    const b = tap.dropNext((m) => m?.[0] !== 2);
    expect(tapThrough(tap, stream, [4])).toEqual([bodyOf(msgs[1] as unknown[])]);
    expect((await watched).message).toEqual(msgs[1]);
    expect([(await a).message, (await b).message]).toEqual([msgs[0], msgs[2]]);
  });
});

describe("startRelay with the native firmware", () => {
  let native: NativeTarget | undefined;
  let relay: Relay | undefined;
  afterEach(async () => {
    await relay?.stop();
    await native?.stop();
    relay = undefined;
    native = undefined;
  });

  it("a clean relay is transparent, counts bytes both ways and caps the rate", async () => {
    native = await startNative();
    relay = await startRelay({ devicePath: native.path, seed: 1, baud: 115200 });
    const dev = await open(relay.hostPath, { timeoutMs: 5000 });
    try {
      const data = new Uint8Array(randomBytes(1000));
      const t0 = performance.now();
      for (let i = 0; i < 10; i++) expect(Buffer.compare(await dev.echo(data), data)).toBe(0);
      const ms = performance.now() - t0;
      const st = relay.stats();
      // 10 echoes of 1000 bytes each way at 11,520 bytes/s: at least 0.87 s per direction.
      expect(ms).toBeGreaterThan(((10 * data.length) / 11_520) * 1000 * 2 * 0.9);
      expect(st.up.bytesOut).toBe(st.up.bytesIn);
      expect(st.down.bytesOut).toBe(st.down.bytesIn);
      expect(st.up.bytesIn).toBeGreaterThan(10 * data.length);
    } finally {
      await dev.close();
    }
  });

  it("dropAnswer loses exactly the answer to the request it selects", async () => {
    native = await startNative();
    relay = await startRelay({ devicePath: native.path, seed: 3 });
    const dev = await open(relay.hostPath, { timeoutMs: 3000, retries: 0 });
    try {
      const lost = relay.dropAnswer((m) => m[1] === Op.echo && (m[2] as Uint8Array).length === 2);
      const results = await Promise.all(
        [1, 2, 3].map((n) =>
          dev.echo(new Uint8Array(n).fill(n), { timeoutMs: 300 }).then(
            (r) => r.length,
            (e: Error) => e,
          ),
        ),
      );
      expect(results[0]).toBe(1);
      expect(results[1]).toBeInstanceOf(TimeoutError);
      expect(results[2]).toBe(3);
      const { request, answer } = await lost;
      expect(answer.message).toEqual([request[0], 0, Uint8Array.of(2, 2)]);
      expect(dev.linkCounters.rxDropped).toBe(0); // a whole frame gone, not a damaged one
    } finally {
      await dev.close();
    }
  });

  it("faults reach the device and the host, the host can reopen the relay, and setDevice follows a restarted device", async () => {
    native = await startNative();
    relay = await startRelay({ devicePath: native.path, seed: 2 });
    let dev = await open(relay.hostPath, { timeoutMs: 3000 });
    relay.set({ up: { flip: 0.05 }, down: { flip: 0.05 } });
    const errors = await Promise.all(
      Array.from({ length: 40 }, () =>
        dev.echo(new Uint8Array(64), { timeoutMs: 500 }).then(
          () => null,
          (e: Error) => e,
        ),
      ),
    );
    expect(errors.some((e) => e !== null)).toBe(true);
    const st = relay.stats();
    expect(st.up.flipped).toBeGreaterThan(0);
    expect(st.down.flipped).toBeGreaterThan(0);
    await dev.close();
    relay.set({ up: {}, down: {} });
    dev = await open(relay.hostPath, { timeoutMs: 3000 });
    expect(Buffer.from(await dev.echo(utf8("again"))).toString()).toBe("again");
    await dev.close();
    await native.stop();
    native = await startNative();
    await relay.setDevice(native.path);
    dev = await open(relay.hostPath, { timeoutMs: 3000 });
    expect(Buffer.from(await dev.echo(utf8("new device"))).toString()).toBe("new device");
    await dev.close();
  });
});
