// DTLS 1.2 on the device (issue 18) against third-party stacks, through
// dev.dtls.connect / createServer on the loopback: GnuTLS (gnutls-serv
// --udp and gnutls-cli --udp, makePki's certificates both ways, the device
// server's key non-exportable), libcoap (a coaps GET with a PSK from the
// device to coap-server, and coap-client of libcoap's OpenSSL and GnuTLS
// builds getting a resource the device serves), and Mbed TLS's own
// ssl_server2 / ssl_client2 (built from the pinned tree) with cid=1: each
// side reports the Connection ID the other chose, and ssl_client2's request
// reaches the device server through hil/udp-relay.ts after a NAT rebinding
// (the relay moves the client to another port right before it), the same
// session found by its CID. The heap is back at its baseline at the end.
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUdpRelay, type UdpRelay } from "../../hil/udp-relay.js";
import type { CRT, Device, DTLSConfigurationOptions, DTLSServer, DTLSSession, ECC, TrustStore } from "../../host/src/index.js";
import {
  COAP_CONTENT,
  COAP_SERVER_INDEX,
  coapClient,
  coapGet,
  coapPath,
  coapServer,
  decodeCoap,
  encodeCoap,
  GNUTLS_HANDSHAKE_DONE,
  gnutlsClient,
  gnutlsServer,
  mbedtlsPrograms,
  nextMessage,
  reportedPeerCid,
  sslClient2,
  sslServer2,
} from "./dtls-peers.js";
import { useSession } from "./session.js";
import { SLOW_LINK, TARGET, until } from "./target.js";
import { deviceServerLeaf, opensslDir, stopPeers, text, utf8 } from "./tls-peers.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const o = opensslDir("dtls-thirdparty-");
const HOST = "device.example";
/** Mbed TLS's first retransmission delay: above a device handshake step on the slow link. */
const HS_MIN = SLOW_LINK ? 4000 : 500;
const HANDSHAKE_MS = SLOW_LINK ? 90_000 : 20_000;
const TEST_MS = SLOW_LINK ? 300_000 : 60_000;
const PSK_HEX = "6d626564c1696e6b2d64746c732d7073";
const PSK_ID = "mbedlink-dtls";
const psk = (more: DTLSConfigurationOptions = {}): DTLSConfigurationOptions => ({
  preSharedKey: [PSK_ID, Uint8Array.from(Buffer.from(PSK_HEX, "hex"))],
  validateCertificates: false, // the PSK authenticates both sides
  handshakeTimeoutMin: HS_MIN,
  ...more,
});
/** ssl_server2/ssl_client2's PSK arguments, the suite pinned (both sides offer it). */
const MBEDTLS_PSK = { psk: PSK_HEX, psk_identity: PSK_ID, force_ciphersuite: "TLS-PSK-WITH-AES-128-GCM-SHA256" };
/** libcoap takes the PSK as a string (-k). */
const COAP_KEY = "coaps-key-of-mbedlink";
const COAP_ID = "device-coap";
const hex = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString("hex"));

let root: CRT;
let inter: CRT;
let trust: TrustStore;
let serverKey: ECC;
let serverLeaf: CRT;

beforeAll(async () => {
  dev = session.dev;
  mbedtlsPrograms(); // built once (about 30 s), before the device's time counts
  const pki = makePki(o.dir);
  writeFileSync(o.path("chain.crt"), readFileSync(pki.server, "utf8") + readFileSync(pki.inter, "utf8"));
  root = await dev.x509.CRT.fromPEM(readFileSync(pki.root, "utf8"));
  inter = await dev.x509.CRT.fromPEM(readFileSync(pki.inter, "utf8"));
  trust = new dev.dtls.TrustStore();
  await trust.add(root);
  ({ key: serverKey, leaf: serverLeaf } = await deviceServerLeaf(dev, o, HOST));
}, 600_000);

afterAll(async () => {
  stopPeers();
  for (const x of [serverLeaf, serverKey, trust, inter, root]) await x?.close();
  o.remove();
});

/** A device server on the loopback answering each message with `answer(message)`; its sessions as they come. */
async function deviceServer(conf: DTLSConfigurationOptions, answer: (m: Uint8Array) => Uint8Array) {
  const sessions: DTLSSession[] = [];
  const server: DTLSServer = dev.dtls.createServer(new dev.dtls.DTLSConfiguration(conf), (s) => {
    sessions.push(s);
    s.on("message", (m: Uint8Array) => void s.send(answer(m)).catch(() => {}));
  });
  const { port } = await server.listen(0, "127.0.0.1");
  return { server, port, sessions };
}

