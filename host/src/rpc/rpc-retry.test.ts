// Link recovery in the RPC layer (spec §6): losses revealed by in-order
// answers, bounded resends of idempotent calls within their timeout, no
// resend of anything else, probes after dropped frames.
import { describe, expect, it } from "vitest";
import { DisconnectedError, HandleInUseError, TimeoutError } from "../base/errors.js";
import { Op, Status } from "../base/protocol.generated.js";
import { MemTransport } from "../link/testing/mem-transport.js";
import { type CallSettledInfo, Rpc } from "./rpc.js";

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
const settled = <T>(p: Promise<T>) =>
  p.then(
    (v) => ({ ok: true as const, v, e: undefined }),
    (e: unknown) => ({ ok: false as const, v: undefined, e }),
  );

function setup(opts: { window?: number; timeoutMs?: number; retries?: number } = {}) {
  const t = new MemTransport();
  const rpc = new Rpc(t, { timeoutMs: 1000, window: 4, retries: 3, inOrder: true, ...opts });
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

describe("rpc link recovery", () => {
  it("an answer reveals the earlier unanswered requests lost: idempotent ones are resent, others fail at once", async () => {
    const { t, rpc } = setup();
    const echo = settled(rpc.call(Op.echo, [Uint8Array.of(1)]));
    const update = settled(rpc.call(Op.hashUpdate, [5, Uint8Array.of(2)]));
    const stats = rpc.call(Op.stats);
    await tick();
    expect(t.sent.map((m) => m[1])).toEqual([Op.echo, Op.hashUpdate, Op.stats]);
    const t0 = performance.now();
    t.deliver([idOf(t.sent[2]), 0, { heap_used: 1 }]); // the first two were lost
    expect(await stats).toEqual({ heap_used: 1 });
    const u = await update;
    expect(u.e).toBeInstanceOf(TimeoutError);
    expect(String(u.e)).toMatch(/lost on the link \(not retried: the op is not idempotent\)/);
    expect(performance.now() - t0).toBeLessThan(100); // not after the timeout
    await tick();
    // echo went out again under a new id, with the same arguments
    expect(t.sent.length).toBe(4);
    const again = t.sent[3] as unknown[];
    expect(again[1]).toBe(Op.echo);
    expect(again[2]).toEqual(Uint8Array.of(1));
    expect(idOf(again)).not.toBe(idOf(t.sent[0]));
    t.deliver([idOf(again), 0, Uint8Array.of(1)]);
    expect((await echo).v).toEqual(Uint8Array.of(1));
    expect(rpc.retries).toBe(1);
    expect(rpc.lostFrames).toBe(2);
  });

  it("a lost request nothing reveals is resent when its attempt timer runs out, and succeeds within its timeout", async () => {
    const { t, rpc } = setup({ timeoutMs: 1200 });
    const t0 = performance.now();
    const p = rpc.call(Op.echo, [Uint8Array.of(7)]);
    await tick(400); // attempt = 1200 / 4 = 300 ms
    expect(t.sent.length).toBe(2);
    t.deliver([idOf(t.sent[1]), 0, Uint8Array.of(7)]);
    expect(await p).toEqual(Uint8Array.of(7));
    expect(performance.now() - t0).toBeLessThan(1200);
  });

  it("gives up after `retries` resends, at the call's timeout and not later", async () => {
    const { t, rpc } = setup({ timeoutMs: 300, retries: 2 });
    const t0 = performance.now();
    const r = await settled(rpc.call(Op.hashOneshot, [1, Uint8Array.of(1)]));
    const took = performance.now() - t0;
    expect(r.e).toBeInstanceOf(TimeoutError);
    expect(t.sent.length).toBe(3);
    expect(new Set(t.sent.map(idOf)).size).toBe(3);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(300 + 100);
  });

  it("never resends a non-idempotent call: a lost answer is a TimeoutError after the timeout", async () => {
    const { t, rpc } = setup({ timeoutMs: 150 });
    for (const op of [Op.hashUpdate, Op.hmacUpdate, Op.cipherUpdate, Op.pkSign, Op.rngBytes]) {
      const before = t.sent.length;
      const r = await settled(rpc.call(op, [1]));
      expect(r.e).toBeInstanceOf(TimeoutError);
      expect(t.sent.length - before).toBe(1);
    }
    expect(rpc.retries).toBe(0);
  });

  it("a resent create or free whose first attempt ran is done: handle_in_use / bad_handle on a resend mean success", async () => {
    const { t, rpc } = setup({ timeoutMs: 2000 });
    const create = rpc.call(Op.hashNew, [7, 6]);
    const stats = rpc.call(Op.stats);
    await tick();
    t.deliver([idOf(t.sent[1]), 0, {}]); // hash_new's answer was lost (it ran)
    await stats;
    await until(() => t.sent.length === 3);
    expect(t.sent[2]?.slice(1)).toEqual([Op.hashNew, 7, 6]);
    t.deliver([idOf(t.sent[2]), Status.handleInUse, 0, "handle 7 is live"]);
    expect(await create).toBeNull();
    const free = rpc.call(Op.free, [7]);
    const stats2 = rpc.call(Op.stats);
    await until(() => t.sent.length === 5);
    t.deliver([idOf(t.sent[4]), 0, {}]);
    await stats2;
    await until(() => t.sent.length === 6);
    t.deliver([idOf(t.sent[5]), Status.badHandle, 0, "handle 7 is not live"]);
    expect(await free).toBeNull();
    // on a first attempt the same answers are errors
    const again = settled(rpc.call(Op.hashNew, [7, 6]));
    await until(() => t.sent.length === 7);
    t.deliver([idOf(t.sent[6]), Status.handleInUse, 0, "handle 7 is live"]);
    expect((await again).e).toBeInstanceOf(HandleInUseError);
  });

  it("the first answer wins: a late answer to the first transmission settles a resent call, the second counts as late", async () => {
    const { t, rpc } = setup({ timeoutMs: 1200 });
    const p = rpc.call(Op.echo, [Uint8Array.of(3)]);
    await tick(400);
    expect(t.sent.length).toBe(2);
    t.deliver([idOf(t.sent[0]), 0, Uint8Array.of(3)]);
    expect(await p).toEqual(Uint8Array.of(3));
    t.deliver([idOf(t.sent[1]), 0, Uint8Array.of(3)]);
    expect(rpc.lateResponses).toBe(1);
  });

  it("a frame dropped on either side sends a probe whose answer reveals the loss at once", async () => {
    const { t, rpc } = setup({ timeoutMs: 5000 });
    t.onRequest = (m) => {
      if (m[1] === Op.echo && (m[2] as Uint8Array).length === 0) t.deliver([m[0], 0, m[2]]); // the probe
    };
    const t0 = performance.now();
    const p = rpc.call(Op.hashOneshot, [1, Uint8Array.of(9)]);
    await tick();
    t.deliverRaw(Uint8Array.of(0xc0, 1, 2, 3, 4, 5, 6, 0xc0)); // the response, damaged: bad CRC
    // no answer within two response times: the probe goes, its answer reveals the loss
    await until(() => t.sent.filter((m) => m[1] === Op.hashOneshot).length === 2);
    expect(rpc.probes).toBe(1);
    const resent = t.sent.filter((m) => m[1] === Op.hashOneshot);
    t.deliver([idOf(resent[1]), 0, new Uint8Array(32)]);
    expect(await p).toEqual(new Uint8Array(32));
    expect(performance.now() - t0).toBeLessThan(1000); // not the 1250 ms attempt timer
    // a device frame_dropped event does the same
    const q = rpc.call(Op.stats);
    await tick();
    t.deliver([null, 2, 3, 1]);
    await until(() => t.sent.filter((m) => m[1] === Op.stats).length === 2);
    expect(rpc.probes).toBe(2);
    const stats = t.sent.filter((m) => m[1] === Op.stats);
    t.deliver([idOf(stats[1]), 0, {}]);
    expect(await q).toEqual({});
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
