// The memory promise of issue 18: one TLS session and two DTLS sessions are
// established on the device at once (on the STM32 image too, whose heap the
// record of answers left when it moved into the upper RAM): a device TLS 1.3
// client verifying makePki's chain against `openssl s_server -tls1_3 -rev`,
// and two device DTLS 1.2 PSK clients against two `openssl s_server -dtls1_2
// -listen`, data through all three while all are open. The heap each
// session keeps is read from stats before and after each handshake (and
// logged: README's and docs/tls-design.md's figures); a session more than
// hello's tls_sessions_max is TooManyHandlesError (refused when made, not
// out_of_memory mid-handshake) and leaves no heap behind; once all are
// closed the heap and the handles are back at their baseline.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CRT,
  type Device,
  type DTLSClientSession,
  type DTLSContext,
  type DTLSWrappedBuffer,
  type TLSContext,
  type TLSWrappedBuffer,
  TLSWrappedSocket,
  TooManyHandlesError,
  type TrustStore,
} from "../../host/src/index.js";
import { nextMessage } from "./dtls-peers.js";
import { useSession } from "./session.js";
import { SLOW_LINK, TARGET } from "./target.js";
import { connectTo, freePort, opensslDir, type Peer, recvUntil, SERVER_CHAIN_ARGS, text, utf8 } from "./tls-peers.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const o = opensslDir("dtls-memory-");
const PSK_ID = "dtls-memory";
const PSK = Uint8Array.from(randomBytes(16));
const PSK_HEX = Buffer.from(PSK).toString("hex");
/** Mbed TLS's first retransmission delay: above a device handshake step on the slow link. */
const HS_MIN = SLOW_LINK ? 4000 : 500;
const TEST_MS = SLOW_LINK ? 600_000 : 60_000;
let root: CRT | undefined;
let trust: TrustStore | undefined;

beforeAll(async () => {
  dev = session.dev;
  makePki(o.dir);
  root = await dev.x509.CRT.fromPEM(readFileSync(o.path("root.crt"), "utf8"));
  trust = new dev.tls.TrustStore();
  await trust.add(root);
}, 120_000);

afterAll(async () => {
  for (const x of [trust, root]) await x?.close();
  o.remove();
});

/** An `openssl s_server` on a free port (TCP or UDP), listening. */
async function sServer(args: string[]): Promise<{ port: number; peer: Peer }> {
  const port = await freePort();
  const peer = o.spawn(["s_server", "-accept", String(port), ...args]);
  await peer.waitFor("ACCEPT");
  return { port, peer };
}

const heapUsed = async (): Promise<number> => (await dev.stats()).heapUsed;

