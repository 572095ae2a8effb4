// Device + dev.hash over a real PTY and the real transport, against the
// node:crypto fake device (host/src/testing/fake-device.ts) until the native
// firmware exists; a smoke block runs against build/native/mbedlink-native
// when it has been built.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { NATIVE_BINARY, type NativeTarget, startNative } from "../../hil/native.js";
import type { Device, FrameDropInfo, ResetInfo } from "./index.js";
import {
  ArgumentError,
  DeviceResetError,
  DisconnectedError,
  hex,
  open,
  StaleHandleError,
  TimeoutError,
  UnsupportedAlgorithmError,
  utf8,
} from "./index.js";
import { HASH_ALGS } from "./protocol.generated.js";

const here = dirname(fileURLToPath(import.meta.url));
const fake = (env: Record<string, string> = {}) => [
  "env",
  ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
  "python3",
  join(here, "testing/openpty.py"),
  process.execPath,
  "--import",
  "tsx",
  join(here, "testing/fake-device.ts"),
];

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

type Kind = "fake" | "native";
const kinds: Kind[] = existsSync(NATIVE_BINARY) ? ["fake", "native"] : ["fake"];

/** Starts a target (the fake device with `env`, or the native build) and opens it over the real transport. */
async function start(kind: Kind | Record<string, string> = "fake", timeoutMs = 5000): Promise<{ dev: Device; target: NativeTarget }> {
  const target = await startNative(kind === "native" ? {} : { command: fake(kind === "fake" ? {} : kind) });
  cleanups.push(() => target.stop());
  const dev = await open(target.path, { timeoutMs });
  cleanups.push(() => dev.close());
  return { dev, target };
}

