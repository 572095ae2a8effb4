// Transport layer: bytes <-> SLIP frames <-> CBOR messages.
//
// `Transport` holds the receive path (SLIP decode, CRC check, CBOR decode,
// shape check, drop counters) and the send path (CBOR encode, CRC, SLIP
// framing): the layers above speak message arrays only. A subclass
// supplies the byte link. `SerialTransport` is the real one: serialport's
// SerialPortStream over LinuxBinding, with the binding's write replaced (see
// `safeWriteBinding`). Tests can subclass Transport with an in-memory link.
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import type { LinuxBindingInterface, LinuxOpenOptions } from "@serialport/bindings-cpp";
import { LinuxBinding } from "@serialport/bindings-cpp";
import { SerialPortStream } from "@serialport/stream";
import { DisconnectedError } from "../base/errors.js";
import { decodeBody, encodeBody, RequestBody } from "./codec.js";
import { SlipDecoder, slipEncode } from "./slip.js";

export type { RequestBody } from "./codec.js";

/** Largest frame body accepted before `hello` told us the MTU. */
export const DEFAULT_MAX_FRAME = 65536;

export type HostDropReason = "bad_escape" | "oversize" | "too_short" | "bad_crc" | "bad_message";

/** A decoded message: `[id, ...]` for a response, `[null, event, ...]` for an event. */
export type Message = [id: number | null, ...rest: unknown[]];

export interface TransportEventMap {
  message: [msg: Message];
  drop: [reason: HostDropReason];
  disconnected: [err: Error];
}

export interface LinkCounters {
  rxFrames: number;
  rxDropped: number;
  rxDropReasons: Record<HostDropReason, number>;
  txFrames: number;
  txBytes: number;
  rxBytes: number;
}

function isMessage(m: unknown): m is Message {
  if (!Array.isArray(m) || m.length < 2) return false;
  const id = m[0];
  return id === null || (typeof id === "number" && Number.isInteger(id) && id >= 0 && id <= 0xffffffff);
}

export abstract class Transport extends EventEmitter<TransportEventMap> {
  private readonly decoder: SlipDecoder;
  private gone: Error | undefined;
  /** Body size (CBOR + CRC) of the frame whose message is being emitted, for the debug log. */
  lastFrameSize = 0;
  readonly counters: LinkCounters = {
    rxFrames: 0,
    rxDropped: 0,
    rxDropReasons: { bad_escape: 0, oversize: 0, too_short: 0, bad_crc: 0, bad_message: 0 },
    txFrames: 0,
    txBytes: 0,
    rxBytes: 0,
  };

  constructor(maxFrame = DEFAULT_MAX_FRAME) {
    super();
    this.decoder = new SlipDecoder(maxFrame, {
      frame: (body) => this.onFrame(body),
      drop: (reason) => this.dropped(reason),
    });
  }

  /** True until the link is closed or lost. */
  get isOpen(): boolean {
    return this.gone === undefined;
  }

  /** The error the link was lost with, if it was. */
  get disconnectError(): Error | undefined {
    return this.gone;
  }

  /** Largest frame body accepted from now on (the MTU after hello). */
  setMaxFrame(n: number): void {
    this.decoder.setMaxFrame(n);
  }

  /**
   * Frames and writes a message. `onWritten` runs once the whole frame was
   * handed to the OS (or with the error that stopped it). Frames are written
   * whole and in call order.
   */
  sendBody(body: Uint8Array, onWritten: (err: Error | null) => void): void {
    if (this.gone) {
      const err = this.gone;
      queueMicrotask(() => onWritten(err));
      return;
    }
    const frame = slipEncode(body);
    this.counters.txFrames++;
    this.counters.txBytes += frame.length;
    this.writeBytes(frame, onWritten);
  }

  /** Encodes (CBOR + CRC) and sends a message. */
  sendMessage(message: unknown[], onWritten: (err: Error | null) => void): void {
    this.sendBody(encodeBody(message), onWritten);
  }

  /**
   * Encodes a request `[id, ...rest]` now, for sendRequest later (and again,
   * byte for byte, for a resend). Throws for a value CBOR cannot carry.
   */
  encodeRequest(id: number, rest: readonly unknown[]): RequestBody {
    return RequestBody.encode(id, rest);
  }

  /** Sends a request encoded by encodeRequest (see sendBody). */
  sendRequest(request: RequestBody, onWritten: (err: Error | null) => void): void {
    this.sendBody(request.bytes, onWritten);
  }

  /**
   * Writes bytes onto the line as they are, without framing: for diagnostics
   * and fault-injection tests (line noise, broken frames). Ordered with frames.
   */
  writeRaw(bytes: Uint8Array): Promise<void> {
    if (this.gone) return Promise.reject(this.gone);
    this.counters.txBytes += bytes.length;
    return new Promise((ok, fail) => this.writeBytes(bytes, (err) => (err ? fail(err) : ok())));
  }

  /** Closes the link; emits 'disconnected' once. */
  abstract close(): Promise<void>;

  protected abstract writeBytes(frame: Uint8Array, onWritten: (err: Error | null) => void): void;

  /** Feed received bytes (subclasses call this). */
  protected receive(chunk: Uint8Array): void {
    this.counters.rxBytes += chunk.length;
    this.decoder.push(chunk);
  }

