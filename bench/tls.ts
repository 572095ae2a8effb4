// The TLS part of `npm run bench` (issue 17, slice 7), each figure next to a
// baseline measured in the same run:
//   handshake   a device client and a device server (both sessions on the
//               device, the host moving the bytes between their buffers)
//               vs the same handshake by bench/tls_baseline.c: Mbed TLS's
//               client and server in one process, the native build's
//               library, the same certificate, key, version and suite (a
//               device that holds one session at a time runs its client
//               against a Node TLS server instead);
//   bulk        an established device client session writing to a Node TLS
//               sink (one way) and echoing through a Node TLS server (each
//               way), vs the device's AES-GCM alone (the bench's chunked GCM
//               workload) and the in-process Mbed TLS session's rate;
//   line rate   the one-way write through the fault relay's 921600-baud cap
//               (native) vs the line's payload capacity, baud / 10 bytes/s.
// ECDHE-ECDSA with a P-256 certificate; the key exchange group is Mbed TLS's
// default choice on both sides of the handshake ratio.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  connectTo,
  type EchoServer,
  makeSelfSignedP256,
  startEchoServer,
  TLS_HOST,
  type TlsServerCredentials,
  tlsEcho,
} from "../hil/tls-echo.js";
import type { CRT, Device, ECC, TLSContext, TLSVersion, TrustStore } from "../host/src/index.js";
import { withCappedDevice } from "./line-rate.js";
import type { Row } from "./report.js";
import { MiB, median } from "./stats.js";

/** The suite each version runs in every measurement: AES-128-GCM. */
export const TLS_SUITES: Record<TLSVersion, number> = { "TLSv1.2": 0xc02b, "TLSv1.3": 0x1301 };
const KEYS = { "TLSv1.2": "tls12", "TLSv1.3": "tls13" } as const;
export const LINE_BAUD = 921600;

export interface TlsBaselineVersion {
  suite: string;
  handshake_ms: number;
  handshake_ms_min: number;
  bulk_MBps: number;
}

export interface TlsFigures {
  how: string;
  /** bench/tls_baseline.c, in-process Mbed TLS. */
  baseline?: Record<"tls12" | "tls13", TlsBaselineVersion>;
  /** Device client + device server, median handshake (both tls_new calls to both done), ms; and the suite. */
  tls12_handshake_ms?: number;
  tls13_handshake_ms?: number;
  tls12_suite?: string;
  tls13_suite?: string;
  handshakes?: number;
  /** The handshakes' server: "device" or "Node" (a device holding one session). */
  handshake_peer?: string;
  /** Established TLS 1.3 device client writing to a Node sink, payload MB/s. */
  write_MBps?: number;
  /** Echo through a Node TLS 1.3 server, MB/s each way. */
  echo_MBps?: number;
  bulk_bytes?: number;
  /** The write through the relay's LINE_BAUD cap: payload bytes/s and its fraction of baud/10. */
  line_Bps?: number;
  line_fraction?: number;
  line_bytes?: number;
  note?: string;
}

interface DeviceCreds {
  crt: CRT;
  key: ECC;
  trust: TrustStore;
  close(): Promise<void>;
}

async function deviceCreds(dev: Device, cred: TlsServerCredentials): Promise<DeviceCreds> {
  const crt = await dev.x509.CRT.fromPEM(cred.chainPem);
  const key = await dev.pk.ECC.fromPEM(cred.keyPem);
  const trust = new dev.tls.TrustStore();
  await trust.add(crt);
  return {
    crt,
    key,
    trust,
    close: async () => {
      for (const o of [trust, key, crt]) await o.close();
    },
  };
}

function clientOf(dev: Device, c: DeviceCreds, version: TLSVersion): TLSContext {
  return dev.tls.ClientContext(
    new dev.tls.TLSConfiguration({
      trustStore: c.trust,
      lowestSupportedVersion: version,
      highestSupportedVersion: version,
      ciphers: [TLS_SUITES[version]],
    }),
  );
}

