// dev.x509.TrustStore: chain verification on the device (Mbed TLS's full
// path validation) against a PKI made with the OpenSSL CLI in a temporary
// directory (x509-verify-pki.ts): root -> intermediate (pathlen:0) -> leaf
// verifies; a CRL from `openssl ca -gencrl` revokes what it lists; expired,
// not-yet-valid, wrong host name, wrong key usage / extended key usage for
// the purpose, a path too long and an untrusted root each fail with the
// named flag; and every verdict agrees with `openssl verify` on the same
// files. The device clock: set by the SDK after hello, moved by setTime,
// judged by verify, set again after a board reset.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Op } from "../../host/src/base/protocol.generated.js";
import {
  ArgumentError,
  BadArgumentError,
  type CRL,
  type CRT,
  CryptoError,
  type Device,
  TooLargeError,
  type TrustStore,
  type VerifyFlag,
  type VerifyOptions,
  WrongHandleTypeError,
} from "../../host/src/index.js";
import { useSession } from "./session.js";
import { TARGET } from "./target.js";
import { makePki, type OpensslVerifyOptions, opensslVerify, type Pki } from "./x509-verify-pki.js";

const session = useSession();
let dev: Device;
const dir = mkdtempSync(join(tmpdir(), "x509-verify-"));
let pki: Pki;
const crt: Record<string, CRT> = {};
let crl: CRL;
let trust: TrustStore;
let other: TrustStore;

beforeAll(async () => {
  dev = session.dev;
  pki = makePki(dir);
  for (const name of [
    "root",
    "otherRoot",
    "inter",
    "subca",
    "server",
    "client",
    "badKu",
    "expired",
    "future",
    "revoked",
    "deep",
    "evil",
  ] as const) {
    crt[name] = await dev.x509.CRT.fromFile(pki[name]);
  }
  crl = await dev.x509.CRL.fromFile(pki.crl);
  trust = new dev.x509.TrustStore();
  expect(await trust.add(crt.root as CRT)).toBe(1);
  other = new dev.x509.TrustStore();
  await other.add(crt.otherRoot as CRT);
}, 60_000);

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
});

const c = (name: string): CRT => {
  const x = crt[name];
  if (!x) throw new Error(`no fixture ${name}`);
  return x;
};

interface Case {
  name: string;
  store?: "other";
  chain: string[];
  opts?: Omit<VerifyOptions, "crls"> & { crl?: true };
  flags: VerifyFlag[];
  /** openssl verify's error text (empty: it accepts the chain). */
  openssl: string;
}

const DAY = 86_400_000;
const CASES: Case[] = [
  {
    name: "root -> intermediate -> server leaf",
    chain: ["server", "inter"],
    opts: { hostname: "device.example", purpose: "server" },
    flags: [],
    openssl: "",
  },
  { name: "a client leaf for a client", chain: ["client", "inter"], opts: { purpose: "client" }, flags: [], openssl: "" },
  {
    name: "wrong host name",
    chain: ["server", "inter"],
    opts: { hostname: "other.example" },
    flags: ["cnMismatch"],
    openssl: "hostname mismatch",
  },
  { name: "expired", chain: ["expired", "inter"], flags: ["expired"], openssl: "certificate has expired" },
  { name: "not yet valid", chain: ["future", "inter"], flags: ["futureValidity"], openssl: "certificate is not yet valid" },
  {
    name: "revoked by the CRL (openssl ca -gencrl)",
    chain: ["revoked", "inter"],
    opts: { crl: true },
    flags: ["revoked"],
    openssl: "certificate revoked",
  },
  { name: "the same leaf without the CRL", chain: ["revoked", "inter"], flags: [], openssl: "" },
  { name: "a leaf the CRL does not list", chain: ["server", "inter"], opts: { crl: true }, flags: [], openssl: "" },
  {
    name: "wrong extended key usage for the purpose",
    chain: ["client", "inter"],
    opts: { purpose: "server" },
    flags: ["badExtKeyUsage"],
    openssl: "unsuitable certificate purpose",
  },
  {
    name: "wrong key usage for the purpose",
    chain: ["badKu", "inter"],
    opts: { purpose: "server" },
    flags: ["badKeyUsage"],
    openssl: "unsuitable certificate purpose",
  },
  {
    name: "path too long (a CA under the pathlen:0 intermediate)",
    chain: ["deep", "subca", "inter"],
    flags: ["notTrusted", "badPathLength"],
    openssl: "path length constraint exceeded",
  },
  {
    name: "issued by a certificate that is no CA",
    chain: ["evil", "server", "inter"],
    flags: ["notTrusted", "notCA"],
    openssl: "invalid CA certificate",
  },
  {
    name: "untrusted root",
    store: "other",
    chain: ["server", "inter"],
    flags: ["notTrusted"],
    openssl: "unable to get local issuer certificate",
  },
];