describe(`DTLS against GnuTLS (${TARGET})`, () => {
  it(
    "the device client verifies gnutls-serv's chain (root in its trust store, name device.example) and gets its line echoed",
    async () => {
      const { peer, port } = await gnutlsServer({ dir: o.dir, certFile: "chain.crt", keyFile: "server.key" });
      const c = await dev.dtls.connect({
        host: "127.0.0.1",
        port,
        servername: HOST,
        trustStore: trust,
        validateCertificates: true,
        handshakeTimeoutMin: HS_MIN,
      });
      try {
        expect(c.version).toBe("DTLSv1.2");
        expect(c.cipher?.name).toMatch(/^TLS-ECDHE-ECDSA-WITH-/);
        const back = nextMessage(c, HANDSHAKE_MS);
        await c.send(utf8("hello gnutls from the device\n"));
        expect(text((await back) ?? new Uint8Array())).toBe("hello gnutls from the device\n");
        await peer.waitFor(/Processing \d+ bytes command: hello gnutls from the device/);
      } finally {
        await c.close();
        peer.stop();
      }
    },
    TEST_MS,
  );

  it(
    "gnutls-cli verifies the device server's chain (its key non-exportable on the device) and gets its line echoed by the device",
    async () => {
      const { server, port, sessions } = await deviceServer(
        { certificateChain: [[serverLeaf, inter], serverKey], validateCertificates: false, handshakeTimeoutMin: HS_MIN },
        (m) => m,
      );
      try {
        const client = gnutlsClient({ dir: o.dir, port, caFile: "root.crt", hostname: HOST });
        await client.waitFor(GNUTLS_HANDSHAKE_DONE, HANDSHAKE_MS);
        expect(client.out()).toContain("- Status: The certificate is trusted.");
        expect(client.out()).toMatch(/- Description: \(DTLS1\.2-X\.509\)-\(ECDHE-[A-Z0-9]+\)-\(ECDSA-SHA\d+\)/);
        client.proc.stdin.write("hello device from gnutls\n");
        await client.waitFor(/^hello device from gnutls$/m, HANDSHAKE_MS);
        client.proc.stdin.end();
        expect(await client.exited()).toBe(0);
        expect(sessions).toHaveLength(1);
        expect(server.helloVerifies).toBeGreaterThanOrEqual(1); // GnuTLS went through the device's cookie exchange
      } finally {
        await server.close();
      }
    },
    TEST_MS,
  );
});

describe(`coaps against libcoap (${TARGET})`, () => {
  it(
    "the device client GETs coap-server's index over coaps with a PSK",
    async () => {
      const { peer, port } = await coapServer({ dir: o.dir, key: COAP_KEY, flavor: "openssl" });
      const c = await dev.dtls.connect({
        host: "127.0.0.1",
        port,
        preSharedKey: [COAP_ID, utf8(COAP_KEY)],
        validateCertificates: false,
        handshakeTimeoutMin: HS_MIN,
      });
      try {
        const token = Uint8Array.of(0xd7, 0x15);
        const back = nextMessage(c, HANDSHAKE_MS);
        await c.send(coapGet("", 0x4d4c, token));
        const res = decodeCoap((await back) ?? new Uint8Array([0x40, 0, 0, 0]));
        expect(res).toMatchObject({ type: 2, code: COAP_CONTENT, messageId: 0x4d4c }); // a piggybacked ACK, 2.05 Content
        expect(Buffer.from(res.token)).toEqual(Buffer.from(token));
        expect(text(res.payload)).toContain(COAP_SERVER_INDEX);
        await peer.waitFor(`got psk_identity: '${COAP_ID}'`);
      } finally {
        await c.close();
        peer.stop();
      }
    },
    TEST_MS,
  );

  it.each(["gnutls", "openssl"] as const)(
    "coap-client (libcoap on %s) GETs a resource the device serves over coaps with a PSK",
    async (flavor) => {
      const { server, port, sessions } = await deviceServer(
        { preSharedKey: [COAP_ID, utf8(COAP_KEY)], validateCertificates: false, handshakeTimeoutMin: HS_MIN },
        (m) => {
          const req = decodeCoap(m);
          return encodeCoap({
            type: 2,
            code: COAP_CONTENT,
            messageId: req.messageId,
            token: req.token,
            options: [],
            payload: utf8(`device resource /${coapPath(req)}`),
          });
        },
      );
      try {
        const client = coapClient({ dir: o.dir, port, key: COAP_KEY, identity: COAP_ID, path: "sensors/temp", flavor });
        expect(await client.exited()).toBe(0);
        expect(client.out().trim()).toBe("device resource /sensors/temp");
        expect(sessions).toHaveLength(1);
      } finally {
        await server.close();
      }
    },
    TEST_MS,
  );
});

