// Workloads against the device, through the SDK (host/src).
import * as crypto from "node:crypto";
import type { Device } from "../host/src/index.js";

export interface Sizes {
  seqN: number;
  pipeN: number;
  streamBytes: number;
  opsN: number;
  pkSeconds: number;
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function same(a: Uint8Array, b: Uint8Array, what: string): void {
  if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) throw new Error(`bench: ${what} does not match Node crypto`);
}

const sha256 = (d: Uint8Array) => new Uint8Array(crypto.createHash("sha256").update(d).digest());

/** One-shot sha256 of 32 bytes, checked against Node once; returns the call for timing. */
export async function oneshotCall(dev: Device): Promise<() => Promise<Uint8Array>> {
  const data = pattern(32, 1);
  same(await dev.hash.digest("sha256", data), sha256(data), "sha256(32 B)");
  return () => dev.hash.digest("sha256", data);
}

/** Runs `n` calls of fn with all of them issued at once (the RPC window paces them); calls per second. */
export async function pipelined(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  const batch = 4096;
  for (let off = 0; off < n; off += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - off) }, (_, i) => fn(off + i)));
  }
  return n / ((performance.now() - t0) / 1000);
}

/** One-shot HMAC-SHA256 (32-byte key and message), pipelined: ops/s. */
export async function hmacPipelined(dev: Device, n: number): Promise<number> {
  const key = pattern(32, 3);
  const msg = pattern(32, 4);
  same(await dev.hmac.digest(key, msg, "sha256"), new Uint8Array(crypto.createHmac("sha256", key).update(msg).digest()), "HMAC");
  return pipelined(n, () => dev.hmac.digest(key, msg, "sha256"));
}

/** Streaming sha256 of `total` bytes fed as update() pieces of `piece` bytes: payload bytes/s. Checked against Node. */
export async function streamSha256(dev: Device, total: number, piece: number): Promise<number> {
  const block = pattern(Math.min(total, 1 << 20), 5);
  const h = dev.hash.sha256();
  const ref = crypto.createHash("sha256");
  const t0 = performance.now();
  for (let off = 0; off < total; ) {
    const n = Math.min(block.length, total - off);
    const part = block.subarray(0, n);
    for (let o = 0; o < n; o += piece) h.update(part.subarray(o, Math.min(n, o + piece)));
    ref.update(part);
    off += n;
    // Let the queue drain a bit so a 64 MiB run does not hold 64 MiB of frames.
    if (dev.rpc.queuedCount > 512) await h.digest();
  }
  const got = await h.digest();
  const dt = (performance.now() - t0) / 1000;
  await h.close();
  same(got, new Uint8Array(ref.digest()), `streaming sha256 (${piece} B pieces)`);
  return total / dt;
}

/** AES-256-CTR over `total` bytes through the streaming cipher path (cipher_new/update/finish): bytes/s. Checked against Node. */
export async function streamAesCtr(dev: Device, total: number): Promise<number> {
  const key = pattern(32, 6);
  const iv = pattern(16, 7);
  const msg = pattern(Math.min(total, 16 << 20), 8);
  const c = dev.cipher.AES.new(key, dev.cipher.MODE_CTR, iv);
  const t0 = performance.now();
  let done = 0;
  let first: Uint8Array | undefined;
  while (done < total) {
    const n = Math.min(msg.length, total - done);
    const out = await c.encrypt(msg.subarray(0, n));
    first ??= out;
    done += n;
  }
  const dt = (performance.now() - t0) / 1000;
  const ref = crypto.createCipheriv("aes-256-ctr", key, iv).update(msg);
  same(first ?? new Uint8Array(), new Uint8Array(ref.subarray(0, first?.length ?? 0)), "AES-256-CTR");
  return total / dt;
}

/**
 * AES-256-GCM over `total` bytes as independent one-frame messages (each
 * cipher_auth_encrypt at the largest size one frame carries), pipelined:
 * bytes/s. One whole 64 MiB GCM message would need the device to buffer it
 * (its heap is 512 KiB native, 56 KiB STM32).
 */