describe("TrustStore.verify agrees with openssl verify", () => {
  it.each(CASES.map((k) => [k.name, k] as const))("%s", async (_n, k) => {
    const opts: VerifyOptions = { ...k.opts };
    delete (opts as { crl?: true }).crl;
    if (k.opts?.crl) opts.crls = crl;
    const r = await (k.store === "other" ? other : trust).verify(
      k.chain.map((n) => c(n)),
      opts,
    );
    expect(r.flags).toEqual(k.flags);
    expect(r.valid).toBe(k.flags.length === 0);
    expect(r.path[0]?.subject).toBe("CN=device.example");
    const o: OpensslVerifyOptions = { untrusted: k.chain.slice(1).map((n) => pki[n as keyof Pki] as string) };
    if (k.opts?.purpose) o.purpose = k.opts.purpose;
    if (k.opts?.hostname) o.hostname = k.opts.hostname;
    if (k.opts?.crl) o.crl = pki.crl;
    const ref = opensslVerify(k.store === "other" ? pki.otherRoot : pki.root, pki[k.chain[0] as keyof Pki] as string, o);
    expect(ref.ok).toBe(r.valid);
    expect(ref.error).toBe(k.openssl);
  });

  it("the path names each certificate leaf first, with its serial, up to the trusted root", async () => {
    const r = await trust.verify([c("server"), c("inter")]);
    expect(r.path.map((p) => p.subject)).toEqual(["CN=device.example", "CN=Test Intermediate", "O=mbedlink test, CN=Test Root"]);
    expect(r.path.map((p) => p.serialNumber)).toEqual([10n, 2n, c("root").serialNumber]);
    const bad = await trust.verify([c("deep"), c("subca"), c("inter")]);
    expect(bad.path.map((p) => p.flags)).toEqual([[], ["notTrusted", "badPathLength"]]);
    expect(bad.bits).toBe(0x08); // Mbed TLS's own flags: not_trusted alone
  });

  it("a CRL added to the store revokes in every verify", async () => {
    const t = new dev.x509.TrustStore();
    await t.add([c("root")]);
    expect(await t.addCRL(crl)).toBe(1);
    expect(t.crlCount).toBe(1);
    expect((await t.verify([c("revoked"), c("inter")])).flags).toEqual(["revoked"]);
    expect((await t.verify([c("server"), c("inter")])).valid).toBe(true);
    await t.close();
  });

  it("`at` verifies as of that time, as openssl verify -attime (and the clock is back afterwards)", async () => {
    const before = new Date(pki.made.getTime() - DAY);
    const r = await trust.verify([c("server"), c("inter")], { at: before });
    expect(r.flags).toEqual(["futureValidity"]);
    expect(r.path.map((p) => p.flags)).toEqual([["futureValidity"], ["futureValidity"], ["futureValidity"]]);
    const ref = opensslVerify(pki.root, pki.server, { untrusted: [pki.inter], at: before });
    expect(ref).toEqual({ ok: false, error: "certificate is not yet valid" });
    const later = new Date(pki.made.getTime() + 30 * DAY);
    expect((await trust.verify([c("server"), c("inter")], { at: later })).valid).toBe(true);
    expect(opensslVerify(pki.root, pki.server, { untrusted: [pki.inter], at: later }).ok).toBe(true);
    expect((await trust.verify([c("server"), c("inter")])).valid).toBe(true);
    expect(Math.abs((await dev.time()).getTime() - Date.now())).toBeLessThan(5000);
  });

  it("a verification the device refuses with `at` (a chain past Mbed TLS's 8 intermediates) leaves the clock running", async () => {
    const data = join(__dirname, "../../firmware/lib/mbedtls/src/framework/data_files/dir-maxpath");
    const long = await dev.x509.CRT.chainFromFile(join(data, "c10.pem")); // a leaf and 9 intermediates
    const root = await dev.x509.CRT.fromFile(join(data, "00.crt"));
    const t = new dev.x509.TrustStore();
    try {
      await t.add(root);
      const e = await t.verify(long, { at: new Date(Date.UTC(2001, 0, 1)) }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(CryptoError);
      expect((e as CryptoError).mbedtlsCode).toBe(-0x3000); // MBEDTLS_ERR_X509_FATAL_ERROR
      expect(Math.abs((await dev.time()).getTime() - Date.now())).toBeLessThan(5000);
    } finally {
      await t.close();
      for (const c of [root, ...long]) await c.close();
    }
  });

  it("the intermediate may be in the store instead of the chain", async () => {
    const t = new dev.x509.TrustStore();
    await t.add([c("inter")]);
    expect((await t.verify(c("server"))).valid).toBe(true);
    expect((await trust.verify(c("server"))).flags).toEqual(["notTrusted"]);
    await t.close();
  });
});

describe("the device clock", () => {
  it("is the host's time after open (set by the SDK after hello), and moving it moves validity", async () => {
    expect(Math.abs((await dev.time()).getTime() - Date.now())).toBeLessThan(5000);
    const ahead = new Date(Date.now() + 400 * DAY); // past the server leaf's 365 days
    const set = await dev.setTime(ahead);
    expect(Math.abs(set.getTime() - ahead.getTime())).toBeLessThan(1000);
    try {
      const r = await trust.verify([c("server"), c("inter")]);
      expect(r.flags).toEqual(["expired"]);
      expect(opensslVerify(pki.root, pki.server, { untrusted: [pki.inter], at: ahead }).error).toBe("certificate has expired");
    } finally {
      await dev.setTime(new Date());
    }
    expect((await trust.verify([c("server"), c("inter")])).valid).toBe(true);
  });

  it("keeps time with the board's millisecond counter", async () => {
    const t0 = await dev.setTime(new Date(Date.UTC(2030, 0, 1)));
    await new Promise((r) => setTimeout(r, 2100));
    const t1 = await dev.time();
    const moved = t1.getTime() - t0.getTime();
    expect(moved).toBeGreaterThanOrEqual(1000);
    expect(moved).toBeLessThanOrEqual(4000);
    await dev.setTime(new Date());
  });
});

describe("memory", () => {
  it("the heap a 3-certificate chain verification takes (reported), back to where it was afterwards", async () => {
    // The device reports its all-time heap peak only: first hold enough heap
    // (a buffered cipher context's reservation) that the verification's own
    // peak lies above every earlier one, then its growth is exact.
    const s0 = await dev.stats();
    const hold = dev._nextHandle();
    const reserve = Math.ceil((s0.heapPeak - s0.heapUsed) / 2) + 64;
    await dev.rpc.call(Op.cipherBufNew, [hold, "AES", "GCM", new Uint8Array(16), new Uint8Array(12), true, new Uint8Array(0), 16, reserve]);
    try {
      const s1 = await dev.stats();
      expect(s1.heapUsed).toBeGreaterThanOrEqual(s0.heapPeak);
      const r = await trust.verify([c("server"), c("inter")], { hostname: "device.example", purpose: "server" });
      const s2 = await dev.stats();
      expect(r.valid).toBe(true);
      expect(s2.heapUsed).toBe(s1.heapUsed);
      expect(s2.heapPeak).toBeGreaterThan(s1.heapUsed);
      console.log(
        `[x509-verify] ${TARGET}: a 3-certificate P-256 chain verification (2 signatures, name, purpose) takes ${s2.heapPeak - s1.heapUsed} B of heap`,
      );
    } finally {
      await dev.rpc.call(Op.free, [hold]);
    }
    expect((await dev.stats()).heapUsed).toBe(s0.heapUsed);
  });
});

describe("bad input: typed errors, the device keeps serving", () => {
  it("on the host: empty chains, wrong objects, bad options", async () => {
    await expect(trust.verify([])).rejects.toBeInstanceOf(ArgumentError);
    await expect(trust.verify([c("server"), c("server")])).rejects.toBeInstanceOf(ArgumentError);
    await expect(trust.verify(c("server"), { purpose: "mail" as "server" })).rejects.toBeInstanceOf(ArgumentError);
    await expect(trust.verify(c("server"), { at: new Date(Number.NaN) })).rejects.toBeInstanceOf(ArgumentError);
    await expect(trust.verify(c("server"), { profile: "weak" as "default" })).rejects.toBeInstanceOf(ArgumentError);
    await expect(trust.add(crl as unknown as CRT)).rejects.toBeInstanceOf(ArgumentError);
  });

  it("on the device: wrong handle types, arguments out of range, the store's limit", async () => {
    const th = trust.handle;
    const ch = c("server").handle;
    await expect(dev.rpc.call(Op.x509TrustAdd, [th, crl.handle])).rejects.toBeInstanceOf(WrongHandleTypeError);
    await expect(dev.rpc.call(Op.x509TrustVerify, [ch, [ch], null, 0, null, [], 0])).rejects.toBeInstanceOf(WrongHandleTypeError);
    await expect(dev.rpc.call(Op.x509TrustVerify, [th, [ch], null, 7, null, [], 0])).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.rpc.call(Op.x509TrustVerify, [th, [ch], null, 0, null, [], 9])).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.rpc.call(Op.x509TrustVerify, [th, [ch, ch], null, 0, null, [], 0])).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.rpc.call(Op.x509TrustVerify, [th, [ch], "a\u0000b", 0, null, [], 0])).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.rpc.call(Op.x509TrustVerify, [th, [ch], null, 0, 253402300800n, [], 0])).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.rpc.call(Op.timeSet, [253402300800000n])).rejects.toBeInstanceOf(BadArgumentError);
    const max = dev.info.trustCasMax;
    expect(max).toBeGreaterThan(0);
    expect(dev.info.trustCrlsMax).toBeGreaterThan(0);
    const t = new dev.x509.TrustStore();
    for (let i = 0; i < max; i++) await t.add(c("root"));
    expect(t.size).toBe(max);
    await expect(t.add(c("inter"))).rejects.toBeInstanceOf(TooLargeError);
    expect((await t.verify([c("server"), c("inter")])).valid).toBe(true);
    await t.close();
    expect(await dev.echo(new Uint8Array([1, 2, 3]))).toEqual(new Uint8Array([1, 2, 3]));
  }, 120_000);
});

describe("closing", () => {
  it("the file's objects close back to the heap and handles of the open session", async () => {
    for (const x of Object.values(crt)) await x.close();
    await crl.close();
    await trust.close();
    await other.close();
    await session.expectAt({ heap: "open", handles: true });
  });
});

describe("after a board reset", () => {
  it("the SDK sets the clock again after its new hello", async () => {
    const control = session.control;
    if (!control) return; // a real board: no reset from here
    await dev.setTime(new Date(Date.UTC(2001, 0, 1)));
    const back = new Promise((r) => dev.once("reconnected", r));
    await control.reset();
    await back;
    expect(Math.abs((await dev.time()).getTime() - Date.now())).toBeLessThan(5000);
  }, 60_000);
});
