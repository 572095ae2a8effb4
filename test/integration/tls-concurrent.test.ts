// TLS sessions at once on one device (issue 17, slice 6): as many device
// clients as hello's tls_sessions_max allows, up to four (four on native,
// which must hold them; the STM32 image's limit on QEMU), TLS 1.2 and 1.3
// mixed, each against its own Node TLS echo server (ECDHE-ECDSA on P-256, a
// chain from an OpenSSL PKI verified against its root), each moving the
// target's bulk size (1 MiB on native) each way at the same time; what came
// back is compared byte for byte and both directions by SHA-256 (Node's
// crypto). stats() shows them live at once; afterwards the heap, the handle
// count and the live session count are back at the baseline taken before
// the trust store and the configuration were made.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EchoResult, type EchoServer, startEchoServer, type TlsServerCredentials, tlsEcho } from "../../hil/tls-echo.js";
import type { CRT, Device, DeviceStats, TLSContext, TLSVersion, TrustStore } from "../../host/src/index.js";
import { useSession } from "./session.js";
import { bulk, TARGET } from "./target.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const dir = mkdtempSync(join(tmpdir(), "tls-concurrent-"));
const MiB = 1 << 20;
/** Sessions at once: four, or fewer where the device holds fewer (set from hello). */
let sessions = 4;
const BYTES = bulk(MiB, 16 << 10);
const VERSIONS: readonly TLSVersion[] = ["TLSv1.2", "TLSv1.3", "TLSv1.2", "TLSv1.3"];

let cred: TlsServerCredentials;
const servers: EchoServer[] = [];
let base: DeviceStats;
let root: CRT;
let trust: TrustStore;
let client: TLSContext;

beforeAll(async () => {
  dev = session.dev;
  makePki(dir);
  cred = {
    chainPem: readFileSync(join(dir, "server.crt"), "utf8") + readFileSync(join(dir, "inter.crt"), "utf8"),
    keyPem: readFileSync(join(dir, "server.key"), "utf8"),
  };
  sessions = Math.min(4, dev.info.tls.sessionsMax);
  for (let i = 0; i < sessions; i++) servers.push(await startEchoServer(cred, VERSIONS[i % VERSIONS.length]));
  base = await dev.stats();
  root = await dev.x509.CRT.fromPEM(readFileSync(join(dir, "root.crt"), "utf8"));
  trust = new dev.tls.TrustStore();
  await trust.add(root);
  client = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust, validateCertificates: true }));
  await client.ready;
}, 120_000);

afterAll(async () => {
  for (const o of [client, trust, root]) await o?.close();
  for (const s of servers) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

function checkEcho(r: EchoResult, version: TLSVersion): void {
  expect(r.version).toBe(version);
  // TLS 1.3 suite names carry no key exchange (it was ECDHE on P-256: the servers allow no other group)
  expect(r.cipher).toMatch(version === "TLSv1.2" ? /^TLS-ECDHE-ECDSA-WITH-AES-\d+-GCM/ : /^TLS1-3-AES-\d+-GCM/);
  expect(r.bytes).toBe(BYTES);
  expect(r.wrong).toBe(0);
  expect(r.receivedSha256).toBe(r.sentSha256);
  expect(r.serverSha256).toBe(r.sentSha256);
}

describe(`TLS sessions at once (${TARGET})`, () => {
  it(`hello's session limit: at least four on native, at least one elsewhere`, () => {
    expect(dev.info.tls.sessionsMax).toBeGreaterThanOrEqual(TARGET === "native" ? 4 : 1);
    expect(sessions).toBe(Math.min(4, dev.info.tls.sessionsMax));
  });

  it(`up to four sessions (TLS 1.2 and 1.3 in turn) each move ${BYTES >> 10} KiB each way at once, every byte right; heap, handles and live sessions back at the baseline`, async () => {
    const atConf = await dev.stats();
    let live = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const s = await dev.stats();
        live = Math.max(live, s.tlsSessions - atConf.tlsSessions);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const t0 = performance.now();
    let results: EchoResult[];
    try {
      results = await Promise.all(servers.map((s) => tlsEcho(client, s, { bytes: BYTES })));
    } finally {
      polling = false;
      await poll;
    }
    const ms = performance.now() - t0;
    for (const [i, r] of results.entries()) checkEcho(r, VERSIONS[i % VERSIONS.length] as TLSVersion);
    const mid = await dev.stats();
    console.log(
      `[tls-concurrent ${TARGET}] ${sessions} x ${BYTES >> 10} KiB each way in ${ms.toFixed(0)} ms ` +
        `(${((2 * sessions * BYTES) / (ms / 1000) / 1e6).toFixed(2)} MB/s of application data in all); ` +
        `${results.map((r) => `${r.version} ${r.cipher} handshake ${r.handshakeMs.toFixed(0)} ms`).join("; ")}; ` +
        `most sessions live at once ${live}; heap peak ${mid.heapPeak} B of ${mid.heapSize} B`,
    );
    expect(results.length).toBe(sessions);
    expect(live).toBe(sessions);
    expect(mid.heapUsed).toBe(atConf.heapUsed);
    expect(mid.handlesUsed).toBe(atConf.handlesUsed);
    expect(mid.tlsSessions).toBe(atConf.tlsSessions);
    for (const o of [client, trust, root]) await o.close();
    const after = await dev.stats();
    expect(after.heapUsed).toBe(base.heapUsed);
    expect(after.handlesUsed).toBe(base.handlesUsed);
    expect(after.tlsSessions).toBe(base.tlsSessions);
    expect(after.tlsConfs).toBe(base.tlsConfs);
  }, 300_000);
});
