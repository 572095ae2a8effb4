// A mixed crypto workload for fault and soak runs: every result is checked
// against Node's crypto (OpenSSL), every failure must be a typed SDK error,
// and every request must settle within its own timeout.
//
// Kinds: one-shot hash, streaming hash (new, updates, digest, free), HMAC,
// AES-CBC, AES-GCM, and, when the firmware has dev.pk with P-256, ECDSA
// sign (checked by Node's verify) and verify (of Node's signature); every
// `streamEvery`-th operation is a long stream instead, in turn a hash of
// `streamBytes` (1 MiB) fed in pieces of up to 8 × `maxData` bytes, or an
// AES-256-CTR encryption of `streamBytes` (one encrypt(): a device context
// fed pipelined cipher_update requests). TLS records run beside it
// (hil/tls-echo.ts: faults.test.ts and tools/soak.ts start both).
import {
  createCipheriv,
  createHash,
  createHmac,
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
  randomBytes,
} from "node:crypto";
import type { AEADCipher, Cipher, Device, ECC } from "../host/src/index.js";
import { MbedlinkError } from "../host/src/index.js";
import type { CallSettledInfo } from "../host/src/rpc/rpc.js";
import { prng } from "./fault-relay.js";

export type WorkKind = "hash" | "hash-stream" | "hmac" | "cipher" | "aead" | "sign" | "verify" | "hash-long" | "ctr-long";

export interface WorkloadOptions {
  /** Stop after this many operations ... */
  ops?: number;
  /** ... or after this many ms (whichever comes first). */
  durationMs?: number;
  /** Operations running at once (default 4). */
  concurrency?: number;
  /** Seed of the operation mix. */
  seed?: number;
  /** Per-call timeout in ms (default: the device's). */
  timeoutMs?: number;
  /** Largest message (default 512 bytes). */
  maxData?: number;
  /** Every this many operations one is a long stream (default 500; 0: none). */
  streamEvery?: number;
  /** Bytes of a long stream (default 1 MiB). */
  streamBytes?: number;
  /** Called every `progressEvery` operations. */
  onProgress?: (r: WorkloadReport) => void;
  progressEvery?: number;
}

export interface WorkloadReport {
  /** Operations (SDK calls) done. */
  ops: number;
  /** Requests (RPC calls) settled, resends not counted. */
  requests: number;
  okOps: number;
  /** Operations that failed (with a typed error or not): ops - okOps. */
  failed: number;
  /** Failed operations by error name (typed SDK errors only). */
  errors: Record<string, number>;
  /** Failures that were not MbedlinkError subclasses: must be 0. */
  untyped: number;
  /** Results that disagree with Node's crypto: must be 0. */
  wrong: number;
  /** Requests that settled later than their timeout (+ timer slack): must be 0. */
  hangs: number;
  /** Operations by kind. */
  byKind: Record<string, number>;
  /** Resends (rpc.retries) during the run. */
  retries: number;
  /** Frames found lost by the host during the run. */
  lostFrames: number;
  probes: number;
  /** Longest request: time from its first write to its settlement, and its budget then. */
  maxRequestMs: number;
  maxRequestBudgetMs: number;
  /** Largest (time - budget) over all requests, ms (negative: all early). */
  maxOverrunMs: number;
  /** Longest operation, ms. */
  maxOpMs: number;
  wallMs: number;
  /** Notes on what was left out. */
  notes: string[];
  /** Examples of wrong results, failed operations and hangs. */
  samples: string[];
}

/** A settled request counts as a hang when it ran this much past its budget (timer lateness allowance). */
export const HANG_SLACK_MS = 100;

const HASHES = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"] as const;

const eq = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
const u8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.length);

/** Imports a P-256 key made by Node, retrying through a faulty link; undefined when the firmware has no P-256. */
async function importEcKey(dev: Device, privateKey: KeyObject, notes: string[]): Promise<ECC | undefined> {
  const der = u8(privateKey.export({ type: "sec1", format: "der" }) as Buffer);
  let last: unknown;
  for (let i = 0; i < 10; i++) {
    try {
      return await dev.pk.ECC.fromDER(der);
    } catch (e) {
      last = e;
      if (!(e instanceof MbedlinkError) || e.name === "UnsupportedAlgorithmError") break;
    }
  }
  notes.push(`no P-256 key on the device (${String(last)}): no sign/verify`);
  return undefined;
}

