// AEAD messages of any length on every target (issue 15): GCM, CCM and
// ChaCha20-Poly1305 messages larger than one frame stream through a device
// AEAD stream (aead_new / aead_update / aead_finish, spec.md 7.1) in constant
// device memory, so a 1 MiB message works on the STM32 image (114 KiB heap).
// * AES-GCM and AES-CCM here, ARIA-GCM and ChaCha20-Poly1305 in
//   aead-stream-more.test.ts (aead-fixtures.ts has the round trip): over
//   MESSAGE bytes, encryption equals Node's crypto (OpenSSL) and Node's
//   ciphertext decrypts back on the device; with one tag byte changed the
//   MESSAGE-byte decryption is AuthFailedError and releases no plaintext.
//   On QEMU's slow UART (about 40 s per MiB into the device) one of the two
//   good directions runs over a few frames instead.
// * ChaCha20-Poly1305 built the python-mbedtls way,
//   CHACHA20.new(key, MODE_CHACHAPOLY, nonce).
// * The device heap while a stream runs: in use, within STREAM_HEAP_MAX of
//   the baseline (the stream object and its key schedule) after every
//   update, the same after the first and the last; the peak (one update's
//   output on top) within mtu + STREAM_HEAP_MAX.
// * Protocol edges: data beyond the announced length, a finish before it,
//   a buffered-context op on a stream handle (and back), XTS on aead_new.
import { createCipheriv } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Op } from "../../host/src/base/protocol.generated.js";
import { AuthFailedError, BadArgumentError, type Device, type DeviceStats, hex, WrongHandleTypeError } from "../../host/src/index.js";
import { AES_CCM, AES_GCM, aeadRoundTrip, CHACHA20_POLY1305, flipped, MESSAGE, nodeSeal } from "./aead-fixtures.js";
import { rand } from "./bytes.js";
import { useSession } from "./session.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
let open: DeviceStats;
beforeAll(async () => {
  dev = session.dev;
  open = await dev.stats();
});

/** Heap a stream holds between requests: its object and the block cipher's key schedule (bytes). */
const STREAM_HEAP_MAX = 1024;

type NodeAead = ReturnType<typeof createCipheriv> & { getAuthTag(): Buffer };

describe(`AEAD messages of ${MESSAGE} bytes stream through the device (ARIA-GCM, ChaCha20-Poly1305: aead-stream-more.test.ts)`, () => {
  it.each([AES_GCM, AES_CCM].map((a) => [a.node, a] as const))(
    "%s equals Node's, and one changed tag byte releases nothing",
    (_n, a) => aeadRoundTrip(dev, a),
    300_000,
  );

  it("the heap in use stays within STREAM_HEAP_MAX of the baseline, its peak within mtu + STREAM_HEAP_MAX", async () => {
    // After the 1 MiB streams above: the device's all-time peak shows no stream ever held more.
    const after = await dev.stats();
    const bound = open.heapUsed + dev.info.mtu + STREAM_HEAP_MAX;
    expect(after.heapPeak).toBeLessThanOrEqual(Math.max(open.heapPeak, bound));
    // And while a stream runs (raw ops, stats between the updates): constant.
    const h = dev._nextHandle();
    const key = rand(16);
    const iv = rand(12);
    const chunk = dev.chunkSize;
    const chunks = 12;
    const data = rand(chunks * chunk);
    const calls: Promise<unknown>[] = [dev.rpc.call(Op.aeadNew, [h, "ARIA", "GCM", key, iv, true, new Uint8Array(0), 16, data.length])];
    const heap: Promise<DeviceStats>[] = [dev.stats()];
    for (let i = 0; i < chunks; i++) {
      calls.push(dev.rpc.call(Op.aeadUpdate, [h, data.subarray(i * chunk, (i + 1) * chunk)]));
      heap.push(dev.stats());
    }
    calls.push(dev.rpc.call(Op.aeadFinish, [h]));
    const results = await Promise.all(calls);
    const used = (await Promise.all(heap)).map((s) => s.heapUsed - open.heapUsed);
    await dev.rpc.call(Op.free, [h]);
    expect(used[0]).toBeGreaterThan(0);
    expect(Math.max(...used)).toBeLessThanOrEqual(STREAM_HEAP_MAX);
    expect(new Set(used.slice(1)).size, `heap in use after each update: ${used.join(", ")}`).toBe(1);
    const e = createCipheriv("aria-128-gcm", key, iv) as NodeAead;
    const want = Buffer.concat([e.update(data), e.final()]);
    expect(Buffer.compare(Buffer.concat(results.slice(1, -1) as Uint8Array[]), want)).toBe(0);
    expect(hex(results[results.length - 1] as Uint8Array)).toBe(hex(e.getAuthTag()));
    const st = await dev.stats();
    expect(st.heapUsed).toBe(open.heapUsed);
    expect(st.heapPeak).toBeLessThanOrEqual(Math.max(open.heapPeak, bound));
  });
});

