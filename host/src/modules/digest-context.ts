// What a digest context and an HMAC context share: an object fed with
// `update`, read with a `digest` that waits for everything queued before it
// (and leaves the state as it was), and copied.
//
// Lazy one-shot: while everything fed so far fits one request, the object
// holds the bytes itself (the host gave them; nothing secret) and uses no
// device context: digest() sends them in one one-shot request (hash_oneshot,
// hmac_oneshot). The first update past that, or copy(), creates the device
// context and feeds it what was kept; from then on updates are pipelined
// chunks and copies a pipelined copy op whose source's earlier failures taint
// the copy.

import { ProtocolError } from "../base/errors.js";
import type { HashAlgInfo } from "../base/protocol.generated.js";
import { checkBytes, hex } from "../base/util.js";
import type { CallOptions, SessionContext } from "../session/context.js";
import { DeviceObject } from "../session/device-object.js";

/** The op ids of one kind of context. */
export interface DigestOps {
  readonly update: number;
  readonly digest: number;
  readonly copy: number;
  /** For error messages, e.g. "hash_digest". */
  readonly digestName: string;
  /** For error messages, e.g. "hash_oneshot". */
  readonly oneShotName: string;
}

/** A digest or MAC answered by `what` (e.g. "hash_oneshot(sha256)"), copied out; ProtocolError when it is not `size` bytes. */
export function checkedDigest(r: unknown, size: number, what: string): Uint8Array {
  if (!(r instanceof Uint8Array) || r.length !== size) {
    throw new ProtocolError(`${what} returned ${r instanceof Uint8Array ? `${r.length} bytes` : typeof r}`);
  }
  return Uint8Array.from(r);
}

export abstract class DigestContext extends DeviceObject {
  readonly digestSize: number;
  /** The digest's block size. */
  readonly blockSize: number;
  /** The bytes fed so far while there is no device context; undefined once there is. */
  private kept: Uint8Array[] | undefined = [];
  private keptBytes = 0;

  protected constructor(
    ctx: SessionContext,
    protected readonly alg: HashAlgInfo,
    private readonly ops: DigestOps,
  ) {
    super(ctx);
    this.digestSize = alg.digestSize;
    this.blockSize = alg.blockSize;
  }

  abstract readonly name: string;

  /** Most bytes digest() sends in one one-shot request. */
  protected abstract get oneShotRoom(): number;

  /** The one-shot request over `data` (hash_oneshot, hmac_oneshot). */
  protected abstract oneShot(data: Uint8Array, opts: CallOptions): Promise<unknown>;

  /** Sends the create of a fresh device context (through open()). */
  protected abstract createContext(): void;

  /** Whether the object still holds its bytes instead of a device context. */
  get isLazy(): boolean {
    return this.kept !== undefined;
  }

  /** Creates the device context and feeds it the kept bytes (nothing when it exists). */
  protected override materialize(): void {
    const kept = this.kept;
    if (!kept) return;
    this.kept = undefined;
    this.createContext();
    if (this.keptBytes > 0) this.feed(this.joinKept(kept));
    this.keptBytes = 0;
  }

  /** Pipelines the copy of `source`'s state into a new device context of this object. */
  protected copyFrom(source: DigestContext): void {
    this.kept = undefined;
    source.materialize();
    // A failure of the source's earlier pipelined requests taints the copy.
    this.track(
      source.settled().then(() => {
        if (source.failure) throw source.failure;
      }),
    );
    this.track(this.open((handle, sourceHandle) => this.ctx.call(this.ops.copy, [sourceHandle, handle]), source));
  }

  /** Throws what would make a copy wrong (closed, stale, or an earlier failure). */
  protected checkCopyable(): void {
    this.check();
    if (this.failure) throw this.failure;
  }

  /** Feeds bytes (synchronous: kept, or queued and pipelined; errors surface from digest()/copy()). */
  update(data: Uint8Array): void {
    this.check();
    const bytes = checkBytes(data, "update() data");
    if (this.kept && this.keptBytes + bytes.length <= this.oneShotRoom) {
      this.kept.push(Uint8Array.from(bytes));
      this.keptBytes += bytes.length;
      return;
    }
    this.materialize();
    this.feed(bytes);
  }

  private feed(bytes: Uint8Array): void {
    const chunk = this.ctx.streamChunk;
    for (let off = 0; off < bytes.length; off += chunk) {
      // A copy: the request may wait for the object to come back from the host.
      const part = bytes.slice(off, off + chunk);
      this.track(this.use((h) => this.ctx.call(this.ops.update, [h, part])));
    }
  }

  private joinKept(kept: Uint8Array[]): Uint8Array {
    if (kept.length === 1) return kept[0] as Uint8Array;
    const out = new Uint8Array(this.keptBytes);
    let off = 0;
    for (const p of kept) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  /** The digest of everything fed so far; the context stays usable (repeatable, and update() continues). */
  async digest(opts: CallOptions = {}): Promise<Uint8Array> {
    this.check();
    if (this.kept) {
      if (this.failure) throw this.failure;
      return this.checked(await this.oneShot(this.joinKept(this.kept), opts), this.ops.oneShotName);
    }
    const p = this.use((h) => this.ctx.call(this.ops.digest, [h], opts));
    p.catch(() => {}); // observed below, possibly after an earlier failure
    await this.settled();
    this.check();
    if (this.failure) throw this.failure;
    return this.checked(await p, this.ops.digestName);
  }

  private checked(r: unknown, op: string): Uint8Array {
    return checkedDigest(r, this.digestSize, `${op}(${this.name})`);
  }

  async hexdigest(opts: CallOptions = {}): Promise<string> {
    return hex(await this.digest(opts));
  }
}
