// TLS on the device against Node's own TLS (issue 17, slice 3), through the
// SDK's Duplex (TLSStream): the device's client against `tls.createServer`
// and the device's server (a non-exportable key made on the device,
// certified by the OpenSSL intermediate) against `tls.connect`, both with
// Node's default options (16 KiB records), pinned to TLS 1.2 and to TLS 1.3
// by the Node side; `https.request({ createConnection })` through the
// device to `https.createServer` with a 1 MiB body each way (QEMU: bulk()),
// checked by SHA-256 on the far side; backpressure both ways (a paused
// consumer leaves the peer's bytes in the kernel, a peer that does not read
// holds the writer), destroy() mid-stream frees the device session, and
// failures (a server gone mid-handshake, a certificate for another name)
// arrive as one 'error' and one 'close'.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest, createServer as httpsServer } from "node:https";
import { createServer as netServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { connect as nodeConnect, createServer as nodeTlsServer, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ConnectOptions,
  type CRT,
  type Device,
  type ECC,
  NotExportableError,
  TLSCertificateError,
  TLSConnectionError,
  type TLSContext,
  type TLSStream,
  type TrustStore,
} from "../../host/src/index.js";
import { requireTool } from "../../tools/programs.js";
import { useSession } from "./session.js";
import { bulk, TARGET } from "./target.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const dir = mkdtempSync(join(tmpdir(), "tls-node-"));
const path = (f: string) => join(dir, f);
const pem = (f: string) => readFileSync(path(f), "utf8");
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const VERSIONS = ["TLSv1.2", "TLSv1.3"] as const;
const HOST = "device.example";

let root: CRT;
let inter: CRT;
let trust: TrustStore;
let client: TLSContext;
/** Node's server credentials: the OpenSSL leaf with its intermediate. */
let nodeCreds: { key: string; cert: string };

beforeAll(async () => {
  dev = session.dev;
  makePki(dir);
  nodeCreds = { key: pem("server.key"), cert: pem("server.crt") + pem("inter.crt") };
  root = await dev.x509.CRT.fromPEM(pem("root.crt"));
  inter = await dev.x509.CRT.fromPEM(pem("inter.crt"));
  trust = new dev.tls.TrustStore();
  await trust.add(root);
  client = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust }));
  await client.ready;
}, 120_000);

afterAll(async () => {
  for (const o of [client, trust, inter, root]) await o?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Listens on the loopback; resolves with the port. */
async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as { port: number }).port;
}

const closeServer = (server: Server) => new Promise<void>((r) => server.close(() => r()));

/** Everything a readable gives until its end. */
async function readAll(s: Duplex): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Exactly `n` bytes from a readable (the rest stays in it). */
function readExactly(s: Duplex, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer) => {
      parts.push(c);
      got += c.length;
      if (got >= n) {
        s.off("data", onData);
        s.off("error", reject);
        s.pause();
        const all = Buffer.concat(parts);
        if (all.length > n) s.unshift(all.subarray(n));
        resolve(all.subarray(0, n));
      }
    };
    s.on("data", onData);
    s.once("error", reject);
  });
}

/** Resolves on the stream's 'close' (every stream of this file closes before the next: the STM32 holds one session). */
const closed = (s: Duplex) => (s.closed ? Promise.resolve() : once(s, "close").then(() => {}));

const connectDevice = (port: number, extra: Partial<ConnectOptions> = {}): TLSStream =>
  dev.tls.connect({ host: "127.0.0.1", port, servername: HOST, context: client, ...extra });

describe("device client against Node tls.createServer (default options)", () => {
  it.each(VERSIONS)("%s: verifies Node's chain, data both ways, version and cipher as Node sees them", async (version) => {
    const up = randomBytes(bulk(40_000, 6_000));
    const down = randomBytes(bulk(200_000, 40_000)); // Node writes it in 16 KiB records
    let nodeSide: { protocol: string | null; cipher: string } | undefined;
    const server = nodeTlsServer({ ...nodeCreds, minVersion: version, maxVersion: version }, (s) => {
      nodeSide = { protocol: s.getProtocol(), cipher: s.getCipher().standardName };
      void readExactly(s, up.length).then((got) => {
        expect(sha256(got)).toBe(sha256(up));
        s.end(down);
      });
    });
    const port = await listen(server);
    const tls = connectDevice(port);
    try {
      await once(tls, "secureConnect");
      expect(tls.getProtocol()).toBe(version);
      expect(tls.authorized).toBe(true);
      expect(tls.authorizationError).toBeUndefined();
      expect(tls.getPeerCertificate()?.raw).toEqual(new X509Certificate(pem("server.crt")).raw);
      expect(tls.getPeerCertificate()?.subject.CN).toBe(HOST);
      tls.write(up);
      const got = await readAll(tls);
      expect(got.length).toBe(down.length);
      expect(sha256(got)).toBe(sha256(down));
      expect(nodeSide?.protocol).toBe(version);
      expect(tls.getCipher()?.standardName).toBe(nodeSide?.cipher);
      expect(tls.getCipher()?.version).toBe(version);
    } finally {
      tls.destroy();
      await closed(tls);
      await closeServer(server);
    }
  });
});

