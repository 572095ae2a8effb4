// npm run bench [-- --target native|qemu] [--port /dev/ttyX] [--quick] [--repeat N] [--no-line-rate] [--no-build] [--no-readme]
//               [--tls-only | --no-tls]
//
// Benchmarks the device through the SDK and prints every figure next to
// baselines measured in the same run: the raw link (a trivial PTY peer,
// bench/pty_echo.c, through the SDK's serial stack and through plain fs),
// raw compute (bench/mbedtls_bench.c on the native build's own Mbed TLS
// library) and Node crypto. Adds line-rate figures (link capped by the
// fault relay) and firmware instruction counts (callgrind). Writes
// build/bench/results.json and build/bench/throughput.svg, and, after a full
// native run (not --quick, not --no-readme), the figures block of README.md's
// Performance section (tools/bench-readme.ts). TLS (bench/tls.ts): handshakes
// through the device vs Mbed TLS in one process (bench/tls_baseline.c), an
// established session's bulk rate vs the device's AES-GCM alone and at the
// 921600-baud cap; --tls-only runs that part alone (with the AES-GCM
// workload its ratio needs) and writes build/bench/tls.json. Not part of
// npm test.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BENCH_BUILD, buildAll } from "../bench/build.js";
import { countInstructions, type InstructionCounts } from "../bench/callgrind.js";
import { type LineRateFigure, lineRate } from "../bench/line-rate.js";
import { openFsEcho, openTransportEcho, rawSinkBandwidth, SINK_ACK, startPeer, transportSinkBandwidth } from "../bench/link.js";
import { type ComputeFigures, nodeCrypto } from "../bench/node-crypto.js";
import { type Row, type Series, svgChart, type Target, table, targetLines } from "../bench/report.js";
import { latencyOf, MiB, median, sampleSequential } from "../bench/stats.js";
import { type TlsFigures, tlsLineRate, tlsRows, tlsWorkloads } from "../bench/tls.js";
import {
  chunkedGcm,
  hmacPipelined,
  oneshotCall,
  type PkFigures,
  pipelined,
  pkWorkloads,
  streamAesCtr,
  streamSha256,
} from "../bench/workloads.js";
import { type Device, open } from "../host/src/index.js";
import { type BenchResults, benchBlock } from "./bench-readme.js";
import { writeReadmeBlock } from "./readme-block.js";

const { values: argv } = parseArgs({
  options: {
    target: { type: "string", default: "native" },
    port: { type: "string" },
    quick: { type: "boolean", default: false },
    repeat: { type: "string" },
    "no-line-rate": { type: "boolean", default: false },
    /** Use build/native as it is (e.g. while the tree does not build). */
    "no-build": { type: "boolean", default: false },
    /** Leave README.md alone even after a full native run. */
    "no-readme": { type: "boolean", default: false },
    /** Only the TLS figures (and the AES-GCM one their ratio needs). */
    "tls-only": { type: "boolean", default: false },
    "no-tls": { type: "boolean", default: false },
  },
});
const target = argv.port ? "serial" : argv.target;
if (target !== "native" && target !== "qemu" && target !== "serial") throw new Error(`--target must be native or qemu, got ${argv.target}`);
const quick = argv.quick;
const slow = target !== "native";
const repeat = Math.max(1, Number(argv.repeat ?? (quick ? 1 : 3)));
const STREAM = slow ? (quick ? 64 * 1024 : 512 * 1024) : quick ? 8 * MiB : 64 * MiB;
const SIZES = {
  seqN: slow ? (quick ? 30 : 200) : quick ? 500 : 3000,
  pipeN: slow ? (quick ? 100 : 500) : quick ? 3000 : 20000,
  opsN: slow ? (quick ? 50 : 200) : quick ? 2000 : 10000,
};
const CHART_SIZES = slow ? [64, 512, 4096] : [32, 128, 512, 2048, 8192, 16384];

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

