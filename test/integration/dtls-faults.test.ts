// DTLS 1.2 of the device under network faults (issue 18, must-show 3) and
// its typed failures, native and QEMU:
// * Through hil/udp-relay.ts dropping, duplicating, reordering and delaying
//   datagrams both ways (seeded), a device client (dev.dtls.connect) and a
//   device server (dev.dtls.createServer) complete their handshake and the
//   client sends distinct numbered datagrams until 10,000 (1,000 on QEMU's
//   slow UART) arrived: each intact, none twice; the server echoes each and
//   the echoes come back the same way. DTLS does not resend application
//   data, so the ones the relay dropped are lost and the client sends on;
//   the relay's duplicates reach each side and the device's anti-replay
//   drops every one (counted at each socket by record sequence number).
// * An MTU of 256 (ECDHE-ECDSA, makePki's chain: the Certificate message is
//   larger) makes Mbed TLS fragment its handshake; every datagram the device
//   sends is <= 256 bytes (checked at the relay's tap), device to device
//   through the faults and device client to `openssl s_server -dtls1_2 -mtu 256`.
// * Typed failures with Mbed TLS's code, the device serving on after each:
//   a silent peer ends the handshake with MBEDTLS_ERR_SSL_TIMEOUT (-0x6800)
//   at handshakeTimeoutMax (client and server side); a ClientHello whose
//   cookie is forged, or valid but for another address, gets another
//   HelloVerifyRequest and no session (Mbed TLS's cookie check fails and it
//   asks again); records with a bad MAC injected at the relay fail the
//   session at badMacLimit (MBEDTLS_ERR_SSL_INVALID_MAC, -0x7180) and are
//   dropped silently with no limit. (A PSK mismatch: dtls-openssl.test.)
import { createHash, randomBytes } from "node:crypto";
import type { Socket } from "node:dgram";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DatagramDirection, type DatagramFaults, startUdpRelay, type UdpRelay } from "../../hil/udp-relay.js";
import {
  type Device,
  type DTLSClientSession,
  type DTLSServer,
  type DTLSSession,
  HelloVerifyRequest,
  TLSHandshakeError,
} from "../../host/src/index.js";
import {
  type DevicePki,
  deviceClientHello,
  devicePki,
  echoes,
  echoServer,
  freeUdpPort,
  nextMessage,
  pskOptions,
  type RecordingSocket,
  recordingSocket,
} from "./dtls-peers.js";
import { useSession } from "./session.js";
import { bulk, SLOW_LINK, TARGET, until } from "./target.js";
import { opensslDir, SERVER_CHAIN_ARGS } from "./tls-peers.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const o = opensslDir("dtls-faults-");
const HOST = "device.example";
const PSK: [string, Uint8Array] = ["dtls-faults", Uint8Array.from(randomBytes(16))];
/** Mbed TLS's first retransmission delay: above a device handshake step on the slow link. */
const HS_MIN = SLOW_LINK ? 4000 : 500;
const HANDSHAKE_MS = SLOW_LINK ? 120_000 : 30_000;
const TEST_MS = SLOW_LINK ? 900_000 : 300_000;
/** Distinct datagrams that must arrive through the faulty relay: 10,000 natively, 400 over QEMU's slow UART (the suite's time budget). */
const DATAGRAMS = bulk(10_000, 400);
/** The faults of each direction: 5 % lost, 5 % twice, 5 % overtaken, 5 % 5 to 40 ms late. */
const FAULTS: DatagramFaults = { drop: 0.05, dup: 0.05, reorder: 0.05, delay: 0.05, delayMs: [5, 40] };
/** During the handshake (a few datagrams each way): three times as many, so its flights meet faults too. */
const HANDSHAKE_FAULTS: DatagramFaults = { drop: 0.15, dup: 0.15, reorder: 0.15, delay: 0.15, delayMs: [5, 40] };
const SEED = 0x18_03_5f_78; // its first handshake datagrams: up a ClientHello twice, the next one lost; down one overtaken, one lost
const MTU = 256;
/** TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (RFC 5289). */
const ECDHE_ECDSA_AES128_GCM = 0xc02b;
const MBEDTLS_ERR_SSL_TIMEOUT = -0x6800;
const MBEDTLS_ERR_SSL_INVALID_MAC = -0x7180;

