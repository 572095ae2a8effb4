// Link recovery in the RPC layer (spec §6): losses revealed by in-order
// answers, resends of any op under its own id, byte for byte, within the
// call's timeout, never out of order, the window anchored at the oldest
// unanswered request, probes after dropped frames, ordered requests alone
// while the line loses frames, and nothing resent into a new boot.
import { describe, expect, it } from "vitest";
import { DeviceResetError, DisconnectedError, TimeoutError } from "../base/errors.js";
import { OP_INFO, Op } from "../base/protocol.generated.js";
import { MemTransport } from "../link/testing/mem-transport.js";
import { type CallSettledInfo, mayResend, Rpc } from "./rpc.js";

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
const settled = <T>(p: Promise<T>) =>
  p.then(
    (v) => ({ ok: true as const, v, e: undefined }),
    (e: unknown) => ({ ok: false as const, v: undefined, e }),
  );

function setup(opts: { window?: number; timeoutMs?: number; retries?: number; cleanStreak?: number } = {}) {
  const t = new MemTransport();
  // a line that has shown it is clean (cleanStreak 0), unless a test says otherwise
  const rpc = new Rpc(t, { timeoutMs: 1000, window: 4, retries: 3, inOrder: true, cleanStreak: 0, ...opts });
  return { t, rpc };
}
/** Polls until `cond` holds (fails the test after 2 s). */
async function until(cond: () => boolean): Promise<void> {
  const end = performance.now() + 2000;
  while (!cond()) {
    if (performance.now() > end) throw new Error("condition not met in time");
    await tick(2);
  }
}
const idOf = (m: unknown[] | undefined) => m?.[0] as number;
const hexOf = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString("hex");
/** The frame bodies the host wrote for request `id`, as hex. */
const bodiesOf = (t: MemTransport, id: number) => t.bodies.filter((_, i) => idOf(t.sent[i]) === id).map(hexOf);

