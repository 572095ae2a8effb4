// TLS limits on the device (issue 17, slice 1): hello names them
// (dev.info.tls: sessions at once, the record sizes, the ring), stats counts
// the live sessions and configurations; every session the limit allows can
// be made and one more is TooManyHandlesError (the limit read from hello, not
// assumed: 8 native, 3 on the STM32 image), while the first still completes a
// TLS 1.3 handshake with `openssl s_server` and moves data both ways; once
// all are closed, the heap, the handles and the counts are at their
// baseline. The handshake's heap is logged (what a session keeps).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CRT,
  type Device,
  type TLSContext,
  type TLSWrappedBuffer,
  TLSWrappedSocket,
  TooManyHandlesError,
  type TrustStore,
} from "../../host/src/index.js";
import { requireTool } from "../../tools/programs.js";
import { useSession } from "./session.js";
import { TARGET } from "./target.js";
import { connectTo, freePort, type Peer, recvUntil, SERVER_CHAIN_ARGS, spawnPeer, stopPeers, utf8 } from "./tls-peers.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const dir = mkdtempSync(join(tmpdir(), "tls-limits-"));
const openssl = requireTool("openssl");
let root: CRT;
let trust: TrustStore;
let client: TLSContext;
let port = 0;
let peer: Peer;

beforeAll(async () => {
  dev = session.dev;
  makePki(dir);
  root = await dev.x509.CRT.fromPEM(readFileSync(join(dir, "root.crt"), "utf8"));
  trust = new dev.tls.TrustStore();
  await trust.add(root);
  port = await freePort();
  // -rev: the server answers each line reversed, so data goes both ways without its stdin.
  peer = spawnPeer(openssl, ["s_server", "-tls1_3", "-rev", "-accept", String(port), ...SERVER_CHAIN_ARGS], dir);
  await peer.waitFor("ACCEPT");
}, 120_000);

afterAll(async () => {
  stopPeers();
  for (const o of [client, trust, root]) await o?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("TLS limits", () => {
  it("hello names the limits: sessions at once, 16 KiB records in, 4 KiB out, the ring", () => {
    const t = dev.info.tls;
    expect(t.sessionsMax).toBeGreaterThanOrEqual(1);
    expect(t.sessionsMax).toBeLessThan(dev.info.maxHandles);
    expect(t.inRecord).toBe(16384); // what default OpenSSL and Node peers send (docs/tls-design.md §3)
    expect(t.outRecord).toBe(4096);
    expect(t.ring).toBeGreaterThan(t.outRecord / 4);
    console.log(
      `[tls-limits ${TARGET}] hello: ${t.sessionsMax} TLS sessions, records ${t.inRecord} B in / ${t.outRecord} B out, rings ${t.ring} B`,
    );
  });

  it("stats counts configurations and sessions", async () => {
    const s0 = await dev.stats();
    expect([s0.tlsSessions, s0.tlsConfs]).toEqual([0, 0]);
    client = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust }));
    await client.ready;
    const b = client.wrapBuffers("device.example");
    await b.info();
    expect([(await dev.stats()).tlsSessions, (await dev.stats()).tlsConfs]).toEqual([1, 1]);
    await b.close();
    expect((await dev.stats()).tlsSessions).toBe(0);
  });

  it("one session more than hello's limit is TooManyHandlesError; the first still handshakes and moves data; all comes back", async () => {
    const max = dev.info.tls.sessionsMax;
    const s0 = await dev.stats();
    const sessions: TLSWrappedBuffer[] = [];
    try {
      for (let i = 0; i < max; i++) {
        const b = client.wrapBuffers("device.example");
        sessions.push(b);
        await b.info();
      }
      const heapAll = (await dev.stats()).heapUsed;
      expect((await dev.stats()).tlsSessions).toBe(max);
      const extra = client.wrapBuffers("device.example");
      sessions.push(extra);
      const err = await extra.info().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TooManyHandlesError);
      expect((err as Error).message).toContain(`all ${max} TLS sessions are in use`);
      expect((await dev.stats()).heapUsed).toBe(heapAll); // the refused one left nothing behind

      // The first session, with every other one still open, runs a TLS 1.3 handshake and echoes through s_server -rev.
      const first = sessions[0] as TLSWrappedBuffer;
      const sock = await connectTo(port);
      const tls = new TLSWrappedSocket(first, sock);
      const before = await dev.stats();
      await tls.doHandshake();
      const after = await dev.stats();
      const info = await first.info();
      expect(info.version).toBe("TLSv1.3");
      console.log(
        `[tls-limits ${TARGET}] a TLS 1.3 client session (certificate chain verified) keeps ${info.heap} B of heap by tls_info ` +
          `(stats: ${after.heapUsed - before.heapUsed} B over the handshake, ${before.heapUsed - s0.heapUsed} B for ${max} sessions set up); ` +
          `heap peak ${after.heapPeak} of ${after.heapSize} B`,
      );
      await tls.send(utf8("limits hold\n"));
      expect(await recvUntil(tls, "\n")).toBe("dloh stimil\n");
      await tls.shutdown();
      sock.destroy();
    } finally {
      for (const b of sessions) await b.close();
    }
    const s1 = await dev.stats();
    expect([s1.tlsSessions, s1.tlsConfs, s1.handlesUsed, s1.heapUsed]).toEqual([0, 1, s0.handlesUsed, s0.heapUsed]);
  });
});
