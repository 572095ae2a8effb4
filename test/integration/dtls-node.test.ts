// dev.dtls.connect / createServer (issue 18, the dgram layer): the device's
// DTLS client talks to the same device's DTLS server over loopback UDP, with
// PSK and with ECDHE-ECDSA (makePki's chain, the server key non-exportable
// on the device). Datagrams of random sizes both ways at once arrive each
// exactly once, in order, none merged or split; a client whose source port
// changes mid-session (its socket closed and a new one bound, as a NAT
// rebinding) keeps its session with CID (RFC 9146 §6: the server finds it by
// the CID and answers the new port once a record from there authenticated;
// a forged record with the right CID from a third port moves nothing) and
// without CID gets nothing back (the server drops records from an unknown
// address that are no ClientHello), no crash, no wrong data; a flood of
// ClientHellos without cookies from 200 source ports costs no device memory
// or handle (one acceptor session answers HelloVerifyRequests) while an
// established session goes on; the session limit + 1 is TooManyHandlesError
// on both sides with the others untouched; a peer that goes silent
// mid-handshake fails the handshake within handshakeTimeoutMs (the device's
// timer retransmitting meanwhile). The heap is back at its baseline.
import { randomBytes, randomInt } from "node:crypto";
import { createSocket, type RemoteInfo } from "node:dgram";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Device,
  type DTLSClientSession,
  type DTLSConfigurationOptions,
  type DTLSContext,
  type DTLSServer,
  type DTLSServerOptions,
  type DTLSSession,
  TimeoutError,
  TooLargeError,
  TooManyHandlesError,
} from "../../host/src/index.js";
import { requireTool } from "../../tools/programs.js";
import {
  type DevicePki,
  deviceClientHello,
  devicePki,
  echoes as echoesWithin,
  echoServer,
  nextMessage,
  pskOptions,
  type RecordingSocket,
  recordingSocket,
} from "./dtls-peers.js";
import { useSession } from "./session.js";
import { bulk, SLOW_LINK, TARGET, until } from "./target.js";
import { opensslDir, spawnPeer } from "./tls-peers.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const o = opensslDir("dtls-node-");
const HOST = "device.example";
const PSK: [string, Uint8Array] = ["dtls-node", Uint8Array.from(randomBytes(16))];
/** Mbed TLS's first retransmission delay: above a device handshake step on the slow link. */
const HS_MIN = SLOW_LINK ? 4000 : 500;
const HANDSHAKE_MS = SLOW_LINK ? 90_000 : 20_000;
const TEST_MS = SLOW_LINK ? 600_000 : 120_000;
/** Datagrams each way: 1000 natively; 300 over QEMU's ~20 KB/s UART, where each crosses it four times (the suite's time budget). */
const DATAGRAMS = bulk(1000, 300);
/** The largest random datagram: the slow link carries each one four times (write, take, feed, read). */
const DATAGRAM_MAX = bulk(1000, 160);

let pki: DevicePki | undefined;

beforeAll(async () => {
  dev = session.dev;
  pki = await devicePki(dev, o, HOST);
}, 120_000);

afterAll(async () => {
  await pki?.close();
  o.remove();
});

const psk = pskOptions(PSK, HS_MIN);

/** A device client connected to a device echo server (its session `s`), `fn` run with them, all closed after. */
async function withEchoPair(
  serverConf: DTLSConfigurationOptions,
  clientConf: DTLSConfigurationOptions,
  fn: (p: { server: DTLSServer; client: DTLSClientSession; s: DTLSSession; errors: Error[] }) => Promise<void>,
  serverOpts: DTLSServerOptions = {},
): Promise<void> {
  const { server, port, errors } = await echoServer(dev, serverConf, serverOpts);
  let serverSide: DTLSSession | undefined;
  server.on("session", (s: DTLSSession) => {
    serverSide = s;
  });
  let client: DTLSClientSession | undefined;
  try {
    client = await dev.dtls.connect({ ...clientConf, port, host: "127.0.0.1" });
    client.on("error", (e: Error) => errors.push(e));
    await until(() => serverSide?.established === true, 5000);
    await fn({ server, client, s: serverSide as DTLSSession, errors });
  } finally {
    await client?.close();
    await server.close();
  }
}

/** Sends `m` and expects it echoed back within `ms`. */
const echoes = (s: DTLSSession, m: Uint8Array, ms = HANDSHAKE_MS): Promise<void> => echoesWithin(s, m, ms);

/** 1 .. max bytes of random data, `n` of them. */
const randomDatagrams = (n: number, max: number) => Array.from({ length: n }, () => Uint8Array.from(randomBytes(randomInt(1, max + 1))));

