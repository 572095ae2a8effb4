// In-memory Transport for unit tests: frames written by the host are
// SLIP-decoded and CBOR-decoded into `sent`; the test answers with
// deliver() (encoded and framed like a device would) or raw bytes.
import { decodeBody, encodeBody } from "../codec.js";
import { SlipDecoder, slipEncode } from "../slip.js";
import { Transport } from "../transport.js";

export class MemTransport extends Transport {
  /** Raw frame bodies written by the host, in order. */
  readonly bodies: Uint8Array[] = [];
  /** Decoded messages written by the host, in order. */
  readonly sent: unknown[][] = [];
  /** Delay before a write completes (ms); undefined = next macrotask. */
  writeDelayMs: number | undefined;
  /** Called for each message the host writes. */
  onRequest: ((msg: unknown[]) => void) | undefined;
  private readonly peerDecoder = new SlipDecoder(1 << 20, {
    frame: (body) => {
      this.bodies.push(body);
      const r = decodeBody(body);
      if (!r.ok) throw new Error(`host wrote a bad frame: ${r.reason}`);
      const msg = r.message as unknown[];
      this.sent.push(msg);
      this.onRequest?.(msg);
    },
    drop: (reason) => {
      throw new Error(`host wrote a bad frame: ${reason}`);
    },
  });

  protected writeBytes(frame: Uint8Array, onWritten: (err: Error | null) => void): void {
    const copy = frame.slice();
    const done = () => {
      this.peerDecoder.push(copy);
      onWritten(null);
    };
    if (this.writeDelayMs === undefined) setImmediate(done);
    else setTimeout(done, this.writeDelayMs);
  }

  /** The device sends a message. */
  deliver(msg: unknown[]): void {
    this.receive(slipEncode(encodeBody(msg)));
  }

  /** The device sends raw bytes. */
  deliverRaw(bytes: Uint8Array): void {
    this.receive(bytes);
  }

  /** The link drops (like the other end going away). */
  drop(err?: Error): void {
    this.lost(err);
  }

  close(): Promise<void> {
    this.lost();
    return Promise.resolve();
  }
}
