// What happens when the device stops answering, dies or reboots, and how the
// SDK cleans up after itself. These tests freeze, kill and reset the device,
// so each starts its own; on a real board (MBEDLINK_PORT) they cannot run.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { DeviceResetError, DisconnectedError, open, type ResetInfo, StaleHandleError, TimeoutError, utf8 } from "../../host/src/index.js";
import { alive, childrenMatching } from "./procs.js";
import { type Session, startSession, TARGET, type TargetControl, until } from "./target.js";

const sessions: Session[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close().catch(() => {});
});

async function controlled(timeoutMs?: number): Promise<Session & { control: TargetControl }> {
  const s = await startSession(timeoutMs === undefined ? {} : { timeoutMs });
  sessions.push(s);
  if (!s.control) throw new Error("this target cannot be controlled");
  return s as Session & { control: TargetControl };
}

const sha256hex = (s: string) => createHash("sha256").update(s).digest("hex");

describe.runIf(TARGET !== "port")(`device lifecycle (${TARGET})`, () => {
  it("a call the device never answers fails with TimeoutError on time; the late answer is ignored", async () => {
    const { dev, control } = await controlled();
    await control.pause();
    const t0 = performance.now();
    const err = await dev.echo(utf8("frozen"), { timeoutMs: 300 }).catch((e: unknown) => e);
    const took = performance.now() - t0;
    expect(err).toBeInstanceOf(TimeoutError);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2000);
    await control.resume(); // the device now answers the old request: the host drops it
    const h = dev.hash.sha256(utf8("abc"));
    expect(await h.hexdigest()).toBe(sha256hex("abc"));
    expect(Buffer.from(await dev.echo(utf8("next"))).toString()).toBe("next");
  });

  it("calls in flight when the device process dies fail with DisconnectedError, and so does every later call", async () => {
    const { dev, control } = await controlled();
    const gone: Error[] = [];
    dev.on("disconnected", (e) => gone.push(e));
    const h = dev.hash.sha256();
    h.update(new Uint8Array(8 << 20)); // plenty in flight and queued
    const pending = h.digest().catch((e: unknown) => e);
    control.kill();
    expect(await pending).toBeInstanceOf(DisconnectedError);
    await until(() => gone.length > 0);
    await expect(dev.stats()).rejects.toBeInstanceOf(DisconnectedError);
    expect(() => h.update(utf8("x"))).toThrow(DisconnectedError);
  });

  it("a reset fails in-flight calls with DeviceResetError; the next call works without reconnecting by hand", async () => {
    const { dev, control } = await controlled();
    const resets: ResetInfo[] = [];
    dev.on("reset", (r) => resets.push(r));
    const bootBefore = dev.info.bootId;
    const old = dev.hash.sha256(utf8("abc"));
    expect(await old.hexdigest()).toBe(sha256hex("abc"));
    await control.pause();
    const inFlight = dev.echo(utf8("lost in the reset")).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    await control.reset(); // native: delivered when it runs again, it drops its input and reboots; QEMU: reboots at once
    await control.resume();
    expect(await inFlight).toBeInstanceOf(DeviceResetError);
    expect(resets).toHaveLength(1);
    expect(() => old.update(utf8("x"))).toThrow(StaleHandleError);
    await expect(old.digest()).rejects.toBeInstanceOf(StaleHandleError);
    const fresh = dev.hash.sha256(utf8("abc"));
    expect(await fresh.hexdigest()).toBe(sha256hex("abc"));
    expect(fresh.handle).toBeGreaterThan(old.handle); // handles are never reused
    expect(dev.info.bootId).not.toBe(bootBefore);
    expect((await dev.stats()).handlesUsed).toBe(1);
  });

  it("a hash object garbage-collected without close() frees its device handle", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const { dev } = await controlled();
    await (async () => {
      const h = dev.hash.sha256(utf8("abc"));
      expect(h.handle).toBeGreaterThan(0); // a device context (a digest this small makes one only when asked)
      await h.digest();
    })();
    expect((await dev.stats()).handlesUsed).toBe(1);
    await until(async () => {
      gc();
      return (await dev.stats()).handlesUsed === 0;
    });
  });

  it("a clean stop (SIGTERM) exits 0; on native that also proves no heap leak", async () => {
    const { dev, control } = await controlled();
    const h = dev.hash.sha512(utf8("left open on purpose"));
    await h.digest();
    await dev.close();
    expect(await control.stop()).toBe(0);
  });

  const deviceProgram = TARGET === "qemu" ? "qemu-system-arm" : "mbedlink-native";

  it(`open({ target: "${TARGET}" }) starts the device and close() leaves no process behind`, async () => {
    const dev = await open({ target: TARGET === "qemu" ? "qemu" : "native" });
    const m = dev.hash.md5(utf8("Nobody inspects the spammish repetition"));
    expect(await m.hexdigest()).toBe("bb649c83dd1ea5c9d9dec9a18df0ffe9");
    const children = childrenMatching(deviceProgram);
    expect(children.length).toBeGreaterThan(0);
    await dev.close();
    for (const pid of children) expect(alive(pid), `pid ${pid}`).toBe(false);
  });

  it("killing the process that started the device (SIGKILL, no cleanup code runs) leaves no device process behind", async () => {
    const launcher = TARGET === "qemu" ? "startQemu" : "startNative";
    const module = TARGET === "qemu" ? "../../host/src/targets/qemu.js" : "../../host/src/targets/native.js";
    const script = `import { ${launcher} } from ${JSON.stringify(new URL(module, import.meta.url).pathname.replace(/\\.js$/, ".ts"))};
const t = await ${launcher}();
console.log(t.child.pid);
setInterval(() => {}, 1000);`;
    const runner = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const pid = await new Promise<number>((ok, fail) => {
      let out = "";
      runner.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /^(\d+)\n/.exec(out);
        if (m) ok(Number(m[1]));
      });
      runner.on("exit", (code) => fail(new Error(`launcher script exited early (${code})`)));
    });
    expect(alive(pid)).toBe(true);
    runner.kill("SIGKILL");
    await until(() => !alive(pid), 10_000);
  });
});
