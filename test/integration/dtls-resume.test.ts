// DTLS 1.2 session resumption and what a DTLS session tells after its
// handshake (issue 18), native and QEMU:
// - the device's client (dev.dtls.connect, resumption on) against `openssl
//   s_server -dtls1_2 -listen -no_cache` (so only a ticket resumes): the
//   first connection is a full handshake, its saved session (sealed, kept on
//   disk and read back) makes the second one resumed: s_server prints
//   "Reused session-id" for that connection alone (SSL_session_reused) and
//   the device's info says resumed. The first connection's peer
//   certificate is makePki's server.crt (DER), its cipher is the one
//   s_server names ("CIPHER is"), by IANA id and standard name as `openssl
//   ciphers -V -stdname` gives them, its MTU the configured one, no CID
//   (OpenSSL 3.0 has none). Both connections go out of one dgram socket:
//   s_server -listen serves its later clients on the socket it connected to
//   its first one's address (another source port is refused, ICMP).
// - a device client against a device server (sans-I/O buffers wired by hand,
//   ticket keys on the server, mutual certificates, CIDs both ways, an MTU
//   each): the client's peer certificate is the device leaf the server
//   sent, the server's makePki's client.crt (its key loaded into the
//   device), each side's own CID is
//   the other's peer CID, the MTUs are the ones given, the cipher is one on
//   both; the saved session resumes the next pair (info says resumed on both
//   sides; no certificate crosses again). A DTLS session offered to a TLS
//   client is refused (BadArgumentError) and the handshake that follows is
//   a full one.
// - dev.dtls.connect against dev.dtls.createServer (cookies on, ticket
//   keys): the second connection offers the first one's session and is
//   resumed on both sides (the sessions' `resumed`) after its
//   HelloVerifyRequest, the peer certificate still readable.
// Logs the saved session's size and the heap the ticket keys take.
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BadArgumentError,
  type CRT,
  type Device,
  type DTLSClientSession,
  type DTLSContext,
  type DTLSSession,
  type DTLSWrappedBuffer,
  type ECC,
  TLSSession,
  type TrustStore,
} from "../../host/src/index.js";
import { nextMessage } from "./dtls-peers.js";
import { useSession } from "./session.js";
import { SLOW_LINK, TARGET } from "./target.js";
import { deviceServerLeaf, freePort, opensslDir, type Peer, SERVER_CHAIN_ARGS, stopPeers, text, utf8 } from "./tls-peers.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const o = opensslDir("dtls-resume-");
const derOf = (pemFile: string) => new Uint8Array(new X509Certificate(readFileSync(o.path(pemFile))).raw);
const REUSED = "Reused session-id"; // s_server 3.0, per connection (SSL_session_reused)
/** A whole ECDHE-ECDSA handshake, the device's public-key operations on QEMU included. */
const HANDSHAKE_MS = SLOW_LINK ? 90_000 : 30_000;
const MTU = 400;

let root: CRT;
let inter: CRT;
let trust: TrustStore;
let deviceKey: ECC;
let deviceLeaf: CRT;

/** A certificate of makePki's directory on the device. */
const crt = (file: string) => dev.x509.CRT.fromPEM(readFileSync(o.path(file), "utf8"));

beforeAll(async () => {
  dev = session.dev;
  makePki(o.dir); // root -> inter -> server (DNS:device.example), client (clientAuth), ...
  [root, inter] = [await crt("root.crt"), await crt("inter.crt")];
  trust = new dev.dtls.TrustStore();
  await trust.add(root);
  const made = await deviceServerLeaf(dev, o);
  [deviceKey, deviceLeaf] = [made.key, made.leaf];
}, 120_000);

afterAll(async () => {
  stopPeers();
  await Promise.all([deviceLeaf, deviceKey, trust].map((x) => x?.close()));
  await Promise.all([inter, root].map((x) => x?.close()));
  o.remove();
});

