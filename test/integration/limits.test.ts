// Every limit hello announces can be hit from the host, is answered with a
// typed error (or the drop the spec prescribes), and is recovered from by
// freeing: the handle table (max_handles), the heap (heap_size), the frame
// size (mtu), the in-flight window (window) and the session (hello again).
// The suite ends with the device heap exactly at its fresh-boot value.
import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Limits, Op } from "../../host/src/base/protocol.generated.js";
import {
  ArgumentError,
  type Device,
  type FrameDropInfo,
  hex,
  OutOfMemoryError,
  TooLargeError,
  TooManyHandlesError,
} from "../../host/src/index.js";
import { encodeBody } from "../../host/src/link/codec.js";
import type { Message } from "../../host/src/link/transport.js";
import { rand } from "./bytes.js";
import { frameOf, rawExchange, stillServes as serves } from "./raw-link.js";
import { useSession } from "./session.js";
import { until } from "./target.js";

const session = useSession();
let dev: Device;
let bootHeap = 0;
const drops: FrameDropInfo[] = [];

beforeAll(() => {
  dev = session.dev;
  bootHeap = session.bootHeap; // hello's figure on a freshly booted device
  dev.on("frameDropped", (d) => drops.push(d));
});

/** The device answers a fresh echo (a small one: it must fit a nearly full heap). */
const stillServes = () => serves(dev, 32);

describe("hello announces the limits", () => {
  it("a fresh device reports its limits, and stats agree with hello", async () => {
    const { info } = dev;
    expect(info.maxHandles).toBeGreaterThan(0);
    expect(info.window).toBeGreaterThan(0);
    expect(info.mtu).toBeGreaterThanOrEqual(Limits.minMtu);
    expect(info.heapUsed).toBeLessThan(info.heapSize);
    const st = await dev.stats();
    expect(st.maxHandles).toBe(info.maxHandles);
    expect(st.heapSize).toBe(info.heapSize);
    expect(st.heapUsed).toBe(bootHeap);
    expect(st.handlesUsed).toBe(0);
  });
});

describe("handle table (max_handles)", () => {
  it("fills up with TooManyHandlesError, and one free makes room again", async () => {
    // Raw creates: the SDK's own objects never fill the table (idle ones are swapped out, README "Objects and device memory").
    const hashes = Array.from({ length: dev.info.maxHandles }, () => dev._nextHandle());
    await Promise.all(hashes.map((h) => dev.rpc.call(Op.hashNew, [h, 4])));
    expect((await dev.stats()).handlesUsed).toBe(dev.info.maxHandles);
    const extra = dev._nextHandle();
    await expect(dev.rpc.call(Op.hashNew, [extra, 4])).rejects.toBeInstanceOf(TooManyHandlesError);
    await dev.rpc.call(Op.free, [hashes.pop()]);
    const again = dev._nextHandle();
    await dev.rpc.call(Op.hashNew, [again, 4]);
    await dev.rpc.call(Op.hashUpdate, [again, Uint8Array.of(0x61, 0x62, 0x63)]);
    expect(hex((await dev.rpc.call(Op.hashDigest, [again])) as Uint8Array)).toBe(createHash("sha256").update("abc").digest("hex"));
    for (const h of [again, ...hashes]) await dev.rpc.call(Op.free, [h]);
    const st = await dev.stats();
    expect(st.handlesUsed).toBe(0);
    expect(st.heapUsed).toBe(bootHeap);
  });
});

describe("heap (heap_size)", () => {
  it("buffered cipher contexts fill the heap until OutOfMemoryError; freeing them restores the baseline", async () => {
    // Each context reserves input and output for the announced length (spec 7.1).
    const length = Math.floor(dev.info.heapSize / 10);
    const key = rand(16);
    const handles: number[] = [];
    let oom: unknown;
    for (let i = 0; i < dev.info.maxHandles && oom === undefined; i++) {
      const h = dev._nextHandle();
      try {
        await dev.rpc.call(Op.cipherBufNew, [h, "AES", "GCM", key, rand(12), true, new Uint8Array(0), 16, length]);
        handles.push(h);
      } catch (e) {
        oom = e;
      }
    }
    expect(oom).toBeInstanceOf(OutOfMemoryError);
    expect(handles.length).toBeGreaterThanOrEqual(2);
    const full = await dev.stats();
    expect(full.heapUsed).toBeGreaterThan(full.heapSize / 2);
    expect(full.heapPeak).toBeLessThanOrEqual(full.heapSize);
    await stillServes(); // a small request still fits
    for (const h of handles) await dev.rpc.call(Op.free, [h]);
    const after = await dev.stats();
    expect(after.heapUsed).toBe(bootHeap);
    expect(after.handlesUsed).toBe(0);
    // recovered: the same allocation succeeds again
    const h = dev._nextHandle();
    await dev.rpc.call(Op.cipherBufNew, [h, "AES", "GCM", key, rand(12), true, new Uint8Array(0), 16, length]);
    await dev.rpc.call(Op.free, [h]);
    expect((await dev.stats()).heapUsed).toBe(bootHeap);
  });

  it("a single request for more than the whole heap is OutOfMemoryError and allocates nothing", async () => {
    const h = dev._nextHandle();
    const call = dev.rpc.call(Op.cipherBufNew, [h, "AES", "GCM", rand(16), rand(12), true, new Uint8Array(0), 16, dev.info.heapSize]);
    await expect(call).rejects.toBeInstanceOf(OutOfMemoryError);
    const st = await dev.stats();
    expect(st.heapUsed).toBe(bootHeap);
    expect(st.handlesUsed).toBe(0);
  });
});

