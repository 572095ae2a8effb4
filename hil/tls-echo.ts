// A TLS workload for the concurrency test, the fault and soak runs and the
// bench: the device's client (a TLSContext's wrapSocket) talks to a Node
// `tls` echo server on the loopback, writes `bytes` of random data in
// records and reads them back, at most `window` bytes ahead. What the
// device received is compared byte for byte with what it sent; the server
// hashes what it received (SHA-256, Node's crypto), so both directions are
// checked against a reference nobody here wrote. The server's certificate is
// a P-256 one (ECDHE-ECDSA on P-256 with ecdhCurve fixed), TLS 1.2 or 1.3.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { createServer, type Server, type TLSSocket } from "node:tls";
import type { Device, TLSContext, TLSVersion } from "../host/src/index.js";
import type { CallSettledInfo } from "../host/src/rpc/rpc.js";
import { requireTool } from "../tools/programs.js";
import { HANG_SLACK_MS } from "./workload.js";

/** The host name in the certificates (subjectAltName). */
export const TLS_HOST = "device.example";

export interface TlsServerCredentials {
  /** PEM: the leaf, then any intermediates. */
  chainPem: string;
  keyPem: string;
}

/**
 * A self-signed P-256 certificate for TLS_HOST in `dir` (OpenSSL CLI):
 * cert.pem, key.pem. Valid from 2020 (`openssl ca -startdate`), so a device
 * clock a little behind the host's (QEMU's) still finds it valid.
 */
export function makeSelfSignedP256(dir: string): TlsServerCredentials & { certPath: string; keyPath: string } {
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  const openssl = requireTool("openssl");
  const run = (args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  writeFileSync(join(dir, "index.txt"), "");
  writeFileSync(join(dir, "serial"), "01\n");
  writeFileSync(
    join(dir, "ca.cnf"),
    `[ca]\ndefault_ca = self\n[self]\ndir = ${dir}\ndatabase = $dir/index.txt\nnew_certs_dir = $dir\nserial = $dir/serial\n` +
      "default_md = sha256\npolicy = any\ncopy_extensions = copy\n[any]\ncommonName = supplied\n",
  );
  run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyPath]);
  run(["req", "-new", "-key", keyPath, "-subj", `/CN=${TLS_HOST}`, "-addext", `subjectAltName=DNS:${TLS_HOST}`, "-out", "cert.csr"]);
  run(
    ["ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", keyPath, "-in", "cert.csr", "-notext", "-out", certPath].concat([
      "-startdate",
      "20200101000000Z",
      "-enddate",
      "20991231000000Z",
    ]),
  );
  return { chainPem: readFileSync(certPath, "utf8"), keyPem: readFileSync(keyPath, "utf8"), certPath, keyPath };
}

/** What the server saw of one connection, once it ended. */
export interface EchoConnection {
  bytes: number;
  /** SHA-256 of what it received, hex. */
  sha256: string;
  version: string | null;
  cipher: string;
}

export interface EchoServer {
  port: number;
  /** The next connection to end (in the order they end). */
  nextEnded(timeoutMs?: number): Promise<EchoConnection>;
  close(): Promise<void>;
}

/**
 * A Node TLS server on the loopback echoing what it receives (`echo` false:
 * only hashing it, a sink); `version` fixes the protocol version.
 */
