// dev.slots: persistent key slots on the device (spec.md 7.4). A slot holds
// one key object (an RSA/ECC key from dev.pk, or a SymmetricKey from
// dev.keys) with a label and the key's flags, and beside a pk key its
// certificate chain (leaf first); the store also keeps a trust-anchor set.
// Everything survives restarts when the device's store is persistent
// (dev.info.persistent). The private part is written only to the device's
// own store: list() returns descriptions, public keys and the leaf
// certificate in brief, never private material, and a loaded non-exportable
// key stays non-exportable.

import { ArgumentError, ProtocolError, SlotEmptyError, TooLargeError } from "../base/errors.js";
import { Limits, Op, SlotKind } from "../base/protocol.generated.js";
import { utf8 } from "../base/util.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import type { HandleHolder } from "../session/device-object.js";
import { _adoptSymmetric, SymmetricKey } from "./keys.js";
import { _adoptKey } from "./pk.js";
import { type ECC, type PkInfo, PkKey, parsePkInfo, type RSA } from "./pk-key.js";
import { _parseCrt, type CRT } from "./x509-crt.js";

/** The leaf certificate of a slot's chain in brief (slot_list's cert-summary). */
export interface SlotCertificate {
  /** As Mbed TLS prints it ("C=NL, O=..., CN=..."), cut at 159 bytes. */
  subject: string;
  serialNumber: bigint;
  notAfter: Date;
}

/**
 * A certificate to store: its DER, or a certificate object living on the
 * device (`dev.x509.CRT`; its whole chain goes, sent by handle, so a chain
 * larger than one frame can be stored).
 */
export type StoredCertificate = Uint8Array | HandleHolder;

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
  /** Certificates stored beside the key (0: none). */
  chain: number;
  /** The chain's leaf in brief, when there is a chain. */
  certificate: SlotCertificate | undefined;
}

export interface StoreOptions extends CallOptions {
  /** At most slot_label_max (32) bytes of UTF-8; default "". */
  label?: string;
  /** Replace a key already in the slot (else SlotInUseError); drops the slot's certificate chain. Default false. */
  overwrite?: boolean;
}

export interface StoreCertificatesOptions extends CallOptions {
  /** Replace a chain (anchor set) already stored (else SlotInUseError). Default false. */
  overwrite?: boolean;
}

function parseCertSummary(r: unknown): SlotCertificate | undefined {
  if (r === null || r === undefined) return undefined;
  if (typeof r !== "object" || Array.isArray(r) || r instanceof Uint8Array) throw new ProtocolError("cert-summary is not a map");
  const { subject, serial, not_after: notAfter } = r as Record<string, unknown>;
  if (typeof subject !== "string" || !(serial instanceof Uint8Array) || (typeof notAfter !== "number" && typeof notAfter !== "bigint"))
    throw new ProtocolError("cert-summary: subject, serial or not_after has the wrong type");
  const serialNumber = serial.length === 0 ? 0n : BigInt(`0x${Buffer.from(serial).toString("hex")}`);
  return { subject, serialNumber, notAfter: new Date(Number(notAfter) * 1000) };
}

