// TLS on the device against OpenSSL (issue 17, first slice), TLS 1.2 and
// 1.3: the device's client talks to `openssl s_server` serving a chain an OpenSSL PKI
// made (root, intermediate, leaf), verifies it against a trust store with the
// root alone and the host name set, and moves application data both ways;
// the device's server (a non-exportable key made on the device, certified by
// the OpenSSL intermediate) answers `openssl s_client
// -verify_return_error -CAfile root`; ALPN and a pre-shared key (s_server
// -psk -nocert) are agreed on. A host name the certificate does not
// carry and a trust store without its root fail the handshake with
// TLSCertificateError naming the flag; the device keeps serving; the heap is
// back at its baseline once every session, context and object is freed.
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ArgumentError,
  type CRT,
  type Device,
  type ECC,
  TLSCertificateError,
  type TLSContext,
  type TrustStore,
} from "../../host/src/index.js";
import { requireTool } from "../../tools/programs.js";
import { useSession } from "./session.js";
import { TARGET } from "./target.js";
import {
  connectTo,
  deviceServerLeaf,
  freePort,
  type Peer,
  recvUntil,
  SERVER_CHAIN_ARGS,
  spawnPeer,
  stopPeers,
  text,
  utf8,
} from "./tls-peers.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const dir = mkdtempSync(join(tmpdir(), "tls-interop-"));
const path = (f: string) => join(dir, f);
const openssl = requireTool("openssl");
const ossl = (args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }).toString();

const spawnOpenssl = (args: string[]): Peer => spawnPeer(openssl, args, dir);
const derOf = (pemFile: string) => new Uint8Array(new X509Certificate(readFileSync(path(pemFile))).raw);

/** The versions each direction runs, with OpenSSL's flag for them. */
const VERSIONS = [
  ["TLSv1.2", "-tls1_2"],
  ["TLSv1.3", "-tls1_3"],
] as const;
type Version = (typeof VERSIONS)[number][0];
/** One s_server per version, serving connections one after another. */
const sServers = new Map<Version, { port: number; peer: Peer }>();
/** An s_server with a pre-shared key and no certificate. */
let pskPort = 0;
let pskPeer: Peer;
const PSK_HEX = "00112233445566778899aabbccddeeff";
/** An s_server whose leaf expired in 2021. */
let expiredPort = 0;
const sServer = (v: Version) => sServers.get(v) as { port: number; peer: Peer };
let root: CRT;
let other: CRT;
let inter: CRT;
let trust: TrustStore;
let wrongTrust: TrustStore;
let client: TLSContext;

beforeAll(async () => {
  dev = session.dev;
  makePki(dir); // root -> inter -> server (DNS:device.example), another root, an expired leaf, ...
  root = await dev.x509.CRT.fromPEM(readFileSync(path("root.crt"), "utf8"));
  other = await dev.x509.CRT.fromPEM(readFileSync(path("other.crt"), "utf8"));
  inter = await dev.x509.CRT.fromPEM(readFileSync(path("inter.crt"), "utf8"));
  trust = new dev.tls.TrustStore();
  await trust.add(root);
  wrongTrust = new dev.tls.TrustStore();
  await wrongTrust.add(other);
  client = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust, validateCertificates: true }));
  await client.ready;
  // Default record sizes (16 KiB), which the device's input buffer takes.
  for (const [v, flag] of VERSIONS) {
    const port = await freePort();
    const peer = spawnOpenssl(["s_server", flag, "-accept", String(port), "-alpn", "h2,http/1.1", ...SERVER_CHAIN_ARGS, "-naccept", "100"]);
    await peer.waitFor("ACCEPT");
    sServers.set(v, { port, peer });
  }
  pskPort = await freePort();
  pskPeer = spawnOpenssl(["s_server", "-tls1_2", "-accept", String(pskPort), "-nocert", "-psk", PSK_HEX, "-psk_identity", "device-1"]);
  await pskPeer.waitFor("ACCEPT");
  expiredPort = await freePort();
  const expired = spawnOpenssl([
    "s_server",
    "-accept",
    String(expiredPort),
    "-cert",
    "expired.crt",
    "-key",
    "expired.key",
    "-cert_chain",
    "inter.crt",
  ]);
  await expired.waitFor("ACCEPT");
}, 120_000);

