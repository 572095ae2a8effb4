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
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest, createServer as httpsServer } from "node:https";
import { createServer as netServer, type Server } from "node:net";
import { Duplex, type Readable } from "node:stream";
import { createSecureContext, connect as nodeConnect, createServer as nodeTlsServer, TLSSocket } from "node:tls";
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
import { useSession } from "./session.js";
import { bulk, TARGET } from "./target.js";
import { deviceServerLeaf, opensslDir, TLS_VERSIONS } from "./tls-peers.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const scratch = opensslDir("tls-node-");
const pem = (f: string) => readFileSync(scratch.path(f), "utf8");
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const VERSIONS = TLS_VERSIONS.map(([v]) => v);
const HOST = "device.example";

let root: CRT;
let inter: CRT;
let trust: TrustStore;
let client: TLSContext;
/** Node's server credentials: the OpenSSL leaf with its intermediate. */
let nodeCreds: { key: string; cert: string };

beforeAll(async () => {
  dev = session.dev;
  makePki(scratch.dir);
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
  scratch.remove();
});

/** Listens on the loopback; resolves with the port. */
async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as { port: number }).port;
}

const closeServer = (server: Server) => new Promise<void>((r) => server.close(() => r()));

/** Everything a readable gives until its end. */
async function readAll(s: Readable): Promise<Buffer> {
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

/**
 * Two ends of an in-memory connection with no kernel buffers between: a
 * write is acknowledged once the other end's readable buffer took it, held
 * while that buffer is full (its reader does not read) or while the writing
 * end is blocked (a peer whose window is shut).
 */
function memoryPair(): { ends: [Duplex, Duplex]; block(i: 0 | 1): void; unblock(i: 0 | 1): void } {
  const held: ((() => void) | undefined)[] = [undefined, undefined];
  const blocked = [false, false];
  const queued: [Buffer, () => void][][] = [[], []];
  const ends: Duplex[] = [];
  const deliver = (i: number, chunk: Buffer, cb: () => void) => {
    if ((ends[1 - i] as Duplex).push(chunk)) cb();
    else held[i] = cb;
  };
  for (const i of [0, 1]) {
    ends.push(
      new Duplex({
        read() {
          const cb = held[1 - i];
          held[1 - i] = undefined;
          cb?.();
        },
        write(chunk: Buffer, _enc, cb) {
          if (blocked[i]) queued[i]?.push([chunk, cb]);
          else deliver(i, chunk, cb);
        },
        final(cb) {
          (ends[1 - i] as Duplex).push(null);
          cb();
        },
      }),
    );
  }
  return {
    ends: ends as [Duplex, Duplex],
    block: (i) => {
      blocked[i] = true;
    },
    unblock: (i) => {
      blocked[i] = false;
      for (const [chunk, cb] of (queued[i] as [Buffer, () => void][]).splice(0)) deliver(i, chunk, cb);
    },
  };
}

/** Samples `value` until it stayed the same over four samples (checking each with `check`); its last value. */
async function steady(value: () => number, check: (v: number) => number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => setTimeout(r, bulk(100, 500)));
    samples.push(check(value()));
    const last = samples.slice(-4);
    if (last.length === 4 && last.every((v) => v === last[0])) return last[0] as number;
  }
  throw new Error(`never steady: ${samples.join(", ")}`);
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

