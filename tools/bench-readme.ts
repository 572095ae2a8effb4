// The "bench" block of README.md's Performance section, rendered from what
// `npm run bench` writes to build/bench/results.json: the summary of the
// figures and the table of the five speed targets. The prose around the block
// (why a target is met or missed) stays hand-written.
import type { InstructionCounts } from "../bench/callgrind.js";
import type { LineRateFigure } from "../bench/line-rate.js";
import type { ComputeFigures } from "../bench/node-crypto.js";
import type { Target } from "../bench/report.js";
import type { TlsFigures } from "../bench/tls.js";
import type { PkFigures } from "../bench/workloads.js";

/** The part of build/bench/results.json the block is made of. */
export interface BenchResults {
  started: string;
  target: string;
  quick: boolean;
  repeat: number;
  /** os.availableParallelism() of the machine that ran it, when recorded */
  cpus?: number;
  sizes: { stream: number };
  figures: Record<string, number>;
  raw: ComputeFigures;
  node: ComputeFigures;
  pk: PkFigures;
  lineRate: LineRateFigure[];
  /** bench/tls.ts's figures, absent from runs before them (or with --no-tls). */
  tls?: TlsFigures | undefined;
  instructions?: InstructionCounts | undefined;
  targets: Target[];
}

/**
 * "Before" is the same bench against the firmware and SDK before the
 * optimisations (commit 207a20a); a fixed record, not remeasured.
 */
const BEFORE: Record<number, number> = { 1: 1.11, 2: 2.9, 3: 0.18, 4: 0.992, 5: 5215 };

/** How each target reads in the table, and how its ratio is printed. */
const TARGETS: Record<number, { what: string; show: (ratio: number) => string }> = {
  1: {
    what: "sequential sha256(32 B) RTT ≤ 1.5 × echo RTT (same frame, `SerialTransport`)",
    show: (r) => r.toFixed(2),
  },
  2: { what: "pipelined ≥ 5 × sequential rate", show: (r) => r.toFixed(1) },
  3: { what: "streaming sha256 ≥ 60% of min(raw PTY, raw Mbed TLS)", show: (r) => `${(r * 100).toFixed(0)}%` },
  4: { what: "streaming payload at 921600 baud ≥ 95% of line capacity", show: (r) => `${(r * 100).toFixed(1)}%` },
  5: { what: "firmware overhead ≤ 3,000 instructions per request", show: (r) => r.toFixed(0) },
};

