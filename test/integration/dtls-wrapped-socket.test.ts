// DTLSWrappedSocket (python-mbedtls's DTLS socket shape) against OpenSSL
// over loopback UDP, native and QEMU: a device server that wraps a dgram
// socket, accept()s `openssl s_client -dtls1_2`, meets HelloVerifyRequest
// (thrown, a CryptoError with Mbed TLS's -0x6a80), accept()s again on the
// connection and completes; a device client to `openssl s_server -dtls1_2
// -listen` whose first ClientHello a relay drops, so only the device
// timer's retransmission gets the handshake through (nextTimeout() armed,
// the drop counted). Whole datagrams both ways, recv(bufsize) splitting
// one as mbedtls_ssl_read() does, and the misuses typed.
import { createSocket } from "node:dgram";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUdpRelay } from "../../hil/udp-relay.js";
import { ArgumentError, CryptoError, type Device, HelloVerifyRequest, TimeoutError } from "../../host/src/index.js";
import { useSession } from "./session.js";
import { SLOW_LINK, TARGET } from "./target.js";
import { freePort, opensslDir, stopPeers, text, utf8 } from "./tls-peers.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const o = opensslDir("dtls-wrapped-socket-");

const PSK_HEX = "5ca1ab1e00112233445566778899aabb";
const PSK_ID = "sensor-9";
const PSK_OPTIONS = { preSharedKey: [PSK_ID, Uint8Array.from(Buffer.from(PSK_HEX, "hex"))] as const, validateCertificates: false };
const OPENSSL_PSK = ["-psk", PSK_HEX, "-psk_identity", PSK_ID, "-cipher", "PSK-AES128-CCM8"];
const HS_MIN = SLOW_LINK ? 4000 : 500;
const TEST_MS = SLOW_LINK ? 180_000 : 30_000;
/** MBEDTLS_ERR_SSL_HELLO_VERIFY_REQUIRED. */
const HELLO_VERIFY_REQUIRED = -0x6a80;

beforeAll(() => {
  dev = session.dev;
});
afterAll(() => {
  stopPeers();
  o.remove();
});

describe(`DTLSWrappedSocket (${TARGET})`, () => {
  it(
    "a device server accepts openssl s_client -dtls1_2: HelloVerifyRequest thrown, conn.accept(), handshake, whole datagrams both ways",
    async () => {
      await using ctx = dev.dtls.ServerContext(new dev.dtls.DTLSConfiguration({ ...PSK_OPTIONS, handshakeTimeoutMin: HS_MIN }));
      const srv = ctx.wrapSocket(createSocket("udp4"));
      try {
        const { port } = await srv.bind(0, "127.0.0.1");
        expect(() => srv.setCookieParam(utf8("x"))).toThrow(ArgumentError); // the bound socket runs no session
        const peer = o.spawn(["s_client", "-dtls1_2", "-connect", `127.0.0.1:${port}`, ...OPENSSL_PSK]);

        let [conn, addr] = await srv.accept(TEST_MS);
        expect(addr).toMatchObject({ address: "127.0.0.1" });
        expect(conn.remoteAddress).toEqual(addr);
        await expect(conn.accept()).rejects.toThrow(ArgumentError); // not after a HelloVerifyRequest
        await conn.setCookieParam(utf8(`${addr.address}:${addr.port}`));
        const hvr = await conn.doHandshake(TEST_MS).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(hvr).toBeInstanceOf(HelloVerifyRequest);
        expect(hvr).toBeInstanceOf(CryptoError);
        expect((hvr as CryptoError).mbedtlsCode).toBe(HELLO_VERIFY_REQUIRED);

        const first = conn;
        [conn, addr] = await conn.accept(TEST_MS);
        expect(conn).not.toBe(first);
        expect(first.buffer).toBeUndefined(); // handed on
        await conn.setCookieParam(utf8(`${addr.address}:${addr.port}`));
        await conn.doHandshake(TEST_MS);
        await peer.waitFor("Cipher is PSK-AES128-CCM8", TEST_MS);
        expect(conn.buffer?.negotiatedTlsVersion()).toBe("DTLSv1.2");

        peer.proc.stdin.write("hello datagram\n"); // one line, one record
        expect(text(await conn.recv(5, TEST_MS))).toBe("hello"); // the rest at the next recv, as mbedtls_ssl_read
        expect(text(await conn.recv(4096, TEST_MS))).toBe(" datagram\n");
        expect(await conn.send(utf8("echo from the device\n"))).toBe(21);
        await peer.waitFor("echo from the device", TEST_MS);
        await conn.close();
        await peer.waitFor(/\nclosed\n/, TEST_MS); // s_client's words for the close_notify it got
        await expect(conn.recv()).rejects.toThrow(ArgumentError);
      } finally {
        await srv.close();
      }
    },
    TEST_MS * 2,
  );

  it(
    "a device client to openssl s_server -dtls1_2 -listen gets through a lost ClientHello by the device timer's retransmission",
    async () => {
      const serverPort = await freePort();
      const peer = o.spawn(["s_server", "-dtls1_2", "-listen", "-accept", String(serverPort), "-nocert", ...OPENSSL_PSK]);
      await peer.waitFor("ACCEPT");
      const relay = await startUdpRelay({ server: { port: serverPort }, seed: 18 });
      await using ctx = dev.dtls.ClientContext(new dev.dtls.DTLSConfiguration({ ...PSK_OPTIONS, handshakeTimeoutMin: HS_MIN }));
      const cli = ctx.wrapSocket(createSocket("udp4"), null);
      try {
        await expect(cli.accept()).rejects.toThrow(ArgumentError); // a client connect()s
        const dropped = relay.dropNext("up", 1); // the first ClientHello
        await cli.connect(relay.port, relay.host);
        await cli.doHandshake(TEST_MS);
        expect((await dropped).length).toBeGreaterThan(0);
        expect(relay.stats().up.targeted).toBe(1);
        expect(cli.buffer?.cipher()?.[0]).toBe("TLS-PSK-WITH-AES-128-CCM-8");

        expect(await cli.send(utf8("ping from the device\n"))).toBe(21);
        await peer.waitFor("ping from the device", TEST_MS);
        peer.proc.stdin.write("pong from openssl\n");
        expect(text(await cli.recv(4096, TEST_MS))).toBe("pong from openssl\n");
        await expect(cli.recv(4096, 300)).rejects.toThrow(TimeoutError); // nothing more came
      } finally {
        await cli.close();
        await relay.stop();
        peer.stop();
      }
    },
    TEST_MS * 2,
  );
});
