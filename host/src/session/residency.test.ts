// Residency against a model device that keeps a real handle table (digest
// contexts as the bytes fed so far, obj_wrap/obj_unwrap as their copy):
// more objects than the table holds give the right digests with the device
// never over its table, a device that holds handles the host does not know of
// is recovered from, pinned objects are never wrapped, and nothing is left on
// the device or counted on the host at the end.
import { createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StaleHandleError, TooManyHandlesError } from "../base/errors.js";
import { Op, Status } from "../base/protocol.generated.js";
import { hex } from "../base/util.js";
import { Device } from "../device.js";
import { fail, ScriptedDevice } from "../link/testing/scripted-device.js";
import type { Hash } from "../modules/hash.js";
import type { Hmac } from "../modules/hmac.js";
import { HANDLE_RESERVE } from "./residency.js";

const MAX = 8;

/** A handle table of MAX entries; `hidden` of them held by someone the host does not know of. */
class Model {
  readonly live = new Map<number, { kind: "hash" | "kex"; parts: Uint8Array[] }>();
  hidden = 0;
  maxSeen = 0;
  wrapped = 0;
  /** The states wrapped so far, by blob (a real blob carries the state; a frame here is too small for that). */
  private readonly blobs = new Map<string, Uint8Array[]>();

  constructor(t: ScriptedDevice) {
    const create = (h: number, kind: "hash" | "kex", parts: Uint8Array[]) => {
      if (this.live.has(h)) return fail(Status.handleInUse, "in use");
      if (this.live.size + this.hidden >= MAX) return fail(Status.tooManyHandles, "full");
      this.live.set(h, { kind, parts });
      this.maxSeen = Math.max(this.maxSeen, this.live.size + this.hidden);
      return null;
    };
    const obj = (h: unknown) => this.live.get(h as number);
    t.answers.set(Op.hashNew, ([h]) => create(h as number, "hash", []));
    t.answers.set(Op.kexNew, ([h]) => create(h as number, "kex", []));
    t.answers.set(Op.hashUpdate, ([h, d]) => {
      const o = obj(h);
      if (!o) return fail(Status.badHandle, "not live");
      o.parts.push(d as Uint8Array);
      return null;
    });
    t.answers.set(Op.hashDigest, ([h]) => {
      const o = obj(h);
      if (!o) return fail(Status.badHandle, "not live");
      const c = createHash("sha256");
      for (const p of o.parts) c.update(p);
      return new Uint8Array(c.digest());
    });
    t.answers.set(
      Op.hashOneshot,
      ([, d]) =>
        new Uint8Array(
          createHash("sha256")
            .update(d as Uint8Array)
            .digest(),
        ),
    );
    t.answers.set(Op.hashCopy, ([src, dst]) => {
      const o = obj(src);
      return o ? create(dst as number, "hash", [...o.parts]) : fail(Status.badHandle, "not live");
    });
    t.answers.set(Op.objWrap, ([h]) => {
      const o = obj(h);
      if (!o) return fail(Status.badHandle, "not live");
      if (o.kind !== "hash") return fail(Status.wrongHandleType, "cannot be swapped out");
      this.live.delete(h as number);
      const blob = `blob ${++this.wrapped}`;
      this.blobs.set(blob, o.parts);
      return new Uint8Array(Buffer.from(blob));
    });
    t.answers.set(Op.objUnwrap, ([h, blob]) => {
      const parts = this.blobs.get(Buffer.from(blob as Uint8Array).toString());
      return parts ? create(h as number, "hash", [...parts]) : fail(Status.badArgument, "wrapped state from another boot or damaged");
    });
    t.answers.set(Op.free, ([h]) => (this.live.delete(h as number) ? null : fail(Status.badHandle, "not live")));
  }
}

let t: ScriptedDevice;
let model: Model;
let dev: Device;

beforeEach(async () => {
  t = new ScriptedDevice({ max_handles: MAX, hashes: [4] });
  model = new Model(t);
  dev = await Device.connect(t, { timeoutMs: 2000 });
});
afterEach(async () => {
  await dev.close();
});

