// Peers for the TLS tests: a program (openssl s_server / s_client, later
// GnuTLS or Mbed TLS's ssl_server2) spawned with its output collected and
// a wait for a pattern in it, killed at the end of the file or at exit;
// free loopback ports; a connected socket; reading a wrapped socket up to a
// marker. Shared by every tls-*.test.ts file.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { connect, createServer, type Socket } from "node:net";
import type { TLSWrappedSocket } from "../../host/src/index.js";

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
