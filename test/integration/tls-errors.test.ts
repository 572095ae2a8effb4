// TLS failures on the device (issue 17, slice 2), each against a real peer:
// a PSK mismatch, a peer offering only cipher suites the device lacks (both
// directions), a peer that closes or falls silent mid-handshake (the
// configured handshake timeout), a peer gone mid-record, and a TLS 1.3
// KeyUpdate (Mbed TLS 3.6 refuses it, -0x7700). Each fails with a typed error
// naming the reason and carrying Mbed TLS's code as the device returned it;
// a failed session answers the same typed error on every later call; once it
// is closed the heap is where it was before it was made, and the device
// serves the next handshake.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CRT,
  type Device,
  TimeoutError,
  TLSAlertError,
  TLSConnectionError,
  type TLSContext,
  TLSHandshakeError,
  TLSKeyUpdateUnsupported,
  type TLSWrappedSocket,
  type TrustStore,
} from "../../host/src/index.js";
import { requireTool } from "../../tools/programs.js";
import { useSession } from "./session.js";
import { TARGET } from "./target.js";
import { connectTo, freePort, type Peer, recvUntil, SERVER_CHAIN_ARGS, spawnPeer, stopPeers, text, utf8 } from "./tls-peers.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const dir = mkdtempSync(join(tmpdir(), "tls-errors-"));
const openssl = requireTool("openssl");
const PSK = "00112233445566778899aabbccddeeff";
const OTHER_PSK = "ffeeddccbbaa99887766554433221100";
const FATAL_ALERT = -0x7780; // MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE
/** s_server's certificate chain (makePki's leaf for device.example and its intermediate). */
const CHAIN = SERVER_CHAIN_ARGS;
let root: CRT;
let trust: TrustStore;
let certClient: TLSContext;
const servers: Server[] = [];

/** An openssl s_server on a free port, ready to accept. */
async function sServer(args: string[]): Promise<{ port: number; peer: Peer }> {
  const port = await freePort();
  const peer = spawnPeer(openssl, ["s_server", "-accept", String(port), ...args], dir);
  await peer.waitFor("ACCEPT");
  return { port, peer };
}

/** A plain TCP server on a free port that does `onConnection` with each socket. */
async function tcpServer(onConnection: (s: Socket) => void): Promise<number> {
  const srv = createServer(onConnection);
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return (srv.address() as { port: number }).port;
}

/** A relay to `target`: once cut(), it passes half of the server's next bytes and hangs up on the client. */
async function relay(target: number): Promise<{ port: number; cut: () => void }> {
  let cutting = false;
  const port = await tcpServer((down) => {
    const up = connect(target, "127.0.0.1");
    down.on("data", (d) => up.write(d));
    up.on("data", (d: Buffer) => {
      if (!cutting) return void down.write(d);
      up.removeAllListeners("close");
      up.destroy();
      down.end(d.subarray(0, d.length >> 1));
    });
    up.on("close", () => down.destroy());
    down.on("close", () => up.destroy());
    for (const s of [up, down]) s.on("error", () => {});
  });
  return {
    port,
    cut: () => {
      cutting = true;
    },
  };
}

const pskContext = (key: string, extra: object = {}) =>
  dev.tls.ClientContext(
    new dev.tls.TLSConfiguration({ preSharedKey: ["device-1", Buffer.from(key, "hex")], validateCertificates: false, ...extra }),
  );

/**
 * Runs `fn` with a session of `ctx` over `sock`, closes both, then checks the
 * heap is back where it was before the session and the device still answers.
 */
async function withSession(ctx: TLSContext, sock: Socket, fn: (tls: TLSWrappedSocket) => Promise<void>, host: string | null = null) {
  const before = (await dev.stats()).heapUsed;
  const tls = ctx.wrapSocket(sock, host);
  try {
    await fn(tls);
  } finally {
    await tls.close();
  }
  const after = await dev.stats();
  expect(after.heapUsed, "heap after the failed session is freed").toBe(before);
  expect(after.tlsSessions).toBe(0);
  expect(text(await dev.echo(utf8("still serving")))).toBe("still serving");
}

/** Runs the handshake and one line from the server, so the session is established and past any tickets. */
async function established(tls: TLSWrappedSocket, peer: Peer): Promise<void> {
  await tls.doHandshake();
  peer.proc.stdin.write("ping\n");
  expect(await recvUntil(tls, "\n")).toBe("ping\n");
}