export async function startEchoServer(cred: TlsServerCredentials, version?: TLSVersion, echo = true): Promise<EchoServer> {
  const ended: EchoConnection[] = [];
  const waiters: (() => void)[] = [];
  const sockets = new Set<TLSSocket>();
  const server: Server = createServer(
    {
      cert: cred.chainPem,
      key: cred.keyPem,
      ecdhCurve: "P-256",
      ...(version ? { minVersion: version, maxVersion: version } : {}),
    },
    (s) => {
      sockets.add(s);
      const hash = createHash("sha256");
      let bytes = 0;
      s.on("data", (d: Buffer) => {
        hash.update(d);
        bytes += d.length;
      });
      s.on("error", () => {}); // a peer that vanished (the tests check what arrived)
      if (echo) s.pipe(s);
      else s.on("end", () => s.end());
      s.on("close", () => {
        sockets.delete(s);
        ended.push({ bytes, sha256: hash.digest("hex"), version: s.getProtocol(), cipher: s.getCipher()?.name ?? "" });
        for (const w of waiters.splice(0)) w();
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    nextEnded: (timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`echo server: no connection ended within ${timeoutMs} ms`)), timeoutMs);
        const check = () => {
          const c = ended.shift();
          if (c) {
            clearTimeout(timer);
            resolve(c);
          } else waiters.push(check);
        };
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface EchoOptions {
  /** Bytes each way. */
  bytes: number;
  /**
   * Bytes per send and most bytes per read (default 16 KiB; the SDK cuts
   * them to its request size). On a line that loses frames, small pieces keep
   * the tls_write requests and tls_read answers short enough to get through:
   * the SDK's TLS buffer sizes them by chunkSize, not by the streamChunk its
   * other bulk modules shrink while the line loses frames.
   */
  piece?: number;
  /** Most bytes sent but not yet read back (default 64 KiB). */
  window?: number;
}

export interface EchoResult {
  version: string | undefined;
  cipher: string | undefined;
  handshakeMs: number;
  /** From the end of the handshake until the last byte came back. */
  dataMs: number;
  /** Bytes each way. */
  bytes: number;
  /** Received bytes that differ from the sent ones at their offset (must be 0). */
  wrong: number;
  /** SHA-256 (hex) of what the device sent, of what it got back, and of what the server got. */
  sentSha256: string;
  receivedSha256: string;
  serverSha256: string;
}

/** A TCP connection to the loopback's `port`. */
export function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

/**
 * One session of the device client `ctx` with `server`: handshake, `bytes`
 * each way, close_notify, the session freed. Throws what the SDK throws.
 */
export async function tlsEcho(ctx: TLSContext, server: EchoServer, opts: EchoOptions): Promise<EchoResult> {
  const piece = opts.piece ?? 16384;
  const window = opts.window ?? 65536;
  const data = randomBytes(opts.bytes);
  const got = createHash("sha256");
  const tls = ctx.wrapSocket(await connectTo(server.port), TLS_HOST);
  let wrong = 0;
  try {
    const t0 = performance.now();
    await tls.doHandshake();
    const t1 = performance.now();
    let sent = 0;
    let back = 0;
    while (back < data.length) {
      if (sent < data.length && sent - back < window) {
        const n = Math.min(piece, data.length - sent);
        await tls.send(data.subarray(sent, sent + n));
        sent += n;
        continue;
      }
      const r = await tls.recv(piece);
      if (r.length === 0) throw new Error(`the echo server closed after ${back} of ${data.length} bytes`);
      if (back + r.length > data.length) throw new Error("the echo server sent more than it was sent");
      for (let i = 0; i < r.length; i++) if (r[i] !== data[back + i]) wrong++;
      got.update(r);
      back += r.length;
    }
    const t2 = performance.now();
    await tls.shutdown();
    const [info, seen] = [await tls.buffer.info(), await server.nextEnded()];
    return {
      version: tls.buffer.negotiatedTlsVersion(),
      cipher: info.cipher,
      handshakeMs: t1 - t0,
      dataMs: t2 - t1,
      bytes: data.length,
      wrong,
      sentSha256: createHash("sha256").update(data).digest("hex"),
      receivedSha256: got.digest("hex"),
      serverSha256: seen.sha256,
    };
  } finally {
    await tls.close();
  }
}

/** Requests of `dev` (those whose op `which` picks) that settled later than their budget (+ the workload's slack) while watched. */
export function watchHangs(
  dev: Device,
  which: (op: string) => boolean = () => true,
): { readonly hangs: number; readonly maxOverrunMs: number; readonly requests: number; stop(): void } {
  const w = { hangs: 0, maxOverrunMs: Number.NEGATIVE_INFINITY, requests: 0 };
  const on = (s: CallSettledInfo) => {
    if (!which(s.op)) return;
    w.requests++;
    w.maxOverrunMs = Math.max(w.maxOverrunMs, s.activeMs - s.budgetMs);
    if (s.activeMs > s.budgetMs + HANG_SLACK_MS) w.hangs++;
  };
  dev.rpc.on("settled", on);
  return {
    get hangs() {
      return w.hangs;
    },
    get maxOverrunMs() {
      return w.maxOverrunMs;
    },
    get requests() {
      return w.requests;
    },
    stop: () => dev.rpc.off("settled", on),
  };
}

export interface TlsWorkloadOptions {
  /** Versions the sessions take in turn (default TLS 1.2, TLS 1.3). */
  versions?: readonly TLSVersion[];
  /** Bytes each way per session. */
  bytes: number;
  /** tlsEcho's piece. */
  piece?: number;
  /** Stop after this many sessions ... */
  sessions?: number;
  /** ... or once this many ms passed (whichever comes first; a session running then ends first). */
  durationMs?: number;
}

export interface TlsWorkloadReport {
  sessions: number;
  okSessions: number;
  /** Application bytes each way over the sessions that finished. */
  bytes: number;
  /** Bytes that came back wrong, plus digests that disagree (must be 0). */
  wrong: number;
  /** Sessions that failed (must be 0), by error name. */
  failed: number;
  errors: Record<string, number>;
  /** tls_* requests that outlived their budget (must be 0), and the largest overrun. */
  hangs: number;
  maxOverrunMs: number;
  handshakeMsMax: number;
  samples: string[];
}

/**
 * TLS echo sessions one after another, each against a fresh echo server and
 * a device client verifying `cred`'s self-signed certificate; every object
 * made on the device is freed at the end.
 */
export async function runTlsWorkload(dev: Device, cred: TlsServerCredentials, opts: TlsWorkloadOptions): Promise<TlsWorkloadReport> {
  const versions = opts.versions ?? (["TLSv1.2", "TLSv1.3"] as const);
  const r: TlsWorkloadReport = {
    sessions: 0,
    okSessions: 0,
    bytes: 0,
    wrong: 0,
    failed: 0,
    errors: {},
    hangs: 0,
    maxOverrunMs: Number.NEGATIVE_INFINITY,
    handshakeMsMax: 0,
    samples: [],
  };
  const watch = watchHangs(dev, (op) => op.startsWith("tls_"));
  const crt = await dev.x509.CRT.fromPEM(cred.chainPem);
  const trust = new dev.tls.TrustStore();
  let ctx: TLSContext | undefined;
  const end = opts.durationMs !== undefined ? Date.now() + opts.durationMs : Number.POSITIVE_INFINITY;
  try {
    await trust.add(crt); // the configuration copies the store as it is
    ctx = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust }));
    await ctx.ready;
    while (r.sessions < (opts.sessions ?? Number.POSITIVE_INFINITY) && Date.now() < end) {
      const version = versions[r.sessions % versions.length] as TLSVersion;
      r.sessions++;
      const server = await startEchoServer(cred, version);
      try {
        const e = await tlsEcho(ctx, server, { bytes: opts.bytes, ...(opts.piece ? { piece: opts.piece } : {}) });
        const bad = e.wrong + (e.receivedSha256 !== e.sentSha256 ? 1 : 0) + (e.serverSha256 !== e.sentSha256 ? 1 : 0);
        if (bad > 0 && r.samples.length < 20) r.samples.push(`wrong: ${version} session ${r.sessions}: ${e.wrong} bytes, digests differ`);
        r.wrong += bad;
        r.okSessions++;
        r.bytes += e.bytes;
        r.handshakeMsMax = Math.max(r.handshakeMsMax, e.handshakeMs);
      } catch (err) {
        r.failed++;
        const name = (err as Error).name ?? "Error";
        r.errors[name] = (r.errors[name] ?? 0) + 1;
        if (r.samples.length < 20) r.samples.push(`failed: ${version} session ${r.sessions}: ${name}: ${(err as Error).message}`);
      } finally {
        await server.close();
      }
    }
  } finally {
    watch.stop();
    for (const o of [ctx, trust, crt]) await o?.close();
  }
  r.hangs = watch.hangs;
  r.maxOverrunMs = watch.maxOverrunMs;
  return r;
}

/** One line of counts for a report. */
export function formatTlsReport(r: TlsWorkloadReport): string {
  const errs = Object.entries(r.errors)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return (
    `TLS records: ${r.sessions} echo session${r.sessions === 1 ? "" : "s"} (${r.okSessions} done, ${(r.bytes / 1024).toFixed(0)} KiB each way), failed ${r.failed}${errs ? ` (${errs})` : ""}, ` +
    `wrong ${r.wrong}, hangs ${r.hangs} (largest overrun ${Number.isFinite(r.maxOverrunMs) ? r.maxOverrunMs.toFixed(0) : "n/a"} ms), slowest handshake ${r.handshakeMsMax.toFixed(0)} ms` +
    (r.samples.length ? `\n  ${r.samples.join("\n  ")}` : "")
  );
}