describe("CHACHA20.new(key, MODE_CHACHAPOLY, nonce), as python-mbedtls builds ChaCha20-Poly1305", () => {
  it("encrypts and decrypts equal to Node's chacha20-poly1305; CHACHA20_POLY1305 stays an alias", async () => {
    const a = CHACHA20_POLY1305;
    const key = rand(32);
    const nonce = rand(12);
    const aad = rand(13);
    const c = dev.cipher.CHACHA20.new(key, dev.cipher.MODE_CHACHAPOLY, nonce, aad);
    expect(c.name).toBe("CHACHA20-POLY1305");
    expect(c.tagLength).toBe(16);
    for (const n of [0, 1, 64, 1000]) {
      const pt = rand(n);
      const want = nodeSeal(a, key, nonce, aad, pt);
      const [ct, tag] = await c.encrypt(pt);
      expect(hex(ct)).toBe(hex(want.ct));
      expect(hex(tag)).toBe(hex(want.tag));
      expect(hex(await c.decrypt(want.ct, want.tag))).toBe(hex(pt));
      await expect(c.decrypt(want.ct, flipped(want.tag, n))).rejects.toBeInstanceOf(AuthFailedError);
      const alias = dev.cipher.CHACHA20_POLY1305.new(key, dev.cipher.MODE_CHACHAPOLY, nonce, aad);
      expect(hex((await alias.encrypt(pt))[1])).toBe(hex(want.tag));
    }
    // The default mode of CHACHA20 stays the stream cipher.
    const stream = dev.cipher.CHACHA20.new(key, undefined, nonce);
    expect(stream.name).toBe("CHACHA20");
  });
});

describe("AEAD stream protocol edges", () => {
  const newStream = (h: number, encrypt: boolean, length: number) =>
    dev.rpc.call(Op.aeadNew, [h, "AES", "CCM", rand(16), rand(12), encrypt, new Uint8Array(0), 16, length]);

  it("data beyond the announced length, or a finish before it, is BadArgumentError and ends the stream", async () => {
    const h = dev._nextHandle();
    await newStream(h, true, 10);
    await dev.rpc.call(Op.aeadUpdate, [h, rand(6)]);
    const over = await dev.rpc.call(Op.aeadUpdate, [h, rand(5)]).catch((e: unknown) => e);
    expect(over).toBeInstanceOf(BadArgumentError);
    expect((over as Error).message).toBe(`AEAD stream ${h}: 6 + 5 bytes exceed the announced 10`);
    await expect(dev.rpc.call(Op.aeadFinish, [h])).rejects.toThrow(`AEAD stream ${h} failed earlier: free it`);
    await dev.rpc.call(Op.free, [h]);
    const g = dev._nextHandle();
    await newStream(g, false, 10);
    await dev.rpc.call(Op.aeadUpdate, [g, rand(4)]);
    await expect(dev.rpc.call(Op.aeadFinish, [g, rand(16)])).rejects.toThrow(`AEAD stream ${g} got 4 of the announced 10 bytes`);
    await expect(dev.rpc.call(Op.aeadUpdate, [g, rand(6)])).rejects.toBeInstanceOf(BadArgumentError);
    await dev.rpc.call(Op.free, [g]);
  });

  it("stream and buffered-context handles do not mix; XTS has no stream", async () => {
    const h = dev._nextHandle();
    await newStream(h, true, 0);
    await expect(dev.rpc.call(Op.cipherBufUpdate, [h, rand(4)])).rejects.toThrow(
      `handle ${h} is an AEAD stream: use aead_update/aead_finish`,
    );
    expect(hex((await dev.rpc.call(Op.aeadFinish, [h])) as Uint8Array)).toHaveLength(32);
    await expect(dev.rpc.call(Op.aeadFinish, [h])).rejects.toThrow(`AEAD stream ${h} is finished`);
    await dev.rpc.call(Op.free, [h]);
    const b = dev._nextHandle();
    await dev.rpc.call(Op.cipherBufNew, [b, "AES", "GCM", rand(16), rand(12), true, new Uint8Array(0), 16, 0]);
    const e = await dev.rpc.call(Op.aeadUpdate, [b, rand(4)]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WrongHandleTypeError);
    expect((e as Error).message).toBe(`handle ${b} is a buffered cipher context: use cipher_buf_update/finish/read`);
    await dev.rpc.call(Op.free, [b]);
    const x = dev._nextHandle();
    await expect(dev.rpc.call(Op.aeadNew, [x, "AES", "XTS", rand(32), rand(16), true, new Uint8Array(0), 0, 32])).rejects.toThrow(
      "XTS is not an AEAD mode: use cipher_crypt",
    );
  });
});