describe(`DTLS Connection ID against Mbed TLS's ssl_server2 / ssl_client2 (${TARGET})`, () => {
  it(
    "the device client (cid 4) and ssl_server2 (cid=1 cid_val=5e4f01a2) each report the CID the other chose",
    async () => {
      const { peer, port } = await sslServer2({ ...MBEDTLS_PSK, cid: 1, cid_val: "5e4f01a2" }, o.dir);
      const c = await dev.dtls.connect({ host: "127.0.0.1", port, ...psk({ cid: 4 }) });
      try {
        expect(hex(c.peerCid)).toBe("5e4f01a2");
        expect(c.cid).toHaveLength(4);
        const info = await c.info();
        expect(hex(info.cid)).toBe(hex(c.cid));
        expect(hex(info.peerCid)).toBe("5e4f01a2");
        const back = nextMessage(c, HANDSHAKE_MS);
        await c.send(utf8("GET / HTTP/1.0\r\n\r\n"));
        expect(text((await back) ?? new Uint8Array())).toContain("Successful connection using: TLS-PSK-WITH-AES-128-GCM-SHA256");
        await peer.waitFor("(initial handshake) Peer CID");
        expect(reportedPeerCid(peer.out())).toBe(hex(c.cid));
        expect(peer.out()).toContain("hello verification requested"); // the device went through ssl_server2's cookie
      } finally {
        await c.close();
        peer.stop();
      }
    },
    TEST_MS,
  );

  it(
    "ssl_client2 (cid=1) reaches the device server (cid 4) through a relay whose NAT moves it to another port before its request: one session, found by its CID",
    async () => {
      const { server, port, sessions } = await deviceServer(psk({ cid: 4 }), () =>
        utf8("HTTP/1.0 200 OK\r\n\r\ndevice page over a rebound path\r\n"),
      );
      let relay: UdpRelay | undefined;
      let cidRecords = 0;
      let oldPort: number | undefined;
      try {
        relay = await startUdpRelay({
          server: { port },
          seed: 18,
          // the first client datagram that starts with a tls12_cid record (content type 25) is its request: its
          // Finished went in one datagram after the ChangeCipherSpec record (type 20)
          tap: (direction, d) => {
            if (direction === "up" && d[0] === 25 && ++cidRecords === 1) {
              oldPort = relay?.upstreamPort(relay.clients()[0] as string);
              void relay?.rebind();
            }
          },
        });
        const client = sslClient2(relay.port, { ...MBEDTLS_PSK, cid: 1, cid_val: "c1c2c3c4", hs_timeout: `${HS_MIN}-60000` }, o.dir);
        expect(await client.exited()).toBe(0);
        expect(client.out()).toContain("device page over a rebound path");
        expect(sessions).toHaveLength(1);
        const s = sessions[0] as DTLSSession;
        expect(reportedPeerCid(client.out())).toBe(hex(s.cid));
        expect(hex(s.peerCid)).toBe("c1c2c3c4");
        expect(cidRecords).toBeGreaterThanOrEqual(2); // the request and the close_notify
        // the session now answers the relay's new port
        const clientKey = relay.clients()[0] as string;
        expect(s.remotePort).toBe(relay.upstreamPort(clientKey));
        expect(oldPort).toBeDefined();
        expect(s.remotePort).not.toBe(oldPort);
        await until(() => s.closed, HANDSHAKE_MS); // ssl_client2's close_notify
      } finally {
        await relay?.stop();
        await server.close();
      }
    },
    TEST_MS,
  );

  it(
    "a lossy, duplicating, reordering relay during the handshake: ssl_client2 and the device server get through by retransmission",
    async () => {
      const { server, port, sessions } = await deviceServer(psk({ cid: 2 }), () =>
        utf8("HTTP/1.0 200 OK\r\n\r\nthrough the lossy path\r\n"),
      );
      const faults = { drop: 0.25, dup: 0.15, reorder: 0.15, reorderMs: 20 };
      let relay: UdpRelay | undefined;
      try {
        relay = await startUdpRelay({
          server: { port },
          seed: 0x18d7,
          up: faults,
          down: faults,
          // the request (the first datagram starting with a tls12_cid record) and all after it pass untouched:
          // Mbed TLS retransmits handshake flights only
          tap: (direction, d) => {
            if (direction === "up" && d[0] === 25) relay?.set({ up: {}, down: {} });
          },
        });
        // the device's first flight (its HelloVerifyRequest) is lost for sure: ssl_client2 must resend its ClientHello
        // (after 1 s on every target: a ClientHello resent while the device is busy is one more duplicate)
        const lost = relay.dropNext("down", 1);
        const client = sslClient2(relay.port, { ...MBEDTLS_PSK, cid: 1, cid_val: "0a0b", hs_timeout: "1000-60000" }, o.dir);
        expect(await client.exited()).toBe(0);
        expect(client.out()).toContain("through the lossy path");
        expect((await lost)[0]).toBe(22); // a handshake record
        const st = relay.stats();
        expect(st.down.targeted).toBe(1);
        expect(st.up.datagramsIn).toBeGreaterThan(4); // ClientHello twice at least, then the key exchange
        expect(sessions).toHaveLength(1);
        expect(reportedPeerCid(client.out())).toBe(hex(sessions[0]?.cid));
      } finally {
        await relay?.stop();
        await server.close();
      }
    },
    TEST_MS,
  );
});