describe("resumption against Node tls.createServer (connect({ session }))", () => {
  it.each(VERSIONS)("%s: the second connection resumes the first one's session; Node says so too", async (version) => {
    const ctx = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust, resumption: true }));
    const reused: boolean[] = [];
    const server = nodeTlsServer({ ...nodeCreds, minVersion: version, maxVersion: version }, (s) => {
      reused.push(s.isSessionReused());
      s.write("hello");
    });
    const port = await listen(server);
    try {
      const first = connectDevice(port, { context: ctx });
      expect(String((await once(first, "data"))[0])).toBe("hello"); // TLS 1.3: Node's tickets came before it
      expect(first.isSessionReused()).toBe(false);
      const saved = await first.session();
      first.end();
      await closed(first);
      const second = connectDevice(port, { context: ctx, session: saved });
      await once(second, "secureConnect");
      expect(second.isSessionReused()).toBe(true);
      expect(second.getProtocol()).toBe(version);
      expect(String((await once(second, "data"))[0])).toBe("hello");
      second.end();
      await closed(second);
      expect(reused).toEqual([false, true]);
    } finally {
      await closeServer(server);
      await ctx.close();
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
    ({ key, leaf } = await deviceServerLeaf(dev, scratch, HOST));
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

  // Node verifies the chain in JavaScript once OpenSSL's handshake is over and then destroys the socket, no alert sent.
  it("a client that does not trust the device's chain: the listener's 'tlsClientError', the device keeps serving", async () => {
    const failed = once(listener, "tlsClientError") as Promise<[Error, TLSStream]>;
    const node = nodeConnect({ host: "127.0.0.1", port, servername: HOST, ca: pem("other.crt") });
    node.on("error", () => {});
    const [err, stream] = await failed;
    expect(err).toBeInstanceOf(TLSConnectionError);
    expect(stream.secure).toBe(false);
    await closed(stream);
    node.destroy();
    expect(Buffer.from(await dev.echo(Buffer.from("still here"))).toString()).toBe("still here");
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
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = httpsRequest({
          method: "POST",
          host: "127.0.0.1",
          port,
          path: "/upload",
          headers: { "content-length": size },
          createConnection: () => {
            stream = connectDevice(port);
            return stream;
          },
        });
        req.on("response", resolve);
        req.on("error", reject);
        req.end(requestBody);
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers["x-request-sha256"]).toBe(sha256(requestBody));
      const got = await readAll(res);
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

/** An https.Agent keeping its connections alive, each one a device session. */
class DeviceAgent extends HttpsAgent {
  readonly made: TLSStream[] = [];
  constructor(readonly port: number) {
    super({ keepAlive: true, maxSockets: 1 });
  }
  override createConnection(): Duplex {
    const s = connectDevice(this.port);
    this.made.push(s);
    return s;
  }
}

describe("https.Agent with keepAlive over the device", () => {
  it("two requests over one device session, then agent.destroy() frees it", async () => {
    const bodies = [randomBytes(bulk(100_000, 10_000)), randomBytes(bulk(50_000, 5_000))];
    let served = 0;
    const server = httpsServer(nodeCreds, (_req, res) => {
      const b = bodies[served++] as Buffer;
      res.writeHead(200, { "content-length": b.length });
      res.end(b);
    });
    const port = await listen(server);
    const agent = new DeviceAgent(port);
    try {
      for (const b of bodies) {
        const res = await new Promise<IncomingMessage>((resolve, reject) =>
          httpsRequest({ host: "127.0.0.1", port, path: "/", agent }, resolve).on("error", reject).end(),
        );
        expect(res.statusCode).toBe(200);
        expect(sha256(await readAll(res))).toBe(sha256(b));
      }
      expect(agent.made.length).toBe(1);
    } finally {
      agent.destroy();
      for (const s of agent.made) await closed(s);
      await closeServer(server);
    }
  });
});

describe("backpressure, destroy and errors", () => {
  it("a paused consumer: the device stops reading, the host buffers stay bounded, the peer is held, then everything arrives", async () => {
    const total = bulk(1 << 20, 160 << 10);
    const data = randomBytes(total);
    const pair = memoryPair();
    const node = new TLSSocket(pair.ends[1], { isServer: true, secureContext: createSecureContext(nodeCreds) });
    let flushed = 0; // what Node's TLS has written into the connection
    node.once("secure", async () => {
      for (let off = 0; off < total; off += 16384) {
        const piece = data.subarray(off, off + 16384);
        if (!node.write(piece, () => (flushed += piece.length))) await once(node, "drain");
      }
      node.end();
    });
    const tls = dev.tls.connect({ socket: pair.ends[0], servername: HOST, context: client });
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
      const seen = await steady(
        () => flushed,
        (held) => {
          expect(tls.isPaused()).toBe(true);
          // our stream: its high-water mark plus one read; the connection's end: its mark plus one write
          expect(tls.readableLength).toBeLessThanOrEqual(tls.readableHighWaterMark + 16384);
          expect(tls.socket.readableLength).toBeLessThanOrEqual(tls.socket.readableHighWaterMark + 16384);
          return held;
        },
      );
      console.log(
        `[tls-node ${TARGET}] consumer paused: the host holds ${tls.readableLength + tls.socket.readableLength} B, Node wrote ${seen} of ${total} B and waits`,
      );
      expect(seen).toBeLessThan(total);
      tls.resume();
      await ended;
      expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
    } finally {
      tls.destroy();
      node.destroy();
      await closed(tls);
    }
  });

  it("a peer that does not read: write() asks for 'drain', the device stops encrypting, then everything arrives", async () => {
    const total = bulk(1 << 20, 96 << 10);
    const data = randomBytes(total);
    const pair = memoryPair();
    const node = new TLSSocket(pair.ends[1], { isServer: true, secureContext: createSecureContext(nodeCreds) });
    const tls = dev.tls.connect({ socket: pair.ends[0], servername: HOST, context: client });
    try {
      await once(tls, "secureConnect");
      pair.block(0); // nothing the device side writes gets through now
      expect(tls.write(data)).toBe(false);
      const queued = await steady(
        () => tls.socket.writableLength,
        (n) => n,
      );
      console.log(`[tls-node ${TARGET}] peer not reading: ${queued} B of records wait in the connection for ${total} B of data`);
      expect(queued).toBeGreaterThan(0);
      expect(queued).toBeLessThanOrEqual(tls.socket.writableHighWaterMark + 16384);
      const got = readExactly(node, total);
      pair.unblock(0);
      expect(sha256(await got)).toBe(sha256(data));
    } finally {
      tls.destroy();
      node.destroy();
      await closed(tls);
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