/** Median handshake of a device client with a device server, the host moving the bytes between their buffers. */
async function deviceHandshakes(dev: Device, c: DeviceCreds, version: TLSVersion, rounds: number): Promise<{ ms: number; suite: string }> {
  const client = clientOf(dev, c, version);
  const server = dev.tls.ServerContext(
    new dev.tls.TLSConfiguration({
      certificateChain: [c.crt, c.key],
      lowestSupportedVersion: version,
      highestSupportedVersion: version,
      ciphers: [TLS_SUITES[version]],
    }),
  );
  const times: number[] = [];
  let suite = "";
  try {
    await Promise.all([client.ready, server.ready]);
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      const cli = client.wrapBuffers(TLS_HOST);
      const srv = server.wrapBuffers();
      try {
        const move = (from: typeof cli, to: typeof cli) => {
          const out = from.peekOutgoing();
          if (out.length > 0) {
            to.receiveFromNetwork(out);
            from.consumeOutgoing(out.length);
          }
        };
        let cd = false;
        let sd = false;
        for (let i = 0; i < 50 && !(cd && sd); i++) {
          if (!cd) cd = (await cli.doHandshake()) === "done";
          move(cli, srv);
          if (!sd) sd = (await srv.doHandshake()) === "done";
          move(srv, cli);
        }
        if (!(cd && sd)) throw new Error(`bench: the device's ${version} handshake with itself did not finish`);
        times.push(performance.now() - t0);
        suite = cli.cipher()?.[0] ?? "";
        if (cli.negotiatedTlsVersion() !== version)
          throw new Error(`bench: the device negotiated ${cli.negotiatedTlsVersion()}, not ${version}`);
      } finally {
        await cli.close();
        await srv.close();
      }
    }
  } finally {
    await client.close();
    await server.close();
  }
  return { ms: median(times), suite };
}

/** Median handshake of a device client with a Node TLS server (a device that holds one session). */
async function nodeHandshakes(
  dev: Device,
  c: DeviceCreds,
  cred: TlsServerCredentials,
  version: TLSVersion,
  rounds: number,
): Promise<{ ms: number; suite: string }> {
  const client = clientOf(dev, c, version);
  const server = await startEchoServer(cred, version);
  const times: number[] = [];
  let suite = "";
  try {
    for (let r = 0; r < rounds; r++) {
      const e = await tlsEcho(client, server, { bytes: 16 });
      times.push(e.handshakeMs);
      suite = e.cipher ?? "";
    }
  } finally {
    await client.close();
    await server.close();
  }
  return { ms: median(times), suite };
}

/** The established session's one-way write of `bytes` to a sink: payload bytes/s (the handshake not counted); checked by SHA-256. */
async function tlsWrite(ctx: TLSContext, sink: EchoServer, bytes: number): Promise<number> {
  const data = randomBytes(bytes);
  const tls = ctx.wrapSocket(await connectTo(sink.port), TLS_HOST);
  try {
    await tls.doHandshake();
    const t0 = performance.now();
    for (let off = 0; off < data.length; off += 16384) await tls.send(data.subarray(off, off + 16384));
    await tls.shutdown();
    const seen = await sink.nextEnded(120_000);
    const s = (performance.now() - t0) / 1000;
    if (seen.bytes !== bytes || seen.sha256 !== createHash("sha256").update(data).digest("hex"))
      throw new Error(`bench: the TLS sink got ${seen.bytes} of ${bytes} bytes, or not the bytes sent`);
    return bytes / s;
  } finally {
    await tls.close();
  }
}

