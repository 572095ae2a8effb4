// Peers for the TLS tests: a program (openssl s_server / s_client, later
// GnuTLS or Mbed TLS's ssl_server2) spawned with its output collected and
// a wait for a pattern in it, killed at the end of the file or at exit;
// free loopback ports; a connected socket; reading a wrapped socket up to a
// marker. Shared by every tls-*.test.ts file.
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CRT, Device, ECC, TLSWrappedSocket } from "../../host/src/index.js";
import { requireTool } from "../../tools/programs.js";

/** A peer process: its output so far, a wait for a pattern in it, and a kill. */
export interface Peer {
  proc: ChildProcessWithoutNullStreams;
  out(): string;
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code (or signal) once the process ended. */
  exited(): Promise<number | string>;
  stop(): void;
}

const peers = new Set<Peer>();
process.on("exit", () => {
  for (const p of peers) p.stop();
});

/** Kills every peer still running (call from afterAll). */
export function stopPeers(): void {
  for (const p of [...peers]) p.stop();
}

/** Starts `program args` in `cwd`, stdin kept open (an s_server at stdin EOF exits). */
export function spawnPeer(program: string, args: string[], cwd: string): Peer {
  const proc = spawn(program, args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
  let text = "";
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    text += d.toString("latin1");
    for (const w of waiters) w();
  };
  proc.stdout.on("data", onData);
  proc.stderr.on("data", onData);
  proc.on("exit", () => {
    for (const w of waiters) w();
  });
  const name = `${program.split("/").pop()} ${args[0] ?? ""}`;
  const peer: Peer = {
    proc,
    out: () => text,
    waitFor: (pattern, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const seen = () => (typeof pattern === "string" ? text.includes(pattern) : pattern.test(text));
        const check = () => {
          if (seen()) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before ${String(pattern)}:\n${text}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${name}: no ${String(pattern)} within ${timeoutMs} ms:\n${text}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    exited: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) resolve(proc.exitCode ?? (proc.signalCode as string));
        else proc.once("exit", (code, signal) => resolve(code ?? (signal as string)));
      }),
    stop: () => {
      peers.delete(peer);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    },
  };
  peers.add(peer);
  return peer;
}

/** A free TCP port on the loopback (released before the peer binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A socket connected to the loopback's `port`. */
export function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** What the session receives until `marker` arrived (or the peer closed). */
export async function recvUntil(tls: TLSWrappedSocket, marker: string): Promise<string> {
  let got = "";
  while (!got.includes(marker)) {
    const r = await tls.recv();
    if (r.length === 0) break;
    got += text(r);
  }
  return got;
}

/** s_server's arguments for makePki's server leaf, its key and the intermediate. */
export const SERVER_CHAIN_ARGS: readonly string[] = ["-cert", "server.crt", "-key", "server.key", "-cert_chain", "inter.crt"];

/** The TLS versions the tests run, as the SDK names them, with OpenSSL's flag for each. */
export const TLS_VERSIONS = [
  ["TLSv1.2", "-tls1_2"],
  ["TLSv1.3", "-tls1_3"],
] as const;

/** A scratch directory for a test file's OpenSSL files, with `openssl` run or spawned in it. */
export interface OpensslDir {
  dir: string;
  path(file: string): string;
  /** Runs openssl to its end; its standard output. */
  run(args: string[]): string;
  /** Starts openssl as a peer (stopPeers() ends it). */
  spawn(args: string[]): Peer;
  remove(): void;
}

export function opensslDir(prefix: string): OpensslDir {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const openssl = requireTool("openssl");
  return {
    dir,
    path: (file) => join(dir, file),
    run: (args) => execFileSync(openssl, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }).toString(),
    spawn: (args) => spawnPeer(openssl, args, dir),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A TCP server on the loopback whose connections a test takes one at a time (a device server answers them). */
export interface Listener {
  port: number;
  /** The next connection. */
  accepted(): Promise<Socket>;
  close(): Promise<void>;
}

export async function listenLoopback(): Promise<Listener> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    accepted: () => new Promise<Socket>((resolve) => server.once("connection", resolve)),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A device server's identity: a P-256 key made on the device, not
 * exportable, and its leaf for `cn` issued by makePki's intermediate with
 * the OpenSSL CLI (ext.cnf's [server]: SAN DNS:device.example), in
 * `o`'s directory (which holds makePki's files).
 */
export async function deviceServerLeaf(
  dev: Device,
  o: Pick<OpensslDir, "run" | "path">,
  cn = "device.example",
): Promise<{ key: ECC; leaf: CRT }> {
  const key = dev.pk.ECC("secp256r1");
  await key.generate({ exportable: false });
  const csr = await dev.x509.CSR.new(key, `CN=${cn}`, "sha256");
  writeFileSync(o.path("device.csr.der"), csr.toDER());
  await csr.close();
  o.run(["req", "-inform", "DER", "-in", "device.csr.der", "-out", "device.csr"]);
  o.run(
    ["x509", "-req", "-in", "device.csr", "-CA", "inter.crt", "-CAkey", "inter.key", "-CAcreateserial", "-days", "30"].concat([
      "-sha256",
      "-extfile",
      "ext.cnf",
      "-extensions",
      "server",
      "-out",
      "device.crt",
    ]),
  );
  return { key, leaf: await dev.x509.CRT.fromPEM(readFileSync(o.path("device.crt"), "utf8")) };
}
