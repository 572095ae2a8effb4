// Recovery from a device that dies or reboots while requests are streaming.
// lifecycle.test.ts covers the single frozen-then-reset call and a death on
// a port the SDK does not own (DisconnectedError, final); here:
// * a device the SDK started (open({ target })) is killed (SIGKILL) in the
//   middle of pipelined traffic: in-flight calls fail with DeviceResetError,
//   the SDK starts a new device process on its own, emits 'reset' then
//   'reconnected', and the next call succeeds;
// * a board reset (native SIGUSR1, QEMU monitor system_reset) in the middle
//   of pipelined traffic: the same, on the same link.
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { startRelay } from "../../hil/fault-relay.js";
import {
  BadHandleError,
  type Device,
  type DeviceInfo,
  DeviceResetError,
  open,
  type ResetInfo,
  StaleHandleError,
  utf8,
} from "../../host/src/index.js";
import { startNative } from "../../host/src/targets/native.js";
import { startQemu } from "../../host/src/targets/qemu.js";
import { alive, childrenMatching } from "./procs.js";
import { bulk, type Session, startSession, TARGET, until } from "./target.js";

const sha256hex = (d: Uint8Array) => createHash("sha256").update(d).digest("hex");
const deviceProgram = TARGET === "qemu" ? "qemu-system-arm" : "mbedlink-native";

/** Starts pipelined traffic: a long streaming hash and a batch of one-shots, each outcome kept. */
function stream(dev: Device) {
  const big = new Uint8Array(bulk(4 << 20, 96 << 10)).fill(0x61);
  const small = utf8("in flight");
  const h = dev.hash.sha256();
  h.update(big);
  const digest = h.digest().then(
    (d) => ({ ok: sha256hex(d) === sha256hex(big), err: undefined as unknown }),
    (e: unknown) => ({ ok: false, err: e }),
  );
  const oneShots = Array.from({ length: 16 }, () =>
    dev.hash.digest("sha256", small).then(
      (d) => ({ ok: sha256hex(d) === sha256hex(small), err: undefined as unknown }),
      (e: unknown) => ({ ok: false, err: e }),
    ),
  );
  return { h, digest, oneShots };
}

/**
 * Every one-shot is a correct result or a DeviceResetError, at least one the
 * error. The streaming digest cannot have finished (4 MiB): its updates died
 * in the reset, so digest() reports the object stale (StaleHandleError; its
 * own request failed with DeviceResetError).
 */
async function expectResetOutcomes(s: ReturnType<typeof stream>): Promise<void> {
  const shots = await Promise.all(s.oneShots);
  for (const o of shots) {
    if (!o.ok) expect(o.err).toBeInstanceOf(DeviceResetError);
  }
  expect(shots.some((o) => o.err instanceof DeviceResetError)).toBe(true);
  const d = await s.digest;
  expect(d.ok).toBe(false);
  expect(d.err instanceof DeviceResetError || d.err instanceof StaleHandleError, String(d.err)).toBe(true);
}

function recordEvents(dev: Device) {
  const events: string[] = [];
  const resets: ResetInfo[] = [];
  const sessions: DeviceInfo[] = [];
  dev.on("reset", (r) => {
    events.push("reset");
    resets.push(r);
  });
  dev.on("reconnected", (i) => {
    events.push("reconnected");
    sessions.push(i);
  });
  return { events, resets, sessions };
}

const sessions: Session[] = [];
const devices: Device[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close().catch(() => {});
  for (const d of devices.splice(0)) await d.close().catch(() => {});
});

