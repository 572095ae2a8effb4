// TLS session resumption (issue 17 slice 5) against OpenSSL, TLS 1.2 and 1.3:
// the device's client saves its session (a TLS 1.2 ticket from the
// handshake, a TLS 1.3 ticket from the first read), the host keeps the
// sealed blob (on disk and back), and the next connection resumes: OpenSSL's
// s_server prints "Reused session-id" for that connection alone (run with
// -no_cache, so only a ticket can resume it) and tls_info says resumed.
// The device's server issues tickets under its own keys: `openssl s_client
// -sess_out` then `-sess_in` reports "Reused". An edited blob is
// AuthFailedError and the handshake that follows is a full one; a TLS 1.2
// session offered to a TLS 1.3-only configuration is BadArgumentError (Mbed
// TLS would fail the whole session: "no shared protocol version", -0x6E80,
// tried with this check taken out), then a full TLS 1.3 handshake. Logs what a saved session keeps on the device
// (nothing) and what ticket keys cost.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ArgumentError,
  AuthFailedError,
  BadArgumentError,
  type CRT,
  type Device,
  type ECC,
  type TLSContext,
  TLSSession,
  type TLSWrappedSocket,
  type TrustStore,
} from "../../host/src/index.js";
import { useSession } from "./session.js";
import { TARGET } from "./target.js";
import {
  connectTo,
  freePort,
  type Listener,
  listenLoopback,
  opensslDir,
  type Peer,
  recvUntil,
  SERVER_CHAIN_ARGS,
  stopPeers,
  utf8,
  TLS_VERSIONS as VERSIONS,
} from "./tls-peers.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const ossl = opensslDir("tls-resume-");
const path = ossl.path;
type Version = (typeof VERSIONS)[number][0];
const REUSED = "Reused session-id"; // s_server 3.0, per connection (SSL_session_reused)
const sServers = new Map<Version, { port: number; peer: Peer }>();
const sServer = (v: Version) => sServers.get(v) as { port: number; peer: Peer };
let root: CRT;
let inter: CRT;
let trust: TrustStore;
let client: TLSContext;
/** The sessions the first test saved, by version. */
const saved = new Map<Version, TLSSession>();

beforeAll(async () => {
  dev = session.dev;
  makePki(ossl.dir);
  root = await dev.x509.CRT.fromPEM(readFileSync(path("root.crt"), "utf8"));
  inter = await dev.x509.CRT.fromPEM(readFileSync(path("inter.crt"), "utf8"));
  trust = new dev.tls.TrustStore();
  await trust.add(root);
  client = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust, resumption: true }));
  await client.ready;
  for (const [v, flag] of VERSIONS) {
    const port = await freePort();
    const peer = ossl.spawn(["s_server", flag, "-accept", String(port), "-no_cache", ...SERVER_CHAIN_ARGS]);
    await peer.waitFor("ACCEPT");
    sServers.set(v, { port, peer });
  }
}, 120_000);

afterAll(async () => {
  stopPeers();
  for (const o of [client, trust, inter, root]) await o?.close();
  ossl.remove();
});

/** Runs `fn` over a client session to s_server `v`; resolves with what s_server printed meanwhile. */
async function overSServer(
  v: Version,
  ctx: TLSContext,
  opts: { session?: TLSSession },
  fn: (tls: TLSWrappedSocket) => Promise<void>,
): Promise<string> {
  const { port, peer } = sServer(v);
  const mark = peer.out().length;
  const tls = ctx.wrapSocket(await connectTo(port), "device.example", opts);
  try {
    await fn(tls);
    // A line each way: s_server has printed the connection's lines by the time the device's line shows.
    const toServer = `device ${v} ${Date.now()}\n`;
    await tls.send(utf8(toServer));
    await peer.waitFor(toServer);
    await tls.shutdown();
  } finally {
    await tls.close();
  }
  return peer.out().slice(mark);
}

/** A line from s_server to the device: the device reads it (and any TLS 1.3 tickets before it). */
async function lineFromServer(v: Version, tls: TLSWrappedSocket): Promise<void> {
  const line = `openssl ${v} ${Date.now()}\n`;
  sServer(v).peer.proc.stdin.write(line);
  expect(await recvUntil(tls, line)).toBe(line);
}