  /** Marks the link lost (idempotent: duplicate 'close' events are expected). */
  protected lost(err?: Error): void {
    if (this.gone) return;
    this.gone = err instanceof DisconnectedError ? err : new DisconnectedError(err ? `link lost: ${err.message}` : "link closed");
    this.emit("disconnected", this.gone);
  }

  private onFrame(body: Uint8Array): void {
    const r = decodeBody(body);
    if (!r.ok) this.dropped(r.reason);
    else if (!isMessage(r.message)) this.dropped("bad_message");
    else {
      this.counters.rxFrames++;
      this.lastFrameSize = body.length;
      this.emit("message", r.message);
    }
  }

  private dropped(reason: HostDropReason): void {
    this.counters.rxDropped++;
    this.counters.rxDropReasons[reason]++;
    this.emit("drop", reason);
  }
}

// ----------------------------------------------------------------- serial

const immediate = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function errnoCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined;
}

/**
 * LinuxBinding with `write` replaced. @serialport/bindings-cpp 13.0.0's
 * poller re-arms uv_poll with only the newest event, so a write waiting for
 * "writable" is forgotten once the reader waits for "readable": under
 * pipelined bulk traffic a write can hang forever (host-serial-spike: 5/5
 * stalls of 16 KiB x 4 uploads). We write with non-blocking write(2)
 * ourselves and retry on EAGAIN from the event loop: a few setImmediate
 * turns (so reads run), then 1 ms timers. EBADF/ENXIO/EIO mean the other end
 * is gone.
 */
export const safeWriteBinding: LinuxBindingInterface = {
  ...LinuxBinding,
  async open(options: LinuxOpenOptions) {
    const port = await LinuxBinding.open(options);
    port.write = async (buffer: Buffer): Promise<void> => {
      let off = 0;
      let spins = 0;
      while (off < buffer.length) {
        const fd = port.fd;
        if (!port.isOpen || fd === null) throw Object.assign(new Error("Port is not open"), { disconnect: true });
        try {
          off += fs.writeSync(fd, buffer, off, buffer.length - off);
          spins = 0;
        } catch (e) {
          const code = errnoCode(e);
          if (code === "EAGAIN" || code === "EINTR") {
            await (++spins < 20 ? immediate() : sleep(1));
            continue;
          }
          if (code === "EBADF" || code === "ENXIO" || code === "EIO") Object.assign(e as object, { disconnect: true });
          throw e;
        }
      }
    };
    return port;
  },
};

export interface SerialOptions {
  /** Baud rate for a real UART; a PTY ignores it. Default 115200. */
  baudRate?: number;
}

/** Frames at least this long are written on their own, not joined with others. */
const COALESCE_MAX = 4096;

/** A serial port (UART, USB CDC, PTY) through SerialPortStream and the safe-write binding. */
export class SerialTransport extends Transport {
  private constructor(private readonly stream: SerialPortStream) {
    super();
    // A 'data' listener must always be attached: without one serialport
    // does not notice that the other end went away.
    stream.on("data", (chunk: Buffer) => this.receive(chunk));
    stream.on("close", (err: Error | null) => this.lost(err ?? undefined));
    stream.on("error", (err: Error) => this.lost(err));
  }

  static open(path: string, opts: SerialOptions = {}): Promise<SerialTransport> {
    return new Promise((resolve, reject) => {
      const stream = new SerialPortStream({ binding: safeWriteBinding, path, baudRate: opts.baudRate ?? 115200, autoOpen: false });
      stream.open((err) => {
        if (err) reject(new DisconnectedError(`cannot open ${path}: ${err.message}`));
        else resolve(new SerialTransport(stream));
      });
    });
  }

  get path(): string {
    return this.stream.path;
  }

  /**
   * Small frames written in the same turn (e.g. the requests pump() sends
   * for a batch of responses) go out joined, in one write(2) at the end of
   * the turn (a microtask): per-frame writes were the largest host cost of
   * pipelined small ops (npm run bench). Frames of COALESCE_MAX bytes or
   * more are written as they are, after whatever is batched.
   */
  private batch: { frames: Uint8Array[]; done: ((err: Error | null) => void)[]; size: number } | undefined;

  protected writeBytes(frame: Uint8Array, onWritten: (err: Error | null) => void): void {
    if (frame.length >= COALESCE_MAX) {
      this.flushBatch();
      this.stream.write(frame, (err) => onWritten(err ?? null));
      return;
    }
    if (this.batch) {
      this.batch.frames.push(frame);
      this.batch.done.push(onWritten);
      this.batch.size += frame.length;
      return;
    }
    this.batch = { frames: [frame], done: [onWritten], size: frame.length };
    queueMicrotask(() => this.flushBatch());
  }

  private flushBatch(): void {
    const b = this.batch;
    if (!b) return;
    this.batch = undefined;
    const bytes = b.frames.length === 1 ? (b.frames[0] as Uint8Array) : Buffer.concat(b.frames, b.size);
    this.stream.write(bytes, (err) => {
      for (const done of b.done) done(err ?? null);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.stream.isOpen) {
        this.lost();
        resolve();
        return;
      }
      this.stream.close(() => {
        this.lost();
        resolve();
      });
    });
  }
}
