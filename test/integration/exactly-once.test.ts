// Exactly once (spec §6): a request whose answer is lost after the device
// ran it is resent under its id, byte for byte, and the device answers it
// from its record instead of running it again. The fault relay drops
// exactly the answer to one chosen request (relay.dropAnswer); the call
// still succeeds, with the first computation's result:
// * pk_sign, ECDSA P-256 and RSA-PSS: the signature is the one the dropped
//   answer carried (PSS is randomised: a second run would differ; this
//   firmware's ECDSA is deterministic, RFC 6979, so there rx_replayed is
//   the proof that it did not run twice);
// * rng_bytes: the very bytes the dropped answer carried;
// * hash_update: the digest is Node's of the data fed once;
// * cipher_update (an AES-CTR stream): the output is Node's, the keystream
//   not advanced twice.
// Each time the device's `rx_replayed` counter goes up by one. And a stream
// update whose request is lost on its way in runs once, in order: a new
// session sends order-dependent requests alone until the line has shown it
// is clean, so nothing that depends on the lost one ran before its resend.
import { createCipheriv, createHash, generateKeyPairSync, verify as nodeVerify } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Relay, startRelay } from "../../hil/fault-relay.js";
import { Op } from "../../host/src/base/protocol.generated.js";
import { type Cipher, type Device, type DeviceStats, hex, open } from "../../host/src/index.js";
import { type NativeTarget, startNative } from "../../host/src/targets/native.js";
import { type QemuTarget, startQemu } from "../../host/src/targets/qemu.js";
import { rand } from "./bytes.js";
import { TARGET } from "./target.js";

// A dropped answer shows no damaged frame: the attempt timer (a quarter of this) finds it.
const TIMEOUT_MS = TARGET === "qemu" ? 8000 : 4000;
const u8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.length);
const replayed = (s: DeviceStats) => s.rxReplayed as number;

