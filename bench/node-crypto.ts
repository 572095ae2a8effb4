// Node `crypto` in-process: context figures for the same operations.
import * as crypto from "node:crypto";

export interface ComputeFigures {
  sha256_32B_ops: number;
  sha256_MBps: number;
  hmac_sha256_32B_ops: number;
  aes256_gcm_MBps: number;
  aes256_ctr_MBps: number;
  ecdsa_p256_sign_ops: number;
  ecdsa_p256_verify_ops: number;
  rsa2048_sign_ops: number;
}

/** Calls per second of fn, run in batches for about `seconds`. */
function rate(seconds: number, fn: () => void): number {
  const t0 = performance.now();
  let n = 0;
  let t = t0;
  do {
    for (let i = 0; i < 8; i++) fn();
    n += 8;
    t = performance.now();
  } while (t - t0 < seconds * 1000);
  return n / ((t - t0) / 1000);
}

export function nodeCrypto(seconds: number): ComputeFigures {
  const msg = Buffer.alloc(32, 1);
  const key = crypto.randomBytes(32);
  const bulk = Buffer.alloc(16384, 7);
  const iv = Buffer.alloc(12);
  const ec = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const rsa = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const sig = crypto.sign("sha256", msg, ec.privateKey);
  return {
    sha256_32B_ops: rate(seconds, () => crypto.createHash("sha256").update(msg).digest()),
    sha256_MBps: (rate(seconds, () => crypto.createHash("sha256").update(bulk).digest()) * bulk.length) / 1e6,
    hmac_sha256_32B_ops: rate(seconds, () => crypto.createHmac("sha256", key).update(msg).digest()),
    aes256_gcm_MBps:
      (rate(seconds, () => {
        const c = crypto.createCipheriv("aes-256-gcm", key, iv);
        c.update(bulk);
        c.final();
        c.getAuthTag();
      }) *
        bulk.length) /
      1e6,
    aes256_ctr_MBps: (() => {
      const c = crypto.createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
      return (rate(seconds, () => c.update(bulk)) * bulk.length) / 1e6;
    })(),
    ecdsa_p256_sign_ops: rate(seconds, () => crypto.sign("sha256", msg, ec.privateKey)),
    ecdsa_p256_verify_ops: rate(seconds, () => crypto.verify("sha256", msg, ec.publicKey, sig)),
    rsa2048_sign_ops: rate(seconds, () => crypto.sign("sha256", msg, rsa.privateKey)),
  };
}