async function openDevice(): Promise<Device> {
  if (argv.port) return open(argv.port, { timeoutMs: 60_000 });
  return open({ target: target as "native" | "qemu", timeoutMs: 60_000 });
}

type Figures = Record<string, number>;

/**
 * One pass over the link baselines and the device workloads; every figure as
 * a number. The figures the targets compare are measured interleaved, in
 * ROUNDS rounds of (baseline, device), so that load from other processes on
 * this machine hits both sides of a ratio alike.
 */
async function measureOnce(bins: ReturnType<typeof buildAll>, pass: number): Promise<Figures> {
  const f: Figures = {};
  const rounds = quick ? 3 : 6;
  log(`pass ${pass}: round trips (PTY echo peers, device), ${rounds} interleaved rounds`);
  const echoFsPeer = await startPeer(bins.ptyEcho);
  const echoTrPeer = await startPeer(bins.ptyEcho);
  const sink = await startPeer(bins.ptyEcho, SINK_ACK);
  const fsEcho = openFsEcho(echoFsPeer);
  const trEcho = await openTransportEcho(echoTrPeer);
  const dev = await openDevice();
  try {
    const chunk = dev.chunkSize;
    const window = dev.info.window;
    f.chunk = chunk;
    f.window = window;
    log(`pass ${pass}: device ${dev.info.board} (mtu ${dev.info.mtu}, window ${window})`);
    const oneshot = await oneshotCall(dev);
    const s: Record<string, number[]> = { fs1: [], fs32: [], tr1: [], tr32: [], dev: [] };
    const k = Math.ceil(SIZES.seqN / rounds);
    const warm = Math.min(50, k);
    let pipeOps = 0;
    let pipeMs = 0;
    for (let r = 0; r < rounds; r++) {
      await sampleSequential(k, warm, () => fsEcho.roundTrip(1), s.fs1 as number[]);
      await sampleSequential(k, warm, () => fsEcho.roundTrip(32), s.fs32 as number[]);
      await sampleSequential(k, warm, () => trEcho.roundTrip(1), s.tr1 as number[]);
      await sampleSequential(k, warm, () => trEcho.roundTrip(32), s.tr32 as number[]);
      await sampleSequential(k, warm, oneshot, s.dev as number[]);
      const n = Math.ceil(SIZES.pipeN / rounds);
      const t0 = performance.now();
      await pipelined(n, oneshot);
      pipeMs += performance.now() - t0;
      pipeOps += n;
    }
    for (const [key, name] of [
      ["fs1", "raw_fs_echo_1B"],
      ["fs32", "raw_fs_echo_32B"],
      ["tr1", "transport_echo_1B"],
      ["tr32", "transport_echo_32B"],
      ["dev", "sha256_32B_seq"],
    ] as const) {
      const l = latencyOf(s[key] as number[]);
      f[`${name}_p50_us`] = l.p50;
      f[`${name}_p99_us`] = l.p99;
      f[`${name}_mean_us`] = l.mean;
    }
    f.sha256_32B_pipelined_ops = pipeOps / (pipeMs / 1000);
    f.hmac_sha256_32B_pipelined_ops = await hmacPipelined(dev, SIZES.opsN);

    log(`pass ${pass}: streaming ${STREAM / MiB} MiB in ${rounds} interleaved rounds (raw PTY, device)`);
    let fsBytes = 0;
    let fsSec = 0;
    let devSec = 0;
    const part = Math.max(chunk, Math.floor(STREAM / rounds / chunk) * chunk);
    for (let r = 0; r < rounds; r++) {
      const bw = rawSinkBandwidth(sink, part * 2);
      fsBytes += part * 2;
      fsSec += (part * 2) / bw;
      devSec += part / (await streamSha256(dev, part, chunk));
    }
    f.raw_fs_bandwidth_MBps = fsBytes / fsSec / 1e6;
    f.stream_sha256_MBps = (part * rounds) / devSec / 1e6;
    for (const size of [...CHART_SIZES.filter((x) => x < chunk), chunk]) {
      f[`transport_sink_${size}B_MBps`] = (await transportSinkBandwidth(sink, size, Math.min(STREAM, size * 20000), window)) / 1e6;
    }
    for (const size of CHART_SIZES.filter((x) => x < chunk)) {
      f[`stream_sha256_${size}B_MBps`] = (await streamSha256(dev, Math.min(STREAM, size * 20000), size)) / 1e6;
    }
    f[`stream_sha256_${chunk}B_MBps`] = f.stream_sha256_MBps;
    f.raw_pty_bandwidth_MBps = Math.max(f.raw_fs_bandwidth_MBps, f[`transport_sink_${chunk}B_MBps`] ?? 0);
    f.stream_aes256_ctr_MBps = (await streamAesCtr(dev, STREAM)) / 1e6;
    const gcm = await chunkedGcm(dev, STREAM);
    f.gcm_chunked_MBps = gcm.bytesPerSecond / 1e6;
    f.gcm_message_bytes = gcm.messageSize;
  } finally {
    await dev.close();
    fsEcho.close();
    await trEcho.close();
    await Promise.all([echoFsPeer.stop(), echoTrPeer.stop(), sink.stop()]);
  }
  return f;
}