/** OpenSSL's IANA id and standard name of the suite OpenSSL calls `name` (`openssl ciphers -V -stdname`). */
function ianaSuite(name: string): { id: number; std: string } {
  const out = execFileSync("openssl", ["ciphers", "-V", "-stdname", name], { encoding: "utf8" });
  const m = out.match(new RegExp(`0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\\S+)\\s+- ${name}\\s`));
  if (!m) throw new Error(`openssl ciphers does not know ${name}: ${out}`);
  return { id: Number.parseInt(`${m[1]}${m[2]}`, 16), std: m[3] as string };
}

describe("device client resumes against openssl s_server -dtls1_2 -listen (tickets, -no_cache)", () => {
  let port: number;
  let peer: Peer;
  let client: DTLSContext;
  /** One UDP socket for every connection: after its first client, s_server -listen's socket stays connected to that address. */
  let socket: Socket;

  beforeAll(async () => {
    socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    port = await freePort();
    peer = o.spawn(["s_server", "-dtls1_2", "-listen", "-accept", String(port), "-no_cache", "-mtu", String(MTU), ...SERVER_CHAIN_ARGS]);
    await peer.waitFor("ACCEPT");
    client = dev.dtls.ClientContext(new dev.dtls.DTLSConfiguration({ trustStore: trust, resumption: true, mtu: MTU }));
    await client.ready;
  }, 60_000);

  afterAll(async () => {
    peer?.stop();
    await client?.close();
    socket?.close();
  });

  /** One connection to s_server (offering `saved`): `body` gets the session; a line each way, close_notify; what s_server printed meanwhile. */
  async function connection(saved: TLSSession | undefined, body: (s: DTLSClientSession) => Promise<void>): Promise<string> {
    const mark = peer.out().length;
    const toServer = `device ${Date.now()}\n`;
    const s = await dev.dtls.connect({ host: "127.0.0.1", port, context: client, servername: "device.example", session: saved, socket });
    try {
      await body(s);
      await s.send(utf8(toServer));
      await peer.waitFor(toServer);
      const toDevice = `openssl ${Date.now()}\n`;
      peer.proc.stdin.write(toDevice);
      expect(text((await nextMessage(s, 10_000)) ?? new Uint8Array(0))).toBe(toDevice);
    } finally {
      await s.close();
    }
    await peer.waitFor(new RegExp(`${toServer}DONE\n`), 10_000); // the close_notify came (s_server flushes its next lines later)
    return peer.out().slice(mark);
  }

  it(
    "the first connection's peer certificate, cipher and MTU; its saved session, kept on disk, resumes the next one",
    async () => {
      let saved: TLSSession | undefined;
      const first = await connection(undefined, async (s) => {
        expect(s.resumed).toBe(false);
        expect(s.version).toBe("DTLSv1.2");
        expect(s.peerCertificate).toEqual(derOf("server.crt"));
        expect(s.mtu).toBe(MTU);
        expect([s.cid, s.peerCid]).toEqual([undefined, undefined]); // OpenSSL 3.0 has no Connection ID
        const h0 = (await dev.stats()).heapUsed;
        saved = await s.session();
        expect((await dev.stats()).heapUsed).toBe(h0); // nothing of a saved session stays on the device
        expect(saved.version).toBe("DTLSv1.2");
        expect(await s.session()).toBe(saved); // no newer one since
        console.log(`[dtls-resume ${TARGET}] a saved DTLS session (ticket + peer certificate) is ${saved.toBytes().length} B`);
      });
      const named = first.match(/CIPHER is (\S+)/)?.[1];
      expect(named, "s_server's CIPHER line").toBeDefined();
      const suite = ianaSuite(named as string);
      expect(first).not.toContain(REUSED);
      writeFileSync(o.path("dtls-session.bin"), (saved as TLSSession).toBytes());

      const kept = TLSSession.fromBytes(readFileSync(o.path("dtls-session.bin")));
      const second = await connection(kept, async (s) => {
        expect(s.resumed).toBe(true);
        expect(s.cipher).toEqual({ name: suite.std.replaceAll("_", "-"), id: suite.id });
      });
      expect(second).toContain(REUSED);
      expect(second).toContain(`CIPHER is ${named}`);
    },
    HANDSHAKE_MS * 2,
  );
});