describe("device client resumes against openssl s_server (tickets, -no_cache)", () => {
  it.each(VERSIONS)("%s: the saved session, kept on disk, resumes the next connection", async (version) => {
    let first: TLSSession | undefined;
    const out1 = await overSServer(version, client, {}, async (tls) => {
      await tls.doHandshake();
      await lineFromServer(version, tls);
      expect((await tls.buffer.info()).resumed).toBe(false);
      const s0 = await dev.stats();
      first = await tls.buffer.session();
      const s1 = await dev.stats();
      console.log(
        `[tls-resume ${TARGET}] ${version}: a saved session is ${first.toBytes().length} B on the host, ` +
          `${s1.heapUsed - s0.heapUsed} B on the device after tls_session_get`,
      );
      expect(s1.heapUsed).toBe(s0.heapUsed);
      expect(await tls.buffer.session()).toBe(first); // the same until a newer one came
    });
    expect(out1).not.toContain(REUSED);
    if (first === undefined) throw new Error("no session saved");
    expect(first.version).toBe(version);
    writeFileSync(path(`session-${version}.bin`), first.toBytes());
    const kept = TLSSession.fromBytes(readFileSync(path(`session-${version}.bin`)));
    saved.set(version, kept);

    const out2 = await overSServer(version, client, { session: kept }, async (tls) => {
      await tls.doHandshake();
      const info = await tls.buffer.info();
      expect(info.resumed).toBe(true);
      expect(info.version).toBe(version);
      await lineFromServer(version, tls);
    });
    expect(out2).toContain(REUSED);
  });

  it("refuses an edited session (AuthFailedError); the handshake after it is a full one", async () => {
    const bytes = (saved.get("TLSv1.3") as TLSSession).toBytes();
    const at = bytes.length >> 1;
    bytes[at] = (bytes[at] as number) ^ 0x01;
    const out = await overSServer("TLSv1.3", client, { session: TLSSession.fromBytes(bytes) }, async (tls) => {
      await expect(tls.doHandshake()).rejects.toBeInstanceOf(AuthFailedError);
      await tls.doHandshake();
      expect((await tls.buffer.info()).resumed).toBe(false);
    });
    expect(out).not.toContain(REUSED);
    expect(() => TLSSession.fromBytes(utf8("not a session at all, not at all"))).toThrow(ArgumentError);
  });

  it("refuses a TLS 1.2 session on a TLS 1.3-only configuration (BadArgumentError), then a full TLS 1.3 handshake", async () => {
    const only13 = dev.tls.ClientContext(client.configuration.update({ lowestSupportedVersion: "TLSv1.3" }));
    try {
      const out = await overSServer("TLSv1.3", only13, { session: saved.get("TLSv1.2") as TLSSession }, async (tls) => {
        const err = await tls.doHandshake().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BadArgumentError);
        expect((err as Error).message).toContain("0x0303");
        await tls.doHandshake();
        const info = await tls.buffer.info();
        expect([info.version, info.resumed]).toEqual(["TLSv1.3", false]);
      });
      expect(out).not.toContain(REUSED);
    } finally {
      await only13.close();
    }
  });

  it("offers sessions only from a resuming client configuration", () => {
    const plain = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust }));
    expect(() => plain.wrapBuffers("device.example", { session: saved.get("TLSv1.2") as TLSSession })).toThrow(ArgumentError);
    return plain.close();
  });
});

describe("device server issues tickets: openssl s_client -sess_out, then -sess_in", () => {
  let key: ECC;
  let leaf: CRT;
  let server: TLSContext;
  let listener: Listener;

  beforeAll(async () => {
    key = await dev.pk.ECC.fromPEM(readFileSync(path("server.key"), "utf8"));
    leaf = await dev.x509.CRT.fromPEM(readFileSync(path("server.crt"), "utf8"));
    const chain = { certificateChain: [[leaf, inter], key] } as const;
    const s0 = await dev.stats();
    const plain = dev.tls.ServerContext(new dev.tls.TLSConfiguration(chain));
    await plain.ready;
    const s1 = await dev.stats();
    server = dev.tls.ServerContext(new dev.tls.TLSConfiguration({ ...chain, resumption: true, ticketLifetime: 3600 }));
    await server.ready;
    const s2 = await dev.stats();
    await plain.close();
    console.log(
      `[tls-resume ${TARGET}] a server configuration (chain of 2, P-256 key) takes ${s1.heapUsed - s0.heapUsed} B of heap, ` +
        `with ticket keys ${s2.heapUsed - s1.heapUsed} B: the keys cost ${s2.heapUsed - s1.heapUsed - (s1.heapUsed - s0.heapUsed)} B`,
    );
    listener = await listenLoopback();
  }, 120_000);

  afterAll(async () => {
    await listener?.close();
    for (const o of [server, leaf, key]) await o?.close();
  });

  /** One s_client connection served by the device; resolves with s_client's output and whether the device resumed. */
  async function sClientOnce(flag: string, sess: string[]): Promise<{ out: string; resumed: boolean }> {
    const accepted = listener.accepted();
    const sClient = ossl.spawn(
      ["s_client", flag, "-connect", `127.0.0.1:${listener.port}`, "-servername", "device.example", "-verify_return_error"].concat([
        "-CAfile",
        "root.crt",
        ...sess,
      ]),
    );
    const tls = server.wrapSocket(await accepted);
    try {
      await tls.doHandshake();
      const resumed = (await tls.buffer.info()).resumed;
      const line = `device server ${Date.now()}\n`;
      await tls.send(utf8(line));
      await sClient.waitFor(line); // a TLS 1.3 ticket went before it, so -sess_out has it
      await tls.shutdown();
      return { out: sClient.out(), resumed };
    } finally {
      sClient.stop();
      await tls.close();
    }
  }

  it.each(VERSIONS)("%s: the second connection reports Reused", async (version, flag) => {
    const file = `sess-${version}.pem`;
    const first = await sClientOnce(flag, ["-sess_out", file]);
    expect(first.out).toContain(`New, ${version}`);
    expect(first.resumed).toBe(false);
    expect(existsSync(path(file))).toBe(true);
    const second = await sClientOnce(flag, ["-sess_in", file]);
    expect(second.out).toContain(`Reused, ${version}`);
    expect(second.resumed).toBe(true);
  });
});