describe("frame size (mtu)", () => {
  /** An echo request whose frame body is exactly `size` bytes. */
  function echoOfBodySize(id: number, size: number): Uint8Array {
    let n = size - 16;
    for (;;) {
      const body = encodeBody([id, Op.echo, new Uint8Array(n)]);
      if (body.length === size) return body.subarray(0, body.length - 4);
      n += size - body.length;
    }
  }

  it("a request of exactly mtu bytes is answered; one byte more is dropped as oversize and not answered", async () => {
    const { mtu } = dev.info;
    const [fits] = await rawExchange(dev, frameOf(echoOfBodySize(9001, mtu)), [9001]);
    expect(fits?.[1]).toBe(0);
    const before = await dev.stats();
    const n = drops.length;
    let answered = false;
    const on = (m: Message) => {
      if (m[0] === 9002) answered = true;
    };
    dev.transport.on("message", on);
    await dev.transport.writeRaw(frameOf(echoOfBodySize(9002, mtu + 1)));
    await until(() => drops.slice(n).some((d) => d.side === "device" && d.reason === "oversize"));
    await stillServes();
    dev.transport.off("message", on);
    expect(answered).toBe(false);
    expect((await dev.stats()).rxOversize).toBe(before.rxOversize + 1);
  });

  it("the SDK refuses a request larger than the MTU before sending it", async () => {
    const sent = dev.transport.counters.txFrames;
    await expect(dev.echo(rand(dev.info.mtu))).rejects.toBeInstanceOf(ArgumentError);
    expect(dev.transport.counters.txFrames).toBe(sent);
    await stillServes();
  });

  it("a result that would not fit the MTU is TooLargeError", async () => {
    await expect(dev.rpc.call(Op.rngBytes, [dev.info.mtu])).rejects.toBeInstanceOf(TooLargeError);
    await stillServes();
  });
});

describe("in-flight window (window)", () => {
  it("the SDK keeps at most `window` requests in flight and queues the rest in order", async () => {
    const { window } = dev.info;
    const data = Array.from({ length: 4 * window }, () => rand(64));
    // Observe the in-flight count at every frame the host writes.
    const transport = dev.transport;
    const sendBody = transport.sendBody;
    let maxInFlight = 0;
    let writes = 0;
    transport.sendBody = (body, onWritten) => {
      writes++;
      maxInFlight = Math.max(maxInFlight, dev.rpc.inFlightCount);
      sendBody.call(transport, body, onWritten);
    };
    try {
      const calls = data.map((d) => dev.echo(d));
      expect(dev.rpc.queuedCount).toBeGreaterThan(0);
      const results = await Promise.all(calls);
      expect(results.map(hex)).toEqual(data.map(hex));
    } finally {
      transport.sendBody = sendBody;
    }
    expect(writes).toBeGreaterThanOrEqual(data.length);
    expect(maxInFlight).toBe(window);
  });

  it("a raw writer that ignores the window: small requests are all answered, in arrival order (spec 5)", async () => {
    const { window } = dev.info;
    const ids = Array.from({ length: 3 * window }, (_, i) => 9100 + i);
    const data = ids.map(() => rand(16));
    const wire = Buffer.concat(ids.map((id, i) => frameOf(encodeBody([id, Op.echo, data[i]]).subarray(0, -4))));
    const got = await rawExchange(dev, wire, ids);
    expect(got.map((m) => m[0])).toEqual(ids);
    expect(got.map((m) => hex(m[2] as Uint8Array))).toEqual(data.map(hex));
    await stillServes();
  });
});

describe("session (hello)", () => {
  it("a second hello keeps the session: same boot id, live handles stay live, nothing allocated", async () => {
    const h = dev.hash.new("sha1", Uint8Array.of(0x61));
    expect(h.handle).toBeGreaterThan(0); // a device context (a digest this small makes one only when asked)
    await h.hexdigest();
    const before = await dev.stats();
    const res = (await dev.rpc.call(Op.hello, [])) as { boot_id: Uint8Array; heap_used: number };
    expect(hex(res.boot_id)).toBe(dev.info.bootId);
    h.update(Uint8Array.of(0x62, 0x63));
    expect(await h.hexdigest()).toBe(createHash("sha1").update("abc").digest("hex"));
    await h.close();
    expect((await dev.stats()).heapUsed).toBe(bootHeap);
    expect(before.handlesUsed).toBe(1);
  });
});

describe("after the suite", () => {
  it("the device heap is back at its fresh-boot value and no handle is live", async () => {
    const st = await dev.stats();
    expect(st.handlesUsed).toBe(0);
    expect(st.heapUsed).toBe(bootHeap);
    expect(st.heapBlocks).toBe((await dev.stats()).heapBlocks);
  });
});
