// What a digest context and an HMAC context share: a device object fed with
// pipelined `update` chunks, read with a `digest` that waits for everything
// queued before it (and leaves the state as it was), and copied with a
// pipelined copy op whose source's earlier failures taint the copy.

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
}

export abstract class DigestContext extends DeviceObject {
  readonly digestSize: number;
  /** The digest's block size. */
  readonly blockSize: number;

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

  /** Pipelines the copy of `source`'s state into this object's handle. */
  protected copyFrom(source: DigestContext): void {
    // A failure of the source's earlier pipelined requests taints the copy.
    this.track(
      source.settled().then(() => {
        if (source.failure) throw source.failure;
      }),
    );
    this.track(this.ctx.call(this.ops.copy, [source.handle, this.handle]));
  }

  /** Throws what would make a copy wrong (closed, stale, or an earlier failure). */
  protected checkCopyable(): void {
    this.check();
    if (this.failure) throw this.failure;
  }

  /** Feeds bytes (synchronous: queued and pipelined; errors surface from digest()/copy()). */
  update(data: Uint8Array): void {
    this.check();
    const bytes = checkBytes(data, "update() data");
    const chunk = this.ctx.chunkSize;
    for (let off = 0; off < bytes.length; off += chunk) {
      this.track(this.ctx.call(this.ops.update, [this.handle, bytes.subarray(off, off + chunk)]));
    }
  }

  /** The digest of everything fed so far; the context stays usable (repeatable, and update() continues). */
  async digest(opts: CallOptions = {}): Promise<Uint8Array> {
    this.check();
    const p = this.ctx.call(this.ops.digest, [this.handle], opts);
    p.catch(() => {}); // observed below, possibly after an earlier failure
    await this.settled();
    this.check();
    if (this.failure) throw this.failure;
    const r = await p;
    if (!(r instanceof Uint8Array) || r.length !== this.digestSize) {
      throw new ProtocolError(`${this.ops.digestName}(${this.name}) returned ${r instanceof Uint8Array ? `${r.length} bytes` : typeof r}`);
    }
    return Uint8Array.from(r);
  }

  async hexdigest(opts: CallOptions = {}): Promise<string> {
    return hex(await this.digest(opts));
  }
}