/** 20 digest contexts (each fed past one request), updated in turn over `rounds` rounds; returns them with Node's digests. */
function workload(rounds: number): { h: Hash; node: ReturnType<typeof createHash> }[] {
  const objs = Array.from({ length: 20 }, () => ({ h: dev.hash.new("sha256"), node: createHash("sha256") }));
  for (let r = 0; r <= rounds; r++) {
    for (const [i, o] of objs.entries()) {
      const data = new Uint8Array(r === 0 ? dev.chunkSize + 1 : 1 + ((i * 7 + r) % 50)).fill(i + r);
      o.h.update(data);
      o.node.update(data);
    }
  }
  return objs;
}

async function expectNothingLeft(objs: { h: Hash | Hmac }[]): Promise<void> {
  for (const o of objs) await o.h.close();
  expect(model.live.size).toBe(0);
  expect(dev._context.residency.liveHandles).toBe(0);
}

describe("residency", () => {
  it("keeps the device within max_handles - reserve: idle objects are wrapped before a create and come back on use", async () => {
    const objs = workload(3);
    for (const o of objs) expect(hex(await o.h.digest())).toBe(o.node.digest("hex"));
    expect(model.maxSeen).toBeLessThanOrEqual(MAX - HANDLE_RESERVE);
    const c = dev._context.residency.counters;
    expect(c.wraps).toBeGreaterThan(0);
    expect(c.unwraps).toBeGreaterThan(0);
    expect(c.full).toBe(0);
    // a wrap goes out right before the create it makes room for
    const firstWrap = t.sent.findIndex((m) => m[1] === Op.objWrap);
    expect(t.sent[firstWrap + 1]?.[1]).toBe(Op.hashNew);
    await expectNothingLeft(objs);
  });

  it("a device holding handles the host does not know of: too_many_handles, then a swap, the create and its requests again", async () => {
    model.hidden = 4;
    const objs = workload(2);
    for (const o of objs) expect(hex(await o.h.digest())).toBe(o.node.digest("hex"));
    expect(dev._context.residency.counters.full).toBeGreaterThan(0);
    expect(model.maxSeen).toBeLessThanOrEqual(MAX);
    await expectNothingLeft(objs);
  });

  it("copies and HMAC-free digests of little data need no handle; a copy's source stays while the copy is made", async () => {
    const small = dev.hash.sha256(Uint8Array.of(1, 2, 3));
    expect(hex(await small.digest())).toBe(
      createHash("sha256")
        .update(Uint8Array.of(1, 2, 3))
        .digest("hex"),
    );
    expect(small.isLazy).toBe(true);
    const objs = workload(1);
    const copies = objs.map((o) => ({ h: o.h.copy(), node: o.node.copy() }));
    for (const o of [...objs, ...copies]) expect(hex(await o.h.digest())).toBe(o.node.digest("hex"));
    expect(model.maxSeen).toBeLessThanOrEqual(MAX - HANDLE_RESERVE);
    await expectNothingLeft([...objs, ...copies, { h: small }]);
  });

  it("pinned objects are never wrapped; with nothing to swap the create goes and the device refuses it as before", async () => {
    const kex = Array.from({ length: MAX }, () => dev.pk.DHServer((1n << 520n) + 1n, 2n));
    await new Promise((r) => setTimeout(r, 20));
    const h = dev.hash.sha256(new Uint8Array(dev.chunkSize + 1));
    await expect(h.digest()).rejects.toBeInstanceOf(TooManyHandlesError);
    expect(model.wrapped).toBe(0);
    for (const k of kex) await k.close();
    await h.close();
    expect(model.live.size).toBe(0);
    expect(dev._context.residency.liveHandles).toBe(0);
  });

  it("close() of a swapped object sends nothing; after a reset a swapped object is stale", async () => {
    const objs = workload(0);
    await Promise.all(objs.map((o) => o.h.digest()));
    const swapped = objs.filter((o) => o.h.residence === "swapped");
    expect(swapped.length).toBeGreaterThan(0);
    const sent = t.sent.length;
    for (const o of swapped) await o.h.close();
    expect(t.sent.length).toBe(sent);
    const other = objs.find((o) => o.h.residence === "swapped" || o.h.residence === "resident");
    t.deliver([null, 1, new Uint8Array(8).fill(9)]); // a boot event: a new boot id
    await new Promise((r) => setTimeout(r, 50));
    expect(() => other?.h.update(Uint8Array.of(1))).toThrow(StaleHandleError);
  });
});