const finite = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);
/** MB/s: whole numbers from 100 up, else one decimal unless it is 0. */
const mbps = (v: number | undefined): string => (finite(v) ? (v >= 100 ? v.toFixed(0) : String(Number(v.toFixed(1)))) : "n/a");
/** Operations per second: three significant digits with separators from 10,000 up, else whole. */
const ops = (v: number | undefined): string => {
  if (!finite(v)) return "n/a";
  if (v < 10_000) return v.toFixed(0);
  const step = 10 ** (Math.floor(Math.log10(v)) - 2);
  return (Math.round(v / step) * step).toLocaleString("en-US");
};
const us = (v: number | undefined): string => (finite(v) ? v.toFixed(0) : "n/a");
const MiB = 1024 * 1024;
const size = (bytes: number): string => (bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / 1024} KiB`);
const baud = (b: number): string => (b >= 1e6 ? `${b / 1e6} Mbaud` : String(b));

function verdict(t: Target | undefined): string {
  if (!t || t.pass === null || !Number.isFinite(t.ratio)) return "n/a";
  if (t.pass) return "met";
  // a near miss says by how much
  const short = t.op === ">=" ? (t.limit - t.ratio) / t.limit : (t.ratio - t.limit) / t.limit;
  return short < 0.1 ? `missed by ${(short * 100).toFixed(0)}%` : "missed";
}

/** The summary lines (the ```text block). */
export function summaryLines(r: BenchResults): string[] {
  const f = r.figures;
  const chunk = f.chunk ?? Number.NaN;
  const line = (name: string, device: string, baseline = ""): string => {
    const head = `${name.padEnd(15)}${device}`;
    // baselines start at column 49, or 55 after a long figure
    const col = head.length <= 47 ? 49 : head.length <= 53 ? 55 : head.length + 2;
    return baseline ? `${head.padEnd(col)}${baseline}` : head;
  };
  const lines = [
    line(
      "raw link",
      `echo 32 B: plain fs ${us(f.raw_fs_echo_32B_p50_us)} µs, SerialTransport ${us(f.transport_echo_32B_p50_us)} µs; one-way ${mbps(f.raw_fs_bandwidth_MBps)} MB/s (fs), ${mbps(f[`transport_sink_${chunk}B_MBps`])} MB/s (SerialTransport)`,
    ),
    line(
      "sha256(32 B)",
      `sequential p50 ${us(f.sha256_32B_seq_p50_us)} µs (p99 ${us(f.sha256_32B_seq_p99_us)} µs); pipelined ${ops(f.sha256_32B_pipelined_ops)} ops/s (window ${f.window ?? "?"})`,
    ),
    line(
      "HMAC-SHA256",
      `pipelined ${ops(f.hmac_sha256_32B_pipelined_ops)} ops/s`,
      `Mbed TLS ${ops(r.raw.hmac_sha256_32B_ops)}/s, Node ${ops(r.node.hmac_sha256_32B_ops)}/s`,
    ),
    line(
      `sha256 ${size(r.sizes.stream)}`,
      `${mbps(f.stream_sha256_MBps)} MB/s`,
      `Mbed TLS ${mbps(r.raw.sha256_MBps)} MB/s, Node ${mbps(r.node.sha256_MBps)} MB/s`,
    ),
    line(
      "AES-256-CTR",
      `${mbps(f.stream_aes256_ctr_MBps)} MB/s (${size(r.sizes.stream)}, data both ways)`,
      `Mbed TLS ${mbps(r.raw.aes256_ctr_MBps)} MB/s`,
    ),
    line(
      "AES-256-GCM",
      `${mbps(f.gcm_chunked_MBps)} MB/s (${f.gcm_message_bytes ?? "?"}-byte messages)`,
      `Mbed TLS ${mbps(r.raw.aes256_gcm_MBps)} MB/s`,
    ),
    line(
      "ECDSA P-256",
      `sign ${ops(r.pk.ecdsa_p256_sign_ops)}/s, verify ${ops(r.pk.ecdsa_p256_verify_ops)}/s`,
      `Mbed TLS ${ops(r.raw.ecdsa_p256_sign_ops)}/s, ${ops(r.raw.ecdsa_p256_verify_ops)}/s`,
    ),
    line("RSA-2048", `sign ${ops(r.pk.rsa2048_sign_ops)}/s`, `Mbed TLS ${ops(r.raw.rsa2048_sign_ops)}/s`),
  ];
  const t = r.tls;
  if (t) {
    const ms = (v: number | undefined): string => (finite(v) ? v.toFixed(1) : "n/a");
    const x = (a: number | undefined, b: number | undefined): string => (finite(a) && finite(b) ? `${(a / b).toFixed(1)}x` : "n/a");
    lines.push(
      line(
        "TLS handshake",
        `1.2 ${ms(t.tls12_handshake_ms)} ms, 1.3 ${ms(t.tls13_handshake_ms)} ms (client + server on the device)`,
        `Mbed TLS in one process ${ms(t.baseline?.tls12.handshake_ms)} ms, ${ms(t.baseline?.tls13.handshake_ms)} ms (${x(t.tls12_handshake_ms, t.baseline?.tls12.handshake_ms)}, ${x(t.tls13_handshake_ms, t.baseline?.tls13.handshake_ms)})`,
      ),
      line(
        "TLS 1.3 bulk",
        `write ${mbps(t.write_MBps)} MB/s, echo ${mbps(t.echo_MBps)} MB/s each way`,
        `device AES-GCM ${mbps(f.gcm_chunked_MBps)} MB/s, Mbed TLS in one process ${mbps(t.baseline?.tls13.bulk_MBps)} MB/s`,
      ),
    );
    if (finite(t.line_fraction))
      lines.push(line("TLS line rate", `921600 baud: ${(t.line_fraction * 100).toFixed(1)} % of baud/10 as TLS 1.3 payload`));
  }
  const lr = r.lineRate.filter((l) => l.workload.startsWith("streaming sha256"));
  if (lr.length > 0) {
    lines.push(
      line("line rate", `${lr.map((l) => `${baud(l.baud)}: ${(l.fraction * 100).toFixed(1)} %`).join(", ")} of baud/10 as sha256 payload`),
    );
  }
  const ic = r.instructions;
  if (ic) {
    lines.push(
      line("firmware", `${ic.overheadPerRequest} instructions per request besides Mbed TLS (sha256 of 32 B: ${ic.totalPerRequest} in all)`),
    );
  }
  return lines;
}

/** The body of README.md's "bench" block. */
export function benchBlock(r: BenchResults): string {
  const day = r.started.slice(0, 10);
  const passes = `${r.repeat} pass${r.repeat === 1 ? "" : "es"}${r.repeat > 1 ? ", medians" : ""}`;
  const machine = r.cpus ? ` on a ${r.cpus}-core machine` : "";
  const rows = [1, 2, 3, 4, 5].map((id) => {
    const spec = TARGETS[id] as { what: string; show: (ratio: number) => string };
    const t = r.targets.find((x) => x.id === id);
    const now = t && Number.isFinite(t.ratio) ? spec.show(t.ratio) : "n/a";
    return `| ${id}. ${spec.what} | ${spec.show(BEFORE[id] ?? Number.NaN)} | ${now} | ${verdict(t)} |`;
  });
  return [
    `A ${r.target} run of ${day}${machine} (${passes}${r.quick ? ", --quick sizes" : ""}):`,
    "",
    "```text",
    ...summaryLines(r),
    "```",
    "",
    `| Target (${r.target}, same-run ratio) | before | now | |`,
    "|---|---|---|---|",
    ...rows,
    "",
  ].join("\n");
}