function medians(passes: Figures[]): Figures {
  const keys = new Set(passes.flatMap((p) => Object.keys(p)));
  const out: Figures = {};
  for (const k of keys) out[k] = median(passes.map((p) => p[k]).filter((v): v is number => v !== undefined));
  return out;
}

/** The TLS figures: on the device (its own session), and at the line-rate cap on native. */
async function measureTls(bins: ReturnType<typeof buildAll>): Promise<TlsFigures> {
  log("TLS: handshakes and bulk through the device, Mbed TLS in one process");
  const dev = await openDevice();
  let t: TlsFigures;
  try {
    t = await tlsWorkloads(dev, { quick, slow, baseline: bins.tlsBaseline, log });
  } finally {
    await dev.close();
  }
  if (!argv["no-line-rate"] && target === "native") {
    log(`TLS at the line-rate cap`);
    const l = await tlsLineRate({ quick, log });
    t.line_Bps = l.Bps;
    t.line_fraction = l.fraction;
    t.line_bytes = l.bytes;
  }
  return t;
}

/** --tls-only: the TLS rows, with the device's AES-GCM measured for their ratio. */
async function tlsOnly(): Promise<void> {
  log("building native firmware and bench programs");
  const bins = buildAll(!argv["no-build"]);
  const dev = await openDevice();
  let gcm: Awaited<ReturnType<typeof chunkedGcm>>;
  try {
    gcm = await chunkedGcm(dev, STREAM);
  } finally {
    await dev.close();
  }
  const t = await measureTls(bins);
  process.stdout.write(`${table(tlsRows(t, gcm.bytesPerSecond / 1e6, `TLS, device (${target})`))}\n`);
  mkdirSync(BENCH_BUILD, { recursive: true });
  writeFileSync(
    join(BENCH_BUILD, "tls.json"),
    `${JSON.stringify({ started: new Date().toISOString(), target, quick, gcm, tls: t }, null, 2)}\n`,
  );
  log(`wrote ${join(BENCH_BUILD, "tls.json")}`);
}

function rawCompute(binary: string, seconds: number): ComputeFigures {
  return JSON.parse(execFileSync(binary, [String(seconds)], { encoding: "utf8" })) as ComputeFigures;
}

