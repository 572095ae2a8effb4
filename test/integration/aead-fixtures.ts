// The AEAD algorithms the stream tests run (aead-stream.test.ts,
// aead-stream-more.test.ts: two files so the QEMU pass runs them side by
// side), Node's side of each (OpenSSL through node:crypto), and the round
// trip both files check per algorithm.
import { createCipheriv, createDecipheriv } from "node:crypto";
import { expect } from "vitest";
import { type AEADCipher, AuthFailedError, type Device, hex } from "../../host/src/index.js";
import { rand } from "./bytes.js";
import { SLOW_LINK } from "./target.js";

/** The message every algorithm streams: 1 MiB, far beyond what the device could buffer (114 KiB heap on the STM32). */
export const MESSAGE = 1 << 20;

export const GCM = 6;
export const CCM = 8;
export const CHACHAPOLY = 10;

export interface Alg {
  node: string;
  fam: "AES" | "ARIA" | "CHACHA20";
  mode: number;
  keyLen: number;
  ivLen: number;
  tagLen: number;
  /** Which direction carries the 1 MiB message on slow links (QEMU's UART takes about 40 s per MiB into the device). */
  slowBig: "encrypt" | "decrypt";
}

export const AES_GCM: Alg = { node: "aes-128-gcm", fam: "AES", mode: GCM, keyLen: 16, ivLen: 12, tagLen: 16, slowBig: "encrypt" };
// CCM: a 12-byte nonce leaves 3 bytes for the length (up to 16 MiB)
export const AES_CCM: Alg = { node: "aes-256-ccm", fam: "AES", mode: CCM, keyLen: 32, ivLen: 12, tagLen: 12, slowBig: "decrypt" };
export const ARIA_GCM: Alg = { node: "aria-128-gcm", fam: "ARIA", mode: GCM, keyLen: 16, ivLen: 12, tagLen: 16, slowBig: "decrypt" };
export const CHACHA20_POLY1305: Alg = {
  node: "chacha20-poly1305",
  fam: "CHACHA20",
  mode: CHACHAPOLY,
  keyLen: 32,
  ivLen: 12,
  tagLen: 16,
  slowBig: "encrypt",
};

const u8 = (b: Buffer) => new Uint8Array(b);
type NodeAead = ReturnType<typeof createCipheriv> & { setAAD(b: Uint8Array, o?: object): void; getAuthTag(): Buffer };
type NodeAeadD = ReturnType<typeof createDecipheriv> & { setAAD(b: Uint8Array, o?: object): void; setAuthTag(t: Uint8Array): void };

export function nodeSeal(a: Alg, key: Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array) {
  // biome-ignore lint/suspicious/noExplicitAny: Node's AEAD overloads are keyed by mode string literals
  const c = createCipheriv(a.node as any, key, iv, { authTagLength: a.tagLen } as any) as NodeAead;
  c.setAAD(aad, { plaintextLength: pt.length });
  const ct = u8(Buffer.concat([c.update(pt), c.final()]));
  return { ct, tag: u8(c.getAuthTag()) };
}

export function nodeOpen(a: Alg, key: Uint8Array, iv: Uint8Array, aad: Uint8Array, ct: Uint8Array, tag: Uint8Array): Uint8Array {
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const d = createDecipheriv(a.node as any, key, iv, { authTagLength: a.tagLen } as any) as NodeAeadD;
  d.setAuthTag(tag);
  d.setAAD(aad, { plaintextLength: ct.length });
  return u8(Buffer.concat([d.update(ct), d.final()]));
}

export function cipherFor(dev: Device, a: Alg, key: Uint8Array, iv: Uint8Array, aad: Uint8Array): AEADCipher {
  return dev.cipher[a.fam].new(key, a.mode as 6 | 8 | 10, iv, aad, { tagLength: a.tagLen });
}

export const flipped = (tag: Uint8Array, i: number) => {
  const t = Uint8Array.from(tag);
  t[i % t.length] = (t[i % t.length] as number) ^ 0x01;
  return t;
};

/**
 * Encrypts on the device and compares with Node, decrypts Node's ciphertext
 * on the device, then decrypts with one tag byte changed: AuthFailedError and
 * no plaintext (the call rejects; the SDK zeroes the chunks it held), as Node
 * refuses it too. Every target streams MESSAGE bytes through the checks that
 * matter most: the forged-tag decryption always runs over MESSAGE bytes; on a
 * slow link the other direction (slowBig says which is big) runs over a few
 * frames, which takes the same stream path.
 */
export async function aeadRoundTrip(dev: Device, a: Alg): Promise<void> {
  const key = rand(a.keyLen);
  const iv = rand(a.ivLen);
  const aad = rand(40);
  const small = 3 * dev.info.mtu + 17;
  const encLen = SLOW_LINK && a.slowBig === "decrypt" ? small : MESSAGE;
  const decLen = SLOW_LINK && a.slowBig === "encrypt" ? small : MESSAGE;
  const cipher = cipherFor(dev, a, key, iv, aad);
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

  // One tag byte changed, on the MESSAGE-byte ciphertext: typed error, no plaintext.
  const forged = encLen === MESSAGE ? { ct, tag } : sealed;
  expect(forged.ct.length).toBe(MESSAGE);
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
}