afterAll(async () => {
  stopPeers();
  for (const o of [client, wrongTrust, trust, inter, other, root]) await o?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("device client against openssl s_server", () => {
  it.each(VERSIONS)(
    "%s: verifies the chain against the root with the host name set, and moves application data both ways",
    async (version) => {
      const { port, peer } = sServer(version);
      const s0 = await dev.stats();
      const sock = await connectTo(port);
      const tls = client.wrapSocket(sock, "device.example");
      try {
        await tls.doHandshake();
        const s1 = await dev.stats();
        console.log(
          `[tls-interop ${TARGET}] an established ${version} client session keeps ${s1.heapUsed - s0.heapUsed} B of heap ` +
            `(rings ${(await tls.buffer.info()).ring} B each); heap peak ${s1.heapPeak} B of ${s1.heapSize} B since boot (was ${s0.heapPeak} B before the handshake)`,
        );
        const info = await tls.buffer.info();
        expect(info.established).toBe(true);
        expect(tls.buffer.negotiatedTlsVersion()).toBe(version);
        expect(info.verifyBits).toBe(0);
        expect(tls.buffer.peerCertificate()).toEqual(derOf("server.crt"));
        const toServer = `device to openssl ${Date.now()}\n`;
        await tls.send(utf8(toServer));
        await peer.waitFor(toServer);
        const toDevice = `openssl to device ${Date.now()}\n`;
        peer.proc.stdin.write(toDevice);
        expect(await recvUntil(tls, toDevice)).toBe(toDevice);
        await tls.shutdown();
      } finally {
        await tls.close();
      }
    },
  );

  it("fails a host name the certificate does not carry, naming cnMismatch", async () => {
    const tls = client.wrapSocket(await connectTo(sServer("TLSv1.2").port), "other.example");
    try {
      const err = await tls.doHandshake().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TLSCertificateError);
      expect((err as TLSCertificateError).flags).toEqual(["cnMismatch"]);
      expect((err as TLSCertificateError).mbedtlsCode).toBe(-0x2700);
    } finally {
      await tls.close();
    }
  });

  it("fails a trust store without the chain's root, naming notTrusted, and keeps serving", async () => {
    const ctx = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: wrongTrust }));
    const tls = ctx.wrapSocket(await connectTo(sServer("TLSv1.3").port), "device.example");
    try {
      const err = await tls.doHandshake().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TLSCertificateError);
      expect((err as TLSCertificateError).flags).toContain("notTrusted");
    } finally {
      await tls.close();
      await ctx.close();
    }
    expect(text(await dev.echo(utf8("still here")))).toBe("still here");
  });

  it("agrees on ALPN with the server's list (-alpn)", async () => {
    const ctx = dev.tls.ClientContext(client.configuration.update({ innerProtocols: ["spdy/1", "http/1.1"] }));
    const tls = ctx.wrapSocket(await connectTo(sServer("TLSv1.3").port), "device.example");
    try {
      await tls.doHandshake();
      expect(tls.buffer.negotiatedProtocol()).toBe("http/1.1");
      await tls.shutdown();
    } finally {
      await tls.close();
      await ctx.close();
    }
  });

  it("uses a pre-shared key against s_server -psk -nocert, data both ways", async () => {
    const ctx = dev.tls.ClientContext(
      new dev.tls.TLSConfiguration({ preSharedKey: ["device-1", Buffer.from(PSK_HEX, "hex")], validateCertificates: false }),
    );
    const tls = ctx.wrapSocket(await connectTo(pskPort), null);
    try {
      await tls.doHandshake();
      expect(tls.buffer.cipher()?.[0]).toContain("PSK");
      const toServer = `psk device to openssl ${Date.now()}\n`;
      await tls.send(utf8(toServer));
      await pskPeer.waitFor(toServer);
      await tls.shutdown();
    } finally {
      await tls.close();
      await ctx.close();
    }
  });

  it("fails an expired certificate, naming expired", async () => {
    const tls = client.wrapSocket(await connectTo(expiredPort), "device.example");
    try {
      const err = await tls.doHandshake().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TLSCertificateError);
      expect((err as TLSCertificateError).flags).toEqual(["expired"]);
    } finally {
      await tls.close();
    }
  });

  it("asks for the server's host name when it verifies (CVE-2025-27809)", () => {
    expect(() => client.wrapBuffers()).toThrow(ArgumentError);
  });
});

describe("device server against openssl s_client", () => {
  let key: ECC;
  let leaf: CRT;
  let server: TLSContext;
  let listener: Server;

  beforeAll(async () => {
    ({ key, leaf } = await deviceServerLeaf(dev, { run: ossl, path }));
    server = dev.tls.ServerContext(new dev.tls.TLSConfiguration({ certificateChain: [[leaf, inter], key] }));
    await server.ready;
    listener = createServer();
    await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
  }, 120_000);

  afterAll(async () => {
    if (listener) await new Promise<void>((r) => listener.close(() => r()));
    for (const o of [server, leaf, key]) await o?.close();
  });

  it.each(VERSIONS)(
    "%s: serves its chain with the non-exportable key; OpenSSL verifies it and data goes both ways",
    async (version, flag) => {
      const port = (listener.address() as { port: number }).port;
      const accepted = new Promise<Socket>((r) => listener.once("connection", r));
      const sClient = spawnOpenssl(
        ["s_client", flag, "-connect", `127.0.0.1:${port}`, "-servername", "device.example"].concat([
          "-verify_return_error",
          "-verify_hostname",
          "device.example",
          "-CAfile",
          "root.crt",
        ]),
      );
      const s0 = await dev.stats();
      const tls = server.wrapSocket(await accepted);
      try {
        await tls.doHandshake();
        const s1 = await dev.stats();
        console.log(`[tls-interop ${TARGET}] an established ${version} server session keeps ${s1.heapUsed - s0.heapUsed} B of heap`);
        await sClient.waitFor("Verify return code: 0 (ok)");
        expect(tls.buffer.negotiatedTlsVersion()).toBe(version);
        const toDevice = `openssl client to device ${Date.now()}\n`;
        sClient.proc.stdin.write(toDevice);
        expect(await recvUntil(tls, toDevice)).toBe(toDevice);
        const toClient = `device server to openssl ${Date.now()}\n`;
        await tls.send(utf8(toClient));
        await sClient.waitFor(toClient);
        await tls.shutdown();
      } finally {
        sClient.stop();
        await tls.close();
      }
    },
  );
});