const nodeDigest = (name: string, data: Uint8Array) => createHash(name.replace("_", "-")).update(data).digest("hex");
const SPAM = "Nobody inspects the spammish repetition";
const until = async (cond: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe.each(kinds)("Device on the %s target", (kind) => {
  it("runs the python-mbedtls hash examples", async () => {
    const { dev } = await start(kind);
    const m = dev.hash.md5();
    m.update(utf8("Nobody inspects"));
    m.update(utf8(" the spammish repetition"));
    expect(hex(await m.digest())).toBe("bb649c83dd1ea5c9d9dec9a18df0ffe9");
    expect([m.digestSize, m.blockSize, m.name]).toEqual([16, 64, "md5"]);
    expect(await dev.hash.sha224(utf8(SPAM)).hexdigest()).toBe(nodeDigest("sha224", utf8(SPAM)));
    const h = dev.hash.new("ripemd160");
    h.update(utf8(SPAM));
    expect(await h.hexdigest()).toBe(nodeDigest("ripemd160", utf8(SPAM)));
    await m.close();
    await h.close();
  });

  it("matches node:crypto for every algorithm, chunked bulk data, copy() and repeated digests", async () => {
    const { dev } = await start(kind);
    const data = new Uint8Array(100_000).map((_, i) => (i * 7 + (i >> 8)) & 0xff);
    for (const alg of HASH_ALGS) {
      const h = dev.hash.new(alg.name, data.subarray(0, 10));
      h.update(data.subarray(10));
      const c = h.copy();
      c.update(utf8("more"));
      expect(await h.hexdigest()).toBe(nodeDigest(alg.name, data));
      expect(await h.hexdigest()).toBe(nodeDigest(alg.name, data)); // context unchanged
      expect(await c.hexdigest()).toBe(nodeDigest(alg.name, Buffer.concat([data, utf8("more")])));
      expect([h.digestSize, h.blockSize]).toEqual([alg.digestSize, alg.blockSize]);
      await h.close();
      await c.close();
    }
    expect((await dev.stats()).handlesUsed).toBe(0);
  });

  it("copies update() data at call time", async () => {
    const { dev } = await start(kind);
    const buf = utf8("aaaa");
    const h = dev.hash.sha256(buf);
    buf.fill(0x62);
    h.update(buf);
    buf.fill(0);
    expect(await h.hexdigest()).toBe(nodeDigest("sha256", utf8("aaaabbbb")));
  });

  it("one-shot digests, small (hash_oneshot) and large (context)", async () => {
    const { dev } = await start(kind);
    expect(hex(await dev.hash.digest("sha256", utf8("abc")))).toBe(nodeDigest("sha256", utf8("abc")));
    const big = new Uint8Array(5000).fill(0xc0);
    expect(await dev.hash.hexdigest("SHA512", big)).toBe(nodeDigest("sha512", big));
    expect((await dev.stats()).handlesUsed).toBe(0);
  });

  it("emits frameDropped for drops the device reports", async () => {
    const { dev } = await start(kind);
    const drops: FrameDropInfo[] = [];
    dev.on("frameDropped", (d) => drops.push(d));
    // a frame with a broken CRC, straight onto the link
    (dev.transport as unknown as { writeBytes(b: Uint8Array, cb: () => void): void }).writeBytes(
      Uint8Array.from([0xc0, 0x83, 9, 1, 0x41, 0x78, 0, 0, 0, 0, 0xc0]),
      () => {},
    );
    await until(() => drops.length > 0);
    expect(drops[0]).toEqual({ side: "device", reason: "bad_crc", total: 1 });
    expect((await dev.stats()).rxBadCrc).toBe(1);
  });

  it("frees the handle of a hash object garbage-collected without close()", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as (() => void) | undefined;
    if (!gc) return;
    const { dev } = await start(kind);
    await (async () => {
      const h = dev.hash.sha256(utf8("abc"));
      await h.digest();
    })();
    expect((await dev.stats()).handlesUsed).toBe(1);
    for (let i = 0; i < 50 && (await dev.stats()).handlesUsed > 0; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect((await dev.stats()).handlesUsed).toBe(0);
  });

  it("reports disconnection when the device process dies", async () => {
    const { dev, target } = await start(kind);
    const gone: Error[] = [];
    dev.on("disconnected", (e) => gone.push(e));
    const h = dev.hash.sha256();
    h.update(new Uint8Array(4 << 20)); // plenty in flight
    const pending = h.digest().catch((e: unknown) => e);
    target.child.kill("SIGKILL");
    expect(await pending).toBeInstanceOf(DisconnectedError);
    await until(() => gone.length > 0);
    expect(gone.length).toBe(1);
    await expect(dev.stats()).rejects.toBeInstanceOf(DisconnectedError);
    expect(() => h.update(utf8("x"))).toThrow(DisconnectedError);
  });

  it("survives SIGUSR1 (simulated board reset): old objects are stale, hello re-runs", async () => {
    const { dev, target } = await start(kind);
    const resets: ResetInfo[] = [];
    dev.on("reset", (r) => resets.push(r));
    const before = dev.info.bootId;
    const h = dev.hash.sha256(utf8("abc"));
    await h.digest();
    target.reset();
    await until(() => resets.length > 0);
    expect(() => h.update(utf8("x"))).toThrow(StaleHandleError);
    await expect(h.digest()).rejects.toBeInstanceOf(StaleHandleError);
    expect(() => h.copy()).toThrow(StaleHandleError);
    await h.close(); // nothing to free
    const h2 = dev.hash.sha256(utf8("abc"));
    expect(await h2.hexdigest()).toBe(nodeDigest("sha256", utf8("abc")));
    expect(h2.handle).toBeGreaterThan(h.handle); // never reused
    expect(dev.info.bootId).not.toBe(before);
    expect((await dev.stats()).handlesUsed).toBe(1);
  });

  it("stops the device process on close()", async () => {
    const { dev, target } = await start(kind);
    await dev.close();
    await target.stop();
    expect(target.child.exitCode !== null || target.child.signalCode !== null).toBe(true);
  });
});

describe("Device on the fake device only", () => {
  it('opens with open({ target: "native", command }) and reports hello as dev.info', async () => {
    const dev = await open({ target: "native", command: fake() });
    cleanups.push(() => dev.close());
    expect(dev.info).toMatchObject({
      protocolVersion: 1,
      board: "fake-node",
      mtu: 1024,
      window: 4,
      maxHandles: 16,
      mbedtlsVersion: "3.6.6",
    });
    expect(dev.info.bootId).toMatch(/^[0-9a-f]{16}$/);
    expect(dev.version).toEqual({ version: "Mbed TLS 3.6.6", versionInfo: [3, 6, 6] });
    expect(dev.hash.algorithmsAvailable.has("sha3_256")).toBe(true);
    expect([...dev.hash.algorithmsGuaranteed]).toEqual(["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]);
    expect(hex(await dev.echo(utf8("hi")))).toBe("6869");
    const st = await dev.stats();
    expect(st.maxHandles).toBe(16);
    expect(st.rxFrames).toBeGreaterThanOrEqual(2);
    await dev.close();
    await dev.close(); // idempotent
    await expect(dev.echo(utf8("x"))).rejects.toBeInstanceOf(DisconnectedError);
  });

  it("rejects unknown names locally and unavailable ones with the device's error", async () => {
    const { dev } = await start({ FAKE_NO_SHA3: "1" });
    expect(() => dev.hash.new("sha999")).toThrow(UnsupportedAlgorithmError);
    const sent = dev.linkCounters.txFrames;
    try {
      dev.hash.new("whirlpool");
    } catch (e) {
      expect((e as UnsupportedAlgorithmError).local).toBe(true);
    }
    expect(dev.linkCounters.txFrames).toBe(sent); // no round trip
    expect(dev.hash.algorithmsAvailable.has("sha3_256")).toBe(false);
    const h = dev.hash.sha3_256(utf8("x"));
    const err = await h.digest().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedAlgorithmError);
    expect((err as UnsupportedAlgorithmError).local).toBe(false);
    expect((err as UnsupportedAlgorithmError).statusName).toBe("unsupported_algorithm");
    expect(() => h.copy()).toThrow(UnsupportedAlgorithmError);
    await h.close(); // quiet: the handle never existed
    await expect(dev.hash.digest("sha3_512", utf8("x"))).rejects.toBeInstanceOf(UnsupportedAlgorithmError);
    expect(() => dev.hash.md5("text" as unknown as Uint8Array)).toThrow(ArgumentError);
  });

  it("fails an in-flight call with DeviceResetError on a reset", async () => {
    const { dev, target } = await start({ FAKE_MUTE_OPS: "1" }); // echo never answers
    const resets: ResetInfo[] = [];
    dev.on("reset", (r) => resets.push(r));
    const before = dev.info.bootId;
    const h = dev.hash.sha256(utf8("abc"));
    await h.digest();
    const pending = dev.echo(utf8("lost")).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    target.reset();
    expect(await pending).toBeInstanceOf(DeviceResetError);
    expect(resets.length).toBe(1);
    expect(() => h.update(utf8("x"))).toThrow(StaleHandleError);
    await expect(h.digest()).rejects.toBeInstanceOf(StaleHandleError);
    expect(() => h.copy()).toThrow(StaleHandleError);
    await h.close(); // nothing to free
    // the next call is served after the automatic hello
    const h2 = dev.hash.sha256(utf8("abc"));
    expect(await h2.hexdigest()).toBe(nodeDigest("sha256", utf8("abc")));
    expect(dev.info.bootId).not.toBe(before);
    expect(h2.handle).toBeGreaterThan(h.handle); // never reused
  });

  it("times out a call the device never answers, and keeps working", async () => {
    const { dev } = await start({ FAKE_MUTE_OPS: "1" });
    const t0 = performance.now();
    await expect(dev.echo(utf8("x"), { timeoutMs: 100 })).rejects.toBeInstanceOf(TimeoutError);
    expect(performance.now() - t0).toBeLessThan(2000);
    dev.timeoutMs = 150;
    await expect(dev.echo(utf8("y"))).rejects.toBeInstanceOf(TimeoutError);
    expect((await dev.stats()).rxFrames).toBeGreaterThan(0);
  });

  it("says the QEMU target is not there yet", async () => {
    await expect(open({ target: "qemu" })).rejects.toThrow("QEMU target arrives with issue 3");
  });
});

describe.skipIf(!existsSync(NATIVE_BINARY))('open({ target: "native" })', () => {
  it('open({ target: "native" }) builds/spawns the simulator and runs the md5 example', async () => {
    const dev = await open({ target: "native" });
    cleanups.push(() => dev.close());
    expect(dev.info).toMatchObject({ protocolVersion: 1, board: "native-linux", mbedtlsVersion: "3.6.6" });
    expect(dev.version).toEqual({ version: "Mbed TLS 3.6.6", versionInfo: [3, 6, 6] });
    const m = dev.hash.md5();
    m.update(utf8("Nobody inspects"));
    m.update(utf8(" the spammish repetition"));
    expect(await m.hexdigest()).toBe("bb649c83dd1ea5c9d9dec9a18df0ffe9");
    expect(await dev.hash.sha224(utf8(SPAM)).hexdigest()).toBe("a4337bc45a8fc544c03f52dc550cd6e1e87021bc896588bd79e901e2");
    await m.close();
  });
});