describe(`one TLS and two DTLS sessions at once (${TARGET})`, () => {
  it("hello names the limits the sessions share", () => {
    const t = dev.info.tls;
    const d = dev.info.dtls;
    expect(t.sessionsMax).toBeGreaterThanOrEqual(3);
    // hello's dtls map: Mbed TLS's reassembly cap, RFC 9146's longest CID, the ring less a datagram's 2-byte length
    expect(d).toEqual({ buffering: 8192, cidMax: 32, datagramMax: t.ring - 2 });
    console.log(
      `[dtls-memory ${TARGET}] hello: ${t.sessionsMax} TLS and DTLS sessions at once, records ${t.inRecord} B in / ${t.outRecord} B out; DTLS: datagrams up to ${d.datagramMax} B, CIDs up to ${d.cidMax} B, ${d.buffering} B of handshake buffering`,
    );
  });

  it(
    "TLS 1.3 client + two DTLS 1.2 PSK clients established together, data through each; one more is TooManyHandlesError; the heap comes back",
    async () => {
      const tlsServer = await sServer(["-tls1_3", "-rev", ...SERVER_CHAIN_ARGS]);
      const dtlsArgs = ["-dtls1_2", "-listen", "-nocert", "-psk", PSK_HEX, "-psk_identity", PSK_ID, "-cipher", "PSK-AES128-CCM8"];
      const dtlsServers = [await sServer(dtlsArgs), await sServer(dtlsArgs)];
      const s0 = await dev.stats();
      let tlsCtx: TLSContext | undefined;
      let dtlsCtx: DTLSContext | undefined;
      let tlsBuf: TLSWrappedBuffer | undefined;
      let extra: DTLSWrappedBuffer | undefined;
      const dtls: DTLSClientSession[] = [];
      const figures: string[] = [];
      try {
        tlsCtx = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust }));
        dtlsCtx = dev.dtls.ClientContext(
          new dev.dtls.DTLSConfiguration({
            preSharedKey: [PSK_ID, PSK],
            validateCertificates: false,
            handshakeTimeoutMin: HS_MIN,
            handshakeTimeoutMax: HS_MIN * 16,
          }),
        );
        await Promise.all([tlsCtx.ready, dtlsCtx.ready]);
        const confs = await heapUsed();
        figures.push(`configurations ${confs - s0.heapUsed} B`);

        // The TLS session first: the largest, and the one whose handshake peaks highest (certificate chain).
        tlsBuf = tlsCtx.wrapBuffers("device.example");
        const sock = await connectTo(tlsServer.port);
        const tls = new TLSWrappedSocket(tlsBuf, sock);
        await tls.doHandshake();
        expect((await tlsBuf.info()).version).toBe("TLSv1.3");
        const afterTls = await dev.stats();
        figures.push(`TLS 1.3 client ${afterTls.heapUsed - confs} B (tls_info heap ${(await tlsBuf.info()).heap} B)`);

        let before = afterTls.heapUsed;
        for (const s of dtlsServers) {
          const c = await dev.dtls.connect({ context: dtlsCtx, port: s.port, host: "127.0.0.1" });
          dtls.push(c);
          expect((await c.info()).transport).toBe("datagram");
          const now = await heapUsed();
          figures.push(`DTLS 1.2 PSK client ${now - before} B`);
          before = now;
        }
        const all = await dev.stats();
        expect(all.tlsSessions).toBe(3);
        figures.push(`all three ${all.heapUsed - s0.heapUsed} B of ${all.heapSize} B (peak ${all.heapPeak} B)`);

        // Data through all three while all are open.
        await tls.send(utf8("three at once\n"));
        expect(await recvUntil(tls, "\n")).toBe("ecno ta eerht\n");
        for (const [i, c] of dtls.entries()) {
          const s = dtlsServers[i] as { peer: Peer };
          const out = `device to openssl ${i} ${Date.now()}\n`;
          await c.send(utf8(out));
          await s.peer.waitFor(out);
          const back = nextMessage(c, SLOW_LINK ? 30_000 : 5000);
          const line = `openssl to device ${i} ${Date.now()}\n`;
          s.peer.proc.stdin.write(line);
          expect(text((await back) ?? new Uint8Array())).toBe(line);
        }

        // Up to the limit with sessions that are only made (no handshake), then one more.
        const max = dev.info.tls.sessionsMax;
        const made: TLSWrappedBuffer[] = [];
        try {
          for (let i = 3; i < max; i++) {
            const b = tlsCtx.wrapBuffers("device.example");
            made.push(b);
            await b.info();
          }
          const full = await heapUsed();
          extra = dtlsCtx.wrapBuffers();
          const err = await extra.info().catch((e: unknown) => e);
          expect(err).toBeInstanceOf(TooManyHandlesError);
          expect((err as Error).message).toContain(`all ${max} TLS sessions are in use`);
          expect(await heapUsed()).toBe(full);
        } finally {
          for (const b of made) await b.close();
        }
        console.log(`[dtls-memory ${TARGET}] heap: ${figures.join("; ")}`);

        await tls.shutdown();
        sock.destroy();
        for (const c of dtls) await c.close();
        expect((await dev.stats()).tlsSessions).toBe(1); // the TLS wrap's device session lives until closed
      } finally {
        for (const c of dtls) await c.close();
        for (const x of [extra, tlsBuf, tlsCtx, dtlsCtx]) await x?.close();
        for (const s of [tlsServer, ...dtlsServers]) s.peer.stop();
      }
      const s1 = await dev.stats();
      expect([s1.tlsSessions, s1.tlsConfs, s1.handlesUsed, s1.heapUsed]).toEqual([0, s0.tlsConfs, s0.handlesUsed, s0.heapUsed]);
    },
    TEST_MS,
  );
});
