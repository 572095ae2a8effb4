// Instruction counts: per-request firmware overhead (SLIP decode, CRC, CBOR
// decode, dispatch, CBOR encode, SLIP encode) of a 32-byte one-shot sha256,
// under callgrind, with the crypto (every call into an mbedtls_* function
// from outside Mbed TLS, inclusive) subtracted.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Op } from "../host/src/base/protocol.generated.js";
import { encodeBody } from "../host/src/link/codec.js";
import { slipEncode } from "../host/src/link/slip.js";
import { requireTool } from "../tools/programs.js";
import { BENCH_BUILD } from "./build.js";

export interface InstructionCounts {
  requests: number;
  /** Instructions inside ml_bench_feed per request. */
  totalPerRequest: number;
  /** Of which inside Mbed TLS. */
  cryptoPerRequest: number;
  /** The rest: the firmware's per-request overhead. */
  overheadPerRequest: number;
  /** Top self-cost functions outside Mbed TLS, instructions per request. */
  top: { fn: string; perRequest: number }[];
}

interface Parsed {
  total: number;
  crypto: number;
  self: Map<string, number>;
}

/** Reads a callgrind.out file (Ir only): totals, inclusive cost of calls into mbedtls_* from outside, self cost per function. */
export function parseCallgrind(text: string): Parsed {
  const names = new Map<string, string>();
  const named = (spec: string): string => {
    const m = /^\((\d+)\)(?:\s+(.*))?$/.exec(spec.trim());
    if (!m) return spec.trim();
    const id = m[1] as string;
    if (m[2] !== undefined) names.set(id, m[2]);
    return names.get(id) ?? `(${id})`;
  };
  const isCrypto = (fn: string) => fn.startsWith("mbedtls_");
  const self = new Map<string, number>();
  let fn = "";
  let cfn = "";
  let afterCalls = false;
  let total = 0;
  let crypto = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("fn=")) {
      fn = named(line.slice(3));
      continue;
    }
    if (line.startsWith("cfn=")) {
      cfn = named(line.slice(4));
      continue;
    }
    if (line.startsWith("calls=")) {
      afterCalls = true;
      continue;
    }
    if (line.startsWith("totals:") || line.startsWith("summary:")) {
      total = Number(line.split(/\s+/)[1]);
      continue;
    }
    if (!/^[0-9+\-*]/.test(line)) continue;
    const parts = line.trim().split(/\s+/);
    const cost = Number(parts[parts.length - 1]);
    if (parts.length < 2 || !Number.isFinite(cost)) continue;
    if (afterCalls) {
      afterCalls = false;
      if (isCrypto(cfn) && !isCrypto(fn)) crypto += cost;
    } else {
      self.set(fn, (self.get(fn) ?? 0) + cost);
    }
  }
  return { total, crypto, self };
}

export function countInstructions(driver: string, requests: number): InstructionCounts {
  const frames: Uint8Array[] = [];
  const data = new Uint8Array(32).fill(0x61);
  for (let i = 1; i <= requests; i++) frames.push(slipEncode(encodeBody([i, Op.hashOneshot, 4, data])));
  const framesFile = join(BENCH_BUILD, "oneshot-frames.bin");
  writeFileSync(framesFile, Buffer.concat(frames));
  const outFile = join(BENCH_BUILD, "callgrind.out");
  execFileSync(
    requireTool("valgrind"),
    ["--tool=callgrind", "--toggle-collect=ml_bench_feed", `--callgrind-out-file=${outFile}`, driver, framesFile, String(requests)],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const p = parseCallgrind(readFileSync(outFile, "utf8"));
  const top = [...p.self.entries()]
    .filter(([f]) => !f.startsWith("mbedtls_"))
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([f, c]) => ({ fn: f, perRequest: Math.round(c / requests) }));
  return {
    requests,
    totalPerRequest: Math.round(p.total / requests),
    cryptoPerRequest: Math.round(p.crypto / requests),
    overheadPerRequest: Math.round((p.total - p.crypto) / requests),
    top,
  };
}