describe("rpc link recovery", () => {
  it("every op may be resent (ids.json: the device answers a resend from its record)", () => {
    for (const [op, info] of OP_INFO) expect(mayResend(op), info.name).toBe(true);
  });

  it("an answer reveals the earlier unanswered requests lost: each goes again under its own id, byte for byte", async () => {
    const { t, rpc } = setup();
    const echo = rpc.call(Op.echo, [Uint8Array.of(1)]);
    const update = rpc.call(Op.rngBytes, [2]);
    const stats = rpc.call(Op.stats);
    await tick();
    expect(t.sent.map((m) => m[1])).toEqual([Op.echo, Op.rngBytes, Op.stats]);
    t.deliver([idOf(t.sent[2]), 0, { heap_used: 1 }]); // the first two were lost
    expect(await stats).toEqual({ heap_used: 1 });
    await tick();
    // both went again, in their order, under their own ids, with the same bytes
    expect(t.sent.slice(3).map(idOf)).toEqual([1, 2]);
    for (const id of [1, 2]) {
      const [first, again] = bodiesOf(t, id);
      expect(again).toBe(first);
    }
    t.deliver([1, 0, Uint8Array.of(1)]);
    t.deliver([2, 0, Uint8Array.of(7, 7)]);
    expect(await echo).toEqual(Uint8Array.of(1));
    expect(await update).toEqual(Uint8Array.of(7, 7));
    expect(rpc.retries).toBe(2);
    expect(rpc.lostFrames).toBe(2);
    expect(rpc.lateResponses).toBe(0);
  });

  it("any answer to the id settles the call once: a second answer (the resend's) is counted late, never delivered", async () => {
    const { t, rpc } = setup({ timeoutMs: 1200 });
    const seen: CallSettledInfo[] = [];
    rpc.on("settled", (s) => seen.push(s));
    const p = rpc.call(Op.rngBytes, [4]);
    await tick(400); // attempt = 1200 / 4 = 300 ms: resent once
    expect(t.sent.map(idOf)).toEqual([1, 1]);
    expect(t.bodies[1]).toEqual(t.bodies[0]);
    t.deliver([1, 0, Uint8Array.of(1, 2, 3, 4)]); // the first transmission's answer (or the record's: the same bytes)
    t.deliver([1, 0, Uint8Array.of(1, 2, 3, 4)]); // the second one's
    expect(await p).toEqual(Uint8Array.of(1, 2, 3, 4));
    expect(rpc.lateResponses).toBe(1);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.attempts).toBe(2);
  });

  it("a lost request nothing reveals is resent when its attempt timer runs out, and succeeds within its timeout", async () => {
    const { t, rpc } = setup({ timeoutMs: 1200 });
    const t0 = performance.now();
    const p = rpc.call(Op.pkSign, [3, 6, new Uint8Array(32), 0]);
    await tick(400);
    expect(t.sent.map(idOf)).toEqual([1, 1]);
    t.deliver([1, 0, Uint8Array.of(7)]);
    expect(await p).toEqual(Uint8Array.of(7));
    expect(performance.now() - t0).toBeLessThan(1200);
  });

  it("resends stay within the call's timeout: it fails at its timeout and not later", async () => {
    const { t, rpc } = setup({ timeoutMs: 300, retries: 2 });
    const t0 = performance.now();
    const r = await settled(rpc.call(Op.cipherUpdate, [1, Uint8Array.of(1)]));
    const took = performance.now() - t0;
    expect(r.e).toBeInstanceOf(TimeoutError);
    expect(t.sent.length).toBe(3); // attempts of 100 ms
    expect(new Set(t.sent.map(idOf))).toEqual(new Set([1]));
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(300 + 100);
  });

  it("retries: 0 sends each call once: a lost one fails at once when order reveals it, else at its timeout", async () => {
    const { t, rpc } = setup({ timeoutMs: 150, retries: 0 });
    const a = settled(rpc.call(Op.pkSign, [1, 6, new Uint8Array(32), 0]));
    const b = rpc.call(Op.stats);
    await tick();
    t.deliver([2, 0, {}]);
    await b;
    expect(String((await a).e)).toMatch(/lost on the link \(resending is off\)/);
    const c = await settled(rpc.call(Op.rngBytes, [1]));
    expect(c.e).toBeInstanceOf(TimeoutError);
    expect(t.sent.map(idOf)).toEqual([1, 2, 3]);
    expect(rpc.retries).toBe(0);
  });

  it("the window stays anchored while a lost request is resent: nothing goes out at oldest + window or beyond", async () => {
    const { t, rpc } = setup({ window: 3, timeoutMs: 2000 });
    const calls = [1, 2, 3, 4, 5].map((i) => rpc.call(Op.rngBytes, [i]));
    await tick();
    expect(t.sent.map(idOf)).toEqual([1, 2, 3]);
    t.deliver([2, 0, null]); // 1 was lost: resent
    t.deliver([3, 0, null]);
    await tick();
    expect(t.sent.map(idOf)).toEqual([1, 2, 3, 1]); // not 4: 4 = 1 + window
    t.deliver([1, 0, null]);
    await tick();
    expect(t.sent.map(idOf)).toEqual([1, 2, 3, 1, 4, 5]);
    t.deliver([4, 0, null]);
    t.deliver([5, 0, null]);
    await Promise.all(calls);
    expect(rpc.lateResponses).toBe(0);
  });

  it("a frame dropped with one call waiting resends it at once; with more, a probe's answer reveals the losses", async () => {
    const { t, rpc } = setup({ timeoutMs: 5000 });
    t.onRequest = (m) => {
      if (m[1] === Op.echo && (m[2] as Uint8Array).length === 0) t.deliver([m[0], 0, m[2]]); // the probe
    };
    const t0 = performance.now();
    const p = rpc.call(Op.hashOneshot, [1, Uint8Array.of(9)]);
    await tick();
    t.deliverRaw(Uint8Array.of(0xc0, 1, 2, 3, 4, 5, 6, 0xc0)); // its answer, damaged: bad CRC
    await until(() => t.sent.length === 2);
    expect(t.sent.map(idOf)).toEqual([1, 1]);
    expect(rpc.probes).toBe(1); // the call was its own probe
    t.deliver([1, 0, new Uint8Array(32)]);
    expect(await p).toEqual(new Uint8Array(32));
    // two calls waiting and a device frame_dropped event: which was lost? the probe's answer tells
    const a = rpc.call(Op.stats);
    const b = rpc.call(Op.rngBytes, [2]);
    await tick();
    t.deliver([null, 2, 3, 1]);
    await until(() => t.sent.length === 7);
    expect(rpc.probes).toBe(2);
    expect(t.sent.slice(2).map((m) => [idOf(m), m[1]])).toEqual([
      [2, Op.stats],
      [3, Op.rngBytes],
      [4, Op.echo], // the probe: its id follows
      [2, Op.stats],
      [3, Op.rngBytes],
    ]);
    t.deliver([2, 0, {}]);
    t.deliver([3, 0, Uint8Array.of(1, 2)]);
    expect(await a).toEqual({});
    expect(await b).toEqual(Uint8Array.of(1, 2));
    expect(performance.now() - t0).toBeLessThan(1000); // not the 1250 ms attempt timer
  });

  it("while the line loses frames, a call that stays unanswered brings a probe: a frame whose END was lost waits for the next one", async () => {
    const { t, rpc } = setup({ timeoutMs: 5000, cleanStreak: 1 });
    t.onRequest = (m) => {
      if (m[1] === Op.echo && (m[2] as Uint8Array).length === 0) t.deliver([m[0], 0, m[2]]);
    };
    t.deliverRaw(Uint8Array.of(0xc0, 1, 2, 3, 4, 5, 6, 0xc0)); // the line is seen damaging frames
    const p = rpc.call(Op.hashUpdate, [1, Uint8Array.of(9)]);
    await until(() => t.sent.length === 3); // the update, the probe (its answer reveals the loss), the update again
    expect(t.sent.map((m) => [idOf(m), m[1]])).toEqual([
      [1, Op.hashUpdate],
      [2, Op.echo],
      [1, Op.hashUpdate],
    ]);
    t.deliver([1, 0, null]);
    expect(await p).toBeNull();
  });

  it("with the anchored window full, a probe resends the oldest unanswered call instead of adding a request", async () => {
    const { t, rpc } = setup({ window: 2, timeoutMs: 5000 });
    const a = rpc.call(Op.rngBytes, [8]);
    const b = rpc.call(Op.rngBytes, [8]);
    await tick();
    t.deliver([null, 2, 3, 1]); // the device dropped a frame
    await until(() => t.sent.length === 3);
    expect(rpc.probes).toBe(1);
    expect(t.sent.map(idOf)).toEqual([1, 2, 1]);
    expect(t.bodies[2]).toEqual(t.bodies[0]);
    t.deliver([1, 0, new Uint8Array(8)]);
    t.deliver([2, 0, new Uint8Array(8)]);
    await Promise.all([a, b]);
  });

  it("a reset fails lost calls with DeviceResetError and resends nothing into the new boot", async () => {
    const { t, rpc } = setup({ timeoutMs: 1000 });
    rpc.noteBootId(new Uint8Array(8).fill(1));
    const a = settled(rpc.call(Op.rngBytes, [4]));
    const b = settled(rpc.call(Op.pkSign, [5, 6, new Uint8Array(32), 0]));
    await tick();
    t.deliver([null, 1, new Uint8Array(8).fill(2)]); // boot event: a new boot
    expect((await a).e).toBeInstanceOf(DeviceResetError);
    expect((await b).e).toBeInstanceOf(DeviceResetError);
    await tick(400); // past the attempt timer (250 ms)
    t.deliver([null, 2, 3, 1]); // nor does a dropped frame probe for them
    await tick(100);
    expect(t.sent.map(idOf)).toEqual([1, 2]);
    expect(rpc.retries).toBe(0);
    expect(rpc.probes).toBe(0);
    // a lost link likewise: DisconnectedError, no resend
    const c = settled(rpc.call(Op.rngBytes, [1]));
    await tick();
    t.drop();
    expect((await c).e).toBeInstanceOf(DisconnectedError);
    await tick(400);
    expect(t.sent.map(idOf)).toEqual([1, 2, 3]);
  });

  it("never out of order on a clean line: a lost ordered request is resent only if nothing was sent after it, another only if no ordered one was", async () => {
    const { t, rpc } = setup({ timeoutMs: 2000 });
    // update 1 lost, update 2 (same object) ran: resending 1 would hash it after 2
    const u1 = settled(rpc.call(Op.hashUpdate, [7, Uint8Array.of(1)]));
    const u2 = rpc.call(Op.hashUpdate, [7, Uint8Array.of(2)]);
    await tick();
    t.deliver([2, 0, null]);
    expect(await u2).toBeNull();
    expect(String((await u1).e)).toMatch(/lost on the link \(not resent: requests sent after it may depend on it\)/);
    expect((await u1).e).toBeInstanceOf(TimeoutError);
    // a digest lost before an update: resent after it, it would include the update
    const d = settled(rpc.call(Op.hashDigest, [7]));
    const u3 = rpc.call(Op.hashUpdate, [7, Uint8Array.of(3)]);
    await tick();
    t.deliver([4, 0, null]);
    await u3;
    expect((await d).e).toBeInstanceOf(TimeoutError);
    // the newest request, or one only order-free requests followed, goes again
    const u4 = settled(rpc.call(Op.hashUpdate, [7, Uint8Array.of(4)]));
    const r = rpc.call(Op.rngBytes, [1]);
    const s = rpc.call(Op.stats);
    await tick();
    t.deliver([7, 0, {}]); // 5 and 6 lost
    await s;
    await tick();
    expect(t.sent.slice(7).map(idOf)).toEqual([6]); // rng_bytes only: update 4 had requests after it
    expect((await u4).e).toBeInstanceOf(TimeoutError);
    t.deliver([6, 0, Uint8Array.of(9)]);
    expect(await r).toEqual(Uint8Array.of(9));
    const u5 = rpc.call(Op.hashUpdate, [7, Uint8Array.of(5)]);
    await tick(600); // attempt timer (2000 / 4 = 500 ms): nothing after it, so it goes again
    expect(t.sent.slice(8).map(idOf)).toEqual([8, 8]);
    t.deliver([8, 0, null]);
    expect(await u5).toBeNull();
    expect(t.sent.length).toBe(10);
  });

  it("while the line loses frames an ordered request goes out alone; a clean streak brings pipelining back", async () => {
    const { t, rpc } = setup({ cleanStreak: 6, window: 8, timeoutMs: 2000 });
    t.onRequest = (m) => setTimeout(() => t.deliver([m[0], 0, null]), 5);
    expect(rpc.careful).toBe(true); // a new session has not shown a clean line yet
    const inFlight: number[] = [];
    rpc.on("settled", () => inFlight.push(rpc.inFlightCount));
    const calls = [rpc.call(Op.rngBytes, [1]), rpc.call(Op.rngBytes, [1])];
    for (let i = 0; i < 3; i++) calls.push(rpc.call(Op.hashUpdate, [3, Uint8Array.of(i)]));
    calls.push(rpc.call(Op.stats));
    await tick();
    expect(t.sent.map((m) => m[1])).toEqual([Op.rngBytes, Op.rngBytes]); // the update waits for both
    await Promise.all(calls);
    // each update was alone on the line: nothing else in flight when it settled
    expect(inFlight.slice(2, 5)).toEqual([0, 0, 0]);
    expect(rpc.careful).toBe(false); // 6 answers without a loss
    const more = [0, 1, 2].map((i) => rpc.call(Op.hashUpdate, [3, Uint8Array.of(i)]));
    await tick();
    expect(t.sent.length).toBe(9); // pipelined again
    await Promise.all(more);
    // a loss makes it careful again, and frameLimit follows the loss rate
    expect(rpc.frameLimit).toBe(Number.POSITIVE_INFINITY);
    for (let i = 0; i < 4; i++) t.deliverRaw(Uint8Array.of(0xc0, 1, 2, 3, 4, 5, 6, 0xc0));
    expect(rpc.careful).toBe(true);
    expect(rpc.frameLimit).toBeGreaterThanOrEqual(256);
    expect(rpc.frameLimit).toBeLessThan(Number.POSITIVE_INFINITY);
  });

  it("reports each call's attempts and its time against its budget", async () => {
    const { t, rpc } = setup({ timeoutMs: 200 });
    const seen: CallSettledInfo[] = [];
    rpc.on("settled", (s) => seen.push(s));
    t.onRequest = (m) => {
      if (m[1] === Op.echo && t.sent.length >= 2) t.deliver([m[0], 0, m[2]]);
    };
    await rpc.call(Op.echo, [Uint8Array.of(1)]);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.attempts).toBe(2);
    expect(seen[0]?.budgetMs).toBeCloseTo(200, -1);
    expect(seen[0]?.activeMs).toBeLessThanOrEqual(seen[0]?.budgetMs ?? 0);
  });

  it("replaceTransport continues on a new link after the old one was lost", async () => {
    const { t, rpc } = setup();
    const p = settled(rpc.call(Op.stats));
    await tick();
    t.drop();
    expect((await p).e).toBeInstanceOf(DisconnectedError);
    const t2 = new MemTransport();
    rpc.replaceTransport(t2);
    const q = rpc.call(Op.stats);
    await tick();
    t2.deliver([idOf(t2.sent[0]), 0, { ok: 1 }]);
    expect(await q).toEqual({ ok: 1 });
  });
});
