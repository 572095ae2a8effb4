// The cipher suites the device offers (dev.tls.ciphersAvailable(),
// python-mbedtls's ciphers_available) and that each one it lists works:
// every ECDHE-ECDSA suite of TLS 1.2 that OpenSSL also implements is
// negotiated by number against `openssl s_server -cipher ALL` (the device
// client asks for that suite alone, and OpenSSL's `ciphers -V` gives the
// numbers), and each TLS 1.3 suite against `s_server -ciphersuites`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CipherSuite, CRT, Device, TLSContext, TrustStore } from "../../host/src/index.js";
import { useSession } from "./session.js";
import { connectTo, freePort, opensslDir, type Peer, recvUntil, SERVER_CHAIN_ARGS, stopPeers, utf8 } from "./tls-peers.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const ossl = opensslDir("tls-suites-");
let suites: CipherSuite[];
let root: CRT;
let trust: TrustStore;
/** The suite numbers OpenSSL implements whose OpenSSL name starts with `prefix`, from `openssl ciphers -V ALL`. */
const opensslIds = (prefix: string): Set<number> =>
  new Set(
    [...ossl.run(["ciphers", "-V", "ALL"]).matchAll(/0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)/g)]
      .filter((m) => (m[3] as string).startsWith(prefix))
      .map((m) => Number.parseInt(`${m[1]}${m[2]}`, 16)),
  );

async function sServer(args: string[]): Promise<{ port: number; peer: Peer }> {
  const port = await freePort();
  const peer = ossl.spawn(["s_server", "-accept", String(port), ...SERVER_CHAIN_ARGS, ...args]);
  await peer.waitFor("ACCEPT");
  return { port, peer };
}

/** A device client that asks for `id` alone: the suite the handshake settled on, and an echo through it. */
async function negotiate(port: number, id: number, version: "TLSv1.2" | "TLSv1.3"): Promise<number | undefined> {
  const ctx: TLSContext = dev.tls.ClientContext(
    new dev.tls.TLSConfiguration({ trustStore: trust, ciphers: [id], lowestSupportedVersion: version, highestSupportedVersion: version }),
  );
  try {
    const tls = ctx.wrapSocket(await connectTo(port), "device.example");
    try {
      await tls.doHandshake();
      await tls.send(utf8("ping\n"));
      expect(await recvUntil(tls, "gnip")).toContain("gnip");
      return tls.buffer.cipher()?.[1];
    } finally {
      await tls.close();
    }
  } finally {
    await ctx.close();
  }
}

beforeAll(async () => {
  dev = session.dev;
  makePki(ossl.dir);
  root = await dev.x509.CRT.fromFile(ossl.path("root.crt"));
  trust = new dev.tls.TrustStore();
  await trust.add(root);
  suites = await dev.tls.ciphersAvailable();
}, 60_000);

afterAll(async () => {
  stopPeers();
  for (const o of [trust, root]) await o?.close();
  ossl.remove();
});

describe("dev.tls.ciphersAvailable()", () => {
  it("lists each suite once, by IANA number and Mbed TLS's name, TLS 1.3's among them", () => {
    expect(suites.length).toBeGreaterThan(10);
    expect(new Set(suites.map((s) => s.id)).size).toBe(suites.length);
    expect(new Set(suites.map((s) => s.name)).size).toBe(suites.length);
    for (const s of suites) {
      expect(s.name).toMatch(/^TLS1?-/);
      expect(s.id).toBeGreaterThan(0);
      expect(s.id).toBeLessThanOrEqual(0xffff);
    }
    const ids = suites.map((s) => s.id);
    expect(ids).toEqual(expect.arrayContaining([0x1301, 0x1302, 0x1303, 0xc02b, 0xc02c]));
    expect(suites.find((s) => s.id === 0xc02b)?.name).toBe("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");
    console.log(`[tls-suites] the device offers ${suites.length} suites, first ${suites[0]?.name}`);
  });

  it("negotiates every TLS 1.2 ECDHE-ECDSA suite it lists that OpenSSL has, by number", async () => {
    const openssl = opensslIds("ECDHE-ECDSA-");
    const both = suites.filter((s) => s.name.startsWith("TLS-ECDHE-ECDSA-") && openssl.has(s.id));
    expect(both.length).toBeGreaterThanOrEqual(6);
    console.log(`[tls-suites] TLS 1.2 ECDHE-ECDSA suites both have: ${both.length} (${both.map((s) => s.name.slice(16)).join(", ")})`);
    const { port, peer } = await sServer(["-tls1_2", "-cipher", "ALL", "-rev"]);
    try {
      for (const s of both) expect([s.name, await negotiate(port, s.id, "TLSv1.2")]).toEqual([s.name, s.id]);
    } finally {
      peer.stop();
    }
  }, 120_000);

  it("negotiates every TLS 1.3 suite it lists that OpenSSL has, by number", async () => {
    const tls13 = suites.filter((s) => s.id >> 8 === 0x13);
    const names: Record<number, string> = {
      4865: "TLS_AES_128_GCM_SHA256",
      4866: "TLS_AES_256_GCM_SHA384",
      4867: "TLS_CHACHA20_POLY1305_SHA256",
      4868: "TLS_AES_128_CCM_SHA256",
      4869: "TLS_AES_128_CCM_8_SHA256",
    };
    const both = tls13.filter((s) => names[s.id] !== undefined);
    expect(both.map((s) => s.id)).toEqual(expect.arrayContaining([0x1301, 0x1302, 0x1303]));
    const { port, peer } = await sServer(["-tls1_3", "-ciphersuites", both.map((s) => names[s.id]).join(":"), "-rev"]);
    try {
      for (const s of both) expect([s.name, await negotiate(port, s.id, "TLSv1.3")]).toEqual([s.name, s.id]);
    } finally {
      peer.stop();
    }
  }, 60_000);
});
