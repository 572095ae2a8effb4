// dev.keywrap: NIST key wrap (SP 800-38F) on the device, KW (RFC 3394) and
// KWP (RFC 5649), under an AES-128/192/256 key-encryption key (KEK) that is
// a device-held SymmetricKey (the point: a KEK already on the device) or
// plain bytes (spec.md 7.7).
//
//   const wrapped = await dev.keywrap.wrap(kek, keyBytes, { mode: "KWP" });
//   const bytes = await dev.keywrap.unwrap(kek, wrapped, { mode: "KWP" });
//   const key = await dev.keywrap.unwrap(kek, wrapped, { into: "key" });  // SymmetricKey
//   const ecc = await dev.keywrap.unwrap(kek, wrappedPkcs8, { mode: "KWP", into: "pk" }); // RSA | ECC
//
// With `into`, the unwrapped key becomes a device object (and, with `slot`,
// is stored in a key slot too): its bytes never cross the line. A wrap that
// fails its integrity check (wrong KEK or mode, any byte altered) is
// AuthFailedError, and the device answers nothing of it.

import { ArgumentError, ProtocolError } from "../base/errors.js";
import { KeywrapMode, Op } from "../base/protocol.generated.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { _adoptSymmetric, SymmetricKey, withKey } from "./keys.js";
import { _adoptKey } from "./pk.js";
import { type ECC, pkFlags, type RSA } from "./pk-key.js";
import { SlotsModule } from "./slots.js";

/** KW (RFC 3394): a multiple of 8 bytes, at least 16. KWP (RFC 5649): any length from 1 byte, padded. */
export type KeyWrapMode = "KW" | "KWP";

export interface KeyWrapOptions extends CallOptions {
  /** Default "KW". */
  mode?: KeyWrapMode;
}

/** Where `unwrap` puts the key: a device-held key object instead of bytes. */
export interface UnwrapIntoOptions extends KeyWrapOptions {
  /** "key": a SymmetricKey (1..64 bytes). "pk": an RSA or ECC private key from the unwrapped DER (PKCS#8, SEC1, PKCS#1). */
  into: "key" | "pk";
  /** "pk" only: whether the private part may leave the device later (default false: a wrapped key stays protected). */
  exportable?: boolean;
  /** Also store the key in this slot (dev.slots.store with `label` and `overwrite`); the object is returned too. */
  slot?: number;
  label?: string;
  overwrite?: boolean;
}

/** Room for the KEK handle or bytes, the mode, the flags and the byte-string heads. */
const EXTRA_ARG_BYTES = 64;
const SEMIBLOCK = 8;

function modeId(mode: unknown): number {
  if (mode === undefined || mode === "KW") return KeywrapMode.kw;
  if (mode === "KWP") return KeywrapMode.kwp;
  throw new ArgumentError(`keywrap: mode must be "KW" or "KWP", got ${JSON.stringify(mode)}`);
}

function checkKek(kek: unknown): Uint8Array | SymmetricKey {
  const size = kek instanceof SymmetricKey ? kek.size : kek instanceof Uint8Array ? kek.length : undefined;
  if (size === undefined) throw new ArgumentError("keywrap: the KEK must be a SymmetricKey or a Uint8Array");
  if (size !== 16 && size !== 24 && size !== 32)
    throw new ArgumentError(`keywrap: the KEK must be an AES key of 16, 24 or 32 bytes, got ${size}`);
  return kek as Uint8Array | SymmetricKey;
}

function checkBytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new ArgumentError(`keywrap: ${what} must be a Uint8Array`);
  return v;
}

/** `dev.keywrap`: wrap and unwrap keys (NIST KW / KWP) under a KEK. */
export class KeyWrapModule {
  private readonly slots: SlotsModule;

  /** @internal */
  constructor(private readonly ctx: SessionContext) {
    this.slots = new SlotsModule(ctx);
  }

