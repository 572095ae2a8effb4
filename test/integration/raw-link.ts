// Raw frames for the suites that go under the SDK (link, limits): a CBOR
// message framed by hand, bytes written straight to the transport with the
// answers collected by request id, and the check that the device still
// answers a fresh echo after whatever was done to it.
import { crc32 } from "node:zlib";
import { expect } from "vitest";
import { type Device, hex } from "../../host/src/index.js";
import { slipEncode } from "../../host/src/link/slip.js";
import type { Message } from "../../host/src/link/transport.js";
import { rand } from "./bytes.js";
import { until } from "./target.js";

/** The device answers a fresh echo of `probeBytes` random bytes correctly. */
export async function stillServes(dev: Device, probeBytes = 64): Promise<void> {
  const probe = rand(probeBytes);
  expect(hex(await dev.echo(probe))).toBe(hex(probe));
}

/** A frame for a raw CBOR message with a correct CRC. */
export function frameOf(cbor: Uint8Array): Uint8Array {
  const body = new Uint8Array(cbor.length + 4);
  body.set(cbor);
  new DataView(body.buffer).setUint32(cbor.length, crc32(cbor) >>> 0);
  return slipEncode(body);
}

/** Writes raw bytes and resolves with the responses to `ids`, in arrival order. */
export async function rawExchange(dev: Device, bytes: Uint8Array, ids: readonly number[], timeoutMs = 20_000): Promise<Message[]> {
  const want = new Set(ids);
  const got: Message[] = [];
  const on = (m: Message) => {
    if (typeof m[0] === "number" && want.has(m[0])) got.push(m);
  };
  dev.transport.on("message", on);
  try {
    await dev.transport.writeRaw(bytes);
    await until(() => got.length === ids.length, timeoutMs);
    return got;
  } finally {
    dev.transport.off("message", on);
  }
}
