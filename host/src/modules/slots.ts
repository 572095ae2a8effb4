// dev.slots: persistent key slots on the device (spec.md 7.4). A slot holds
// one key object (an RSA/ECC key from dev.pk, or a SymmetricKey from
// dev.keys) with a label and the key's flags; it survives restarts when the
// device's store is persistent (dev.info.persistent). The private part is
// written only to the device's own store: list() returns descriptions and
// public keys, never private material, and a loaded non-exportable key stays
// non-exportable.

import { ArgumentError, ProtocolError } from "../base/errors.js";
import { Limits, Op, SlotKind } from "../base/protocol.generated.js";
import { utf8 } from "../base/util.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { _adoptSymmetric, SymmetricKey } from "./keys.js";
import { _adoptKey } from "./pk.js";
import { type ECC, type PkInfo, PkKey, parsePkInfo, type RSA } from "./pk-key.js";

/** What a slot holds, as slot_list / slot_load describe it (no private material). */
export interface SlotInfo {
  slot: number;
  label: string;
  kind: "pk" | "symmetric";
  /** The private part may be exported (always false for symmetric keys). */
  exportable: boolean;
  /** The pk key's description (kind "pk"), else undefined. */
  info: PkInfo | undefined;
  /** Symmetric key bytes, or the stored private/public key DER's bytes. */
  size: number;
  /** The public key as SubjectPublicKeyInfo DER (kind "pk"), else undefined. */
  publicKey: Uint8Array | undefined;
}

export interface StoreOptions extends CallOptions {
  /** At most slot_label_max (32) bytes of UTF-8; default "". */
  label?: string;
  /** Replace a key already in the slot (else SlotInUseError). Default false. */
  overwrite?: boolean;
}

function parseSlotInfo(r: unknown): SlotInfo {
  if (typeof r !== "object" || r === null || Array.isArray(r) || r instanceof Uint8Array) throw new ProtocolError("slot-info is not a map");
  const m = r as Record<string, unknown>;
  const { slot, label, kind, exportable, size } = m;
  if (typeof slot !== "number" || typeof label !== "string" || typeof exportable !== "boolean" || typeof size !== "number")
    throw new ProtocolError("slot-info: slot, label, exportable or size has the wrong type");
  if (kind !== SlotKind.pk && kind !== SlotKind.symmetric) throw new ProtocolError(`slot-info: unknown kind ${String(kind)}`);
  const pub = m.public;
  if (pub !== null && !(pub instanceof Uint8Array)) throw new ProtocolError("slot-info: public is not a byte string");
  return {
    slot,
    label,
    kind: kind === SlotKind.pk ? "pk" : "symmetric",
    exportable,
    info: m.pk === null || m.pk === undefined ? undefined : parsePkInfo(m.pk, "slot-info"),
    size,
    publicKey: pub instanceof Uint8Array ? pub : undefined,
  };
}

/** `dev.slots`: the device's persistent key slots 0..dev.info.slots-1. */
export class SlotsModule {
  /** @internal */
  constructor(private readonly ctx: SessionContext) {}

  /** Number of slots (hello's `slots`; 0 when the device has no key store). */
  get count(): number {
    return this.ctx.slots;
  }

  private checkSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0) throw new ArgumentError(`a slot number is an integer >= 0, got ${String(slot)}`);
  }

  /**
   * Copies a key object into a slot. The device checks the slot number
   * (BadArgumentError), an occupied slot (SlotInUseError unless overwrite),
   * the room left (StorageFullError) and the medium (StorageError).
   */
  async store(key: RSA | ECC | SymmetricKey, slot: number, opts: StoreOptions = {}): Promise<void> {
    this.checkSlot(slot);
    const label = opts.label ?? "";
    if (typeof label !== "string") throw new ArgumentError("label must be a string");
    if (utf8(label).length > Limits.slotLabelMax)
      throw new ArgumentError(`label must be at most ${Limits.slotLabelMax} bytes of UTF-8, got ${utf8(label).length}`);
    if (!(key instanceof SymmetricKey) && !(key instanceof PkKey))
      throw new ArgumentError("store() takes an RSA, ECC or SymmetricKey object");
    await key._use(this.ctx, (handle) => this.ctx.call(Op.slotStore, [handle, slot, label, opts.overwrite ?? false], opts));
  }

  /**
   * Loads a slot's key into a new object (the device keeps the slot): an RSA
   * or ECC key, or a SymmetricKey, with the flags it was stored with.
   * SlotEmptyError for an empty slot.
   */
  async load(slot: number, opts: CallOptions = {}): Promise<RSA | ECC | SymmetricKey> {
    this.checkSlot(slot);
    let kind: unknown;
    const create = async (handle: number) => {
      const r = await this.ctx.call(Op.slotLoad, [slot, handle], opts);
      kind = typeof r === "object" && r !== null ? (r as Record<string, unknown>).kind : undefined;
      return r;
    };
    // The kind is known only from the answer: a symmetric slot's slot-info
    // has no pk-info, so the pk adoption refuses it (and frees its handle)
    // and the key is loaded again as a SymmetricKey. Errors of the slot
    // itself (SlotEmptyError, ...) come from the first slot_load.
    try {
      return await _adoptKey(this.ctx, create);
    } catch (e) {
      if (kind !== SlotKind.symmetric) throw e;
      return _adoptSymmetric(this.ctx, create);
    }
  }

  /** Describes every occupied slot, in slot order: label, kind, flags, pk info and public key. */
  async list(opts: CallOptions = {}): Promise<SlotInfo[]> {
    const r = await this.ctx.call(Op.slotList, [], opts);
    if (!Array.isArray(r)) throw new ProtocolError("slot_list: result is not an array");
    return r.map(parseSlotInfo);
  }

  /** Empties a slot (SlotEmptyError when it already is). */
  async delete(slot: number, opts: CallOptions = {}): Promise<void> {
    this.checkSlot(slot);
    await this.ctx.call(Op.slotDelete, [slot], opts);
  }
}
