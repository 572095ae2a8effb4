// The third-party DTLS peers of test/integration/dtls-peers.ts against
// their own kind on the loopback, no device: each program is installed (or
// built) and does DTLS 1.2 as the device tests expect, and each check bites
// (a wrong trust anchor or key fails). GnuTLS with makePki's certificates,
// libcoap on OpenSSL serving libcoap on GnuTLS over coaps with a PSK, and
// Mbed TLS's ssl_client2 and ssl_server2 negotiating a Connection ID each.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  COAP_SERVER_INDEX,
  coapClient,
  coapServer,
  GNUTLS_HANDSHAKE_DONE,
  gnutlsClient,
  gnutlsServer,
  MBEDTLS_PROTOCOL_LINE,
  mbedtlsPrograms,
  reportedPeerCid,
  sslClient2,
  sslServer2,
} from "./integration/dtls-peers.js";
import { stopPeers } from "./integration/tls-peers.js";
import { makePki, type Pki } from "./integration/x509-verify-pki.js";

let dir: string;
let pki: Pki;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mbedlink-dtls-peers-"));
  pki = makePki(dir);
  writeFileSync(join(dir, "chain.crt"), [pki.server, pki.inter].map((f) => readFileSync(f, "utf8")).join(""));
});
afterAll(() => {
  stopPeers();
  rmSync(dir, { recursive: true, force: true });
});

describe("GnuTLS over UDP", () => {
  it("gnutls-cli verifies gnutls-serv's chain, shakes hands in DTLS 1.2 and gets its line echoed", async () => {
    const { peer: server, port } = await gnutlsServer({ dir, certFile: "chain.crt", keyFile: "server.key" });
    const client = gnutlsClient({ dir, port, caFile: pki.root });
    await client.waitFor(GNUTLS_HANDSHAKE_DONE);
    expect(client.out()).toContain("- Status: The certificate is trusted.");
    expect(client.out()).toMatch(/- Description: \(DTLS1\.2-X\.509\)/);
    client.proc.stdin.write("hello over dtls\n");
    await client.waitFor(/^hello over dtls$/m);
    await server.waitFor("*** Processing 16 bytes command: hello over dtls");
    client.proc.stdin.end();
    expect(await client.exited()).toBe(0);
    server.stop();
  });

  it("with another root as trust anchor gnutls-cli refuses the chain", async () => {
    const { peer: server, port } = await gnutlsServer({ dir, certFile: "chain.crt", keyFile: "server.key" });
    const client = gnutlsClient({ dir, port, caFile: pki.otherRoot });
    expect(await client.exited()).not.toBe(0);
    expect(client.out()).toContain("The certificate is NOT trusted");
    expect(client.out()).not.toContain(GNUTLS_HANDSHAKE_DONE);
    server.stop();
  });
});

describe("libcoap over coaps with a PSK", () => {
  const key = "dtls-peers-psk-1";
  it("coap-client (GnuTLS) gets coap-server's (OpenSSL) index, PUTs a resource and gets it back", async () => {
    const { peer: server, port } = await coapServer({ dir, key, flavor: "openssl" });
    const get = coapClient({ dir, port, key, identity: "client-a", flavor: "gnutls" });
    expect(await get.exited()).toBe(0);
    expect(get.out()).toContain(COAP_SERVER_INDEX);
    const put = coapClient({ dir, port, key, identity: "client-a", method: "put", path: "dtls-test", payload: "payload over coaps" });
    expect(await put.exited()).toBe(0);
    const back = coapClient({ dir, port, key, identity: "client-a", path: "dtls-test" });
    expect(await back.exited()).toBe(0);
    expect(back.out().trim()).toBe("payload over coaps");
    // the server saw DTLS sessions with that identity
    expect(server.out()).toContain("got psk_identity: 'client-a'");
    expect(server.out()).toContain("DTLS: session connected");
    server.stop();
  });

  it("with the wrong key no request gets through", async () => {
    const { peer: server, port } = await coapServer({ dir, key, flavor: "openssl" });
    const get = coapClient({ dir, port, key: "not-the-key", identity: "client-a", flavor: "gnutls", waitSeconds: 2 });
    await get.exited();
    expect(get.out()).not.toContain(COAP_SERVER_INDEX);
    expect(get.out()).toContain("cannot send CoAP pdu");
    server.stop();
  });
});

describe("Mbed TLS's ssl_client2 and ssl_server2 (built from the pinned tree)", () => {
  const psk = { psk: "000102030405060708090a0b0c0d0e0f", psk_identity: "mbedlink", force_ciphersuite: "TLS-PSK-WITH-AES-128-GCM-SHA256" };
  beforeAll(() => {
    mbedtlsPrograms();
  }, 600_000);

  it("over DTLS with cid=1 each reports the Connection ID the other chose", async () => {
    const { peer: server, port } = await sslServer2({ ...psk, cid: 1, cid_val: "5e4f01" }, dir);
    const client = sslClient2(port, { ...psk, cid: 1, cid_val: "c1c2c3c4" }, dir);
    expect(await client.exited()).toBe(0);
    expect(client.out()).toContain(MBEDTLS_PROTOCOL_LINE);
    expect(client.out()).toContain("(initial handshake) Use of Connection ID has been negotiated.");
    expect(reportedPeerCid(client.out())).toBe("5e4f01");
    expect(client.out()).toContain("Successful connection using: TLS-PSK-WITH-AES-128-GCM-SHA256");
    await server.waitFor("(initial handshake) Peer CID");
    expect(reportedPeerCid(server.out())).toBe("c1c2c3c4");
    // the cookie exchange happened first (ssl_server2's default)
    expect(server.out()).toContain("hello verification requested");
    server.stop();
  });

  it("a client without cid: the server reports none offered, the records carry none", async () => {
    const { peer: server, port } = await sslServer2({ ...psk, cid: 1, cid_val: "5e4f01" }, dir);
    const client = sslClient2(port, { ...psk, cid: 0 }, dir);
    expect(await client.exited()).toBe(0);
    expect(reportedPeerCid(client.out())).toBeUndefined();
    await server.waitFor("(initial handshake) Use of Connection ID was not offered by client.");
    expect(reportedPeerCid(server.out())).toBeNull();
    server.stop();
  });

  it("a client with another PSK fails the handshake", async () => {
    const { peer: server, port } = await sslServer2({ ...psk }, dir);
    const client = sslClient2(port, { ...psk, psk: "ff0102030405060708090a0b0c0d0e0f", hs_timeout: "100-400" }, dir);
    expect(await client.exited()).not.toBe(0);
    expect(client.out()).not.toContain(MBEDTLS_PROTOCOL_LINE);
    server.stop();
  });
});