/** Runs the workload on `dev` and returns the figures. */
export async function runWorkload(dev: Device, opts: WorkloadOptions): Promise<WorkloadReport> {
  const rand = prng(opts.seed ?? 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const size = (max: number) => Math.floor(rand() * (max + 1));
  const maxData = opts.maxData ?? 512;
  const streamEvery = opts.streamEvery ?? 500;
  const streamBytes = opts.streamBytes ?? 1 << 20;
  const callOpts = opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {};
  const report: WorkloadReport = {
    ops: 0,
    requests: 0,
    okOps: 0,
    failed: 0,
    errors: {},
    untyped: 0,
    wrong: 0,
    hangs: 0,
    byKind: {},
    retries: 0,
    lostFrames: 0,
    probes: 0,
    maxRequestMs: 0,
    maxRequestBudgetMs: 0,
    maxOverrunMs: Number.NEGATIVE_INFINITY,
    maxOpMs: 0,
    wallMs: 0,
    notes: [],
    samples: [],
  };
  const onSettled = (s: CallSettledInfo) => {
    report.requests++;
    if (s.activeMs > report.maxRequestMs) {
      report.maxRequestMs = s.activeMs;
      report.maxRequestBudgetMs = s.budgetMs;
    }
    report.maxOverrunMs = Math.max(report.maxOverrunMs, s.activeMs - s.budgetMs);
    if (s.activeMs > s.budgetMs + HANG_SLACK_MS) {
      report.hangs++;
      if (report.samples.length < 20) report.samples.push(`hang: ${s.op} took ${s.activeMs.toFixed(0)} ms of ${s.budgetMs.toFixed(0)}`);
    }
  };
  const rpc = dev.rpc;
  const base = { retries: rpc.retries, lostFrames: rpc.lostFrames, probes: rpc.probes };
  rpc.on("settled", onSettled);

  const kinds: WorkKind[] = ["hash", "hash-stream", "hmac", "cipher", "aead"];
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const key = await importEcKey(dev, ec.privateKey, report.notes);
  if (key) kinds.push("sign", "verify");

  const wrong = (what: string) => {
    report.wrong++;
    if (report.samples.length < 20) report.samples.push(`wrong: ${what}`);
  };

  async function one(kind: WorkKind): Promise<void> {
    switch (kind) {
      case "hash": {
        const alg = pick(HASHES);
        const data = u8(randomBytes(size(maxData)));
        const got = await dev.hash.digest(alg, data, callOpts);
        if (!eq(got, createHash(alg).update(data).digest())) wrong(`${alg} one-shot of ${data.length} bytes`);
        return;
      }
      case "hash-stream": {
        const alg = pick(HASHES);
        const parts = Array.from({ length: 1 + size(2) }, () => u8(randomBytes(size(maxData / 2))));
        const h = dev.hash.new(alg);
        try {
          for (const p of parts) h.update(p);
          const got = await h.digest(callOpts);
          const want = createHash(alg);
          for (const p of parts) want.update(p);
          if (!eq(got, want.digest())) wrong(`${alg} stream of ${parts.map((p) => p.length).join("+")} bytes`);
        } finally {
          await h.close().catch(() => {});
        }
        return;
      }
      case "hmac": {
        const k = u8(randomBytes(32));
        const data = u8(randomBytes(size(maxData)));
        const got = await dev.hmac.digest(k, data, "sha256", callOpts);
        if (!eq(got, createHmac("sha256", k).update(data).digest())) wrong(`hmac-sha256 of ${data.length} bytes`);
        return;
      }
      case "cipher": {
        const bits = pick([128, 256] as const);
        const k = u8(randomBytes(bits / 8));
        const iv = u8(randomBytes(16));
        const pt = u8(randomBytes(size(maxData)));
        const c = dev.cipher.AES.new(k, dev.cipher.MODE_CBC, iv) as Cipher;
        const got = await c.encrypt(pt, callOpts);
        const nc = createCipheriv(`aes-${bits}-cbc`, k, iv);
        if (!eq(got, Buffer.concat([nc.update(pt), nc.final()]))) wrong(`aes-${bits}-cbc of ${pt.length} bytes`);
        return;
      }
      case "aead": {
        const k = u8(randomBytes(16));
        const iv = u8(randomBytes(12));
        const pt = u8(randomBytes(size(maxData)));
        const c = dev.cipher.AES.new(k, dev.cipher.MODE_GCM, iv) as AEADCipher;
        const [ct, tag] = await c.encrypt(pt, undefined, callOpts);
        const nc = createCipheriv("aes-128-gcm", k, iv);
        const want = Buffer.concat([nc.update(pt), nc.final()]);
        if (!eq(ct, want) || !eq(tag, nc.getAuthTag())) wrong(`aes-128-gcm of ${pt.length} bytes`);
        return;
      }
      case "sign": {
        const data = u8(randomBytes(size(maxData)));
        const sig = await (key as ECC).sign(data, "sha256", callOpts);
        if (!nodeVerify("sha256", data, { key: ec.publicKey, dsaEncoding: "der" }, sig)) wrong("ecdsa-p256 signature Node rejects");
        return;
      }
      case "hash-long": {
        const alg = pick(HASHES);
        const data = u8(randomBytes(streamBytes));
        const h = dev.hash.new(alg);
        try {
          for (let off = 0; off < data.length; ) {
            const n = 1 + size(8 * maxData - 1);
            h.update(data.subarray(off, off + n));
            off += n;
          }
          const got = await h.digest(callOpts);
          if (!eq(got, createHash(alg).update(data).digest())) wrong(`${alg} stream of ${data.length} bytes`);
        } finally {
          await h.close().catch(() => {});
        }
        return;
      }
      case "ctr-long": {
        const k = u8(randomBytes(32));
        const iv = u8(randomBytes(16));
        const pt = u8(randomBytes(streamBytes));
        const c = dev.cipher.AES.new(k, dev.cipher.MODE_CTR, iv) as Cipher;
        const got = await c.encrypt(pt, callOpts);
        const nc = createCipheriv("aes-256-ctr", k, iv);
        if (!eq(got, Buffer.concat([nc.update(pt), nc.final()]))) wrong(`aes-256-ctr stream of ${pt.length} bytes`);
        return;
      }
      case "verify": {
        const data = u8(randomBytes(size(maxData)));
        const sig = u8(nodeSign("sha256", data, { key: ec.privateKey, dsaEncoding: "der" }));
        const good = rand() < 0.5;
        if (!good) sig[sig.length - 1] = (sig[sig.length - 1] as number) ^ 1;
        if ((await (key as ECC).verify(data, sig, "sha256", callOpts)) !== good)
          wrong(`ecdsa-p256 verify said ${!good} for a ${good ? "good" : "bad"} signature`);
        return;
      }
    }
  }

  const t0 = performance.now();
  const endAt = opts.durationMs !== undefined ? t0 + opts.durationMs : Number.POSITIVE_INFINITY;
  const maxOps = opts.ops ?? Number.POSITIVE_INFINITY;
  let started = 0;
  let streams = 0;
  const worker = async () => {
    while (started < maxOps && performance.now() < endAt) {
      started++;
      const long = streamEvery > 0 && started % streamEvery === 0;
      const kind: WorkKind = long ? (streams++ % 2 === 0 ? "hash-long" : "ctr-long") : pick(kinds);
      report.byKind[kind] = (report.byKind[kind] ?? 0) + 1;
      const s = performance.now();
      try {
        await one(kind);
        report.okOps++;
      } catch (e) {
        if (e instanceof MbedlinkError) {
          report.errors[e.name] = (report.errors[e.name] ?? 0) + 1;
          if (report.samples.length < 20) report.samples.push(`failed: ${kind}: ${String(e)}`);
        } else {
          report.untyped++;
          if (report.samples.length < 20) report.samples.push(`untyped: ${kind}: ${String(e)}`);
        }
      }
      report.maxOpMs = Math.max(report.maxOpMs, performance.now() - s);
      report.ops++;
      if (opts.onProgress && report.ops % (opts.progressEvery ?? 1000) === 0) opts.onProgress(snapshot());
    }
  };
  const snapshot = (): WorkloadReport => ({
    ...report,
    failed: report.ops - report.okOps,
    retries: rpc.retries - base.retries,
    lostFrames: rpc.lostFrames - base.lostFrames,
    probes: rpc.probes - base.probes,
    wallMs: performance.now() - t0,
    errors: { ...report.errors },
    byKind: { ...report.byKind },
  });
  try {
    await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
  } finally {
    rpc.off("settled", onSettled);
    await key?.close().catch(() => {});
  }
  return snapshot();
}

/** The figures as printable lines. */
export function formatReport(r: WorkloadReport): string {
  const errs = Object.entries(r.errors)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return [
    `operations ${r.ops} (ok ${r.okOps}), requests ${r.requests}, wall ${(r.wallMs / 1000).toFixed(1)} s`,
    `by kind: ${Object.entries(r.byKind)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
    `failed operations ${r.failed}, wrong results ${r.wrong}, hangs ${r.hangs}`,
    `errors by type: ${errs || "none"}; untyped ${r.untyped}`,
    `resends ${r.retries}, frames found lost ${r.lostFrames}, probes ${r.probes}`,
    `longest request ${r.maxRequestMs.toFixed(0)} ms (budget ${r.maxRequestBudgetMs.toFixed(0)} ms), max overrun ${r.maxOverrunMs.toFixed(1)} ms, longest operation ${r.maxOpMs.toFixed(0)} ms`,
    ...r.notes.map((n) => `note: ${n}`),
    ...r.samples.map((s) => `  ${s}`),
  ].join("\n");
}