describe("device client resumes against a device server (ticket keys, CIDs both ways)", () => {
  /** Runs both handshakes to the end, every datagram carried across by hand. */
  async function handshake(c: DTLSWrappedBuffer, s: DTLSWrappedBuffer): Promise<{ toServer: number; toClient: number }> {
    const moved = { toServer: 0, toClient: 0 };
    const log: string[] = [];
    let cd: unknown;
    let sd: unknown;
    for (let round = 0; cd !== "done" || sd !== "done"; round++) {
      if (round > 40) throw new Error(`no end in 40 rounds: ${JSON.stringify([cd, sd, moved, log])}`);
      if (cd !== "done") cd = await c.doHandshake();
      for (const d of c.takeDatagrams()) {
        s.receiveFromNetwork(d);
        log.push(`c${d.length}`);
        moved.toServer += d.length;
      }
      if (sd !== "done") sd = await s.doHandshake();
      for (const d of s.takeDatagrams()) {
        c.receiveFromNetwork(d);
        log.push(`s${d.length}`);
        moved.toClient += d.length;
      }
    }
    return moved;
  }

  it(
    "peer certificate (mutual), cipher, own and peer CID, MTU on both sides; the saved session resumes (info says resumed on both)",
    async () => {
      const h0 = (await dev.stats()).heapUsed;
      const clientKey = await dev.pk.ECC.fromPEM(readFileSync(o.path("client.key"), "utf8"));
      const clientCrt = await crt("client.crt");
      const serverConf = new dev.dtls.DTLSConfiguration({
        certificateChain: [[deviceLeaf, inter], deviceKey],
        trustStore: trust,
        validateCertificates: true,
        cookies: false,
        cid: 4,
        // Not smaller: a NewSessionTicket carrying the client certificate in fragments puts the last one, the CCS and
        // the CID-carrying Finished in one datagram, and Mbed TLS 3.6's client drops that Finished (epoch 1 before
        // the CCS: "discarding unexpected record", ssl_client2/ssl_server2 cid=1 mtu=300 do the same) until a
        // retransmission, which this hand-wired pair does not run.
        mtu: 1000,
      });
      const plain = dev.dtls.ServerContext(serverConf);
      await plain.ready;
      const h1 = (await dev.stats()).heapUsed;
      await plain.close();
      const server = dev.dtls.ServerContext(serverConf.update({ resumption: true, ticketLifetime: 600 }));
      await server.ready;
      const h2 = (await dev.stats()).heapUsed;
      console.log(`[dtls-resume ${TARGET}] a DTLS server configuration takes ${h1 - h0} B of heap, with ticket keys ${h2 - h0} B`);
      expect(h2).toBeGreaterThan(h1);
      const client = dev.dtls.ClientContext(
        new dev.dtls.DTLSConfiguration({
          certificateChain: [[clientCrt, inter], clientKey],
          trustStore: trust,
          resumption: true,
          cid: 6,
        }),
      );
      const tlsClient = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust, resumption: true }));
      try {
        let saved: TLSSession;
        {
          await using c = client.wrapBuffers("device.example", { mtu: 900 });
          await using s = server.wrapBuffers();
          const full = await handshake(c, s);
          const [ci, si] = [await c.info(), await s.info()];
          expect([ci.resumed, si.resumed]).toEqual([false, false]);
          expect(c.peerCertificate()).toEqual(deviceLeaf.toDER());
          expect(s.peerCertificate()).toEqual(derOf("client.crt"));
          expect([ci.verifyBits, si.verifyBits]).toEqual([0, 0]);
          expect(c.cipher()).toEqual(s.cipher());
          expect(c.cipher()?.[0]).toMatch(/^TLS-ECDHE-ECDSA-WITH-/);
          expect([ci.cid?.length, si.cid?.length]).toEqual([6, 4]);
          expect(ci.peerCid).toEqual(si.cid);
          expect(si.peerCid).toEqual(ci.cid);
          expect([ci.mtu, si.mtu]).toEqual([900, 1000]);
          expect(await c.write(utf8("hello datagram"))).toBe(14);
          for (const d of c.takeDatagrams()) s.receiveFromNetwork(d);
          expect(text((await s.read()) as Uint8Array)).toBe("hello datagram");
          saved = await c.session();
          expect(saved.version).toBe("DTLSv1.2");
          console.log(
            `[dtls-resume ${TARGET}] device pair, full handshake: ${full.toServer} B to the server, ${full.toClient} B back; ` +
              `the saved session is ${saved.toBytes().length} B`,
          );
        }
        {
          await using c = client.wrapBuffers("device.example", { session: saved });
          await using s = server.wrapBuffers();
          const short = await handshake(c, s);
          const [ci, si] = [await c.info(), await s.info()];
          expect([ci.resumed, si.resumed]).toEqual([true, true]);
          expect(ci.peerCid).toEqual(si.cid);
          console.log(`[dtls-resume ${TARGET}] resumed: ${short.toServer} B to the server, ${short.toClient} B back`);
          expect(short.toClient).toBeLessThan(deviceLeaf.toDER().length); // no certificate crossed
        }
        {
          // A DTLS session is set on DTLS sessions only: refused by a TLS client, whose handshake then starts in full.
          await using t = tlsClient.wrapBuffers("device.example", { session: saved });
          await expect(t.doHandshake()).rejects.toBeInstanceOf(BadArgumentError);
          expect(await t.doHandshake()).toEqual(expect.objectContaining({ want: "read" }));
          expect(t.peekOutgoing()[0]).toBe(22); // a ClientHello record
        }
      } finally {
        for (const x of [tlsClient, client, server, clientCrt, clientKey]) await x.close();
      }
    },
    HANDSHAKE_MS * 2,
  );
});

