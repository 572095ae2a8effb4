import { describe, expect, it } from "vitest";
import {
  ArgumentError,
  BadHandleError,
  CryptoError,
  DeviceError,
  DeviceResetError,
  DisconnectedError,
  MbedlinkError,
  ProtocolError,
  TimeoutError,
  UnknownOpError,
} from "../base/errors.js";
import { Op, Status } from "../base/protocol.generated.js";
import { MemTransport } from "../link/testing/mem-transport.js";
import type { BusyInfo, FrameDropInfo, ResetInfo } from "./rpc.js";
import { Rpc } from "./rpc.js";

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
const settled = <T>(p: Promise<T>) =>
  p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );

function setup(opts: { window?: number; timeoutMs?: number; mtu?: number } = {}) {
  const t = new MemTransport();
  const rpc = new Rpc(t, { timeoutMs: 1000, ...opts });
  return { t, rpc };
}

const ids = (t: MemTransport) => t.sent.map((m) => m[0]);

describe("rpc", () => {
  it("keeps at most `window` requests in flight and sends the rest in FIFO order", async () => {
    const { t, rpc } = setup({ window: 2 });
    const calls = [0, 1, 2, 3, 4].map((i) => rpc.call(Op.echo, [Uint8Array.of(i)]));
    await tick();
    expect(t.sent.length).toBe(2);
    expect(rpc.inFlightCount).toBe(2);
    expect(rpc.queuedCount).toBe(3);
    while (rpc.inFlightCount > 0) {
      expect(rpc.inFlightCount).toBeLessThanOrEqual(2);
      const m = t.sent[t.sent.length - rpc.inFlightCount] as unknown[];
      t.deliver([m[0], 0, m[2]]);
      await tick();
    }
    expect(rpc.lateResponses).toBe(0);
    const results = await Promise.all(calls);
    expect(results.map((r) => (r as Uint8Array)[0])).toEqual([0, 1, 2, 3, 4]);
    // wire order = call order, ids consecutive
    expect(t.sent.map((m) => (m[2] as Uint8Array)[0])).toEqual([0, 1, 2, 3, 4]);
    expect(ids(t)).toEqual([1, 2, 3, 4, 5]);
  });

  it("anchors the window at the oldest unanswered request: later answers free no room while it waits", async () => {
    const { t, rpc } = setup({ window: 3 });
    const calls = [0, 1, 2, 3, 4].map((i) => rpc.call(Op.echo, [Uint8Array.of(i)]));
    await tick();
    expect(ids(t)).toEqual([1, 2, 3]);
    // 2 and 3 answered, 1 not: id 4 would be 1 + window, so nothing more goes
    t.deliver([2, 0, Uint8Array.of(1)]);
    t.deliver([3, 0, Uint8Array.of(2)]);
    await tick();
    expect(ids(t)).toEqual([1, 2, 3]);
    expect(rpc.inFlightCount).toBe(1);
    expect(rpc.queuedCount).toBe(2);
    // 1 answered: 4 and 5 go at once
    t.deliver([1, 0, Uint8Array.of(0)]);
    await tick();
    expect(ids(t)).toEqual([1, 2, 3, 4, 5]);
    t.deliver([4, 0, Uint8Array.of(3)]);
    t.deliver([5, 0, Uint8Array.of(4)]);
    expect((await Promise.all(calls)).map((r) => (r as Uint8Array)[0])).toEqual([0, 1, 2, 3, 4]);
  });

  it("encodes at call time, so the caller may reuse its buffer", async () => {
    const { t, rpc } = setup({ window: 1 });
    const buf = Uint8Array.of(1, 2, 3);
    const a = rpc.call(Op.echo, [buf]);
    buf.fill(9); // queued behind nothing, but...
    const b = rpc.call(Op.echo, [buf]); // ...this one waits in the queue
    buf.fill(7);
    await tick();
    t.deliver([t.sent[0]?.[0], 0, null]);
    await tick();
    expect([...((t.sent[0]?.[2] as Uint8Array | undefined) ?? [])]).toEqual([1, 2, 3]);
    expect([...((t.sent[1]?.[2] as Uint8Array | undefined) ?? [])]).toEqual([9, 9, 9]);
    t.deliver([t.sent[1]?.[0], 0, null]);
    await Promise.all([a, b]);
  });

  it("times out, ignores the late response, and keeps working", async () => {
    const { t, rpc } = setup({ timeoutMs: 40 });
    const r = await settled(rpc.call(Op.echo, [Uint8Array.of(1)]));
    expect(r.ok).toBe(false);
    expect((r as { e: unknown }).e).toBeInstanceOf(TimeoutError);
    expect(rpc.inFlightCount).toBe(0);
    t.deliver([t.sent[0]?.[0], 0, Uint8Array.of(1)]); // late
    expect(rpc.lateResponses).toBe(1);
    const p = rpc.call(Op.echo, [Uint8Array.of(2)]);
    await tick();
    expect(t.sent[1]?.[0]).not.toBe(t.sent[0]?.[0]);
    t.deliver([t.sent[1]?.[0], 0, Uint8Array.of(2)]);
    expect(await p).toEqual(Uint8Array.of(2));
  });

  it("honours a per-call timeout", async () => {
    const { rpc } = setup({ timeoutMs: 5000 });
    const t0 = performance.now();
    const r = await settled(rpc.call(Op.stats, [], { timeoutMs: 30 }));
    expect((r as { e: unknown }).e).toBeInstanceOf(TimeoutError);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it("re-arms a call's timeout on each busy event and emits 'busy'", async () => {
    const { t, rpc } = setup({ timeoutMs: 60 });
    const busy: BusyInfo[] = [];
    rpc.on("busy", (b) => busy.push(b));
    const t0 = performance.now();
    const p = settled(rpc.call(Op.pkGenerate, [1, 1, 1024, 65537, 1]));
    await tick(5);
    const id = t.sent[0]?.[0];
    // Busy every 40 ms for 200 ms: far past the 60 ms timeout, yet still alive.
    for (let elapsed = 40; elapsed <= 200; elapsed += 40) {
      await tick(40);
      t.deliver([null, 3, id, elapsed]);
    }
    await tick(20);
    t.deliver([id, 0, null]);
    const r = await p;
    expect(r.ok).toBe(true);
    expect(performance.now() - t0).toBeGreaterThan(200);
    expect(busy.length).toBe(5);
    expect(busy[0]).toEqual({ op: "pk_generate", id, elapsedMs: 40 });
    // A busy event for an unknown id is ignored; without busy events the timeout still fires.
    t.deliver([null, 3, 12345, 1]);
    const q = await settled(rpc.call(Op.pkGenerate, [2, 1, 1024, 65537, 1]));
    expect((q as { e: unknown }).e).toBeInstanceOf(TimeoutError);
    expect(busy.length).toBe(5);
  });

  it("starts the timer when the frame is written, not while it is queued", async () => {
    const { t, rpc } = setup({ window: 1, timeoutMs: 100 });
    const first = rpc.call(Op.echo, [Uint8Array.of(1)]);
    const second = rpc.call(Op.echo, [Uint8Array.of(2)]);
    await tick(80);
    t.deliver([t.sent[0]?.[0], 0, null]);
    await tick(80); // second has been queued for 160 ms, written 80 ms ago
    t.deliver([t.sent[1]?.[0], 0, null]);
    expect((await settled(first)).ok).toBe(true);
    expect((await settled(second)).ok).toBe(true);
  });

  it("starts the timer after a slow write completes", async () => {
    const { t, rpc } = setup({ timeoutMs: 60 });
    t.writeDelayMs = 90;
    t.onRequest = (m) => setTimeout(() => t.deliver([m[0], 0, null]), 40);
    expect((await settled(rpc.call(Op.stats))).ok).toBe(true);
  });

  it("fails all pending and all later calls once disconnected", async () => {
    const { t, rpc } = setup({ window: 1 });
    const gone: Error[] = [];
    rpc.on("disconnected", (e) => gone.push(e));
    const a = settled(rpc.call(Op.echo, [Uint8Array.of(1)]));
    const b = settled(rpc.call(Op.echo, [Uint8Array.of(2)])); // queued
    await tick();
    t.drop(new Error("EIO"));
    t.drop(new Error("second close event")); // duplicate close is harmless
    for (const r of [await a, await b]) expect((r as { e: unknown }).e).toBeInstanceOf(DisconnectedError);
    await expect(rpc.call(Op.stats)).rejects.toBeInstanceOf(DisconnectedError);
    expect(gone.length).toBe(1);
  });

  it("fails in-flight calls with DeviceResetError on a boot event with a new boot id", async () => {
    const { t, rpc } = setup({ window: 4 });
    rpc.noteBootId(Uint8Array.of(1, 1, 1, 1, 1, 1, 1, 1));
    const resets: ResetInfo[] = [];
    rpc.on("reset", (i) => resets.push(i));
    const calls = [settled(rpc.call(Op.stats)), settled(rpc.call(Op.stats))];
    await tick();
    t.deliver([null, 1, Uint8Array.of(1, 1, 1, 1, 1, 1, 1, 1)]); // same boot: ignored
    expect(resets.length).toBe(0);
    t.deliver([null, 1, Uint8Array.of(2, 2, 2, 2, 2, 2, 2, 2)]);
    for (const r of await Promise.all(calls)) expect((r as { e: unknown }).e).toBeInstanceOf(DeviceResetError);
    expect(resets.length).toBe(1);
    expect(resets[0]?.epoch).toBe(1);
    expect(rpc.epoch).toBe(1);
    expect([...(rpc.bootId ?? [])]).toEqual([2, 2, 2, 2, 2, 2, 2, 2]);
    // answers to the failed ids are late now
    for (const m of t.sent) t.deliver([m[0], 0, null]);
    expect(rpc.lateResponses).toBe(2);
  });

  it("ignores a boot event before the first hello", async () => {
    const { t, rpc } = setup();
    const p = rpc.call(Op.hello);
    await tick();
    t.deliver([null, 1, Uint8Array.of(3, 3, 3, 3, 3, 3, 3, 3)]);
    t.deliver([t.sent[0]?.[0], 0, { ok: 1 }]);
    expect(await p).toEqual({ ok: 1 });
    expect(rpc.epoch).toBe(0);
  });

  it("detects a reset from a hello with another boot id", async () => {
    const { rpc } = setup();
    expect(rpc.noteBootId(Uint8Array.of(1))).toBe(false);
    expect(rpc.noteBootId(Uint8Array.of(1))).toBe(false);
    expect(rpc.noteBootId(Uint8Array.of(2))).toBe(true);
    expect(rpc.epoch).toBe(1);
  });

  it("holds ordinary calls while paused; priority calls still go", async () => {
    const { t, rpc } = setup({ window: 2 });
    rpc.pause();
    const a = rpc.call(Op.stats);
    const h = rpc.callPriority(Op.hello);
    await tick();
    expect(t.sent.map((m) => m[1])).toEqual([Op.hello]);
    t.deliver([t.sent[0]?.[0], 0, null]);
    await h;
    rpc.resume();
    await tick();
    expect(t.sent.map((m) => m[1])).toEqual([Op.hello, Op.stats]);
    t.deliver([t.sent[1]?.[0], 0, null]);
    await a;
  });

  it("turns error responses into typed DeviceErrors", async () => {
    const { t, rpc } = setup({ window: 4 });
    t.onRequest = (m) => {
      const [id, op] = m as [number, number];
      if (op === Op.free) t.deliver([id, Status.badHandle, 0, "handle 7 is not live"]);
      else if (op === Op.hashDigest) t.deliver([id, Status.cryptoError, -0x5080, "boom"]);
      else if (op === 200) t.deliver([id, Status.unknownOp, 0, "unknown op 200"]);
      else t.deliver([id, 99, 0, "future status"]);
    };
    const free = await settled(rpc.call(Op.free, [7]));
    const e = (free as { e: BadHandleError }).e;
    expect(e).toBeInstanceOf(BadHandleError);
    expect(e).toBeInstanceOf(DeviceError);
    expect(e).toBeInstanceOf(MbedlinkError);
    expect([e.status, e.statusName, e.mbedtlsCode, e.message, e.op]).toEqual([4, "bad_handle", 0, "handle 7 is not live", "free"]);
    expect(String(e)).toBe("BadHandleError: free: bad_handle: handle 7 is not live");
    const c = (await settled(rpc.call(Op.hashDigest, [1]))) as { e: CryptoError };
    expect(c.e).toBeInstanceOf(CryptoError);
    expect(c.e.mbedtlsCode).toBe(-0x5080);
    expect(String(c.e)).toContain("(mbedtls -0x5080)");
    expect(((await settled(rpc.call(200))) as { e: unknown }).e).toBeInstanceOf(UnknownOpError);
    const f = (await settled(rpc.call(Op.stats))) as { e: DeviceError };
    expect(f.e.constructor).toBe(DeviceError);
    expect(f.e.statusName).toBe("status_99");
  });

  it("rejects malformed responses with ProtocolError", async () => {
    const { t, rpc } = setup();
    t.onRequest = (m) => t.deliver([m[0], 0, 1, 2]);
    expect(((await settled(rpc.call(Op.stats))) as { e: unknown }).e).toBeInstanceOf(ProtocolError);
  });

  it("counts device and host frame drops and survives garbage", async () => {
    const { t, rpc } = setup();
    const drops: FrameDropInfo[] = [];
    rpc.on("frameDropped", (d) => drops.push(d));
    t.deliver([null, 2, 1, 5]);
    t.deliverRaw(Uint8Array.from([0xc0, 1, 2, 3, 4, 5, 6, 0xc0])); // bad CRC
    t.deliverRaw(Uint8Array.from([0xc0, 1, 0xdb, 1, 0xc0])); // bad escape
    t.deliverRaw(Uint8Array.from([0xc0, 1, 0xc0])); // too short
    t.deliver(["not an id", 0]); // CRC fine, not a message
    expect(drops).toEqual([
      { side: "device", reason: "bad_crc", total: 5 },
      { side: "host", reason: "bad_crc", total: 1 },
      { side: "host", reason: "bad_escape", total: 2 },
      { side: "host", reason: "too_short", total: 3 },
      { side: "host", reason: "bad_message", total: 4 },
    ]);
    t.onRequest = (m) => t.deliver([m[0], 0, "fine"]);
    expect(await rpc.call(Op.stats)).toBe("fine");
  });

  it("refuses a request larger than the MTU locally", async () => {
    const { t, rpc } = setup({ mtu: 300 });
    await expect(rpc.call(Op.echo, [new Uint8Array(400)])).rejects.toBeInstanceOf(ArgumentError);
    expect(t.sent.length).toBe(0);
  });

  it("wraps request ids below 2^32 and skips ids still pending", async () => {
    const { t, rpc } = setup({ window: 8 });
    Reflect.set(rpc, "nextId", 0xfffffffe);
    const calls = [rpc.call(Op.stats), rpc.call(Op.stats), rpc.call(Op.stats)];
    // the writes are queued on the event loop: wait for them (one tick was not always enough on a loaded machine)
    for (let i = 0; i < 200 && t.sent.length < 3; i++) await tick(1);
    expect(ids(t)).toEqual([0xfffffffe, 0xffffffff, 1]);
    Reflect.set(rpc, "nextId", 1);
    const more = rpc.call(Op.stats); // 1 is still pending: gets 2
    for (let i = 0; i < 200 && t.sent.length < 4; i++) await tick(1);
    expect(ids(t)[3]).toBe(2);
    for (const m of t.sent) t.deliver([m[0], 0, null]);
    await Promise.all([...calls, more]);
  });
});