describe("device server against Node tls.connect (default options)", () => {
  let key: ECC;
  let leaf: CRT;
  let serverCtx: TLSContext;
  let listener: Server;
  let port = 0;

  beforeAll(async () => {
    key = dev.pk.ECC("secp256r1");
    await key.generate({ exportable: false });
    const csr = await dev.x509.CSR.new(key, `CN=${HOST}`, "sha256");
    writeFileSync(path("device.csr.der"), csr.toDER());
    await csr.close();
    const openssl = requireTool("openssl");
    const ossl = (args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    ossl(["req", "-inform", "DER", "-in", "device.csr.der", "-out", "device.csr"]);
    ossl(
      ["x509", "-req", "-in", "device.csr", "-CA", "inter.crt", "-CAkey", "inter.key", "-CAcreateserial", "-days", "30"].concat([
        "-sha256",
        "-extfile",
        "ext.cnf",
        "-extensions",
        "server",
        "-out",
        "device.crt",
      ]),
    );
    leaf = await dev.x509.CRT.fromPEM(pem("device.crt"));
    serverCtx = dev.tls.ServerContext(new dev.tls.TLSConfiguration({ certificateChain: [[leaf, inter], key] }));
    await serverCtx.ready;
    listener = dev.tls.createServer(serverCtx);
    port = await listen(listener);
  }, 120_000);

  afterAll(async () => {
    if (listener) await closeServer(listener);
    for (const o of [serverCtx, leaf, key]) await o?.close();
  });

  it("the key stays on the device", async () => {
    await expect(key.exportKey("DER")).rejects.toBeInstanceOf(NotExportableError);
  });

  it.each(VERSIONS)("%s: Node verifies the device's chain against the root; data both ways", async (version) => {
    const up = randomBytes(bulk(100_000, 20_000));
    const down = randomBytes(bulk(60_000, 8_000));
    const accepted = once(listener, "secureConnection") as Promise<[TLSStream]>;
    const node = nodeConnect({ host: "127.0.0.1", port, servername: HOST, ca: pem("root.crt"), minVersion: version, maxVersion: version });
    let device: TLSStream | undefined;
    try {
      await once(node, "secureConnect");
      expect(node.authorized).toBe(true);
      expect(node.getProtocol()).toBe(version);
      expect(node.getPeerCertificate().raw).toEqual(new X509Certificate(pem("device.crt")).raw);
      [device] = await accepted;
      const d = device;
      expect(d.getProtocol()).toBe(version);
      expect(d.getCipher()?.standardName).toBe(node.getCipher().standardName);
      node.write(up);
      const got = await readExactly(d, up.length);
      expect(sha256(got)).toBe(sha256(up));
      d.resume(); // on to Node's close_notify
      d.end(down);
      const back = await readAll(node);
      expect(sha256(back)).toBe(sha256(down));
    } finally {
      node.destroy();
      if (device) await closed(device);
    }
  });
});

describe("https.request through the device to https.createServer", () => {
  it(`moves ${bulk(1 << 20, 64 << 10)} bytes each way intact (createConnection: dev.tls.connect)`, async () => {
    const size = bulk(1 << 20, 64 << 10);
    const requestBody = randomBytes(size);
    const responseBody = randomBytes(size);
    let uploaded = 0;
    const server = httpsServer(nodeCreds, (req, res) => {
      const h = createHash("sha256");
      req.on("data", (c: Buffer) => h.update(c));
      req.on("end", () => {
        uploaded = performance.now();
        res.writeHead(200, { "content-length": size, "x-request-sha256": h.digest("hex") });
        res.end(responseBody);
      });
    });
    const port = await listen(server);
    let stream: TLSStream | undefined;
    try {
      const t0 = performance.now();
      const res = await new Promise<import("node:http").IncomingMessage>((resolve, reject) => {
        const req = httpsRequest({
          method: "POST",
          host: "127.0.0.1",
          port,
          path: "/upload",
          headers: { "content-length": size },
          createConnection: () => {
            stream = connectDevice(port);
            return stream as unknown as Socket;
          },
        });
        req.on("response", resolve);
        req.on("error", reject);
        req.end(requestBody);
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers["x-request-sha256"]).toBe(sha256(requestBody));
      const got = await readAll(res as unknown as Duplex);
      const t1 = performance.now();
      expect(got.length).toBe(size);
      expect(sha256(got)).toBe(sha256(responseBody));
      const rate = (ms: number) => ((size / 1024 / ms) * 1000).toFixed(0);
      console.log(
        `[tls-node ${TARGET}] https through the device (${stream?.getProtocol()}, ${stream?.getCipher()?.name}): ${size} B up in ` +
          `${(uploaded - t0).toFixed(0)} ms (${rate(uploaded - t0)} KiB/s, handshake included), ${size} B down in ` +
          `${(t1 - uploaded).toFixed(0)} ms (${rate(t1 - uploaded)} KiB/s)`,
      );
    } finally {
      stream?.destroy();
      if (stream) await closed(stream);
      await closeServer(server);
    }
  });
});

describe("backpressure, destroy and errors", () => {
  it("a paused consumer: the device stops reading, the host buffers stay bounded, then everything arrives", async () => {
    const total = bulk(2 << 20, 96 << 10);
    const data = randomBytes(total);
    let nodeSide: TLSSocket | undefined;
    const server = nodeTlsServer(nodeCreds, (s) => {
      nodeSide = s;
      s.end(data);
    });
    const port = await listen(server);
    const tls = connectDevice(port);
    try {
      const parts: Buffer[] = [];
      const ended = new Promise<void>((resolve, reject) => {
        tls.on("end", resolve);
        tls.on("error", reject);
      });
      await new Promise<void>((resolve) =>
        tls.on("data", (c: Buffer) => {
          if (parts.push(c) === 1) tls.pause();
          resolve();
        }),
      );
      const seen: number[] = [];
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, bulk(200, 600)));
        expect(tls.isPaused()).toBe(true);
        seen.push(tls.readableLength + tls.socket.readableLength);
        // what our stream holds plus one read; what the socket holds plus one chunk of the kernel's
        expect(tls.readableLength).toBeLessThanOrEqual(tls.readableHighWaterMark + 16384);
        expect(tls.socket.readableLength).toBeLessThanOrEqual(tls.socket.readableHighWaterMark + 65536);
      }
      console.log(
        `[tls-node ${TARGET}] paused: host holds ${seen.join(", ")} B; Node still has ${nodeSide?.writableLength ?? 0} of ${total} B to send`,
      );
      tls.resume();
      await ended;
      expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
    } finally {
      tls.destroy();
      await closed(tls);
      await closeServer(server);
    }
  });

  it("a peer that does not read: write() asks for 'drain' and the socket's buffer stays bounded", async () => {
    const total = bulk(4 << 20, 96 << 10);
    const data = randomBytes(total);
    let nodeSide: TLSSocket | undefined;
    const server = nodeTlsServer(nodeCreds, (s) => {
      nodeSide = s;
      s.pause();
    });
    const port = await listen(server);
    const tls = connectDevice(port);
    try {
      await once(tls, "secureConnect");
      expect(tls.write(data)).toBe(false);
      let most = 0;
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, bulk(200, 600)));
        most = Math.max(most, tls.socket.writableLength);
        expect(tls.socket.writableLength).toBeLessThanOrEqual(64 * 1024);
      }
      console.log(`[tls-node ${TARGET}] peer not reading: ${tls.writableLength} B still with the stream, socket buffer at most ${most} B`);
      const node = nodeSide as TLSSocket;
      const got = readExactly(node, total);
      node.resume();
      expect(sha256(await got)).toBe(sha256(data));
    } finally {
      tls.destroy();
      await closed(tls);
      await closeServer(server);
    }
  });

  it("destroy() mid-stream frees the device session: heap and handles back at their baseline", async () => {
    const server = nodeTlsServer(nodeCreds, (s) => {
      s.on("error", () => {});
      s.end(randomBytes(bulk(1 << 20, 64 << 10)));
    });
    const port = await listen(server);
    const before = await dev.stats();
    const tls = dev.tls.connect({ host: "127.0.0.1", port, servername: HOST, trustStore: trust }); // a context of its own
    let closes = 0;
    tls.on("close", () => closes++);
    try {
      await once(tls, "data");
      tls.destroy();
      await closed(tls);
      const after = await dev.stats();
      expect(after.heapUsed).toBe(before.heapUsed);
      expect(after.handlesUsed).toBe(before.handlesUsed);
      await new Promise((r) => setTimeout(r, 50));
      expect(closes).toBe(1);
    } finally {
      await closeServer(server);
    }
  });

  it("a server that closes mid-handshake: one 'error' (TLSConnectionError), one 'close'", async () => {
    const server = netServer((s) => s.once("data", () => s.destroy()));
    const port = await listen(server);
    const tls = connectDevice(port);
    const events: string[] = [];
    tls.on("secureConnect", () => events.push("secureConnect"));
    tls.on("close", () => events.push("close"));
    tls.on("error", () => events.push("error"));
    try {
      const [err] = (await once(tls, "error")) as [Error];
      expect(err).toBeInstanceOf(TLSConnectionError);
      expect(err.message).toMatch(/handshake/);
      await closed(tls);
      await new Promise((r) => setTimeout(r, 50));
      expect(events).toEqual(["error", "close"]);
    } finally {
      await closeServer(server);
    }
  });

  it("a certificate for another name: 'error' with TLSCertificateError naming cnMismatch; the device keeps serving", async () => {
    const server = nodeTlsServer(nodeCreds, (s) => s.on("error", () => {}));
    server.on("tlsClientError", () => {});
    const port = await listen(server);
    const tls = connectDevice(port, { servername: "other.example" });
    try {
      const [err] = (await once(tls, "error")) as [TLSCertificateError];
      expect(err).toBeInstanceOf(TLSCertificateError);
      expect(err.flags).toEqual(["cnMismatch"]);
      await closed(tls);
    } finally {
      await closeServer(server);
    }
    expect(Buffer.from(await dev.echo(Buffer.from("still here"))).toString()).toBe("still here");
  });
});