/** The device's TLS figures (handshakes, bulk) and the in-process baseline. */
export async function tlsWorkloads(
  dev: Device,
  o: { quick: boolean; slow: boolean; baseline: string; log: (m: string) => void },
): Promise<TlsFigures> {
  const dir = mkdtempSync(join(tmpdir(), "bench-tls-"));
  const rounds = o.slow ? 3 : o.quick ? 5 : 20;
  const bulk = o.slow ? 64 << 10 : o.quick ? 2 << 20 : 8 << 20;
  const f: TlsFigures = { how: "device client and server on the device vs Mbed TLS in one process", handshakes: rounds, bulk_bytes: bulk };
  try {
    const cred = makeSelfSignedP256(dir);
    o.log(`  in-process Mbed TLS baseline (${rounds} handshakes per version, ${bulk >> 10} KiB)`);
    f.baseline = JSON.parse(
      execFileSync(o.baseline, [cred.certPath, cred.keyPath, TLS_HOST, String(rounds), String(bulk)], { encoding: "utf8" }),
    ) as TlsFigures["baseline"];
    const c = await deviceCreds(dev, cred);
    try {
      const oneSession = dev.info.tls.sessionsMax < 2;
      f.handshake_peer = oneSession ? "Node" : "device";
      for (const v of ["TLSv1.2", "TLSv1.3"] as const) {
        o.log(`  ${v} handshakes through the device (${oneSession ? "its client, a Node server" : "client and server on it"})`);
        const h = oneSession ? await nodeHandshakes(dev, c, cred, v, rounds) : await deviceHandshakes(dev, c, v, rounds);
        f[`${KEYS[v]}_handshake_ms`] = h.ms;
        f[`${KEYS[v]}_suite`] = h.suite;
      }
      o.log(`  TLS 1.3 bulk: ${bulk >> 10} KiB written to a Node TLS sink, then echoed`);
      const client = clientOf(dev, c, "TLSv1.3");
      const sink = await startEchoServer(cred, "TLSv1.3", false);
      const echo = await startEchoServer(cred, "TLSv1.3");
      try {
        f.write_MBps = (await tlsWrite(client, sink, bulk)) / 1e6;
        const e = await tlsEcho(client, echo, { bytes: bulk });
        if (e.wrong !== 0 || e.serverSha256 !== e.sentSha256) throw new Error("bench: the TLS echo came back wrong");
        f.echo_MBps = e.bytes / (e.dataMs / 1000) / 1e6;
      } finally {
        await client.close();
        await sink.close();
        await echo.close();
      }
    } finally {
      await c.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return f;
}

/** The one-way TLS 1.3 write of a native device behind the fault relay's LINE_BAUD cap. */
export async function tlsLineRate(o: {
  quick: boolean;
  log: (m: string) => void;
}): Promise<{ Bps: number; fraction: number; bytes: number }> {
  const dir = mkdtempSync(join(tmpdir(), "bench-tls-line-"));
  try {
    const cred = makeSelfSignedP256(dir);
    return await withCappedDevice(LINE_BAUD, async (dev) => {
      const bytes = Math.round(((LINE_BAUD / 10) * (o.quick ? 4 : 10)) / 16384) * 16384;
      o.log(`  TLS 1.3 write of ${bytes >> 10} KiB at ${LINE_BAUD} baud`);
      const c = await deviceCreds(dev, cred);
      const client = clientOf(dev, c, "TLSv1.3");
      const sink = await startEchoServer(cred, "TLSv1.3", false);
      try {
        const Bps = await tlsWrite(client, sink, bytes);
        return { Bps, fraction: Bps / (LINE_BAUD / 10), bytes };
      } finally {
        await client.close();
        await sink.close();
        await c.close();
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The bench table's TLS rows; `gcmMBps`: the device's AES-256-GCM alone in the same run. */
export function tlsRows(t: TlsFigures, gcmMBps: number, section: string): Row[] {
  const rows: Row[] = [];
  const x = (a: number | undefined, b: number | undefined) => ({ name: "ratio", value: (a ?? Number.NaN) / (b ?? Number.NaN), unit: "x" });
  for (const [v, k] of [
    ["1.2", "tls12"],
    ["1.3", "tls13"],
  ] as const) {
    const dev = t[`${k}_handshake_ms`];
    const base = t.baseline?.[k].handshake_ms;
    rows.push({
      section,
      name: `TLS ${v} handshake, device client + ${t.handshake_peer === "Node" ? "Node" : "device"} server`,
      value: dev ?? Number.NaN,
      unit: "ms",
      baselines: [{ name: "Mbed TLS in one process", value: base ?? Number.NaN, unit: "ms" }, x(dev, base)],
      note: `${t[`${k}_suite`] ?? "?"}, P-256 ECDSA certificate, median of ${t.handshakes ?? "?"}${t.handshake_peer === "Node" ? "; the server is Node's (one session on this device)" : ""}`,
    });
  }
  const b = t.bulk_bytes ?? 0;
  const bulk = b >= MiB ? `${b / MiB} MiB` : `${b >> 10} KiB`;
  rows.push(
    {
      section,
      name: `TLS 1.3 write to a Node sink, ${bulk}`,
      value: t.write_MBps ?? Number.NaN,
      unit: "MB/s",
      baselines: [
        { name: "device AES-256-GCM", value: gcmMBps, unit: "MB/s" },
        x(t.write_MBps, gcmMBps),
        { name: "Mbed TLS in one process", value: t.baseline?.tls13.bulk_MBps ?? Number.NaN, unit: "MB/s" },
      ],
      note: "established session, one way",
    },
    {
      section,
      name: `TLS 1.3 echo via a Node server, ${bulk}`,
      value: t.echo_MBps ?? Number.NaN,
      unit: "MB/s",
      baselines: [{ name: "write alone", value: t.write_MBps ?? Number.NaN, unit: "MB/s" }],
      note: "each way",
    },
  );
  if (t.line_Bps !== undefined) {
    rows.push({
      section,
      name: `${LINE_BAUD} baud: TLS 1.3 write`,
      value: t.line_Bps / 1e3,
      unit: "kB/s",
      baselines: [
        { name: "line payload capacity", value: LINE_BAUD / 10 / 1e3, unit: "kB/s" },
        { name: "fraction", value: (t.line_fraction ?? Number.NaN) * 100, unit: "%" },
      ],
    });
  }
  return rows;
}