/** A ClientHello without cookie as the device client sends it (captured by a silent peer). */
let clientHello: Buffer | undefined;

/** The device client's ClientHello (from the silent peer's test, or caught now). */
async function firstClientHello(): Promise<Buffer> {
  clientHello ??= await deviceClientHello(dev, psk(), 1000);
  return clientHello;
}

describe(`dev.dtls.connect / createServer (${TARGET})`, () => {
  it(
    "a peer that stays silent mid-handshake: the client retransmits on the device's timer and fails with TimeoutError within handshakeTimeoutMs",
    async () => {
      const silent = await recordingSocket();
      const timeout = SLOW_LINK ? 6000 : 2000;
      const t0 = Date.now();
      try {
        await expect(
          dev.dtls.connect({ ...psk({ handshakeTimeoutMin: SLOW_LINK ? 1000 : 300 }), port: silent.port, handshakeTimeoutMs: timeout }),
        ).rejects.toBeInstanceOf(TimeoutError);
        const took = Date.now() - t0;
        expect(took).toBeGreaterThanOrEqual(timeout - 50);
        expect(took).toBeLessThan(timeout + (SLOW_LINK ? 3000 : 1000));
        // the first ClientHello and at least one retransmission of it
        expect(silent.got.length).toBeGreaterThanOrEqual(2);
        for (const { msg } of silent.got) expect([msg[0], msg[13]]).toEqual([22, 1]);
        clientHello = silent.got[0]?.msg;
      } finally {
        silent.close();
      }
      expect((await dev.stats()).tlsSessions).toBe(0);
    },
    TEST_MS,
  );

  it(
    "a client that goes silent after the server's flight: the server's session fails within its handshakeTimeoutMs ('sessionError'), the client's too, both freed",
    async () => {
      const timeout = SLOW_LINK ? 8000 : 2000;
      const { server, port } = await echoServer(dev, psk(), { handshakeTimeoutMs: timeout, acceptorIdleMs: 0 });
      const errors: Error[] = [];
      server.on("sessionError", (e: Error) => errors.push(e));
      // a relay that passes the client's first two datagrams (ClientHello, ClientHello with the cookie) and nothing after
      const relay = createSocket("udp4");
      await new Promise<void>((r) => relay.bind(0, "127.0.0.1", r));
      let client: RemoteInfo | undefined;
      let passed = 0;
      relay.on("message", (msg, from) => {
        if (from.port === port) {
          if (client) relay.send(msg, client.port, client.address);
        } else if (passed++ < 2) {
          client = from;
          relay.send(msg, port, "127.0.0.1");
        }
      });
      try {
        const t0 = Date.now();
        await expect(dev.dtls.connect({ ...psk(), port: relay.address().port, handshakeTimeoutMs: timeout })).rejects.toBeInstanceOf(
          TimeoutError,
        );
        await until(() => errors.length > 0, 5000);
        expect(Date.now() - t0).toBeLessThan(timeout + (SLOW_LINK ? 4000 : 1500));
        expect(errors[0]).toBeInstanceOf(TimeoutError);
        expect(server.sessions).toHaveLength(0);
        await until(async () => (await dev.stats()).tlsSessions === 0, 5000);
      } finally {
        relay.close();
        await server.close();
      }
    },
    TEST_MS,
  );

  for (const kind of ["PSK", "ECDHE-ECDSA"] as const) {
    it(
      `${kind}: device client <-> device server, ${DATAGRAMS} datagrams of 1 to ${DATAGRAM_MAX} bytes each way at once arrive once each, in order, unmerged`,
      async () => {
        const p = pki as DevicePki;
        const certs: DTLSConfigurationOptions = { handshakeTimeoutMin: HS_MIN };
        const serverConf: DTLSConfigurationOptions =
          kind === "PSK" ? psk() : { ...certs, certificateChain: [[p.serverLeaf, p.inter], p.serverKey] };
        const clientConf: DTLSConfigurationOptions = kind === "PSK" ? psk() : { ...certs, trustStore: p.trust };
        const toClient = randomDatagrams(DATAGRAMS, DATAGRAM_MAX);
        const toServer = randomDatagrams(DATAGRAMS, DATAGRAM_MAX);
        const gotByServer: Uint8Array[] = [];
        let serverSide: DTLSSession | undefined;
        const server = dev.dtls.createServer(new dev.dtls.DTLSConfiguration(serverConf), (s) => {
          serverSide = s;
          s.on("message", (m: Uint8Array) => gotByServer.push(m));
        });
        const { port } = await server.listen();
        try {
          const t0 = Date.now();
          const client = await dev.dtls.connect({
            ...clientConf,
            port,
            host: "127.0.0.1",
            servername: HOST,
            handshakeTimeoutMs: HANDSHAKE_MS,
          });
          const hsMs = Date.now() - t0;
          await until(() => serverSide?.established === true, 5000);
          const s = serverSide as DTLSSession;
          expect(client.cipher?.name).toMatch(kind === "PSK" ? /^TLS-(ECDHE-)?PSK-WITH-/ : /^TLS-ECDHE-ECDSA-WITH-/);
          expect(s.cipher).toEqual(client.cipher);
          expect(client.peerCertificate !== undefined).toBe(kind !== "PSK");
          const gotByClient: Uint8Array[] = [];
          const reading = (async () => {
            for await (const m of client) {
              gotByClient.push(m);
              if (gotByClient.length === DATAGRAMS) break;
            }
          })();
          const t1 = Date.now();
          await Promise.all([
            (async () => {
              for (const d of toServer) await client.send(d);
            })(),
            (async () => {
              for (const d of toClient) await s.send(d);
            })(),
          ]);
          await reading;
          await until(() => gotByServer.length >= DATAGRAMS, 30_000);
          const ms = Date.now() - t1;
          console.log(
            `[dtls-node ${TARGET}] ${kind} ${client.cipher?.name}: handshake ${hsMs} ms; ${DATAGRAMS} datagrams each way at once in ${ms} ms`,
          );
          expect(gotByClient.map((m) => Buffer.from(m).toString("hex"))).toEqual(toClient.map((m) => Buffer.from(m).toString("hex")));
          expect(gotByServer.map((m) => Buffer.from(m).toString("hex"))).toEqual(toServer.map((m) => Buffer.from(m).toString("hex")));
          expect(client.dropped + s.dropped).toBe(0);
          await client.close();
          await until(() => s.closed, 5000); // close_notify reached the server's session
        } finally {
          await server.close();
        }
        expect((await dev.stats()).tlsSessions).toBe(0);
      },
      TEST_MS,
    );
  }

  it(
    "NAT rebinding with CID (and the client's MTU, both read after the handshake): the client's socket moves to a new port mid-session and the session goes on; a forged record with its CID from a third port moves nothing",
    async () => {
      await withEchoPair(psk({ cid: 4 }), psk({ cid: 4, mtu: 512 }), async ({ server, client, s, errors }) => {
        const port = server.address().port;
        expect(client.mtu).toBe(512);
        expect(client.cid).toHaveLength(4);
        expect(client.peerCid).toHaveLength(4);
        expect(Buffer.from(s.cid ?? [])).toEqual(Buffer.from(client.peerCid ?? [1]));
        expect(Buffer.from(s.peerCid ?? [])).toEqual(Buffer.from(client.cid ?? [1]));
        await echoes(client, Uint8Array.from(randomBytes(100)));
        const oldPort = client.socket.address().port;
        expect(s.remotePort).toBe(oldPort);

        // a forged tls12_cid record carrying the session's CID from another port: not authenticated, nothing moves
        const forger = await recordingSocket();
        const forged = Buffer.concat([
          Buffer.from([25, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 0x63]),
          Buffer.from(s.cid ?? []),
          Buffer.from([0, 40]),
          randomBytes(40),
        ]);
        forger.socket.send(forged, port, "127.0.0.1");
        await echoes(client, Uint8Array.from(randomBytes(50)));
        expect(s.remotePort).toBe(oldPort);
        expect(forger.got).toHaveLength(0);
        forger.close();

        await client.rebind();
        const newPort = client.socket.address().port;
        expect(newPort).not.toBe(oldPort);
        for (let i = 0; i < 10; i++) await echoes(client, Uint8Array.from(randomBytes(randomInt(1, 300))));
        // more than one record under the MTU carries: refused whole (never split), the session goes on
        await expect(client.send(new Uint8Array(600))).rejects.toBeInstanceOf(TooLargeError);
        await echoes(client, Uint8Array.from(randomBytes(300)));
        expect(s.remotePort).toBe(newPort);
        expect(server.sessions).toEqual([s]);
        expect(errors).toEqual([]);
      });
    },
    TEST_MS,
  );

  it(
    "NAT rebinding with CID but anti-replay off on the server: its records still reach the session, but the replies stay with the old address (a replayed record could not be told apart)",
    async () => {
      await withEchoPair(psk({ cid: 4, antiReplay: false }), psk({ cid: 4 }), async ({ client, s, errors }) => {
        await echoes(client, Uint8Array.from(randomBytes(64)));
        const oldPort = s.remotePort;
        const gotByServer: Uint8Array[] = [];
        s.on("message", (m: Uint8Array) => gotByServer.push(m));
        await client.rebind();
        const back = nextMessage(client, SLOW_LINK ? 4000 : 1500);
        await client.send(Uint8Array.from(randomBytes(64)));
        expect(await back).toBeUndefined();
        expect(gotByServer).toHaveLength(1);
        expect(s.remotePort).toBe(oldPort);
        expect(errors).toEqual([]);
      });
    },
    TEST_MS,
  );

  it(
    "NAT rebinding without CID: after the move nothing comes back (the server drops the records of an unknown address), no error, no wrong data",
    async () => {
      await withEchoPair(psk(), psk(), async ({ server, client, s, errors }) => {
        expect(client.cid).toBeUndefined();
        await echoes(client, Uint8Array.from(randomBytes(64)));
        const oldPort = s.remotePort;
        const gotByServer: Uint8Array[] = [];
        s.on("message", (m: Uint8Array) => gotByServer.push(m));
        const droppedBefore = server.dropped;
        await client.rebind();
        const back = nextMessage(client, SLOW_LINK ? 4000 : 1500);
        await client.send(Uint8Array.from(randomBytes(64)));
        expect(await back).toBeUndefined();
        expect(gotByServer).toHaveLength(0);
        expect(server.dropped).toBe(droppedBefore + 1);
        expect(s.remotePort).toBe(oldPort);
        expect(s.established).toBe(true);
        expect(errors).toEqual([]);
      });
    },
    TEST_MS,
  );

  it(
    "a server's idleTimeoutMs closes a session without messages that long: its close_notify ends the client's session too, both freed",
    async () => {
      const idle = SLOW_LINK ? 3000 : 500;
      await withEchoPair(
        psk(),
        psk(),
        async ({ client, s, errors }) => {
          await echoes(client, Uint8Array.from(randomBytes(40)));
          const t0 = Date.now();
          await until(() => client.closed, 4 * idle + 5000);
          expect(Date.now() - t0).toBeGreaterThanOrEqual(idle - 50);
          expect(s.closed).toBe(true);
          expect(client.error).toBeUndefined();
          expect(errors).toEqual([]);
        },
        { idleTimeoutMs: idle },
      );
      expect((await dev.stats()).tlsSessions).toBe(0);
    },
    TEST_MS,
  );

  it(
    "a flood of 1,000 ClientHellos without cookies from 200 source ports: HelloVerifyRequests from one acceptor, device heap and handles as before, an established session goes on",
    async () => {
      const hello = await firstClientHello();
      const { server, port } = await echoServer(dev, psk(), { acceptorIdleMs: 100 });
      const errors: Error[] = [];
      server.on("sessionError", (e: Error) => errors.push(e));
      const flooders: RecordingSocket[] = [];
      // the established session's peer is OpenSSL, so the device holds the server's session and the acceptor only (two of the STM32 image's three)
      const peer = spawnPeer(
        requireTool("openssl"),
        ["s_client", "-dtls1_2", "-connect", `127.0.0.1:${port}`, "-psk", Buffer.from(PSK[1]).toString("hex"), "-psk_identity", PSK[0]],
        o.dir,
      );
      let said = 0;
      /** A line through s_client, echoed by the device's session. */
      const echoLine = async () => {
        const line = `line-${++said}-${randomBytes(8).toString("hex")}\n`;
        peer.proc.stdin.write(line);
        await peer.waitFor(line, HANDSHAKE_MS);
      };
      try {
        await peer.waitFor(/Cipher is/, HANDSHAKE_MS);
        await echoLine();
        await until(() => !server.acceptorLive, 5000);
        const before = await dev.stats();
        const [hv0, d0, c0] = [server.helloVerifies, server.dropped, server.clientHellos];
        const answered = () => server.helloVerifies - hv0 + server.dropped - d0;
        for (let i = 0; i < 200; i++) flooders.push(await recordingSocket());
        // 5 rounds over the 200 ports, 25 datagrams at a time (no burst for the loopback's socket buffer to drop); the session's echoes meanwhile
        const flood = (async () => {
          for (let i = 0; i < 1000; i++) {
            (flooders[i % 200] as (typeof flooders)[0]).socket.send(hello, port, "127.0.0.1");
            if (i % 25 === 24) await new Promise((r) => setTimeout(r, 2));
          }
        })();
        for (let i = 0; i < 5; i++) await echoLine();
        await flood;
        await until(
          () => !server.acceptorLive && server.clientHellos > c0 && answered() === server.clientHellos - c0,
          SLOW_LINK ? 120_000 : 20_000,
        );
        const after = await dev.stats();
        console.log(
          `[dtls-node ${TARGET}] flood: ${server.clientHellos - c0} ClientHellos came, ${server.helloVerifies - hv0} HelloVerifyRequests sent, ` +
            `${server.dropped - d0} dropped (accept queue full, or a newer one from the same port); ` +
            `device heap ${before.heapUsed} -> ${after.heapUsed} B, handles ${before.handlesUsed} -> ${after.handlesUsed}`,
        );
        expect(after.heapUsed).toBe(before.heapUsed);
        expect(after.handlesUsed).toBe(before.handlesUsed);
        expect(after.tlsSessions).toBe(before.tlsSessions);
        expect(server.clientHellos - c0).toBe(1000);
        expect(server.helloVerifies - hv0).toBeGreaterThan(0);
        expect(server.sessions).toHaveLength(1);
        expect(errors).toEqual([]);
        // what came back to the flooders: HelloVerifyRequests (handshake type 3), to the ports that sent ClientHellos only
        const answers = flooders.flatMap((f) => f.got.map((g) => g.msg));
        expect(answers.length).toBe(server.helloVerifies - hv0);
        for (const a of answers) expect([a[0], a[13]]).toEqual([22, 3]);
        await echoLine();
      } finally {
        peer.stop();
        for (const f of flooders) f.close();
        await server.close();
      }
    },
    TEST_MS,
  );

  it(
    "an acceptor that answered a ClientHello longer ago than the handshake time still gives the next peer a whole handshake",
    async () => {
      const timeout = SLOW_LINK ? 8000 : 3000; // a whole handshake fits easily, even on a loaded machine
      const { server, port } = await echoServer(dev, psk(), { handshakeTimeoutMs: timeout, acceptorIdleMs: 10 * timeout });
      const errors: Error[] = [];
      server.on("sessionError", (e: Error) => errors.push(e));
      const stranger = await recordingSocket();
      let client: DTLSClientSession | undefined;
      try {
        stranger.socket.send(await firstClientHello(), port, "127.0.0.1");
        await until(() => server.helloVerifies === 1, 10_000);
        await new Promise((r) => setTimeout(r, timeout + 200)); // the acceptor's first handshake step is older than the handshake time
        expect(server.acceptorLive).toBe(true);
        client = await dev.dtls.connect({ ...psk(), port, host: "127.0.0.1", handshakeTimeoutMs: timeout });
        await echoes(client, Uint8Array.from(randomBytes(40)));
        expect(errors.map((e) => `${e.name}: ${e.message}`)).toEqual([]); // the first ClientHello was not refused as over time (its retransmission would have got through)
      } finally {
        stranger.close();
        await client?.close();
        await server.close();
      }
    },
    TEST_MS,
  );

  it(
    "the session limit + 1: the next client is TooManyHandlesError, the server's next peer a 'sessionError' TooManyHandlesError; the others go on",
    async () => {
      const max = dev.info.tls.sessionsMax;
      const { server, port } = await echoServer(dev, psk(), { acceptorIdleMs: 0 });
      const errors: Error[] = [];
      server.on("sessionError", (e: Error) => errors.push(e));
      const clientCtx: DTLSContext = dev.dtls.ClientContext(new dev.dtls.DTLSConfiguration(psk()));
      const clients: DTLSClientSession[] = [];
      const bare = [];
      const stranger = await recordingSocket();
      try {
        const live = (await dev.stats()).tlsSessions;
        for (let i = 0; i + 2 <= max - live; i += 2) clients.push(await dev.dtls.connect({ context: clientCtx, port, host: "127.0.0.1" }));
        if ((max - live) % 2 === 1) {
          const b = clientCtx.wrapBuffers();
          await b.info(); // made on the device
          bare.push(b);
        }
        expect((await dev.stats()).tlsSessions).toBe(max);
        await expect(dev.dtls.connect({ context: clientCtx, port, host: "127.0.0.1" })).rejects.toBeInstanceOf(TooManyHandlesError);
        stranger.socket.send(await firstClientHello(), port, "127.0.0.1");
        await until(() => errors.length > 0, 10_000);
        expect(errors[0]).toBeInstanceOf(TooManyHandlesError);
        expect(stranger.got).toHaveLength(0);
        for (const c of clients) await echoes(c, Uint8Array.from(randomBytes(77)));
        expect(server.sessions).toHaveLength(clients.length);
      } finally {
        stranger.close();
        for (const c of clients) await c.close();
        for (const b of bare) await b.close();
        await server.close();
        await clientCtx.close();
      }
      expect((await dev.stats()).tlsSessions).toBe(0);
    },
    TEST_MS,
  );
});