export async function chunkedGcm(dev: Device, total: number): Promise<{ bytesPerSecond: number; messageSize: number }> {
  const key = pattern(32, 9);
  const iv = pattern(12, 10);
  const g = dev.cipher.AES.new(key, dev.cipher.MODE_GCM, iv);
  if (!("maxMessageSize" in g)) throw new Error("AES-GCM is not an AEAD cipher?");
  const size = g.maxMessageSize();
  const msg = pattern(size, 11);
  const [ct, tag] = await g.encrypt(msg);
  const ref = crypto.createCipheriv("aes-256-gcm", key, iv);
  same(ct, new Uint8Array(Buffer.concat([ref.update(msg), ref.final()])), "AES-256-GCM ciphertext");
  same(tag, new Uint8Array(ref.getAuthTag()), "AES-256-GCM tag");
  const n = Math.max(1, Math.round(total / size));
  const rate = await pipelined(n, () => g.encrypt(msg));
  return { bytesPerSecond: rate * size, messageSize: size };
}

export interface PkFigures {
  how: string;
  ecdsa_p256_sign_ops?: number;
  ecdsa_p256_verify_ops?: number;
  rsa2048_sign_ops?: number;
  note?: string;
}

/** The part of dev.pk (host/src/modules/pk.ts) the bench uses, typed here so the bench builds before and after it lands. */
interface PkKeyLike {
  signDigest(digest: Uint8Array, digestmod?: string): Promise<Uint8Array>;
  verifyDigest(digest: Uint8Array, signature: Uint8Array, digestmod?: string): Promise<boolean>;
  exportPublicKey(format?: "DER"): Promise<Uint8Array | string>;
  close(): Promise<void>;
}
interface PkLike {
  fromBuffer(data: Uint8Array): Promise<PkKeyLike>;
}

/** Sequential calls of fn for about `seconds` (at least 3): calls per second. */
async function sequentialRate(seconds: number, fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  while (n < 3 || performance.now() - t0 < seconds * 1000) {
    await fn();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

function verifiesWithNode(spki: Uint8Array | string, digestInput: Uint8Array, sig: Uint8Array, what: string): void {
  const key = crypto.createPublicKey(typeof spki === "string" ? spki : { key: Buffer.from(spki), format: "der", type: "spki" });
  if (!crypto.verify("sha256", digestInput, key, sig)) throw new Error(`bench: ${what} signature does not verify with Node crypto`);
}

/** ECDSA P-256 sign/verify and RSA-2048 sign (PKCS#1 v1.5) through dev.pk on imported keys, sequential (one op at a time). */
export async function pkWorkloads(dev: Device, seconds: number): Promise<PkFigures> {
  const pk = (dev as unknown as { pk?: PkLike }).pk;
  if (pk === undefined) return { how: "missing", note: "this SDK has no dev.pk" };
  const msg = pattern(64, 12);
  const digest = sha256(msg);
  const out: PkFigures = { how: "dev.pk, sequential" };
  try {
    // Keys made by Node and imported (pk_import): generating RSA-2048 on an
    // emulated STM32 would take minutes and is not what is timed here.
    const ecKey = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "der", type: "sec1" });
    const ec = await pk.fromBuffer(new Uint8Array(ecKey));
    try {
      const sig = await ec.signDigest(digest, "sha256");
      verifiesWithNode(await ec.exportPublicKey("DER"), msg, sig, "ECDSA P-256");
      out.ecdsa_p256_sign_ops = await sequentialRate(seconds, () => ec.signDigest(digest, "sha256"));
      out.ecdsa_p256_verify_ops = await sequentialRate(seconds, () => ec.verifyDigest(digest, sig, "sha256"));
    } finally {
      await ec.close();
    }
    const rsaKey = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "der", type: "pkcs1" });
    const rsa = await pk.fromBuffer(new Uint8Array(rsaKey));
    try {
      const sig = await rsa.signDigest(digest, "sha256");
      verifiesWithNode(await rsa.exportPublicKey("DER"), msg, sig, "RSA-2048");
      out.rsa2048_sign_ops = await sequentialRate(seconds, () => rsa.signDigest(digest, "sha256"));
    } finally {
      await rsa.close();
    }
  } catch (e) {
    out.note = `dev.pk failed: ${(e as Error).message}`;
  }
  return out;
}