/** The error `p` rejects with, checked to be a `cls`. */
async function failure<T extends Error>(p: Promise<unknown>, cls: new (...a: never[]) => T): Promise<T> {
  const err = await p.then(
    () => new Error("it did not fail"),
    (e: unknown) => e,
  );
  if (!(err instanceof cls)) throw new Error(`expected a ${cls.name}, got ${String(err)}`, { cause: err });
  console.log(`[tls-errors ${TARGET}] ${err.name}: ${err.message}`);
  return err;
}

beforeAll(async () => {
  dev = session.dev;
  makePki(dir);
  root = await dev.x509.CRT.fromPEM(readFileSync(join(dir, "root.crt"), "utf8"));
  trust = new dev.tls.TrustStore();
  await trust.add(root);
  certClient = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust }));
  await certClient.ready;
}, 120_000);

afterAll(async () => {
  stopPeers();
  for (const s of servers) s.close();
  for (const o of [certClient, trust, root]) await o?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("handshake refusals, named", () => {
  it.each([
    ["TLS 1.2", "-tls1_2", "bad_record_mac", 20],
    ["TLS 1.3", "-tls1_3", "illegal_parameter", 47], // OpenSSL's answer to a PSK binder that does not verify
  ] as const)("%s PSK mismatch: the server's fatal alert %s, -0x7780; the session stays failed", async (_v, flag, name, alert) => {
    const { port } = await sServer([flag, "-nocert", "-psk", OTHER_PSK, "-psk_identity", "device-1"]);
    const ctx = pskContext(PSK);
    await withSession(ctx, await connectTo(port), async (tls) => {
      const err = await failure(tls.doHandshake(), TLSAlertError);
      expect([err.alertName, err.alert, err.mbedtlsCode]).toEqual([name, alert, FATAL_ALERT]);
      // every later call answers the same typed error
      await failure(tls.buffer.doHandshake(), TLSAlertError);
      await failure(tls.buffer.read(), TLSAlertError);
    });
    await ctx.close();
  });

  it("TLS 1.2 server offering only anonymous suites (Mbed TLS has none): handshake_failure", async () => {
    const { port } = await sServer(["-tls1_2", "-nocert", "-cipher", "ADH-AES128-GCM-SHA256:AECDH-AES128-SHA:@SECLEVEL=0"]);
    await withSession(
      certClient,
      await connectTo(port),
      async (tls) => {
        const err = await failure(tls.doHandshake(), TLSAlertError);
        expect([err.alertName, err.mbedtlsCode]).toEqual(["handshake_failure", FATAL_ALERT]);
        expect(err.message).toContain("no cipher suite");
      },
      "device.example",
    );
  });

  it("TLS 1.3 server with only ChaCha20 against a device configured for AES-128-GCM alone: handshake_failure", async () => {
    const { port } = await sServer(["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256", ...CHAIN]);
    const ctx = dev.tls.ClientContext(certClient.configuration.update({ ciphers: [0x1301] }));
    await withSession(
      ctx,
      await connectTo(port),
      async (tls) => {
        const err = await failure(tls.doHandshake(), TLSAlertError);
        expect([err.alertName, err.mbedtlsCode]).toEqual(["handshake_failure", FATAL_ALERT]);
      },
      "device.example",
    );
    await ctx.close();
  });

  describe("device server", () => {
    let server: TLSContext;
    let listener: Server;
    beforeAll(async () => {
      server = dev.tls.ServerContext(
        new dev.tls.TLSConfiguration({ preSharedKey: ["device-1", Buffer.from(PSK, "hex")], highestSupportedVersion: "TLSv1.2" }),
      );
      await server.ready;
      listener = createServer();
      servers.push(listener);
      await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
    });
    afterAll(() => server?.close());

    const accept = () => new Promise<Socket>((r) => listener.once("connection", r));
    const sClient = (args: string[]) =>
      spawnPeer(openssl, ["s_client", "-connect", `127.0.0.1:${(listener.address() as { port: number }).port}`, ...args], dir);

    it("a client offering only suites the device lacks: Mbed TLS's handshake failure, named", async () => {
      const accepted = accept();
      sClient(["-tls1_2", "-psk", PSK, "-psk_identity", "device-1", "-cipher", "ADH-AES128-GCM-SHA256:@SECLEVEL=0"]);
      await withSession(server, await accepted, async (tls) => {
        const err = await failure(tls.doHandshake(), TLSHandshakeError);
        expect(err.mbedtlsCode).toBe(-0x6e00);
        expect(err.reason).toContain("no shared cipher suite");
      });
    });

    it("a client with another PSK: the device finds the record MAC bad", async () => {
      const accepted = accept();
      sClient(["-tls1_2", "-psk", OTHER_PSK, "-psk_identity", "device-1"]);
      await withSession(server, await accepted, async (tls) => {
        const err = await failure(tls.doHandshake(), TLSHandshakeError);
        expect(err.mbedtlsCode).toBe(-0x7180);
        expect(err.reason).toContain("bad record MAC");
      });
    });
  });
});

describe("a peer that goes away", () => {
  it("mid-handshake, closing the connection: TLSConnectionError", async () => {
    const port = await tcpServer((s) => s.once("data", () => s.destroy()));
    await withSession(
      certClient,
      await connectTo(port),
      async (tls) => {
        const err = await failure(tls.doHandshake(), TLSConnectionError);
        expect(err.message).toContain("before the handshake");
      },
      "device.example",
    );
  });

  it("mid-handshake, killed (-9) after its first flight: TLSConnectionError", async () => {
    const { port, peer } = await sServer(["-tls1_2", ...CHAIN]);
    const sock = await connectTo(port);
    sock.once("data", () => peer.proc.kill("SIGKILL"));
    await withSession(
      certClient,
      sock,
      async (tls) => {
        await failure(tls.doHandshake(), TLSConnectionError);
      },
      "device.example",
    );
  });

  it("mid-handshake, silent: TimeoutError within the configured handshakeTimeoutMs", async () => {
    const port = await tcpServer(() => {}); // reads the ClientHello and never answers
    const timeoutMs = 1500;
    const ctx = dev.tls.ClientContext(certClient.configuration.update({ handshakeTimeoutMs: timeoutMs }));
    await withSession(
      ctx,
      await connectTo(port),
      async (tls) => {
        const t0 = Date.now();
        const err = await failure(tls.doHandshake(), TimeoutError);
        const took = Date.now() - t0;
        expect(err.message).toContain("handshake");
        expect(took).toBeGreaterThanOrEqual(timeoutMs - 50);
        expect(took).toBeLessThan(timeoutMs + 3000);
      },
      "device.example",
    );
    await ctx.close();
  });

  it("mid-record: TLSConnectionError naming the cut record", async () => {
    const { port, peer } = await sServer(["-tls1_3", ...CHAIN]);
    const { port: relayPort, cut } = await relay(port);
    await withSession(
      certClient,
      await connectTo(relayPort),
      async (tls) => {
        await established(tls, peer);
        cut();
        peer.proc.stdin.write(`${"x".repeat(3000)}\n`);
        const err = await failure(tls.recv(), TLSConnectionError);
        expect(err.message).toContain("in the middle of a record");
      },
      "device.example",
    );
  });
});

describe("TLS 1.3 KeyUpdate", () => {
  it("from openssl s_server (command k): TLSKeyUpdateUnsupported, -0x7700, on every later call; the device serves the next session", async () => {
    const { port, peer } = await sServer(["-tls1_3", ...CHAIN]);
    await withSession(
      certClient,
      await connectTo(port),
      async (tls) => {
        await established(tls, peer);
        peer.proc.stdin.write("k\n"); // s_server: SSL_key_update (not requested); the KeyUpdate record goes out
        const err = await failure(tls.recv(), TLSKeyUpdateUnsupported);
        expect(err.mbedtlsCode).toBe(-0x7700);
        expect(err.message).toContain("KeyUpdate");
        await failure(tls.buffer.read(), TLSKeyUpdateUnsupported);
        await failure(tls.buffer.write(utf8("after")), TLSKeyUpdateUnsupported);
      },
      "device.example",
    );
    // the same server, a new connection: a full handshake and data
    await withSession(
      certClient,
      await connectTo(port),
      async (tls) => {
        await tls.doHandshake();
        await tls.send(utf8("after the KeyUpdate\n"));
        await peer.waitFor("after the KeyUpdate");
        await tls.shutdown();
      },
      "device.example",
    );
  });
});
