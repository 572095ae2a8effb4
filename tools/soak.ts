// Soak: a mixed workload through the fault relay for N minutes.
//
//   npm run soak -- --minutes N [--target native|qemu] [--seed S]
//                   [--ber 1e-4] [--drop 1e-3] [--concurrency 4] [--timeout-ms 3000]
//                   [--stream-every 1000] [--stream-kib 1024] [--tls-kib 64]
//
// Starts the device (native simulator or QEMU), puts hil/fault-relay.ts in
// front of it (bit flips at byte error rate --ber and --drop dropped bytes,
// both directions, from --seed), runs hil/workload.ts (hash one-shot and
// streaming, HMAC, AES-CBC, AES-GCM, ECDSA P-256 sign/verify, and every
// --stream-every operations a hash or AES-CTR stream of --stream-kib KiB)
// and beside it TLS records: device client sessions, TLS 1.2 and 1.3 in
// turn, each echoing --tls-kib KiB through a Node TLS server on the
// loopback (hil/tls-echo.ts). Prints requests done, failed operations,
// wrong results and hangs (all must be 0), errors by type, the TLS sessions'
// counts, and the device heap before and after. Exits 1 when an operation
// or a TLS session failed, a result or an echoed byte was wrong, a request
// hung, or the heap did not return to where it was.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Relay, startRelay } from "../hil/fault-relay.js";
import { formatTlsReport, makeSelfSignedP256, runTlsWorkload } from "../hil/tls-echo.js";
import { formatReport, runWorkload } from "../hil/workload.js";
import { type Device, type DeviceStats, open } from "../host/src/index.js";
import { startNative } from "../host/src/targets/native.js";
import { startQemu } from "../host/src/targets/qemu.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "1" },
    target: { type: "string", default: "native" },
    seed: { type: "string" },
    ber: { type: "string", default: "1e-4" },
    drop: { type: "string", default: "1e-3" },
    concurrency: { type: "string", default: "4" },
    "timeout-ms": { type: "string" },
    "stream-every": { type: "string" },
    "stream-kib": { type: "string" },
    "tls-kib": { type: "string" },
  },
});

const num = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`soak: --${name} must be a non-negative number, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
};
const target = values.target;
if (target !== "native" && target !== "qemu") {
  console.error(`soak: --target must be native or qemu, got ${JSON.stringify(target)}`);
  process.exit(2);
}
const minutes = num("minutes", values.minutes);
const seed = values.seed !== undefined ? num("seed", values.seed) >>> 0 : (Date.now() & 0xffffffff) >>> 0;
const line = { flip: num("ber", values.ber), drop: num("drop", values.drop) };
const timeoutMs = num("timeout-ms", values["timeout-ms"] ?? (target === "qemu" ? "5000" : "3000"));
const streamEvery = num("stream-every", values["stream-every"] ?? (target === "qemu" ? "250" : "1000"));
const streamBytes = 1024 * num("stream-kib", values["stream-kib"] ?? (target === "qemu" ? "64" : "1024"));
const tlsBytes = 1024 * num("tls-kib", values["tls-kib"] ?? (target === "qemu" ? "8" : "64"));

/** stats() on a clean line (it is idempotent and retried, but the line is clean anyway). */
async function heap(dev: Device): Promise<DeviceStats> {
  return dev.stats();
}

const fmtHeap = (s: DeviceStats) => `used ${s.heapUsed} B, high-water ${s.heapPeak} B of ${s.heapSize} B, handles ${s.handlesUsed}`;

async function main(): Promise<number> {
  console.log(
    `soak: ${minutes} min on ${target}, seed ${seed}, byte error rate ${line.flip}, dropped bytes ${line.drop}, timeout ${timeoutMs} ms, a ${streamBytes >> 10} KiB stream every ${streamEvery} operations, TLS echo sessions of ${tlsBytes >> 10} KiB each way`,
  );
  const device = target === "qemu" ? await startQemu() : await startNative();
  let relay: Relay | undefined;
  let dev: Device | undefined;
  const certDir = mkdtempSync(join(tmpdir(), "soak-tls-"));
  try {
    const cred = makeSelfSignedP256(certDir);
    relay = await startRelay({ devicePath: device.path, seed });
    dev = await open(relay.hostPath, { timeoutMs });
    const before = await heap(dev);
    console.log(`device: ${dev.info.board}, firmware ${dev.info.firmwareVersion}, Mbed TLS ${dev.info.mbedtlsVersion}`);
    console.log(`heap before: ${fmtHeap(before)}`);
    relay.set({ up: line, down: line });
    const t0 = Date.now();
    const durationMs = minutes * 60_000;
    const tlsRun = runTlsWorkload(dev, cred, { bytes: tlsBytes, durationMs, piece: 512 });
    tlsRun.catch(() => {}); // awaited below; a failed mixed workload must not leave it unhandled
    const r = await runWorkload(dev, {
      durationMs,
      seed,
      timeoutMs,
      concurrency: num("concurrency", values.concurrency),
      streamEvery,
      streamBytes,
      progressEvery: 2000,
      onProgress: (p) =>
        console.log(
          `  ${((Date.now() - t0) / 1000).toFixed(0)} s: ${p.ops} operations, ${p.requests} requests, failed ${p.failed}, wrong ${p.wrong}, hangs ${p.hangs}, resends ${p.retries}`,
        ),
    });
    const t = await tlsRun;
    relay.set({ up: {}, down: {} });
    const after = await heap(dev);
    const st = relay.stats();
    console.log(formatReport(r));
    console.log(formatTlsReport(t));
    console.log(
      `line: up ${st.up.bytesIn} bytes (${st.up.flipped} flipped, ${st.up.dropped} dropped), down ${st.down.bytesIn} bytes (${st.down.flipped} flipped, ${st.down.dropped} dropped)`,
    );
    console.log(
      `host-side drops ${dev.linkCounters.rxDropped}, device-side drops ${dev.rpc.deviceDrops}, late responses ${dev.rpc.lateResponses}, answered from the record ${(after.rxReplayed as number) - (before.rxReplayed as number)}`,
    );
    console.log(`heap after:  ${fmtHeap(after)}`);
    const leaked = after.heapUsed !== before.heapUsed || after.handlesUsed !== before.handlesUsed;
    const tlsOk = t.okSessions > 0 && t.failed === 0 && t.wrong === 0 && t.hangs === 0;
    const verdict = r.failed === 0 && r.wrong === 0 && r.hangs === 0 && tlsOk && !leaked;
    console.log(
      verdict
        ? `soak: PASS (0 failed operations, 0 wrong results, 0 hangs, ${t.okSessions} TLS sessions with every byte right, heap back to its baseline)`
        : `soak: FAIL (failed ${r.failed}, wrong ${r.wrong}, hangs ${r.hangs}, untyped ${r.untyped}, TLS sessions ${t.okSessions} done / failed ${t.failed} / wrong ${t.wrong} / hangs ${t.hangs}, heap ${leaked ? "not back to baseline" : "ok"})`,
    );
    return verdict ? 0 : 1;
  } finally {
    await dev?.close().catch(() => {});
    await relay?.stop().catch(() => {});
    await device.stop();
    rmSync(certDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error("soak:", e);
    process.exit(1);
  },
);