const CONTENT_HANDSHAKE = 22;
const CONTENT_APPLICATION_DATA = 23;
const RECORD_HEADER = 13;
const HANDSHAKE_HEADER = 12;
const HELLO_VERIFY_REQUEST = 3;

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

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
const uint24 = (d: Uint8Array, at: number): number => ((d[at] ?? 0) << 16) | ((d[at + 1] ?? 0) << 8) | (d[at + 2] ?? 0);

/** Datagram `i` of the stream: its number (4 bytes, big-endian), then bytes derived from it; 16 to 16 + `spread` - 1 bytes. */
function numbered(i: number, spread: number): Uint8Array {
  const n = 16 + ((i * 7919) % spread);
  const out = new Uint8Array(n);
  new DataView(out.buffer).setUint32(0, i);
  let block = createHash("sha256").update(`dtls-faults ${i}`).digest();
  for (let at = 4; at < n; at += block.length) {
    out.set(block.subarray(0, n - at), at);
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

/** The number of a received datagram, or -1 when it is not exactly what `numbered` made. */
function numberOf(m: Uint8Array, spread: number): number {
  if (m.length < 4) return -1;
  const i = new DataView(m.buffer, m.byteOffset, m.byteLength).getUint32(0);
  return hex(m) === hex(numbered(i, spread)) ? i : -1;
}

/** Sends `m` and expects it echoed back. */
const echo = (s: DTLSSession, m: Uint8Array): Promise<void> => echoes(s, m, HANDSHAKE_MS);

/** The device still serves: a new PSK client and server shake hands and echo a datagram. */
async function stillServes(): Promise<void> {
  const { server, port } = await echoServer(dev, psk(), { acceptorIdleMs: 0 });
  try {
    const client = await dev.dtls.connect({ ...psk(), port, host: "127.0.0.1", handshakeTimeoutMs: HANDSHAKE_MS });
    await echo(client, Uint8Array.from(randomBytes(48)));
    await client.close();
  } finally {
    await server.close();
  }
  await until(async () => (await dev.stats()).tlsSessions === 0, 5000);
}

/** The device client's first ClientHello (no cookie), caught once. */
let clientHello: Buffer | undefined;
const firstClientHello = async (): Promise<Buffer> => {
  clientHello ??= await deviceClientHello(dev, psk(), SLOW_LINK ? 3000 : 1000);
  return clientHello;
};

/** `hello` (a whole ClientHello record) with its cookie replaced by `cookie`, the record and handshake lengths to match. */
function withCookie(hello: Uint8Array, cookie: Uint8Array): Uint8Array {
  const body = hello.subarray(RECORD_HEADER + HANDSHAKE_HEADER);
  const at = 35 + (body[34] ?? 0); // client_version 2, random 32, session_id: its length and bytes
  const rest = body.subarray(at + 1 + (body[at] ?? 0));
  const newBody = Buffer.concat([body.subarray(0, at), Buffer.from([cookie.length]), cookie, rest]);
  const out = Buffer.concat([hello.subarray(0, RECORD_HEADER + HANDSHAKE_HEADER), newBody]);
  out.writeUInt16BE(HANDSHAKE_HEADER + newBody.length, 11);
  out.writeUIntBE(newBody.length, RECORD_HEADER + 1, 3); // length
  out.writeUIntBE(newBody.length, RECORD_HEADER + 9, 3); // fragment_length
  return out;
}

/** The cookie of a HelloVerifyRequest record (server_version 2, cookie length 1, cookie), or undefined for another record. */
function hvrCookie(d: Uint8Array): Uint8Array | undefined {
  if (d[0] !== CONTENT_HANDSHAKE || d[RECORD_HEADER] !== HELLO_VERIFY_REQUEST) return undefined;
  const at = RECORD_HEADER + HANDSHAKE_HEADER + 2;
  return d.subarray(at + 1, at + 1 + (d[at] ?? 0));
}

/** What the relay's tap saw of the datagrams each way: the largest, and the handshake records that are fragments of a larger message. */
interface TapLog {
  largest: Record<DatagramDirection, number>;
  fragments: Record<DatagramDirection, number>;
}

function tapLog(): { log: TapLog; tap: (direction: DatagramDirection, d: Uint8Array) => void } {
  const log: TapLog = { largest: { up: 0, down: 0 }, fragments: { up: 0, down: 0 } };
  const tap = (direction: DatagramDirection, d: Uint8Array) => {
    log.largest[direction] = Math.max(log.largest[direction], d.length);
    // every record of the datagram: a handshake message in epoch 0 whose fragment is shorter than the message
    for (let at = 0; at + RECORD_HEADER <= d.length; at += RECORD_HEADER + ((d[at + 11] ?? 0) << 8) + (d[at + 12] ?? 0)) {
      const epoch0 = d[at + 3] === 0 && d[at + 4] === 0;
      const h = at + RECORD_HEADER;
      if (d[at] === CONTENT_HANDSHAKE && epoch0 && h + HANDSHAKE_HEADER <= d.length && uint24(d, h + 9) < uint24(d, h + 1))
        log.fragments[direction]++;
    }
  };
  return { log, tap };
}

/** Numbered datagrams a session received: the distinct numbers, the ones that came again, the damaged ones. */
function numberedLog(spread: number) {
  const log = {
    got: new Set<number>(),
    twice: 0,
    corrupt: 0,
    /** Counts `m`; true when it is intact and new. */
    take(m: Uint8Array): boolean {
      const i = numberOf(m, spread);
      if (i < 0) log.corrupt++;
      else if (log.got.has(i)) log.twice++;
      else {
        log.got.add(i);
        return true;
      }
      return false;
    },
  };
  return log;
}

/** The application records arriving at `socket`, by epoch and sequence number; `repeats`: those that came again (the relay's duplicates). */
function recordLog(socket: Socket) {
  const log = { seen: new Set<string>(), repeats: 0 };
  socket.on("message", (msg: Buffer) => {
    if (msg[0] !== CONTENT_APPLICATION_DATA) return;
    const key = hex(msg.subarray(3, 11));
    if (log.seen.has(key)) log.repeats++;
    else log.seen.add(key);
  });
  return log;
}

/** A device client with an MTU of MTU, verifying the PKI's chain, through `relay`. */
function mtuClient(relay: UdpRelay, ciphers?: number[]): Promise<DTLSClientSession> {
  const p = pki as DevicePki;
  return dev.dtls.connect({
    trustStore: p.trust,
    handshakeTimeoutMin: HS_MIN,
    mtu: MTU,
    ...(ciphers && { ciphers }),
    port: relay.port,
    host: relay.host,
    servername: HOST,
    handshakeTimeoutMs: HANDSHAKE_MS,
  });
}

/** Closes a test's client, relay and server; waits until the device has no DTLS session left. */
async function closeAll(client: DTLSClientSession | undefined, relay: UdpRelay, server: DTLSServer): Promise<void> {
  try {
    await client?.close();
    await relay.stop();
  } finally {
    await server.close();
  }
  await until(async () => (await dev.stats()).tlsSessions === 0, 10_000);
}

/** A server's session once its handshake is over. */
function nextSession(server: DTLSServer): Promise<DTLSSession> {
  return new Promise((resolve) => server.once("session", resolve));
}

describe(`DTLS under datagram faults, and its typed failures (${TARGET})`, () => {
  it(
    `through a relay dropping, duplicating, reordering and delaying 5 % of the datagrams each way: the handshake completes and ${DATAGRAMS} distinct datagrams arrive intact, once each, and their echoes come back so (anti-replay drops the duplicates both ways)`,
    async () => {
      const spread = bulk(200, 48);
      const { server, port } = await echoServer(dev, psk());
      const atServer = numberedLog(spread);
      const atClient = numberedLog(spread);
      const upRecords = recordLog(server.socket);
      const relay = await startUdpRelay({ server: { port }, seed: SEED, up: HANDSHAKE_FAULTS, down: HANDSHAKE_FAULTS });
      let client: DTLSClientSession | undefined;
      try {
        const serverSide = nextSession(server);
        const t0 = Date.now();
        const c = await dev.dtls.connect({ ...psk(), port: relay.port, host: relay.host, handshakeTimeoutMs: HANDSHAKE_MS });
        client = c;
        const s = await serverSide;
        const hsMs = Date.now() - t0;
        const hs = relay.stats();
        relay.set({ up: FAULTS, down: FAULTS });
        const downRecords = recordLog(c.socket);
        // the server echoes each datagram the first time it comes; the client counts the echoes
        s.removeAllListeners("message");
        s.on("message", (m: Uint8Array) => {
          if (atServer.take(m)) void s.send(m).catch(() => {});
        });
        c.on("message", (m: Uint8Array) => void atClient.take(m));
        // Send until DATAGRAMS distinct ones arrived; at most `window` sent and not yet read by the server's session.
        const window = bulk(128, 16);
        const deadline = Date.now() + TEST_MS - 60_000;
        const t1 = Date.now();
        let sent = 0;
        while (atServer.got.size < DATAGRAMS) {
          if (Date.now() > deadline) throw new Error(`${atServer.got.size} of ${DATAGRAMS} datagrams arrived in time (${sent} sent)`);
          if (upRecords.seen.size - atServer.got.size - atServer.corrupt > window) {
            await sleep(1);
            continue;
          }
          await c.send(numbered(sent++, spread));
        }
        const ms = Date.now() - t1;
        // the last echoes, and what the relay still holds back or delays: until nothing more comes down for a while
        for (let n = -1; n !== relay.stats().down.datagramsIn; ) {
          n = relay.stats().down.datagramsIn;
          await sleep(SLOW_LINK ? 3000 : 300);
        }
        const st = relay.stats();
        const lane = (d: DatagramDirection) => {
          const [a, b] = [hs[d], st[d]];
          return {
            dropped: b.dropped - a.dropped,
            duplicated: b.duplicated - a.duplicated,
            reordered: b.reordered - a.reordered,
            delayed: b.delayed - a.delayed,
          };
        };
        const [up, down] = [lane("up"), lane("down")];
        const faults = (l: { dropped: number; duplicated: number; reordered: number; delayed: number }) =>
          `${l.dropped} dropped, ${l.duplicated} duplicated, ${l.reordered} reordered, ${l.delayed} delayed`;
        console.log(
          `[dtls-faults ${TARGET}] seed ${SEED.toString(16)}: handshake ${hsMs} ms through the relay (up ${hs.up.datagramsIn} datagrams: ${faults(hs.up)}; ` +
            `down ${hs.down.datagramsIn}: ${faults(hs.down)}); ${sent} datagrams sent for ${atServer.got.size} distinct to arrive in ${ms} ms, ` +
            `${atClient.got.size} of their echoes back; relay after the handshake, up: ${faults(up)}; down: ${faults(down)}; ` +
            `repeated records anti-replay dropped: ${upRecords.repeats} at the server, ${downRecords.repeats} at the client; ` +
            `${c.dropped + s.dropped} queue drops`,
        );
        const faulted = (l: typeof hs.up) => l.dropped + l.duplicated + l.reordered + l.delayed;
        expect(faulted(hs.up) + faulted(hs.down)).toBeGreaterThan(0); // the handshake crossed faults
        expect(atServer.got.size).toBeGreaterThanOrEqual(DATAGRAMS);
        for (const at of [atServer, atClient]) expect([at.corrupt, at.twice]).toEqual([0, 0]);
        for (const i of atClient.got) expect(atServer.got.has(i)).toBe(true);
        expect(atClient.got.size).toBeGreaterThan(0.8 * atServer.got.size);
        // each duplicate the relay made of an application record reached its side, and the device dropped every one
        expect(upRecords.repeats).toBeGreaterThan(0);
        expect(upRecords.repeats).toBe(up.duplicated);
        expect(downRecords.repeats).toBe(down.duplicated);
        expect(up.dropped).toBeGreaterThan(0);
        expect(sent).toBeGreaterThan(atServer.got.size); // the dropped ones were lost, not resent by DTLS
        expect(s.established && c.established).toBe(true);
      } finally {
        await closeAll(client, relay, server);
      }
    },
    TEST_MS,
  );

  it(
    `an MTU of ${MTU}: ECDHE-ECDSA with makePki's chain fragments the handshake, device client to device server through the faulty relay; every datagram <= ${MTU} bytes`,
    async () => {
      const { tap, log } = tapLog();
      const p = pki as DevicePki;
      const { server, port, errors } = await echoServer(dev, {
        certificateChain: [[p.serverLeaf, p.inter], p.serverKey],
        handshakeTimeoutMin: HS_MIN,
        mtu: MTU,
      });
      const relay = await startUdpRelay({ server: { port }, seed: SEED + 1, up: FAULTS, down: FAULTS, tap });
      let client: DTLSClientSession | undefined;
      try {
        const t0 = Date.now();
        // one suite, so the ClientHello fits the MTU whole (327 B with all of them): dev.dtls.createServer takes a
        // ClientHello from a new peer only in one fragment, as OpenSSL's DTLSv1_listen
        client = await mtuClient(relay, [ECDHE_ECDSA_AES128_GCM]);
        const hsMs = Date.now() - t0;
        expect(client.cipher?.name).toMatch(/^TLS-ECDHE-ECDSA-WITH-/);
        expect(client.mtu).toBe(MTU);
        expect(client.peerCertificate).toBeDefined();
        // datagrams as large as a record under the MTU carries, echoed (each may be lost either way: resent until one comes back)
        let echoed = 0;
        for (let i = 0; echoed < 10 && i < 60; i++) {
          const m = Uint8Array.from(randomBytes(180));
          const back = nextMessage(client, SLOW_LINK ? 6000 : 1000);
          await client.send(m);
          const b = await back;
          if (b !== undefined) {
            expect(hex(b)).toBe(hex(m));
            echoed++;
          }
        }
        expect(echoed).toBe(10);
        const st = relay.stats();
        console.log(
          `[dtls-faults ${TARGET}] MTU ${MTU}, device to device, ${client.cipher?.name}: handshake ${hsMs} ms; largest datagram up ${log.largest.up} B, ` +
            `down ${log.largest.down} B; handshake fragments up ${log.fragments.up}, down ${log.fragments.down}; relay dropped ${st.up.dropped}/${st.down.dropped}, ` +
            `duplicated ${st.up.duplicated}/${st.down.duplicated}`,
        );
        expect(log.largest.up).toBeLessThanOrEqual(MTU);
        expect(log.largest.down).toBeLessThanOrEqual(MTU);
        expect(log.fragments.up).toBe(0);
        expect(log.fragments.down).toBeGreaterThan(1); // the server's Certificate message at least, in pieces
        expect(errors).toEqual([]);
      } finally {
        await closeAll(client, relay, server);
      }
    },
    TEST_MS,
  );

  it(
    `an MTU of ${MTU}: the device client against openssl s_server -dtls1_2 -mtu ${MTU} (its fragmented chain reassembled on the device), the device's datagrams <= ${MTU} bytes`,
    async () => {
      const { tap, log } = tapLog();
      const sPort = await freeUdpPort();
      const peer = o.spawn(
        ["s_server", "-dtls1_2", "-listen", "-accept", `127.0.0.1:${sPort}`, "-mtu", String(MTU), ...SERVER_CHAIN_ARGS].concat([
          "-cipher",
          "ECDHE-ECDSA-AES128-GCM-SHA256",
        ]),
      );
      const relay = await startUdpRelay({ server: { port: sPort }, seed: SEED + 2, tap });
      let client: DTLSClientSession | undefined;
      try {
        await peer.waitFor("ACCEPT", 10_000);
        client = await mtuClient(relay);
        expect(client.cipher?.name).toBe("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");
        const line = `through a ${MTU}-byte MTU ${randomBytes(8).toString("hex")}\n`;
        await client.send(new TextEncoder().encode(line));
        await peer.waitFor(line, HANDSHAKE_MS);
        console.log(
          `[dtls-faults ${TARGET}] MTU ${MTU}, device client to s_server: largest datagram from the device ${log.largest.up} B ` +
            `(s_server's ${log.largest.down} B); handshake fragments from s_server ${log.fragments.down}, from the device ${log.fragments.up}`,
        );
        expect(log.largest.up).toBeLessThanOrEqual(MTU);
        expect(log.fragments.down).toBeGreaterThan(1);
      } finally {
        await client?.close();
        await relay.stop();
        peer.stop();
      }
      await until(async () => (await dev.stats()).tlsSessions === 0, 10_000);
    },
    TEST_MS,
  );

  it(
    "a silent server: the device client's retransmissions end at handshakeTimeoutMax with Mbed TLS's MBEDTLS_ERR_SSL_TIMEOUT (-0x6800), typed; the device serves on",
    async () => {
      const min = SLOW_LINK ? 1000 : 200;
      const silent = await recordingSocket();
      const t0 = Date.now();
      let failure: unknown;
      try {
        await dev.dtls
          .connect({
            ...psk({ handshakeTimeoutMin: min, handshakeTimeoutMax: 4 * min }),
            port: silent.port,
            handshakeTimeoutMs: HANDSHAKE_MS,
          })
          .catch((e: unknown) => {
            failure = e;
          });
      } finally {
        silent.close();
      }
      const took = Date.now() - t0;
      console.log(`[dtls-faults ${TARGET}] silent server: ${String(failure)} after ${took} ms, ${silent.got.length} ClientHellos sent`);
      // Mbed TLS: the ClientHello, again after min and 2 min; the step after the 4-min delay fails (7 min in all)
      expect(failure).toBeInstanceOf(TLSHandshakeError);
      expect((failure as TLSHandshakeError).mbedtlsCode).toBe(MBEDTLS_ERR_SSL_TIMEOUT);
      expect(silent.got).toHaveLength(3);
      expect(took).toBeGreaterThanOrEqual(7 * min * 0.9);
      expect(took).toBeLessThan(7 * min + (SLOW_LINK ? 5000 : 1500));
      expect((await dev.stats()).tlsSessions).toBe(0);
      await stillServes();
    },
    TEST_MS,
  );

  it(
    "cookies: a ClientHello with a forged cookie, or with a valid cookie from another address, gets another HelloVerifyRequest and no session; the valid one gets the ServerHello, and when that client goes silent the server's session fails with -0x6800 ('sessionError')",
    async () => {
      const min = SLOW_LINK ? 1000 : 200;
      const hello = await firstClientHello();
      const { server, port, errors } = await echoServer(dev, psk({ handshakeTimeoutMin: min, handshakeTimeoutMax: 4 * min }), {
        acceptorIdleMs: 0,
        handshakeTimeoutMs: HANDSHAKE_MS,
      });
      const a = await recordingSocket();
      const b = await recordingSocket();
      /** What `from` gets back for `d` (the next datagram it receives). */
      const ask = async (from: RecordingSocket, d: Uint8Array): Promise<Buffer> => {
        const n = from.got.length;
        from.socket.send(d, port, "127.0.0.1");
        await until(() => from.got.length > n, SLOW_LINK ? 30_000 : 5000);
        return (from.got[n] as { msg: Buffer }).msg;
      };
      try {
        const sessions0 = (await dev.stats()).tlsSessions;
        const first = await ask(a, hello);
        const cookie = hvrCookie(first);
        expect(cookie?.length).toBeGreaterThan(0);
        // a forged cookie of the same length
        const forged = Buffer.from(cookie as Uint8Array);
        forged.writeUInt8(forged.readUInt8(forged.length - 1) ^ 0x01, forged.length - 1);
        const again = await ask(a, withCookie(hello, forged));
        expect(hvrCookie(again)).toBeDefined();
        // random bytes, and no cookie but an empty one
        expect(hvrCookie(await ask(a, withCookie(hello, randomBytes(32))))).toBeDefined();
        // A's valid cookie from another address
        expect(hvrCookie(await ask(b, withCookie(hello, cookie as Uint8Array)))).toBeDefined();
        expect(server.helloVerifies).toBe(4);
        expect(server.sessions).toHaveLength(0);
        expect(errors).toEqual([]);
        await until(() => !server.acceptorLive, 5000);
        expect((await dev.stats()).tlsSessions).toBe(sessions0);

        // A's cookie from A: the server's flight (ServerHello first), a session; A goes silent
        const t0 = Date.now();
        const flight = await ask(a, withCookie(hello, cookie as Uint8Array));
        expect([flight[0], flight[RECORD_HEADER]]).toEqual([CONTENT_HANDSHAKE, 2]);
        expect(server.sessions).toHaveLength(1);
        await until(() => errors.length > 0, 7 * min + (SLOW_LINK ? 30_000 : 5000));
        const took = Date.now() - t0;
        console.log(
          `[dtls-faults ${TARGET}] cookies: ${server.helloVerifies} HelloVerifyRequests (one per cookie-less, forged or misaddressed ClientHello); ` +
            `the silent client's session failed after ${took} ms: ${String(errors[0])}`,
        );
        expect(errors[0]).toBeInstanceOf(TLSHandshakeError);
        expect((errors[0] as TLSHandshakeError).mbedtlsCode).toBe(MBEDTLS_ERR_SSL_TIMEOUT);
        expect(took).toBeGreaterThanOrEqual(7 * min * 0.9);
        expect(server.sessions).toHaveLength(0);
        expect(b.got).toHaveLength(1);
      } finally {
        a.close();
        b.close();
        await server.close();
      }
      await until(async () => (await dev.stats()).tlsSessions === 0, 5000);
      await stillServes();
    },
    TEST_MS,
  );

  it("sans-I/O: a ClientHello with a forged cookie makes doHandshake() answer HelloVerifyRequest (Mbed TLS's -0x6a80) with a new cookie, no session state kept", async () => {
    const hello = await firstClientHello();
    const ctx = dev.dtls.ServerContext(new dev.dtls.DTLSConfiguration(psk()));
    const buf = ctx.wrapBuffers();
    try {
      const heaps: number[] = [];
      const deviceHeaps: number[] = [];
      for (let round = 0; round < 3; round++) {
        const forged = randomBytes(32);
        await buf.setCookieParam(Uint8Array.of(127, 0, 0, 1, 0x12, 0x34 + round));
        buf.receiveFromNetwork(withCookie(hello, forged));
        expect(await buf.doHandshake()).toBe(HelloVerifyRequest);
        const out = buf.takeDatagrams();
        expect(out).toHaveLength(1);
        const cookie = hvrCookie(out[0] as Uint8Array);
        expect(cookie?.length).toBeGreaterThan(0);
        expect(hex(cookie as Uint8Array)).not.toBe(hex(forged));
        // reset for the next ClientHello: not failed
        const info = await buf.info();
        expect([info.established, info.fatal]).toEqual([false, 0]);
        heaps.push(info.heap);
        deviceHeaps.push((await dev.stats()).heapUsed);
      }
      expect(new HelloVerifyRequest().mbedtlsCode).toBe(-0x6a80);
      console.log(
        `[dtls-faults ${TARGET}] the session's device heap after each forged cookie's HelloVerifyRequest: ${heaps.join(", ")} B (device heap used ${deviceHeaps.join(", ")} B)`,
      );
      // nothing kept per ClientHello: the session's own heap figure (tls_info) and the device's stay put
      expect(new Set(heaps).size).toBe(1);
      expect(new Set(deviceHeaps).size).toBe(1);
    } finally {
      await buf.close();
      await ctx.close();
    }
  });

  for (const limit of [2, 0]) {
    it(
      limit > 0
        ? `badMacLimit ${limit}: a record with a bad MAC injected at the relay is dropped, the second (Mbed TLS fails at seen >= limit) fails the server's session with MBEDTLS_ERR_SSL_INVALID_MAC (-0x7180); the device serves on`
        : "badMacLimit 0: records with a bad MAC injected at the relay are dropped silently, the session goes on",
      async () => {
        const { server, port, errors } = await echoServer(dev, psk({ badMacLimit: limit }), { acceptorIdleMs: 0 });
        const relay = await startUdpRelay({ server: { port }, seed: SEED + 3 });
        let client: DTLSClientSession | undefined;
        const injected = limit > 0 ? limit : 5;
        try {
          const serverSide = nextSession(server);
          const c = await dev.dtls.connect({ ...psk(), port: relay.port, host: relay.host, handshakeTimeoutMs: HANDSHAKE_MS });
          client = c;
          const s = await serverSide;
          const failed = new Promise<Error>((resolve) => s.once("error", resolve));
          await echo(client, Uint8Array.from(randomBytes(40)));
          for (let k = 1; k <= injected; k++) {
            // the relay drops the client's next record, and the client's socket sends it again damaged in its place
            const taken = relay.dropNext("up", (d) => d[0] === CONTENT_APPLICATION_DATA);
            await c.send(Uint8Array.from(randomBytes(40)));
            const bad = Buffer.from(await taken);
            bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0x80, bad.length - 1); // the tag's last byte
            c.socket.send(bad, relay.port, relay.host);
            if (k < limit || limit === 0) {
              await echo(c, Uint8Array.from(randomBytes(40)));
              expect((await s.info()).badMacSeen).toBe(limit === 0 ? 0 : k);
            }
          }
          if (limit > 0) {
            const e = await failed;
            console.log(
              `[dtls-faults ${TARGET}] badMacLimit ${limit}: the server's session failed at bad record ${injected}: ${String(e)}`,
            );
            expect(e).toBeInstanceOf(TLSHandshakeError);
            expect((e as TLSHandshakeError).mbedtlsCode).toBe(MBEDTLS_ERR_SSL_INVALID_MAC);
            await until(() => s.closed, 5000);
            expect(server.sessions).toHaveLength(0);
          } else {
            const info = await s.info();
            console.log(
              `[dtls-faults ${TARGET}] badMacLimit 0: ${injected} bad records dropped, badmac_seen ${info.badMacSeen}, session on`,
            );
            expect(s.established).toBe(true);
            await echo(c, Uint8Array.from(randomBytes(40)));
          }
          expect(errors).toEqual([]);
        } finally {
          await closeAll(client, relay, server);
        }
        if (limit > 0) await stillServes();
      },
      TEST_MS,
    );
  }
});
