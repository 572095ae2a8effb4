// AEAD messages of any length on every target (issue 15): GCM, CCM and
// ChaCha20-Poly1305 messages larger than one frame stream through a device
// AEAD stream (aead_new / aead_update / aead_finish, spec.md 7.1) in constant
// device memory, so a 1 MiB message works on the STM32 image (56 KiB heap).
// * AES-GCM, AES-CCM, ARIA-GCM and ChaCha20-Poly1305 (built the
//   python-mbedtls way, CHACHA20.new(key, MODE_CHACHAPOLY, nonce)) over
//   MESSAGE bytes: encryption equals Node's crypto (OpenSSL), and Node's
//   ciphertext decrypts back on the device. On QEMU's slow UART the 1 MiB run
//   is one direction per algorithm (encryption for two, decryption for the
//   other two: about 40 s each); the other direction runs over a few frames.
// * One tag byte changed: AuthFailedError and no plaintext (the call
//   rejects; the SDK zeroes the chunks it held); on slow links over the
//   few-frame message (a stream checks the tag the same way at any length).
// * The device heap while a stream runs: in use, within STREAM_HEAP_MAX of
//   the baseline (the stream object and its key schedule) after every
//   update, the same after the first and the last; the peak (one update's
//   output on top) within mtu + STREAM_HEAP_MAX.
// * Protocol edges: data beyond the announced length, a finish before it,
//   a buffered-context op on a stream handle (and back), XTS on aead_new.
import { createCipheriv, createDecipheriv } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Op } from "../../host/src/base/protocol.generated.js";
import {
  type AEADCipher,
  AuthFailedError,
  BadArgumentError,
  type Device,
  type DeviceStats,
  hex,
  WrongHandleTypeError,
} from "../../host/src/index.js";
import { rand } from "./bytes.js";
import { useSession } from "./session.js";
import { SLOW_LINK } from "./target.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
let open: DeviceStats;
beforeAll(async () => {
  dev = session.dev;
  open = await dev.stats();
});

const MESSAGE = 1 << 20;
/** Heap a stream holds between requests: its object and the block cipher's key schedule (bytes). */
const STREAM_HEAP_MAX = 1024;

const u8 = (b: Buffer) => new Uint8Array(b);
const GCM = 6;
const CCM = 8;
const CHACHAPOLY = 10;

interface Alg {
  node: string;
  fam: "AES" | "ARIA" | "CHACHA20";
  mode: number;
  keyLen: number;
  ivLen: number;
  tagLen: number;
  /** Which direction carries the 1 MiB message on slow links. */
  slowBig: "encrypt" | "decrypt";
}

const ALGS: Alg[] = [
  { node: "aes-128-gcm", fam: "AES", mode: GCM, keyLen: 16, ivLen: 12, tagLen: 16, slowBig: "encrypt" },
  // CCM: a 12-byte nonce leaves 3 bytes for the length (up to 16 MiB)
  { node: "aes-256-ccm", fam: "AES", mode: CCM, keyLen: 32, ivLen: 12, tagLen: 12, slowBig: "decrypt" },
  { node: "aria-128-gcm", fam: "ARIA", mode: GCM, keyLen: 16, ivLen: 12, tagLen: 16, slowBig: "decrypt" },
  { node: "chacha20-poly1305", fam: "CHACHA20", mode: CHACHAPOLY, keyLen: 32, ivLen: 12, tagLen: 16, slowBig: "encrypt" },
];

type NodeAead = ReturnType<typeof createCipheriv> & { setAAD(b: Uint8Array, o?: object): void; getAuthTag(): Buffer };
type NodeAeadD = ReturnType<typeof createDecipheriv> & { setAAD(b: Uint8Array, o?: object): void; setAuthTag(t: Uint8Array): void };

function nodeSeal(a: Alg, key: Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array) {
  // biome-ignore lint/suspicious/noExplicitAny: Node's AEAD overloads are keyed by mode string literals
  const c = createCipheriv(a.node as any, key, iv, { authTagLength: a.tagLen } as any) as NodeAead;
  c.setAAD(aad, { plaintextLength: pt.length });
  const ct = u8(Buffer.concat([c.update(pt), c.final()]));
  return { ct, tag: u8(c.getAuthTag()) };
}

function nodeOpen(a: Alg, key: Uint8Array, iv: Uint8Array, aad: Uint8Array, ct: Uint8Array, tag: Uint8Array): Uint8Array {
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const d = createDecipheriv(a.node as any, key, iv, { authTagLength: a.tagLen } as any) as NodeAeadD;
  d.setAuthTag(tag);
  d.setAAD(aad, { plaintextLength: ct.length });
  return u8(Buffer.concat([d.update(ct), d.final()]));
}

function cipherFor(a: Alg, key: Uint8Array, iv: Uint8Array, aad: Uint8Array): AEADCipher {
  return dev.cipher[a.fam].new(key, a.mode as 6 | 8 | 10, iv, aad, { tagLength: a.tagLen });
}

const flipped = (tag: Uint8Array, i: number) => {
  const t = Uint8Array.from(tag);
  t[i % t.length] = (t[i % t.length] as number) ^ 0x01;
  return t;
};

describe(`AEAD messages of ${MESSAGE} bytes stream through the device`, () => {
  it.each(ALGS.map((a) => [a.node, a] as const))(
    "%s equals Node's, and one changed tag byte releases nothing",
    async (_n, a) => {
      const key = rand(a.keyLen);
      const iv = rand(a.ivLen);
      const aad = rand(40);
      const small = 3 * dev.info.mtu + 17;
      const encLen = SLOW_LINK && a.slowBig === "decrypt" ? small : MESSAGE;
      const decLen = SLOW_LINK && a.slowBig === "encrypt" ? small : MESSAGE;
      const cipher = cipherFor(a, key, iv, aad);
      expect(Math.min(encLen, decLen)).toBeGreaterThan(cipher.maxMessageSize());

      const pt = rand(encLen);
      const want = nodeSeal(a, key, iv, aad, pt);
      const [ct, tag] = await cipher.encrypt(pt);
      expect(hex(tag)).toBe(hex(want.tag));
      expect(Buffer.compare(ct, want.ct), `${a.node} ciphertext`).toBe(0);

      const pt2 = encLen === decLen ? pt : rand(decLen);
      const sealed = encLen === decLen ? want : nodeSeal(a, key, iv, aad, pt2);
      const back = await cipher.decrypt(sealed.ct, sealed.tag);
      expect(Buffer.compare(back, pt2), `${a.node} decryption`).toBe(0);

      // One tag byte changed: typed error, no plaintext (slow links: on the shorter message).
      const forged = decLen <= encLen ? sealed : { ct, tag };
      const bad = flipped(forged.tag, 5);
      let got: Uint8Array | undefined;
      const err = await cipher.decrypt(forged.ct, bad).then(
        (r) => {
          got = r;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AuthFailedError);
      expect(got).toBeUndefined();
      expect(() => nodeOpen(a, key, iv, aad, forged.ct, bad)).toThrow();
    },
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
    const a = ALGS[3] as Alg;
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
