// SLIP framing (RFC 1055) with a linear-time decoder.
//
// Why not @serialport/parser-slip-encoder's SlipDecoder: it concatenates a
// Buffer per input byte, so decoding is quadratic in the frame size. Measured
// side by side on this project's machine (host-serial-spike, Node 20): one
// 16 KiB frame took about 23 ms to decode with it against about 0.1 ms with a
// linear decoder, and it silently splits a frame on a bad escape. This
// decoder copies each byte once into a growing buffer and reports bad escapes
// and oversize frames instead of passing garbage on.

export const END = 0xc0;
export const ESC = 0xdb;
export const ESC_END = 0xdc;
export const ESC_ESC = 0xdd;

/** A Buffer view of the same bytes (for its native indexOf), no copy. */
function view(bytes: Uint8Array): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Encodes one frame: END, body with END/ESC escaped, END. The special bytes
 * are found with Buffer.indexOf (memchr) and the runs between them copied
 * with set(): a per-byte JavaScript loop took ~200 µs per 16 KiB frame
 * (npm run bench), this takes a few.
 */
export function slipEncode(body: Uint8Array): Uint8Array {
  if (body.length <= SMALL) return slipEncodeSmall(body);
  const v = view(body);
  let e = v.indexOf(END);
  let s = v.indexOf(ESC);
  // Room for one escape per 64 bytes (random data has one per 128); grown
  // to the worst case when a body has more.
  let out = new Uint8Array(body.length + (body.length >> 6) + 8);
  out[0] = END;
  let o = 1;
  let from = 0;
  while (e >= 0 || s >= 0) {
    const at = e < 0 ? s : s < 0 ? e : Math.min(e, s);
    if (o + (at - from) + 2 + (body.length - at - 1) + 1 > out.length) {
      const bigger = new Uint8Array(2 * body.length + 2);
      bigger.set(out.subarray(0, o));
      out = bigger;
    }
    out.set(body.subarray(from, at), o);
    o += at - from;
    out[o++] = ESC;
    if (at === e) {
      out[o++] = ESC_END;
      e = v.indexOf(END, at + 1);
    } else {
      out[o++] = ESC_ESC;
      s = v.indexOf(ESC, at + 1);
    }
    from = at + 1;
  }
  out.set(body.subarray(from), o);
  o += body.length - from;
  out[o++] = END;
  return o === out.length ? out : out.subarray(0, o);
}

/** Bodies up to this size are encoded byte by byte: cheaper than setting up indexOf. */
const SMALL = 128;

function slipEncodeSmall(body: Uint8Array): Uint8Array {
  let extra = 0;
  for (let i = 0; i < body.length; i++) {
    const b = body[i] as number;
    if (b === END || b === ESC) extra++;
  }
  const out = new Uint8Array(body.length + extra + 2);
  out[0] = END;
  if (extra === 0) out.set(body, 1);
  else {
    let o = 1;
    for (let i = 0; i < body.length; i++) {
      const b = body[i] as number;
      if (b === END) {
        out[o++] = ESC;
        out[o++] = ESC_END;
      } else if (b === ESC) {
        out[o++] = ESC;
        out[o++] = ESC_ESC;
      } else out[o++] = b;
    }
  }
  out[out.length - 1] = END;
  return out;
}

export type SlipDropReason = "bad_escape" | "oversize";

export interface SlipDecoderEvents {
  frame(body: Uint8Array): void;
  drop(reason: SlipDropReason): void;
}

/**
 * Incremental SLIP decoder. Feed it arbitrary chunks; it calls `frame` for
 * every non-empty frame and `drop` for a frame with a bad escape or one that
 * grew past `maxFrame` bytes; after a drop it resynchronises at the next END.
 */
export class SlipDecoder {
  private buf: Uint8Array;
  private len = 0;
  private escaped = false;
  private discarding = false;

  constructor(
    private maxFrame: number,
    private readonly on: SlipDecoderEvents,
  ) {
    this.buf = new Uint8Array(Math.min(maxFrame, 4096));
  }

  /** Changes the largest accepted body (e.g. to the MTU after hello); applies from the next byte. */
  setMaxFrame(maxFrame: number): void {
    this.maxFrame = maxFrame;
  }

  push(chunk: Uint8Array): void {
    // Runs of plain bytes are found with indexOf (memchr) and copied whole;
    // only END, ESC and the byte after ESC are handled one at a time.
    const v = view(chunk);
    const n = chunk.length;
    let nextEnd = -2; // cached indexOf results from i onwards; -1: none left
    let nextEsc = -2;
    let i = 0;
    while (i < n) {
      if (this.discarding) {
        const at = v.indexOf(END, i);
        if (at < 0) return;
        this.endFrame();
        i = at + 1;
        continue;
      }
      if (this.escaped) {
        const b = chunk[i++] as number;
        this.escaped = false;
        if (b === END) {
          this.on.drop("bad_escape");
          this.endFrame();
        } else if (b === ESC_END) this.append(END);
        else if (b === ESC_ESC) this.append(ESC);
        else this.discard("bad_escape");
        continue;
      }
      if (nextEnd !== -1 && nextEnd < i) nextEnd = v.indexOf(END, i);
      if (nextEsc !== -1 && nextEsc < i) nextEsc = v.indexOf(ESC, i);
      const stop = nextEnd < 0 ? (nextEsc < 0 ? n : nextEsc) : nextEsc < 0 ? nextEnd : Math.min(nextEnd, nextEsc);
      if (stop > i) {
        this.appendRun(chunk, i, stop);
        i = stop;
        continue;
      }
      i++;
      if (stop === nextEnd) {
        if (this.len > 0) this.on.frame(this.buf.slice(0, this.len));
        this.endFrame();
      } else this.escaped = true;
    }
  }

  private endFrame(): void {
    this.len = 0;
    this.escaped = false;
    this.discarding = false;
  }

  /** Appends chunk[from..to) (no special bytes), or drops the frame when it grows past maxFrame. */
  private appendRun(chunk: Uint8Array, from: number, to: number): void {
    const need = this.len + (to - from);
    if (need > this.maxFrame) {
      this.discard("oversize");
      return;
    }
    this.reserve(need);
    this.buf.set(chunk.subarray(from, to), this.len);
    this.len = need;
  }

  /** Appends one decoded byte, or drops the frame when it grows past maxFrame. */
  private append(b: number): void {
    if (this.len >= this.maxFrame) {
      this.discard("oversize");
      return;
    }
    this.reserve(this.len + 1);
    this.buf[this.len++] = b;
  }

  private reserve(need: number): void {
    if (need <= this.buf.length) return;
    const bigger = new Uint8Array(Math.min(this.maxFrame, Math.max(need, this.buf.length * 2)));
    bigger.set(this.buf.subarray(0, this.len));
    this.buf = bigger;
  }

  private discard(reason: SlipDropReason): void {
    this.discarding = true;
    this.escaped = false;
    this.len = 0;
    this.on.drop(reason);
  }
}
