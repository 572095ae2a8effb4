// AEAD streams (aead_new / aead_update / aead_finish, issue 15) under the
// rpc's same-id resends (spec §6): the stream ops are `ordered`, so a lost
// answer is resent under its id and answered from the device's record of
// answers (the stream is not advanced twice), and a request lost on its way
// in runs when its resend does, in order. The fault relay drops exactly one
// chosen frame; each time the result still equals Node's crypto.
import { createCipheriv } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Relay, startRelay } from "../../hil/fault-relay.js";
import { Op } from "../../host/src/base/protocol.generated.js";
import { type Device, type DeviceStats, hex, open } from "../../host/src/index.js";
import { type NativeTarget, startNative } from "../../host/src/targets/native.js";
import { type QemuTarget, startQemu } from "../../host/src/targets/qemu.js";
import { rand } from "./bytes.js";
import { TARGET } from "./target.js";

// A dropped answer shows no damaged frame: the attempt timer (a quarter of this) finds it.
const TIMEOUT_MS = TARGET === "qemu" ? 8000 : 4000;
const replayed = (s: DeviceStats) => s.rxReplayed as number;
type NodeAead = ReturnType<typeof createCipheriv> & { setAAD(b: Uint8Array): void; getAuthTag(): Buffer };

describe.runIf(TARGET !== "port")(`AEAD streams under resends (${TARGET})`, () => {
  // The device behind the fault relay, one boot for the file.
  let rig: { target: NativeTarget | QemuTarget; relay: Relay; dev: Device; baseline: DeviceStats } | undefined;
  let relay: Relay;
  let dev: Device;
  beforeAll(async () => {
    const target = TARGET === "qemu" ? await startQemu() : await startNative();
    relay = await startRelay({ devicePath: target.path, seed: 15 });
    dev = await open(relay.hostPath, { timeoutMs: TIMEOUT_MS }).catch(async (e: unknown) => {
      await Promise.all([relay.stop(), target.stop()]);
      throw e;
    });
    rig = { target, relay, dev, baseline: await dev.stats() };
  }, 120_000);
  afterAll(async () => {
    await rig?.dev.close();
    await Promise.all([rig?.relay.stop(), rig?.target.stop()]);
  });

  /** Node's AES-256-GCM or ChaCha20-Poly1305 of `pt`. */
  function nodeSeal(name: "aes-256-gcm" | "chacha20-poly1305", key: Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array) {
    const c = createCipheriv(name, key, iv) as unknown as NodeAead; // 16-byte tags by default
    c.setAAD(aad);
    return { ct: new Uint8Array(Buffer.concat([c.update(pt), c.final()])), tag: new Uint8Array(c.getAuthTag()) };
  }

  it("the answer to an aead_update is lost: the resend gets the recorded plaintext chunk, the stream not advanced twice", async () => {
    const key = rand(32);
    const iv = rand(12);
    const aad = rand(20);
    const pt = rand(3 * dev.chunkSize + 100);
    const sealed = nodeSeal("aes-256-gcm", key, iv, aad, pt);
    const gcm = dev.cipher.AES.new(key, dev.cipher.MODE_GCM, iv, aad);
    const before = replayed(await dev.stats());
    let updates = 0;
    const lost = relay.dropAnswer((m) => m[1] === Op.aeadUpdate && ++updates === 2);
    const back = await gcm.decrypt(sealed.ct, sealed.tag);
    const { request, answer } = await lost;
    expect(answer.message?.[0]).toBe(request[0]);
    expect(answer.message?.[1]).toBe(0); // it ran: only its answer was lost
    expect(replayed(await dev.stats()) - before).toBe(1);
    expect(Buffer.compare(back, pt)).toBe(0);
    // the lost answer carried the second chunk's plaintext, as the resend did
    const chunk = (request[3] as Uint8Array).length;
    expect(hex(answer.message?.[2] as Uint8Array)).toBe(hex(pt.subarray(chunk, 2 * chunk)));
  });

  it("the answer to aead_finish is lost: the resend gets the recorded tag, Node's", async () => {
    const key = rand(32);
    const nonce = rand(12);
    const pt = rand(2 * dev.chunkSize + 7);
    const want = nodeSeal("chacha20-poly1305", key, nonce, new Uint8Array(0), pt);
    const c = dev.cipher.CHACHA20.new(key, dev.cipher.MODE_CHACHAPOLY, nonce);
    const before = replayed(await dev.stats());
    const lost = relay.dropAnswer((m) => m[1] === Op.aeadFinish);
    const [ct, tag] = await c.encrypt(pt);
    const { answer } = await lost;
    expect(replayed(await dev.stats()) - before).toBe(1);
    expect(hex(answer.message?.[2] as Uint8Array)).toBe(hex(want.tag));
    expect(hex(tag)).toBe(hex(want.tag));
    expect(Buffer.compare(ct, want.ct)).toBe(0);
  });

  it("an aead_update lost on its way in runs once, in order, when resent", async () => {
    const key = rand(32);
    const iv = rand(12);
    const pt = rand(3 * dev.chunkSize);
    const want = nodeSeal("aes-256-gcm", key, iv, new Uint8Array(0), pt);
    const gcm = dev.cipher.AES.new(key, dev.cipher.MODE_GCM, iv);
    let updates = 0;
    const dropped = relay.dropNext("up", (m) => m?.[1] === Op.aeadUpdate && ++updates === 2);
    const [ct, tag] = await gcm.encrypt(pt);
    await dropped;
    expect(hex(tag)).toBe(hex(want.tag));
    expect(Buffer.compare(ct, want.ct)).toBe(0);
  });

  it("ends at its handle and heap baseline", async () => {
    const st = await dev.stats();
    expect(st.handlesUsed).toBe(rig?.baseline.handlesUsed);
    expect(st.heapUsed).toBe(rig?.baseline.heapUsed);
  });
});
