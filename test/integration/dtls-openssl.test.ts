// DTLS 1.2 on the device against OpenSSL (issue 18), the sans-I/O
// DTLSWrappedBuffer with Node's dgram moving the datagrams on the loopback:
// the device's client talks to `openssl s_server -dtls1_2 -listen` (which
// answers the first ClientHello with a HelloVerifyRequest itself), the
// device's server answers `openssl s_client -dtls1_2` with a
// HelloVerifyRequest first (the SDK's typed result, and s_client's -msg
// trace) and completes the second ClientHello. PSK with PSK-AES128-CCM8 and
// PSK-AES128-GCM-SHA256, and ECDHE-ECDSA with makePki's chain (mutual on the
// device server, whose key is non-exportable); application data both ways.
// A PSK mismatch fails the device server's handshake with Mbed TLS's
// MBEDTLS_ERR_SSL_INVALID_MAC (typed); TLS 1.3 on a DTLS configuration is
// refused by the device (UnsupportedAlgorithmError). The device keeps
// serving, and its heap is back at its baseline at the end.
//
// OpenSSL facts the peers rely on (checked by hand with OpenSSL 3.0): an
// s_server whose stdin is at EOF exits at once (spawnPeer keeps stdin open),
// and s_server/s_client refuse `-mtu` below 256 ("MTU too small").

import { X509Certificate } from "node:crypto";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CRT,
  type Device,
  type DTLSConfigurationOptions,
  type DTLSContext,
  type DTLSWrappedBuffer,
  type ECC,
  HelloVerifyRequest,
  TLSHandshakeError,
  type TrustStore,
  UnsupportedAlgorithmError,
  WantRead,
  WantWrite,
} from "../../host/src/index.js";
import { useSession } from "./session.js";
import { SLOW_LINK, TARGET } from "./target.js";
import { deviceServerLeaf, freePort, opensslDir, type Peer, SERVER_CHAIN_ARGS, stopPeers, text, utf8 } from "./tls-peers.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const o = opensslDir("dtls-openssl-");
const derOf = (pemFile: string) => new Uint8Array(new X509Certificate(readFileSync(o.path(pemFile))).raw);

const PSK_HEX = "00112233445566778899aabbccddeeff";
const PSK = Uint8Array.from(Buffer.from(PSK_HEX, "hex"));
const PSK_ID = "device-1";
/** The PSK suites run both ways: OpenSSL's name and the IANA number. */
const PSK_SUITES = [
  ["PSK-AES128-CCM8", 0xc0a8],
  ["PSK-AES128-GCM-SHA256", 0x00a8],
] as const;
/** A whole handshake, public-key operations on QEMU included. */
const HANDSHAKE_MS = SLOW_LINK ? 90_000 : 30_000;

let root: CRT;
let inter: CRT;
let trust: TrustStore;
let deviceKey: ECC;
let deviceLeaf: CRT;

/** A UDP socket on the loopback whose datagrams a test takes one at a time. */
interface Udp {
  socket: Socket;
  port: number;
  /** The next datagram, or undefined after `ms`. */
  next(ms: number): Promise<{ msg: Uint8Array; from: RemoteInfo } | undefined>;
  close(): void;
}