describe("dev.dtls.connect resumes against dev.dtls.createServer (cookies, ticket keys)", () => {
  it(
    "the second connection, offering the first one's session, is resumed on both sides after its HelloVerifyRequest",
    async () => {
      const server = dev.dtls.createServer(
        new dev.dtls.DTLSConfiguration({ certificateChain: [[deviceLeaf, inter], deviceKey], resumption: true }),
        (s) => s.on("message", (m: Uint8Array) => void s.send(m).catch(() => {})),
      );
      const sides: DTLSSession[] = [];
      server.on("session", (s: DTLSSession) => sides.push(s));
      const conf = new dev.dtls.DTLSConfiguration({ trustStore: trust, resumption: true });
      try {
        const { port } = await server.listen(0, "127.0.0.1");
        let saved: TLSSession | undefined;
        for (const round of [0, 1]) {
          const c = await dev.dtls.connect({ port, host: "127.0.0.1", servername: "device.example", configuration: conf, session: saved });
          try {
            await c.send(utf8(`round ${round}`));
            expect(text((await nextMessage(c, 10_000)) ?? new Uint8Array(0))).toBe(`round ${round}`);
            expect([c.resumed, sides[round]?.resumed]).toEqual([round === 1, round === 1]);
            expect(c.peerCertificate).toEqual(deviceLeaf.toDER()); // kept in the ticket when resumed
            saved = await c.session();
          } finally {
            await c.close();
          }
        }
        expect(server.helloVerifies).toBeGreaterThanOrEqual(2);
      } finally {
        await server.close();
      }
    },
    HANDSHAKE_MS * 2,
  );
});
