// Leak scans over what the device sent: every byte string of every message
// it sent (decoded CBOR: responses and events), so a test can show that no
// run of a secret's bytes ever crossed the line from the device.
import type { Device } from "../../host/src/index.js";

/** Appends every byte string inside a decoded message (arrays, maps, objects) to `into`. */
export function collectBytes(v: unknown, into: Uint8Array[]): void {
  if (v instanceof Uint8Array) into.push(v);
  else if (Array.isArray(v)) for (const x of v) collectBytes(x, into);
  else if (v instanceof Map) for (const x of v.values()) collectBytes(x, into);
  else if (typeof v === "object" && v !== null) for (const x of Object.values(v)) collectBytes(x, into);
}

/** From now on, every byte string the device sends on `dev`'s link, in one growing list. */
export function captureDeviceBytes(dev: Device): Uint8Array[] {
  const received: Uint8Array[] = [];
  dev.transport.on("message", (m) => collectBytes(m, received));
  return received;
}

/**
 * The offset of the first `run`-byte window of `secret` (every offset,
 * overlapping) that occurs inside any byte string of `received`, else
 * undefined.
 */
export function findRun(received: readonly Uint8Array[], secret: Uint8Array, run: number): number | undefined {
  const bufs = received.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  for (let off = 0; off + run <= secret.length; off++) {
    const probe = secret.subarray(off, off + run);
    if (bufs.some((b) => b.indexOf(probe) >= 0)) return off;
  }
  return undefined;
}