function parseStoredCert(r: unknown): { count: number; der: Uint8Array } {
  const m = typeof r === "object" && r !== null ? (r as Record<string, unknown>) : {};
  if (typeof m.count !== "number" || !(m.der instanceof Uint8Array))
    throw new ProtocolError("stored-cert: count or der has the wrong type");
  return { count: m.count, der: m.der };
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
    chain: typeof m.chain === "number" ? m.chain : 0,
    certificate: parseCertSummary(m.cert),
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

  /**
   * Describes every occupied slot, in slot order: label, kind, flags, pk
   * info, public key, chain length and leaf certificate. When the answer
   * would not fit one frame (many RSA keys with certificates on a 4 KiB
   * link) it asks slot by slot.
   */
  async list(opts: CallOptions = {}): Promise<SlotInfo[]> {
    const one = async (args: number[]) => {
      const r = await this.ctx.call(Op.slotList, args, opts);
      if (!Array.isArray(r)) throw new ProtocolError("slot_list: result is not an array");
      return r.map(parseSlotInfo);
    };
    try {
      return await one([]);
    } catch (e) {
      if (!(e instanceof TooLargeError)) throw e;
    }
    const out: SlotInfo[] = [];
    for (let slot = 0; slot < this.count; slot++) out.push(...(await one([slot])));
    return out;
  }

  /** The request's cert-list: DER as is, device certificates by handle (each held for the call). */
  private withCerts<T>(certs: readonly StoredCertificate[], run: (list: unknown[]) => Promise<T>, list: unknown[] = []): Promise<T> {
    const i = list.length;
    if (i === certs.length) return run(list);
    const c = certs[i];
    if (c instanceof Uint8Array) return this.withCerts(certs, run, [...list, c]);
    if (typeof c !== "object" || c === null || typeof (c as HandleHolder)._use !== "function")
      throw new ArgumentError(`certificate ${i} is neither DER bytes nor a device certificate object`);
    return c._use(this.ctx, (handle) => this.withCerts(certs, run, [...list, handle]));
  }

  /**
   * Stores a certificate chain (leaf first) beside the pk key in `slot`; the
   * leaf must certify that key (BadArgumentError otherwise; CertificateError
   * for a certificate that does not parse). A chain already there is
   * SlotInUseError unless `overwrite`; above slot_chain_max bytes of DER in
   * all, or without room in the store, StorageFullError; the slot is then
   * as it was. An empty list removes the chain.
   */
  async storeChain(slot: number, chain: readonly StoredCertificate[], opts: StoreCertificatesOptions = {}): Promise<void> {
    this.checkSlot(slot);
    await this.withCerts(chain, (list) => this.ctx.call(Op.slotChainStore, [slot, list, opts.overwrite ?? false], opts));
  }

  /** The certificates (DER, leaf first) of a slot's chain; [] when the slot has no chain. */
  async loadChainDER(slot: number, opts: CallOptions = {}): Promise<Uint8Array[]> {
    this.checkSlot(slot);
    return this.readAll((i) => this.ctx.call(Op.slotChainRead, [slot, i], opts));
  }

  /** A slot's chain as certificate objects (leaf first; `dev.x509.CRT`); [] when the slot has no chain. */
  async loadChain(slot: number, opts: CallOptions = {}): Promise<CRT[]> {
    return this.toCrts(await this.loadChainDER(slot, opts), opts);
  }

  private async toCrts(ders: readonly Uint8Array[], opts: CallOptions): Promise<CRT[]> {
    const out: CRT[] = [];
    const closeAll = async (e: unknown): Promise<never> => {
      await Promise.all(out.map((c) => c.close()));
      throw e;
    };
    for (const der of ders) out.push(await _parseCrt(this.ctx, der, opts).catch(closeAll));
    return out;
  }

  /**
   * Stores the trust-anchor set (CA or pinned certificates): the same rules
   * as storeChain, without a key. An empty list removes it.
   */
  async storeTrustAnchors(anchors: readonly StoredCertificate[], opts: StoreCertificatesOptions = {}): Promise<void> {
    await this.withCerts(anchors, (list) => this.ctx.call(Op.slotTrustStore, [list, opts.overwrite ?? false], opts));
  }

  /** The trust anchors (DER) in the store; [] when none are stored. */
  async trustAnchorsDER(opts: CallOptions = {}): Promise<Uint8Array[]> {
    return this.readAll((i) => this.ctx.call(Op.slotTrustRead, [i], opts));
  }

  /** The trust anchors as certificate objects (for `dev.x509.TrustStore#add`); [] when none are stored. */
  async trustAnchors(opts: CallOptions = {}): Promise<CRT[]> {
    return this.toCrts(await this.trustAnchorsDER(opts), opts);
  }

  private async readAll(read: (index: number) => Promise<unknown>): Promise<Uint8Array[]> {
    let first: { count: number; der: Uint8Array };
    try {
      first = parseStoredCert(await read(0));
    } catch (e) {
      if (e instanceof SlotEmptyError) return []; // no certificates stored there
      throw e;
    }
    const out = [first.der];
    for (let i = 1; i < first.count; i++) out.push(parseStoredCert(await read(i)).der);
    return out;
  }

  /** Empties a slot (SlotEmptyError when it already is). */
  async delete(slot: number, opts: CallOptions = {}): Promise<void> {
    this.checkSlot(slot);
    await this.ctx.call(Op.slotDelete, [slot], opts);
  }
}
