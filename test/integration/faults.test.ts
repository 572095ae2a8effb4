// The SDK through a damaged line: the fault relay (hil/fault-relay.ts) sits
// between the host and the device, flipping bits at a byte error rate of
// 1e-4 and dropping 0.1% of the bytes in both directions. A mixed workload
// (hil/workload.ts) runs through it, long streams included (hashes and
// AES-CTR encryptions of 1 MiB on native), each result checked against
// Node's crypto: every operation succeeds (lost requests and answers are
// resent under their ids; the device answers one that already ran from its
// record), no wrong result, no request outliving its timeout. The figures
// are printed. Then TLS records through the same line: device client
// sessions (TLS 1.2, then 1.3) echoing random data through a Node TLS server
// on the loopback (hil/tls-echo.ts), every byte and both SHA-256 digests
// right, no tls_* request past its timeout.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Relay, startRelay } from "../../hil/fault-relay.js";
import { formatTlsReport, makeSelfSignedP256, runTlsWorkload } from "../../hil/tls-echo.js";
import { formatReport, HANG_SLACK_MS, runWorkload } from "../../hil/workload.js";
import { type Device, open, utf8 } from "../../host/src/index.js";
import { type NativeTarget, startNative } from "../../host/src/targets/native.js";
import { type QemuTarget, startQemu } from "../../host/src/targets/qemu.js";
import { TARGET } from "./target.js";

const SEED = Number(process.env.MBEDLINK_FAULT_SEED ?? 20261127);
const LINE = { flip: 1e-4, drop: 1e-3 };
/** 10,000 operations on native; QEMU's emulated UART (about 12 KiB/s) gets fewer, and shorter streams. */
const OPS = TARGET === "qemu" ? 1000 : 10_000;
const STREAMS = TARGET === "qemu" ? { streamEvery: 500, streamBytes: 16 << 10 } : { streamEvery: 1000, streamBytes: 1 << 20 };
const TIMEOUT_MS = TARGET === "qemu" ? 5000 : 3000;
/** Bytes each way of each TLS echo session: a short run. */
const TLS_BYTES = TARGET === "qemu" ? 8 << 10 : 256 << 10;

