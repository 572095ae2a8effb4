// Raw-link baselines: a trivial PTY peer (bench/pty_echo.c) measured through
// the SDK's own serial stack (SerialTransport: serialport + SLIP + CBOR +
// CRC, no device work) and through plain fs reads/writes on the PTY.
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import { Op } from "../host/src/base/protocol.generated.js";
import { encodeBody } from "../host/src/link/codec.js";
import { slipEncode } from "../host/src/link/slip.js";
import type { Message } from "../host/src/link/transport.js";
import { SerialTransport } from "../host/src/link/transport.js";
import { spawnTracked, stopChild, waitForLine } from "../host/src/targets/process.js";

export interface Peer {
  path: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts pty_echo (echo mode, or sink mode answering each frame with `ack`). */
export async function startPeer(binary: string, ack?: Uint8Array): Promise<Peer> {
  const args = ["--die-with-parent", ...(ack ? ["--sink", Buffer.from(ack).toString("hex")] : [])];
  const child = spawnTracked(binary, args, { stdio: ["ignore", "pipe", "inherit"] });
  const m = await waitForLine(child, "stdout", /^([^\n]*)\n/, 10_000, binary);
  return { path: (m[1] as string).trim(), child, stop: () => stopChild(child) };
}

/** The small frame the sink peer answers every frame with: a success response `[1, 0, null]`. */
export const SINK_ACK = slipEncode(encodeBody([1, 0, null]));

// ------------------------------------------------------------------ raw fs

/** Blocking read of exactly n bytes from a PTY fd. */
function readExactly(fd: number, buf: Buffer, n: number): void {
  let got = 0;
  while (got < n) {
    const r = fs.readSync(fd, buf, got, n - got, null);
    if (r <= 0) throw new Error("pty closed");
    got += r;
  }
}

/** Round trips with plain fs on the PTY slave of an echo peer: write `size` bytes, read them back. */
export interface FsEcho {
  /** One round trip of `size` bytes (blocking reads: nothing else runs meanwhile). */
  roundTrip(size: number): void;
  close(): void;
}

export function openFsEcho(peer: Peer): FsEcho {
  const fd = fs.openSync(peer.path, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
  const out = Buffer.alloc(256, 0x55);
  const back = Buffer.alloc(256);
  return {
    roundTrip(size: number) {
      fs.writeSync(fd, out, 0, size);
      readExactly(fd, back, size);
    },
    close: () => fs.closeSync(fd),
  };
}

/**
 * One-way bandwidth with plain fs: `total` bytes written in `chunk`-sized
 * writes of bytes that are not SLIP END, then one END; the sink answers it.
 * Bytes per second.
 */
export function rawSinkBandwidth(peer: Peer, total: number, chunk = 65536): number {
  const fd = fs.openSync(peer.path, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
  try {
    const data = Buffer.alloc(chunk, 0x55);
    const back = Buffer.alloc(SINK_ACK.length);
    const t0 = performance.now();
    for (let off = 0; off < total; off += chunk) fs.writeSync(fd, data, 0, Math.min(chunk, total - off));
    fs.writeSync(fd, Buffer.from([0xc0]));
    readExactly(fd, back, back.length);
    return total / ((performance.now() - t0) / 1000);
  } finally {
    fs.closeSync(fd);
  }
}

// ------------------------------------------------- through SerialTransport

async function withTransport<T>(peer: Peer, fn: (t: SerialTransport) => Promise<T>): Promise<T> {
  const t = await SerialTransport.open(peer.path);
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}

/**
 * Round trips of a request frame shaped like hash_oneshot(sha256, `size`
 * bytes) through SerialTransport to an echo peer, which sends the frame
 * back; the transport decodes it (SLIP, CRC, CBOR) as it would a response.
 */
export interface TransportEcho {
  roundTrip(size: number): Promise<Message>;
  close(): Promise<void>;
}

export async function openTransportEcho(peer: Peer): Promise<TransportEcho> {
  const t = await SerialTransport.open(peer.path);
  let waiting: ((m: Message) => void) | undefined;
  t.on("message", (m) => waiting?.(m));
  const payloads = new Map<number, Uint8Array>();
  let id = 0;
  return {
    roundTrip(size: number) {
      let payload = payloads.get(size);
      if (!payload) {
        payload = new Uint8Array(size).fill(0x55);
        payloads.set(size, payload);
      }
      const got = new Promise<Message>((r) => {
        waiting = r;
      });
      id = id >= 0xffffffff ? 1 : id + 1;
      t.sendMessage([id, Op.hashOneshot, 4, payload], () => {});
      return got;
    },
    close: () => t.close(),
  };
}

/**
 * One-way bandwidth through SerialTransport: frames shaped like
 * hash_update(handle, `payload` bytes), at most `window` unanswered, to the
 * sink peer (which answers each with a small response frame). Payload bytes per second.
 */
export function transportSinkBandwidth(peer: Peer, payload: number, total: number, window: number): Promise<number> {
  return withTransport(peer, async (t) => {
    const frames = Math.max(1, Math.ceil(total / payload));
    const data = new Uint8Array(payload);
    for (let i = 0; i < payload; i++) data[i] = (i * 7 + 1) & 0xff;
    let sent = 0;
    let acked = 0;
    const t0 = performance.now();
    await new Promise<void>((done) => {
      const pump = () => {
        while (sent < frames && sent - acked < window) {
          sent++;
          t.sendMessage([sent, Op.hashUpdate, 1, data], () => {});
        }
      };
      t.on("message", () => {
        acked++;
        if (acked === frames) done();
        else pump();
      });
      pump();
    });
    return (frames * payload) / ((performance.now() - t0) / 1000);
  });
}