async function main(): Promise<void> {
  const started = new Date().toISOString();
  log("building native firmware and bench programs");
  const bins = buildAll(!argv["no-build"]);
  const passes: Figures[] = [];
  for (let i = 1; i <= repeat; i++) passes.push(await measureOnce(bins, i));
  const f = medians(passes);
  const g = (k: string): number => f[k] ?? Number.NaN;

  log("raw compute: Mbed TLS (native) and Node crypto");
  const secs = quick ? 0.2 : 0.5;
  const raw = rawCompute(bins.mbedtlsBench, secs);
  const node = nodeCrypto(secs);

  let pk: PkFigures = { how: "not run" };
  {
    const dev = await openDevice();
    try {
      pk = await pkWorkloads(dev, quick ? 1 : 3);
    } finally {
      await dev.close();
    }
  }

  const tls = argv["no-tls"] ? undefined : await measureTls(bins);

  let lr: LineRateFigure[] = [];
  if (!argv["no-line-rate"] && target === "native") {
    log("line-rate mode (fault relay rate cap)");
    lr = await lineRate({ quick, log });
  }

  let ic: InstructionCounts | undefined;
  try {
    log("instruction counts (callgrind)");
    ic = countInstructions(bins.overheadDriver, 1000);
  } catch (e) {
    log(`callgrind failed: ${(e as Error).message}`);
  }

  const chunk = g("chunk");
  const rows: Row[] = [];
  const us = "µs";
  rows.push(
    { section: "raw link (PTY echo peer)", name: "echo 1 B, plain fs, p50", value: g("raw_fs_echo_1B_p50_us"), unit: us },
    { section: "raw link (PTY echo peer)", name: "echo 32 B, plain fs, p50", value: g("raw_fs_echo_32B_p50_us"), unit: us },
    { section: "raw link (PTY echo peer)", name: "echo 1 B frame, SerialTransport, p50", value: g("transport_echo_1B_p50_us"), unit: us },
    { section: "raw link (PTY echo peer)", name: "echo 32 B frame, SerialTransport, p50", value: g("transport_echo_32B_p50_us"), unit: us },
    { section: "raw link (PTY echo peer)", name: "one-way bandwidth, plain fs", value: g("raw_fs_bandwidth_MBps"), unit: "MB/s" },
    {
      section: "raw link (PTY echo peer)",
      name: `one-way, SerialTransport, ${chunk} B frames`,
      value: g(`transport_sink_${chunk}B_MBps`),
      unit: "MB/s",
    },
  );
  const dev = `device (${target})`;
  rows.push(
    {
      section: dev,
      name: "sha256(32 B) sequential p50",
      value: g("sha256_32B_seq_p50_us"),
      unit: us,
      baselines: [
        { name: "p99", value: g("sha256_32B_seq_p99_us"), unit: us },
        { name: "echo(SerialTransport)", value: g("transport_echo_32B_p50_us"), unit: us },
        { name: "echo(fs)", value: g("raw_fs_echo_32B_p50_us"), unit: us },
      ],
    },
    {
      section: dev,
      name: "sha256(32 B) pipelined",
      value: g("sha256_32B_pipelined_ops"),
      unit: "ops/s",
      baselines: [
        { name: "sequential", value: 1e6 / g("sha256_32B_seq_mean_us"), unit: "ops/s" },
        { name: "Mbed TLS", value: raw.sha256_32B_ops, unit: "ops/s" },
        { name: "Node", value: node.sha256_32B_ops, unit: "ops/s" },
      ],
    },
    {
      section: dev,
      name: "HMAC-SHA256(32 B) pipelined",
      value: g("hmac_sha256_32B_pipelined_ops"),
      unit: "ops/s",
      baselines: [
        { name: "Mbed TLS", value: raw.hmac_sha256_32B_ops, unit: "ops/s" },
        { name: "Node", value: node.hmac_sha256_32B_ops, unit: "ops/s" },
      ],
    },
    {
      section: dev,
      name: `streaming sha256 ${STREAM / MiB} MiB`,
      value: g("stream_sha256_MBps"),
      unit: "MB/s",
      baselines: [
        { name: "PTY fs", value: g("raw_fs_bandwidth_MBps"), unit: "MB/s" },
        { name: "PTY SerialTransport", value: g(`transport_sink_${chunk}B_MBps`), unit: "MB/s" },
        { name: "Mbed TLS", value: raw.sha256_MBps, unit: "MB/s" },
        { name: "Node", value: node.sha256_MBps, unit: "MB/s" },
      ],
    },
    {
      section: dev,
      name: `AES-256-CTR streaming ${STREAM / MiB} MiB`,
      value: g("stream_aes256_ctr_MBps"),
      unit: "MB/s",
      baselines: [
        { name: "Mbed TLS", value: raw.aes256_ctr_MBps, unit: "MB/s" },
        { name: "Node", value: node.aes256_ctr_MBps, unit: "MB/s" },
      ],
      note: "data both ways",
    },
    {
      section: dev,
      name: `AES-256-GCM ${STREAM / MiB} MiB in ${g("gcm_message_bytes")} B msgs`,
      value: g("gcm_chunked_MBps"),
      unit: "MB/s",
      baselines: [
        { name: "Mbed TLS", value: raw.aes256_gcm_MBps, unit: "MB/s" },
        { name: "Node", value: node.aes256_gcm_MBps, unit: "MB/s" },
      ],
      note: "independent one-frame messages, pipelined",
    },
  );
  const pkRows: [string, keyof PkFigures & keyof ComputeFigures][] = [
    ["ECDSA P-256 sign", "ecdsa_p256_sign_ops"],
    ["ECDSA P-256 verify", "ecdsa_p256_verify_ops"],
    ["RSA-2048 sign", "rsa2048_sign_ops"],
  ];
  for (const [name, key] of pkRows) {
    const row: Row = {
      section: dev,
      name,
      value: (pk[key] as number | undefined) ?? Number.NaN,
      unit: "ops/s",
      baselines: [
        { name: "Mbed TLS", value: raw[key], unit: "ops/s" },
        { name: "Node", value: node[key], unit: "ops/s" },
      ],
    };
    if (pk[key] === undefined && pk.note) row.note = pk.note;
    rows.push(row);
  }
  if (tls) rows.push(...tlsRows(tls, g("gcm_chunked_MBps"), `TLS, ${dev}`));
  for (const l of lr) {
    rows.push({
      section: "line rate (fault relay cap, 8N1)",
      name: `${l.baud} baud: ${l.workload}`,
      value: l.payloadBytesPerSecond / 1e3,
      unit: "kB/s",
      baselines: [
        { name: "line payload capacity", value: l.baud / 10 / 1e3, unit: "kB/s" },
        { name: "fraction", value: l.fraction * 100, unit: "%" },
      ],
    });
  }
  if (ic) {
    rows.push(
      {
        section: "firmware instructions (callgrind, native)",
        name: "sha256(32 B) request, total",
        value: ic.totalPerRequest,
        unit: "instr",
      },
      { section: "firmware instructions (callgrind, native)", name: "of which Mbed TLS", value: ic.cryptoPerRequest, unit: "instr" },
      { section: "firmware instructions (callgrind, native)", name: "per-request overhead", value: ic.overheadPerRequest, unit: "instr" },
    );
  }

  const targets: Target[] = [];
  const t = (id: number, what: string, ratio: number, op: "<=" | ">=", limit: number, detail: string, applies = true) =>
    targets.push({
      id,
      what,
      ratio,
      op,
      limit,
      detail,
      pass: !applies || !Number.isFinite(ratio) ? null : op === "<=" ? ratio <= limit : ratio >= limit,
    });
  const native = target === "native";
  t(
    1,
    "sequential sha256(32 B) RTT / raw PTY echo RTT",
    g("sha256_32B_seq_p50_us") / g("transport_echo_32B_p50_us"),
    "<=",
    1.5,
    `p50 ${g("sha256_32B_seq_p50_us").toFixed(0)} µs vs echo of the same-size frame through SerialTransport ${g("transport_echo_32B_p50_us").toFixed(0)} µs; vs plain-fs echo ${(g("sha256_32B_seq_p50_us") / g("raw_fs_echo_32B_p50_us")).toFixed(2)}x`,
    native,
  );
  t(
    2,
    "pipelined / sequential sha256(32 B) rate",
    g("sha256_32B_pipelined_ops") / (1e6 / g("sha256_32B_seq_mean_us")),
    ">=",
    5,
    `${g("sha256_32B_pipelined_ops").toFixed(0)} ops/s vs ${(1e6 / g("sha256_32B_seq_mean_us")).toFixed(0)} ops/s at window ${g("window")}`,
    native,
  );
  const floor = Math.min(g("raw_pty_bandwidth_MBps"), raw.sha256_MBps);
  t(
    3,
    "streaming sha256 / min(raw PTY bandwidth, raw Mbed TLS sha256)",
    g("stream_sha256_MBps") / floor,
    ">=",
    0.6,
    `${g("stream_sha256_MBps").toFixed(1)} MB/s vs min(raw PTY ${g("raw_pty_bandwidth_MBps").toFixed(1)} (best of plain fs and SerialTransport), Mbed TLS ${raw.sha256_MBps.toFixed(1)}) MB/s`,
    native,
  );
  const lr921 = lr.find((l) => l.baud === 921600 && l.workload.startsWith("streaming sha256"));
  t(
    4,
    "streaming payload at a 921600 cap / line payload capacity",
    lr921?.fraction ?? Number.NaN,
    ">=",
    0.95,
    lr921 ? `${(lr921.payloadBytesPerSecond / 1e3).toFixed(1)} kB/s of ${(92160 / 1e3).toFixed(1)} kB/s` : "line-rate mode not run",
    native,
  );
  t(
    5,
    "per-request firmware overhead (instructions)",
    ic?.overheadPerRequest ?? Number.NaN,
    "<=",
    3000,
    ic ? `${ic.totalPerRequest} total - ${ic.cryptoPerRequest} in Mbed TLS` : "callgrind not run",
  );

  const text = `${table(rows)}\n\n== targets (${target}, medians of ${repeat} pass${repeat > 1 ? "es" : ""})\n${targetLines(targets)}\n`;
  process.stdout.write(text);
  if (ic) {
    process.stdout.write(
      `\n  top firmware functions (self instructions per request): ${ic.top.map((x) => `${x.fn} ${x.perRequest}`).join(", ")}\n`,
    );
  }

  mkdirSync(BENCH_BUILD, { recursive: true });
  const series: Series[] = [
    {
      name: "device streaming sha256",
      color: "#c0392b",
      points: Object.keys(f)
        .filter((k) => /^stream_sha256_\d+B_MBps$/.test(k))
        .map((k) => ({ x: Number(/_(\d+)B_MBps$/.exec(k)?.[1]), y: g(k) }))
        .sort((a, b) => a.x - b.x),
    },
    {
      name: "PTY sink via SerialTransport (raw link)",
      color: "#2c7fb8",
      points: Object.keys(f)
        .filter((k) => /^transport_sink_\d+B_MBps$/.test(k))
        .map((k) => ({ x: Number(/_(\d+)B_MBps$/.exec(k)?.[1]), y: g(k) }))
        .sort((a, b) => a.x - b.x),
    },
  ];
  writeFileSync(join(BENCH_BUILD, "throughput.svg"), svgChart(`mbedlink ${target}: throughput vs payload size`, series));
  const json = {
    started,
    target,
    quick,
    repeat,
    cpus: availableParallelism(),
    sizes: { ...SIZES, stream: STREAM },
    figures: f,
    passes,
    raw,
    node,
    pk,
    tls,
    lineRate: lr,
    instructions: ic,
    rows,
    targets,
  };
  writeFileSync(join(BENCH_BUILD, "results.json"), `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${join(BENCH_BUILD, "results.json")} and throughput.svg`);
  // README.md quotes a full native run only: quick sizes and other targets are not comparable.
  if (argv["no-readme"]) log("README.md left alone (--no-readme)");
  else if (quick || target !== "native") log("README.md left alone (its figures are a full native run's; this run is not)");
  else {
    const results: BenchResults = json;
    writeReadmeBlock("bench", benchBlock(results));
    log("wrote the figures block of README.md's Performance section");
  }
}

(argv["tls-only"] ? tlsOnly() : main()).then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