  /** Wraps key bytes under the KEK: KW gives key.length + 8 bytes, KWP the length padded to 8, + 8. */
  async wrap(kek: Uint8Array | SymmetricKey, key: Uint8Array, opts: KeyWrapOptions = {}): Promise<Uint8Array> {
    const k = checkKek(kek);
    const mode = modeId(opts.mode);
    const data = checkBytes(key, "the key to wrap");
    if (mode === KeywrapMode.kw && (data.length < 2 * SEMIBLOCK || data.length % SEMIBLOCK !== 0))
      throw new ArgumentError(`keywrap: KW wraps a multiple of 8 bytes, at least 16, got ${data.length} (KWP takes any length)`);
    if (data.length < 1) throw new ArgumentError("keywrap: KWP wraps at least 1 byte, got 0");
    this.fits(data);
    const expected = Math.ceil(data.length / SEMIBLOCK) * SEMIBLOCK + SEMIBLOCK;
    const r = await withKey(this.ctx, k, (kk) => this.ctx.call(Op.keywrapWrap, [kk, mode, data], opts));
    if (!(r instanceof Uint8Array) || r.length !== expected) throw new ProtocolError("keywrap_wrap returned a bad result");
    return Uint8Array.from(r);
  }

  /**
   * Unwraps under the KEK: the key bytes, or with `into` a device-held key
   * object (whose bytes never leave the device). AuthFailedError when the
   * wrap fails its integrity check (wrong KEK or mode, altered bytes);
   * ArgumentError for a length no wrap of the mode has.
   */
  unwrap(kek: Uint8Array | SymmetricKey, wrapped: Uint8Array, opts?: KeyWrapOptions & { into?: undefined }): Promise<Uint8Array>;
  unwrap(kek: Uint8Array | SymmetricKey, wrapped: Uint8Array, opts: UnwrapIntoOptions & { into: "key" }): Promise<SymmetricKey>;
  unwrap(kek: Uint8Array | SymmetricKey, wrapped: Uint8Array, opts: UnwrapIntoOptions & { into: "pk" }): Promise<RSA | ECC>;
  async unwrap(
    kek: Uint8Array | SymmetricKey,
    wrapped: Uint8Array,
    opts: KeyWrapOptions | UnwrapIntoOptions = {},
  ): Promise<Uint8Array | SymmetricKey | RSA | ECC> {
    const k = checkKek(kek);
    const mode = modeId(opts.mode);
    const data = checkBytes(wrapped, "the wrapped key");
    const min = mode === KeywrapMode.kw ? 3 * SEMIBLOCK : 2 * SEMIBLOCK;
    if (data.length < min || data.length % SEMIBLOCK !== 0)
      throw new ArgumentError(`keywrap: a ${opts.mode ?? "KW"} wrap is a multiple of 8 bytes, at least ${min}, got ${data.length}`);
    this.fits(data);
    const into = "into" in opts ? opts.into : undefined;
    if (into === undefined) {
      const r = await withKey(this.ctx, k, (kk) => this.ctx.call(Op.keywrapUnwrap, [kk, mode, data], opts));
      if (!(r instanceof Uint8Array) || r.length > data.length - SEMIBLOCK) throw new ProtocolError("keywrap_unwrap returned a bad result");
      return Uint8Array.from(r);
    }
    const o = opts as UnwrapIntoOptions;
    if (into !== "key" && into !== "pk") throw new ArgumentError(`keywrap: into must be "key" or "pk", got ${JSON.stringify(into)}`);
    if (into === "key" && o.exportable !== undefined) throw new ArgumentError('keywrap: exportable applies to into: "pk" only');
    const flags = pkFlags({ exportable: o.exportable ?? false });
    const key =
      into === "key"
        ? await _adoptSymmetric(this.ctx, async (h) => ({
            size: await withKey(this.ctx, k, (kk) => this.ctx.call(Op.keywrapUnwrapKey, [h, kk, mode, data], opts)),
          }))
        : await _adoptKey(this.ctx, (h) =>
            withKey(this.ctx, k, (kk) => this.ctx.call(Op.keywrapUnwrapPk, [h, kk, mode, data, flags], opts)),
          );
    if (o.slot !== undefined) {
      try {
        await this.slots.store(key, o.slot, { timeoutMs: o.timeoutMs, label: o.label, overwrite: o.overwrite });
      } catch (e) {
        await key.close().catch(() => {});
        throw e;
      }
    }
    return key;
  }

  private fits(data: Uint8Array): void {
    const room = this.ctx.chunkSize - EXTRA_ARG_BYTES;
    if (data.length > room) throw new ArgumentError(`keywrap: ${data.length} bytes exceed ${room} (MTU limit)`);
  }
}