describe.runIf(TARGET !== "port")(`a lost answer is answered again from the device's record (${TARGET})`, () => {
  let target: NativeTarget | QemuTarget;
  let relay: Relay;
  let dev: Device;
  let baseline: DeviceStats;

  beforeAll(async () => {
    target = TARGET === "qemu" ? await startQemu() : await startNative();
    relay = await startRelay({ devicePath: target.path, seed: 1 });
    dev = await open(relay.hostPath, { timeoutMs: TIMEOUT_MS });
    baseline = await dev.stats();
  }, 120_000);
  afterAll(async () => {
    try {
      if (dev) {
        const st = await dev.stats();
        expect(st.handlesUsed).toBe(baseline.handlesUsed);
        expect(st.heapUsed).toBe(baseline.heapUsed);
      }
    } finally {
      await dev?.close();
      await relay?.stop();
      await target?.stop();
    }
  });

  /**
   * Runs `work` while the answer to the first request `op` selects is
   * dropped; returns work's result, the dropped answer's result item and
   * how many requests the device answered from its record meanwhile.
   */
  async function losingAnswer<T>(select: (req: unknown[]) => boolean, work: () => Promise<T>) {
    const before = replayed(await dev.stats());
    const lost = relay.dropAnswer(select);
    const result = await work();
    const { request, answer } = await lost;
    expect(answer.message?.[0]).toBe(request[0]);
    expect(answer.message?.[1]).toBe(0); // it ran, and succeeded: only its answer was lost
    const st = await dev.stats();
    return { result, dropped: answer.message?.[2], replays: replayed(st) - before };
  }

  it("pk_sign, ECDSA P-256: the signature is the first run's (answered from the record), and Node verifies it", async () => {
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await using key = await dev.pk.ECC.fromDER(u8(ec.privateKey.export({ type: "sec1", format: "der" }) as Buffer));
    const msg = rand(100);
    const r = await losingAnswer(
      (m) => m[1] === Op.pkSign,
      () => key.sign(msg, "sha256"),
    );
    expect(r.replays).toBe(1);
    expect(hex(r.result)).toBe(hex(r.dropped as Uint8Array));
    expect(nodeVerify("sha256", msg, { key: ec.publicKey, dsaEncoding: "der" }, r.result)).toBe(true);
  });

  it("pk_sign, RSA-PSS: the signature is the first run's (a second run would differ: PSS salts)", async () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    await using key = await dev.pk.RSA.fromDER(u8(rsa.privateKey.export({ type: "pkcs1", format: "der" }) as Buffer));
    const msg = rand(64);
    const r = await losingAnswer(
      (m) => m[1] === Op.pkSign,
      () => key.sign(msg, "sha256", { scheme: "pss" }),
    );
    expect(r.replays).toBe(1);
    expect(hex(r.result)).toBe(hex(r.dropped as Uint8Array));
    const pss = { key: rsa.publicKey, padding: 6 /* RSA_PKCS1_PSS_PADDING */ };
    expect(nodeVerify("sha256", msg, pss, r.result)).toBe(true);
    expect(hex(await key.sign(msg, "sha256", { scheme: "pss" }))).not.toBe(hex(r.result));
  });

  it("rng_bytes: the same bytes the dropped answer carried", async () => {
    const r = await losingAnswer(
      (m) => m[1] === Op.rngBytes,
      () => dev.random.randbytes(48),
    );
    expect(r.replays).toBe(1);
    expect(r.result.length).toBe(48);
    expect(hex(r.result)).toBe(hex(r.dropped as Uint8Array));
  });

  it("hash_update: the digest is Node's of the data fed once, and the context goes on where it was", async () => {
    // parts of a frame's worth each: the SDK streams them through a device context
    const chunk = dev.info.mtu - 48;
    const parts = [rand(chunk), rand(chunk), rand(chunk)];
    const want = createHash("sha256");
    for (const p of parts) want.update(p);
    const h = dev.hash.new("sha256");
    try {
      let updates = 0;
      const r = await losingAnswer(
        (m) => m[1] === Op.hashUpdate && ++updates === 2,
        () => {
          for (const p of parts) h.update(p);
          return h.digest();
        },
      );
      expect(r.replays).toBe(1);
      expect(r.dropped).toBeNull();
      expect(hex(r.result)).toBe(want.copy().digest("hex"));
      h.update(parts[0] as Uint8Array);
      want.update(parts[0] as Uint8Array);
      expect(hex(await h.digest())).toBe(want.digest("hex"));
    } finally {
      await h.close();
    }
  });

  it("hash_update whose request is lost: its resend runs it once, in order", async () => {
    expect(dev.rpc.careful).toBe(true);
    const chunk = dev.info.mtu - 48;
    const parts = [rand(chunk), rand(chunk), rand(chunk)];
    const want = createHash("sha256");
    for (const p of parts) want.update(p);
    const before = replayed(await dev.stats());
    const h = dev.hash.new("sha256");
    try {
      let updates = 0;
      const lost = relay.dropNext("up", (m) => m?.[1] === Op.hashUpdate && ++updates === 2);
      for (const p of parts) h.update(p);
      expect(hex(await h.digest())).toBe(want.digest("hex"));
      expect((await lost).message?.[3]).toEqual(parts[1]);
      expect(replayed(await dev.stats())).toBe(before); // it never ran before: nothing to replay
    } finally {
      await h.close();
    }
  });

  it("cipher_update in an AES-CTR stream: the output is Node's, the keystream not advanced twice", async () => {
    const key = rand(32);
    const iv = rand(16);
    const c = dev.cipher.AES.new(key, dev.cipher.MODE_CTR, iv) as Cipher;
    // three cipher_update requests or more: the stream goes through a device context
    const chunk = dev.info.mtu - 48;
    const data = rand(3 * chunk);
    let updates = 0;
    const r = await losingAnswer(
      (m) => m[1] === Op.cipherUpdate && ++updates === 2,
      () => c.encrypt(data),
    );
    expect(r.replays).toBe(1);
    expect((r.dropped as Uint8Array).length).toBeGreaterThan(0);
    const nc = createCipheriv("aes-256-ctr", key, iv);
    expect(hex(r.result)).toBe(hex(Buffer.concat([nc.update(data), nc.final()])));
  });
});