describe.runIf(TARGET !== "port")(`reset recovery (${TARGET})`, () => {
  it(`a device the SDK started is killed mid-stream: DeviceResetError in flight, restarted on its own, the next call works`, async () => {
    const dev = await open({ target: TARGET === "qemu" ? "qemu" : "native", timeoutMs: 20_000 });
    devices.push(dev);
    const ev = recordEvents(dev);
    const [pid, ...more] = childrenMatching(deviceProgram);
    expect(pid).toBeDefined();
    expect(more).toEqual([]);
    const bootBefore = dev.info.bootId;
    const old = dev.hash.sha256(utf8("abc"));
    await old.digest();

    const s = stream(dev);
    await until(() => dev.rpc.inFlightCount > 0 && dev.linkCounters.rxFrames > 2);
    process.kill(pid as number, "SIGKILL");
    await expectResetOutcomes(s);

    // No reconnecting by hand: the next call waits for the new device and works.
    expect(await dev.hash.hexdigest("sha256", utf8("abc"))).toBe(sha256hex(utf8("abc")));
    expect(ev.events).toEqual(["reset", "reconnected"]);
    expect(ev.sessions[0]?.bootId).toBe(dev.info.bootId);
    expect(dev.info.bootId).not.toBe(bootBefore);
    expect(() => old.update(utf8("x"))).toThrow(StaleHandleError);
    await expect(old.digest()).rejects.toBeInstanceOf(StaleHandleError);
    expect((await dev.stats()).handlesUsed).toBe(0);

    // A new process replaced the dead one; close() stops it.
    const now = childrenMatching(deviceProgram);
    expect(now.length).toBe(1);
    expect(now[0]).not.toBe(pid);
    expect(alive(pid as number)).toBe(false);
    await dev.close();
    await until(() => !alive(now[0] as number), 10_000);
  });

  it("killed twice in a row it recovers twice; closed while restarting, no device process is left behind", async () => {
    const dev = await open({ target: TARGET === "qemu" ? "qemu" : "native", timeoutMs: 20_000 });
    devices.push(dev);
    const ev = recordEvents(dev);
    for (let round = 1; round <= 2; round++) {
      const [pid] = childrenMatching(deviceProgram).filter(alive); // not the previous round's unreaped zombie
      process.kill(pid as number, "SIGKILL");
      // 'reset': calls made from now on wait for the new device. Generous: on a loaded machine the
      // child's exit can take seconds to reach the event loop (a correctness test, not a timing one).
      // Counted by kind: 'reconnected' can follow within milliseconds, before a poll sees the count in between.
      await until(() => ev.events.filter((e) => e === "reset").length === round, 30_000);
      expect(await dev.hash.hexdigest("sha256", utf8("abc"))).toBe(sha256hex(utf8("abc")));
      expect(ev.events.filter((e) => e === "reconnected")).toHaveLength(round);
    }
    const [pid] = childrenMatching(deviceProgram).filter(alive);
    process.kill(pid as number, "SIGKILL");
    await until(() => ev.events.filter((e) => e === "reset").length === 3, 30_000); // the third 'reset'
    await dev.close(); // while the SDK starts the next device
    await until(() => childrenMatching(deviceProgram).every((p) => !alive(p)), 10_000);
  });

  it("a reset whose boot event was lost on the line is found by the next bad_handle answer", async () => {
    const t = TARGET === "qemu" ? await startQemu() : await startNative();
    const relay = await startRelay({ devicePath: t.path, seed: 1 });
    try {
      const dev = await open(relay.hostPath, { timeoutMs: 20_000 });
      devices.push(dev);
      const ev = recordEvents(dev);
      const bootBefore = dev.info.bootId;
      const h = dev.hash.sha256(utf8("before"));
      expect(h.handle).toBeGreaterThan(0); // a device context (a digest this small makes one only when asked)
      await h.digest();
      relay.cut(1000); // the boot event is lost
      await t.reset();
      await new Promise((r) => setTimeout(r, 1200));
      expect(ev.events).toEqual([]);
      h.update(utf8(" and after"));
      const err = await h.digest().catch((e: unknown) => e);
      expect(err instanceof BadHandleError || err instanceof DeviceResetError || err instanceof StaleHandleError, String(err)).toBe(true);
      await until(() => ev.events.length === 2, 10_000);
      expect(ev.events).toEqual(["reset", "reconnected"]);
      expect(dev.info.bootId).not.toBe(bootBefore);
      expect(() => h.update(utf8("x"))).toThrow(StaleHandleError);
      expect(await dev.hash.hexdigest("sha256", utf8("abc"))).toBe(sha256hex(utf8("abc")));
      await dev.close();
    } finally {
      await relay.stop();
      await t.stop();
    }
  });

  it("a board reset mid-stream: DeviceResetError in flight, 'reset' then 'reconnected', the next call works", async () => {
    const session = await startSession();
    sessions.push(session);
    const { dev, control } = session;
    if (!control) throw new Error("this target cannot be reset");
    const ev = recordEvents(dev);
    const bootBefore = dev.info.bootId;
    const s = stream(dev);
    await until(() => dev.rpc.inFlightCount > 0 && dev.linkCounters.rxFrames > 2);
    await control.reset();
    await expectResetOutcomes(s);
    expect(() => s.h.update(utf8("x"))).toThrow(StaleHandleError);
    expect(await dev.hash.hexdigest("sha256", utf8("abc"))).toBe(sha256hex(utf8("abc")));
    await until(() => ev.events.length >= 2);
    expect(ev.events).toEqual(["reset", "reconnected"]);
    expect(ev.resets[0]?.epoch).toBe(1);
    expect(dev.info.bootId).not.toBe(bootBefore);
    expect((await dev.stats()).handlesUsed).toBe(0);
  });
});
