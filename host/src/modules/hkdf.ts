// dev.hkdf: HKDF (RFC 5869) computed on the device. Argument order follows
// Node's crypto.hkdf(digest, ikm, salt, info, keylen).
//
// Every input travels in one request frame and the output in one response,
// so inputs together must fit mtu - request_overhead_max (ArgumentError
// otherwise) and `length` is limited by the device: above 255 * digest size
// it answers BadArgumentError, above what fits a frame TooLargeError.

import { ArgumentError, ProtocolError } from "../base/errors.js";
import type { HashAlgInfo } from "../base/protocol.generated.js";
import { Op } from "../base/protocol.generated.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { lookupHash } from "./hash.js";

/** Room for the alg id, the length and the extra byte-string heads. */
const EXTRA_ARG_BYTES = 24;

function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new ArgumentError(`hkdf: ${what} must be a Uint8Array`);
  return v;
}

function lengthArg(v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new ArgumentError("hkdf: length must be a non-negative integer");
  return v;
}

/** `dev.hkdf`: extract, expand, and both in one call. */
export class HkdfModule {
  /** @internal */
  constructor(private readonly ctx: SessionContext) {}

  /** HKDF-Extract: the pseudorandom key (digest size bytes). An empty salt means digest-size zero bytes. */
  async extract(digestmod: string, ikm: Uint8Array, salt: Uint8Array = new Uint8Array(0), opts: CallOptions = {}): Promise<Uint8Array> {
    const alg = lookupHash(digestmod);
    this.fits(bytes(ikm, "ikm"), bytes(salt, "salt"));
    return this.result(alg, await this.ctx.call(Op.hkdfExtract, [alg.id, salt, ikm], opts), alg.digestSize);
  }

  /** HKDF-Expand: `length` bytes of output keying material from a pseudorandom key (at least digest size bytes). */
  async expand(digestmod: string, prk: Uint8Array, info: Uint8Array, length: number, opts: CallOptions = {}): Promise<Uint8Array> {
    const alg = lookupHash(digestmod);
    const n = lengthArg(length);
    this.fits(bytes(prk, "prk"), bytes(info, "info"));
    return this.result(alg, await this.ctx.call(Op.hkdfExpand, [alg.id, prk, info, n], opts), n);
  }

  /** HKDF (extract then expand), as Node's `crypto.hkdfSync(digest, ikm, salt, info, keylen)`. */
  async hkdf(
    digestmod: string,
    ikm: Uint8Array,
    salt: Uint8Array,
    info: Uint8Array,
    length: number,
    opts: CallOptions = {},
  ): Promise<Uint8Array> {
    const alg = lookupHash(digestmod);
    const n = lengthArg(length);
    this.fits(bytes(ikm, "ikm"), bytes(salt, "salt"), bytes(info, "info"));
    return this.result(alg, await this.ctx.call(Op.hkdf, [alg.id, salt, ikm, info, n], opts), n);
  }

  private fits(...parts: Uint8Array[]): void {
    const total = parts.reduce((s, p) => s + p.length, 0);
    const room = this.ctx.chunkSize - EXTRA_ARG_BYTES;
    if (total > room) throw new ArgumentError(`hkdf: inputs of ${total} bytes exceed ${room} (MTU limit)`);
  }

  private result(alg: HashAlgInfo, r: unknown, n: number): Uint8Array {
    if (!(r instanceof Uint8Array) || r.length !== n) throw new ProtocolError(`hkdf(${alg.name}) returned a bad result`);
    return Uint8Array.from(r);
  }
}