async function udp(): Promise<Udp> {
  const socket = createSocket("udp4");
  const queue: { msg: Uint8Array; from: RemoteInfo }[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  socket.on("message", (msg, from) => {
    queue.push({ msg: new Uint8Array(msg), from });
    wake?.();
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    socket,
    port: socket.address().port,
    next: async (ms) => {
      if (queue.length === 0)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      wake = undefined;
      return queue.shift();
    },
    close: () => {
      if (!closed) socket.close();
      closed = true;
    },
  };
}

interface Link {
  buf: DTLSWrappedBuffer;
  net: Udp;
  to: { address: string; port: number };
  /** Every datagram the session was given. */
  received: Uint8Array[];
}

/** Sends what the session wrote to the peer, one datagram each. */
async function flush({ buf, net, to }: Link): Promise<void> {
  for (const d of buf.takeDatagrams())
    await new Promise<void>((resolve, reject) => net.socket.send(d, to.port, to.address, (e) => (e ? reject(e) : resolve())));
}

/**
 * Runs `step` until it settles to something other than WantRead/WantWrite:
 * its datagrams sent after each call (a failure's alert too), a datagram
 * from the network fed in between, or none once the device's timer fires.
 */
async function drive<T>(link: Link, step: () => Promise<T>, what: string, ms = HANDSHAKE_MS): Promise<Exclude<T, typeof WantRead>> {
  const end = Date.now() + ms;
  for (;;) {
    let r: T;
    try {
      r = await step();
    } finally {
      await flush(link);
    }
    if (r !== WantRead && r !== WantWrite) return r as Exclude<T, typeof WantRead>;
    const left = end - Date.now();
    if (left <= 0) throw new Error(`no ${what} within ${ms} ms`);
    const d = await link.net.next(Math.max(1, Math.min(link.buf.nextTimeout() ?? 500, left)));
    if (d) {
      link.received.push(d.msg);
      link.buf.receiveFromNetwork(d.msg);
    }
  }
}

/** What the device reads next (one datagram of application data). */
async function recv(link: Link): Promise<string> {
  const r = await drive(link, () => link.buf.read(), "datagram");
  return text(r as Uint8Array);
}

/**
 * The handshake messages of an OpenSSL peer's -msg trace, ">>>" sent and
 * "<<<" received (OpenSSL 3.0 does not name DTLS's messages, it dumps them:
 * a DTLS handshake header of 12 bytes, then the body).
 */
function handshakeTrace(out: string): { sent: boolean; type: number; body: Uint8Array }[] {
  const msgs = [...out.matchAll(/^(>>>|<<<) [^\n]*content_type=22\) \[length [0-9a-f]+\]\n((?:[ \t]+[0-9a-f ]+\n)+)/gm)];
  return msgs.map((m) => {
    const bytes = Uint8Array.from(Buffer.from((m[2] as string).replace(/\s+/g, ""), "hex"));
    return { sent: m[1] === ">>>", type: bytes[0] as number, body: bytes.subarray(12) };
  });
}

/** The cookie of a HelloVerifyRequest's body (server_version, cookie<0..2^8-1>). */
const hvrCookie = (body: Uint8Array) => body.subarray(3, 3 + (body[2] as number));
/** The cookie of a ClientHello's body (after client_version, random and session_id). */
function helloCookie(body: Uint8Array): Uint8Array {
  const at = 2 + 32 + 1 + (body[34] as number);
  return body.subarray(at + 1, at + 1 + (body[at] as number));
}

/**
 * The cookie exchange seen by an OpenSSL peer: the client's first
 * ClientHello has no cookie, the next one the HelloVerifyRequest's `cookie`
 * (from the trace when the peer is the client, else what the device got).
 */
function expectCookieExchange(out: string, peerIsServer: boolean, cookie?: Uint8Array): void {
  const trace = handshakeTrace(out);
  const hellos = trace.filter((m) => m.type === 1 && m.sent !== peerIsServer).map((m) => helloCookie(m.body));
  const hvr = trace.find((m) => m.type === 3 && m.sent === peerIsServer);
  const expected = cookie ?? (hvr ? hvrCookie(hvr.body) : undefined);
  expect(expected, "a HelloVerifyRequest's cookie").toBeDefined();
  expect((expected as Uint8Array).length).toBeGreaterThan(0);
  expect(hellos.slice(0, 2)).toEqual([new Uint8Array(0), expected]);
}

/** The peer's transport id the device's cookie is bound to. */
const transportId = (from: RemoteInfo) => utf8(`${from.address}:${from.port}`);

/** A device client over a new socket to the loopback's `port`, its handshake done. */
async function clientTo(ctx: DTLSContext, port: number, hostname: string | null): Promise<Link> {
  const link: Link = { buf: ctx.wrapBuffers(hostname), net: await udp(), to: { address: "127.0.0.1", port }, received: [] };
  expect(await drive(link, () => link.buf.doHandshake(), "handshake")).toBe("done");
  return link;
}

/**
 * A device server's session for the first ClientHello that reaches `net`:
 * answered with a HelloVerifyRequest (checked), then the handshake of the
 * ClientHello that carries the cookie; how many HelloVerifyRequests went out.
 */
async function serverFor(ctx: DTLSContext, net: Udp): Promise<{ link: Link; hvr: number }> {
  const first = await net.next(20_000);
  if (!first) throw new Error("no ClientHello");
  const link: Link = { buf: ctx.wrapBuffers(), net, to: { address: first.from.address, port: first.from.port }, received: [first.msg] };
  try {
    await link.buf.setCookieParam(transportId(first.from));
    link.buf.receiveFromNetwork(first.msg);
    const r = await link.buf.doHandshake();
    expect(r).toBe(HelloVerifyRequest);
    expect(link.buf.outgoingCount).toBe(1);
    await flush(link);
    for (let hvr = 1; ; hvr++) {
      await link.buf.setCookieParam(transportId(first.from)); // the device reset the session
      const done = await drive(link, () => link.buf.doHandshake(), "handshake");
      if (done === "done") return { link, hvr }; // else a retransmitted ClientHello without the cookie
    }
  } catch (e) {
    await link.buf.close();
    throw e;
  }
}

async function closeLink(link: Link | undefined): Promise<void> {
  if (!link) return;
  link.net.close();
  await link.buf.close();
}

beforeAll(async () => {
  dev = session.dev;
  makePki(o.dir); // root -> inter -> server (DNS:device.example), client (clientAuth), ...
  root = await dev.x509.CRT.fromPEM(readFileSync(o.path("root.crt"), "utf8"));
  inter = await dev.x509.CRT.fromPEM(readFileSync(o.path("inter.crt"), "utf8"));
  trust = new dev.dtls.TrustStore();
  await trust.add(root);
  ({ key: deviceKey, leaf: deviceLeaf } = await deviceServerLeaf(dev, o));
}, 120_000);

afterAll(async () => {
  stopPeers();
  for (const x of [deviceLeaf, deviceKey, trust, inter, root]) await x?.close();
  o.remove();
});

/** `s_server -dtls1_2 -listen` on a free port, waiting for datagrams. */
async function sServer(args: string[]): Promise<{ port: number; peer: Peer }> {
  const port = await freePort();
  const peer = o.spawn(["s_server", "-dtls1_2", "-listen", "-accept", String(port), ...args]);
  await peer.waitFor("ACCEPT");
  return { port, peer };
}

/** Application data both ways: the device's datagram shows on the peer's output, the peer's line arrives as one datagram. */
async function dataBothWays(link: Link, peer: Peer, label: string): Promise<void> {
  const toPeer = `device to openssl ${label} ${Date.now()}\n`;
  expect(await link.buf.write(utf8(toPeer))).toBe(toPeer.length);
  await flush(link);
  await peer.waitFor(toPeer);
  const toDevice = `openssl to device ${label} ${Date.now()}\n`;
  peer.proc.stdin.write(toDevice);
  expect(await recv(link)).toBe(toDevice);
}

/**
 * A device client of `options` to a new `s_server -dtls1_2 -listen` with
 * `args`: `body` gets the session once its handshake is done; all is freed
 * after.
 */
async function againstSServer(
  args: string[],
  options: DTLSConfigurationOptions,
  hostname: string | null,
  body: (link: Link, peer: Peer) => Promise<void>,
): Promise<void> {
  const s = await sServer(args);
  const ctx = dev.dtls.ClientContext(new dev.dtls.DTLSConfiguration(options));
  let link: Link | undefined;
  try {
    link = await clientTo(ctx, s.port, hostname);
    await body(link, s.peer);
  } finally {
    s.peer.stop();
    await closeLink(link);
    await ctx.close();
  }
}

/**
 * A device server of `options` on a new socket and an `s_client -dtls1_2
 * -msg` with `args` to it: `body` gets serverFor()'s session (or its
 * failure); all is freed after.
 */
async function againstSClient(
  options: DTLSConfigurationOptions,
  args: string[],
  body: (served: Promise<{ link: Link; hvr: number }>, peer: Peer) => Promise<void>,
): Promise<void> {
  const ctx = dev.dtls.ServerContext(new dev.dtls.DTLSConfiguration(options));
  const net = await udp();
  const peer = o.spawn(["s_client", "-dtls1_2", "-connect", `127.0.0.1:${net.port}`, "-msg", ...args]);
  const served = serverFor(ctx, net);
  served.catch(() => {});
  try {
    await body(served, peer);
  } finally {
    peer.stop();
    await closeLink(await served.then((x) => x.link).catch(() => undefined));
    net.close();
    await ctx.close();
  }
}

describe("device client against openssl s_server -dtls1_2 -listen", () => {
  it.each(PSK_SUITES)(
    "PSK with %s: through OpenSSL's HelloVerifyRequest, data both ways, close_notify",
    async (suite, id) => {
      const args = ["-nocert", "-psk", PSK_HEX, "-psk_identity", PSK_ID, "-cipher", suite, "-msg"];
      await againstSServer(args, { preSharedKey: [PSK_ID, PSK], ciphers: [id], validateCertificates: false }, null, async (link, peer) => {
        // -listen's cookie exchange, which Mbed TLS's client went through: the first datagram it got is a handshake
        // record (22) holding a HelloVerifyRequest (3); OpenSSL's trace has only its record header.
        const hvr = link.received[0] as Uint8Array;
        expect([hvr[0], hvr[13]]).toEqual([22, 3]);
        expectCookieExchange(peer.out(), true, hvrCookie(hvr.subarray(13 + 12)));
        expect(link.buf.cipher()?.[1]).toBe(id);
        expect(link.buf.negotiatedTlsVersion()).toBe("DTLSv1.2");
        expect(await link.buf.info()).toMatchObject({ established: true, transport: "datagram", fatal: 0 });
        await dataBothWays(link, peer, suite);
        await link.buf.shutdown();
        await flush(link);
        await peer.waitFor("shutting down SSL");
        expect(await recv(link)).toBe(""); // s_server's close_notify back: the session is closed
      });
    },
    HANDSHAKE_MS * 2,
  );

  it(
    "ECDHE-ECDSA: verifies makePki's chain against the root with the host name set, data both ways",
    async () => {
      await againstSServer(
        [...SERVER_CHAIN_ARGS],
        { trustStore: trust, validateCertificates: true },
        "device.example",
        async (link, peer) => {
          expect((await link.buf.info()).verifyBits).toBe(0);
          expect(link.buf.cipher()?.[0]).toMatch(/^TLS-ECDHE-ECDSA-WITH-/);
          expect(link.buf.peerCertificate()).toEqual(derOf("server.crt"));
          await dataBothWays(link, peer, "ecdsa");
        },
      );
    },
    HANDSHAKE_MS * 2,
  );
});

describe("device server against openssl s_client -dtls1_2", () => {
  it.each(PSK_SUITES)(
    "PSK with %s: the first ClientHello gets a HelloVerifyRequest, the second completes; data both ways",
    async (suite, id) => {
      const args = ["-psk", PSK_HEX, "-psk_identity", PSK_ID, "-cipher", suite];
      await againstSClient({ preSharedKey: [PSK_ID, PSK], ciphers: [id] }, args, async (served, peer) => {
        const { link, hvr } = await served;
        console.log(`[dtls-openssl ${TARGET}] ${suite}: ${hvr} HelloVerifyRequest(s) before the handshake`);
        expectCookieExchange(peer.out(), false);
        expect(link.buf.cipher()?.[1]).toBe(id);
        await dataBothWays(link, peer, `server ${suite}`);
      });
    },
    HANDSHAKE_MS * 2,
  );

  it(
    "ECDHE-ECDSA, mutual: the device's non-exportable key signs, s_client's chain verifies against the root",
    async () => {
      const options = { certificateChain: [[deviceLeaf, inter], deviceKey], trustStore: trust, validateCertificates: true } as const;
      const args = [
        ...["-CAfile", "root.crt", "-verify_return_error", "-servername", "device.example"],
        ...["-cert", "client.crt", "-key", "client.key", "-cert_chain", "inter.crt"],
      ];
      await againstSClient(options, args, async (served, peer) => {
        const { link } = await served;
        await peer.waitFor("Verify return code: 0 (ok)");
        expect((await link.buf.info()).verifyBits).toBe(0);
        expect(link.buf.peerCertificate()).toEqual(derOf("client.crt"));
        expect(link.buf.cipher()?.[0]).toMatch(/^TLS-ECDHE-ECDSA-WITH-/);
        await dataBothWays(link, peer, "server ecdsa");
      });
    },
    HANDSHAKE_MS * 2,
  );

  it(
    "a PSK mismatch fails the handshake with Mbed TLS's MBEDTLS_ERR_SSL_INVALID_MAC, typed; the device keeps serving",
    async () => {
      const wrong = ["-psk", "ffeeddccbbaa99887766554433221100", "-psk_identity", PSK_ID, "-cipher", "PSK-AES128-GCM-SHA256"];
      await againstSClient({ preSharedKey: [PSK_ID, PSK] }, wrong, async (served) => {
        const err = await served.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(TLSHandshakeError);
        expect((err as TLSHandshakeError).mbedtlsCode).toBe(-0x7180);
        expect((await dev.stats()).tlsSessions).toBe(0); // the failed session is freed, the device answers
      });
    },
    HANDSHAKE_MS * 2,
  );
});

describe("configuration", () => {
  it("TLS 1.3 on a DTLS configuration: the device refuses it (Mbed TLS 3.6 has no DTLS 1.3)", async () => {
    const ctx = dev.dtls.ClientContext(new dev.dtls.DTLSConfiguration({ preSharedKey: [PSK_ID, PSK], highestSupportedVersion: "TLSv1.3" }));
    await expect(ctx.ready).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
    await ctx.close().catch(() => {});
  });
});