describe.runIf(TARGET !== "port")(`through a faulty line (${TARGET})`, () => {
  let target: NativeTarget | QemuTarget;
  let relay: Relay;
  let dev: Device;

  beforeAll(async () => {
    target = TARGET === "qemu" ? await startQemu() : await startNative();
    relay = await startRelay({ devicePath: target.path, seed: SEED });
    dev = await open(relay.hostPath, { timeoutMs: TIMEOUT_MS });
  });
  afterAll(async () => {
    await dev?.close();
    await relay?.stop();
    await target?.stop();
  });

  it(`${OPS} mixed operations at a byte error rate of 1e-4 plus 0.1% dropped bytes: every one succeeds, none wrong, no hang`, async () => {
    const before = await dev.stats();
    relay.set({ up: LINE, down: LINE });
    const r = await runWorkload(dev, { ops: OPS, seed: SEED, timeoutMs: TIMEOUT_MS, maxData: TARGET === "qemu" ? 256 : 512, ...STREAMS });
    relay.set({ up: {}, down: {} });
    const line = relay.stats();
    // Clean line again: the device serves, and nothing the workload made is left on it.
    expect(Buffer.from(await dev.echo(utf8("clean again"))).toString()).toBe("clean again");
    const after = await dev.stats();
    console.log(
      [
        `faults (${TARGET}, seed ${SEED}):`,
        formatReport(r),
        `line up: ${line.up.bytesIn} bytes, ${line.up.flipped} flipped, ${line.up.dropped} dropped; down: ${line.down.bytesIn} bytes, ${line.down.flipped} flipped, ${line.down.dropped} dropped`,
        `host drops ${dev.linkCounters.rxDropped}, device drops ${dev.rpc.deviceDrops}, late responses ${dev.rpc.lateResponses}, answered from the record ${(after.rxReplayed as number) - (before.rxReplayed as number)}`,
      ].join("\n"),
    );
    expect(r.ops).toBe(OPS);
    expect(r.samples.filter((s) => !s.startsWith("hang"))).toEqual([]);
    expect(r.errors).toEqual({});
    expect(r.failed).toBe(0);
    expect(r.wrong).toBe(0);
    expect(r.untyped).toBe(0);
    expect(r.hangs).toBe(0);
    expect(r.maxOverrunMs).toBeLessThanOrEqual(HANG_SLACK_MS);
    // the faults were real, and recovery did its part
    expect(line.up.flipped + line.up.dropped).toBeGreaterThan(0);
    expect(line.down.flipped + line.down.dropped).toBeGreaterThan(0);
    expect(r.retries).toBeGreaterThan(0);
    expect((after.rxReplayed as number) - (before.rxReplayed as number)).toBeGreaterThan(0);
    expect(r.byKind["hash-long"]).toBeGreaterThan(0);
    expect(r.byKind["ctr-long"]).toBeGreaterThan(0);
    expect(after.handlesUsed).toBe(before.handlesUsed);
    expect(after.heapUsed).toBe(before.heapUsed);
  }, 900_000);

  it(`TLS 1.2 and 1.3 sessions each echo ${TLS_BYTES >> 10} KiB through the same line: every byte right, no hang`, async () => {
    const tmp = mkdtempSync(join(tmpdir(), "faults-tls-"));
    try {
      const cred = makeSelfSignedP256(tmp);
      const before = await dev.stats();
      const line0 = relay.stats();
      const retries0 = dev.rpc.retries;
      relay.set({ up: LINE, down: LINE });
      const r = await runTlsWorkload(dev, cred, { bytes: TLS_BYTES, sessions: 2, piece: 512 }).finally(() =>
        relay.set({ up: {}, down: {} }),
      );
      const line = relay.stats();
      const after = await dev.stats();
      const hit = (d: "up" | "down") => line[d].flipped + line[d].dropped - line0[d].flipped - line0[d].dropped;
      console.log(
        `faults TLS (${TARGET}, seed ${SEED}): ${formatTlsReport(r)}; line faults up ${hit("up")}, down ${hit("down")}; resends ${dev.rpc.retries - retries0}`,
      );
      expect(r.samples).toEqual([]);
      expect(r.okSessions).toBe(2);
      expect(r.failed).toBe(0);
      expect(r.wrong).toBe(0);
      expect(r.hangs).toBe(0);
      expect(r.bytes).toBe(2 * TLS_BYTES);
      expect(hit("up")).toBeGreaterThan(0);
      expect(hit("down")).toBeGreaterThan(0);
      expect(after.handlesUsed).toBe(before.handlesUsed);
      expect(after.heapUsed).toBe(before.heapUsed);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 600_000);

  it("the same seed replays the same line faults", async () => {
    // Two relays with one seed, one after the other in front of the same
    // device, damage the same request stream identically.
    const faults = async () => {
      const r = await startRelay({ devicePath: target.path, seed: SEED });
      try {
        const d = await open(r.hostPath, { timeoutMs: TIMEOUT_MS, retries: 0 });
        // Only the 40 echoes on the line: no link probes, whose timing (and so
        // whether one goes) varies from run to run and would shift the byte
        // stream the seeded faults fall on. A lost echo times out.
        d.rpc.inOrder = false;
        const outcome: string[] = [];
        try {
          r.set({ up: { flip: 0.003, drop: 0.003 } });
          for (let i = 0; i < 40; i++) {
            await d.echo(new Uint8Array(100).fill(i), { timeoutMs: 500 }).then(
              () => outcome.push("ok"),
              (e: Error) => outcome.push(e.name),
            );
          }
        } finally {
          await d.close();
        }
        return { outcome, up: r.stats().up };
      } finally {
        await r.stop();
      }
    };
    // One relay on the device at a time (the port is locked): the shared one goes first.
    await dev.close();
    await relay.stop();
    const a = await faults();
    const b = await faults();
    expect(a.outcome.filter((o) => o !== "ok").length).toBeGreaterThan(0);
    expect(b.outcome).toEqual(a.outcome);
    expect(b.up.flipped).toBe(a.up.flipped);
    expect(b.up.dropped).toBe(a.up.dropped);
  }, 300_000);
});
