// dev.kdf: password-based key derivation on the device. pbkdf2() is PBKDF2
// with HMAC (PKCS #5 v2.1, RFC 8018), argument order as Python's
// hashlib.pbkdf2_hmac(hash_name, password, salt, iterations, dklen) and
// Node's crypto.pbkdf2Sync(password, salt, iterations, keylen, digest) minus
// the reordering: (hash, password, salt, iterations, length).
//
// One request, one response: password and salt together must fit a frame
// (ArgumentError otherwise), iterations are 1..pbkdf2_iterations_max and the
// length 0..pbkdf2_length_max (ArgumentError before anything is sent). A long
// run keeps its call alive with busy events (the device sends one about every
// busy_interval_ms), so the call's timeout bounds the silence, not the run:
// the device serves nothing else meanwhile.

import { ArgumentError, ProtocolError } from "../base/errors.js";
import { Limits, Op } from "../base/protocol.generated.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { lookupHash } from "./hash.js";

/** Room for the hash id, iterations, length and the byte-string heads. */
const EXTRA_ARG_BYTES = 32;

function intIn(v: unknown, lo: number, hi: number, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < lo || v > hi) {
    throw new ArgumentError(`pbkdf2: ${what} must be an integer in ${lo}..${hi}, got ${String(v)}`);
  }
  return v;
}

/** `dev.kdf`: key derivation from passwords. */
export class KdfModule {
  /** @internal */
  constructor(private readonly ctx: SessionContext) {}

  /** Most iterations pbkdf2() runs (pbkdf2_iterations_max, 2^24). */
  get maxIterations(): number {
    return Limits.pbkdf2IterationsMax;
  }

  /** Longest output pbkdf2() gives, in bytes (pbkdf2_length_max, and what one response frame carries). */
  get maxLength(): number {
    return Math.min(Limits.pbkdf2LengthMax, this.ctx.chunkSize);
  }

  /**
   * PBKDF2-HMAC over `hash` (any digest of dev.hash, e.g. "sha256"): `length`
   * bytes derived from `password` and `salt` with `iterations` rounds, equal
   * to Node's `pbkdf2Sync(password, salt, iterations, length, hash)`.
   */
  async pbkdf2(
    hash: string,
    password: Uint8Array,
    salt: Uint8Array,
    iterations: number,
    length: number,
    opts: CallOptions = {},
  ): Promise<Uint8Array> {
    const alg = lookupHash(hash);
    if (!(password instanceof Uint8Array)) throw new ArgumentError("pbkdf2: password must be a Uint8Array");
    if (!(salt instanceof Uint8Array)) throw new ArgumentError("pbkdf2: salt must be a Uint8Array");
    const n = intIn(iterations, 1, Limits.pbkdf2IterationsMax, "iterations");
    const len = intIn(length, 0, this.maxLength, "length");
    const room = this.ctx.chunkSize - EXTRA_ARG_BYTES;
    if (password.length + salt.length > room) {
      throw new ArgumentError(`pbkdf2: password and salt of ${password.length + salt.length} bytes exceed ${room} (MTU limit)`);
    }
    const r = await this.ctx.call(Op.kdfPbkdf2, [alg.id, password, salt, n, len], opts);
    if (!(r instanceof Uint8Array) || r.length !== len) throw new ProtocolError(`kdf_pbkdf2(${alg.name}) returned a bad result`);
    return Uint8Array.from(r);
  }
}
