// The link under abuse: line noise, broken frames, oversize frames, messages
// that do not match the schema, bad handles and pipelined bulk frames. Each
// is answered or dropped as protocol/spec.md says, and the next valid request
// still succeeds with the right answer.
import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Op } from "../../host/src/base/protocol.generated.js";
import {
  ArgumentError,
  BadHandleError,
  BadRequestError,
  type Device,
  type FrameDropInfo,
  hex,
  TooManyHandlesError,
  UnknownOpError,
  utf8,
} from "../../host/src/index.js";
import { encodeBody } from "../../host/src/link/codec.js";
import { slipEncode } from "../../host/src/link/slip.js";
import { rand } from "./bytes.js";
import { frameOf, rawExchange, stillServes as serves } from "./raw-link.js";
import { useSession } from "./session.js";
import { bulk, until } from "./target.js";

const session = useSession();
let dev: Device;
const drops: FrameDropInfo[] = [];

beforeAll(() => {
  dev = session.dev;
  dev.on("frameDropped", (d) => drops.push(d));
});

/** The device answers a fresh echo correctly. */
const stillServes = () => serves(dev);

describe("line noise and broken frames", () => {
  it("64 KiB of random bytes are dropped and reported; the device keeps serving", async () => {
    const before = await dev.stats();
    const probesBefore = dev.rpc.probes;
    const noise = rand(64 * 1024);
    await dev.transport.writeRaw(noise);
    await dev.transport.writeRaw(Uint8Array.of(0xc0));
    await stillServes();
    const after = await dev.stats();
    // every non-empty run of bytes between ENDs is a (bad) frame: each is counted once, none is answered
    // (two ENDs in a row make an empty frame, which the spec ignores silently)
    const frames = Buffer.from(noise)
      .toString("latin1")
      .split("\xc0")
      .filter((s) => s.length > 0).length;
    expect(after.rxDropped - before.rxDropped).toBe(frames);
    // stillServes' echo, stats() itself, and any link probes the SDK sent after the drops
    // (a probe sent after stats() went out is counted here but not by the device yet)
    const received = after.rxFrames - before.rxFrames;
    expect(received).toBeGreaterThanOrEqual(2);
    expect(received).toBeLessThanOrEqual(2 + (dev.rpc.probes - probesBefore));
  });

  it("a frame with a bad CRC is dropped and reported as bad_crc", async () => {
    const before = await dev.stats();
    const body = encodeBody([4242, Op.echo, utf8("x")]);
    body[body.length - 1] = (body[body.length - 1] as number) ^ 0x80;
    const n = drops.length;
    await dev.transport.writeRaw(slipEncode(body));
    await until(() => drops.slice(n).some((d) => d.side === "device" && d.reason === "bad_crc"));
    expect((await dev.stats()).rxBadCrc).toBe(before.rxBadCrc + 1);
    await stillServes();
  });

  it("a bad SLIP escape is dropped and reported as bad_escape", async () => {
    const n = drops.length;
    await dev.transport.writeRaw(Uint8Array.of(0xc0, 0x83, 0x01, 0xdb, 0x00, 0xc0));
    await until(() => drops.slice(n).some((d) => d.side === "device" && d.reason === "bad_escape"));
    await stillServes();
  });

  it("a frame over the MTU is dropped as oversize, however long it runs", async () => {
    for (const size of [dev.info.mtu + 1, 4 * dev.info.mtu]) {
      const before = await dev.stats();
      const body = encodeBody([4243, Op.echo, rand(size)]);
      await dev.transport.writeRaw(slipEncode(body));
      await stillServes();
      expect((await dev.stats()).rxOversize).toBe(before.rxOversize + 1);
    }
  });

  it("a valid CRC around something that is not a request is dropped as bad_message", async () => {
    const n = drops.length;
    await dev.transport.writeRaw(frameOf(Uint8Array.of(0x63, 0x61, 0x62, 0x63))); // the text "abc"
    await until(() => drops.slice(n).some((d) => d.side === "device" && d.reason === "bad_message"));
    await stillServes();
  });
});

describe("messages that do not match the schema get typed errors", () => {
  it("wrong argument type, missing and extra arguments: bad_request", async () => {
    await expect(dev.rpc.call(Op.echo, [42])).rejects.toBeInstanceOf(BadRequestError);
    await expect(dev.rpc.call(Op.hashOneshot, [4])).rejects.toBeInstanceOf(BadRequestError);
    await expect(dev.rpc.call(Op.echo, [utf8("a"), utf8("b")])).rejects.toBeInstanceOf(BadRequestError);
    await expect(dev.rpc.call(Op.hashNew, ["seven", 4])).rejects.toBeInstanceOf(BadRequestError);
    await stillServes();
  });

  it("an unknown op: unknown_op, with the op in the message", async () => {
    const err = await dev.rpc.call(250, []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownOpError);
    expect((err as UnknownOpError).message).toBe("unknown op 250");
    await stillServes();
  });

  it("non-minimal CBOR heads (as some encoders write) are accepted", async () => {
    // [0xfffffff0 as uint32, echo as uint8 (non-minimal), h'6869' with a 2-byte length]
    const cbor = Uint8Array.of(0x98, 0x03, 0x1a, 0xff, 0xff, 0xff, 0xf0, 0x18, 0x01, 0x59, 0x00, 0x02, 0x68, 0x69);
    const [reply] = await rawExchange(dev, frameOf(cbor), [0xfffffff0]);
    expect(reply?.[1]).toBe(0);
    expect(hex(reply?.[2] as Uint8Array)).toBe("6869");
  });

  it("a request id that is not an unsigned 32-bit integer is dropped, not answered", async () => {
    const n = drops.length;
    await dev.transport.writeRaw(frameOf(Uint8Array.of(0x83, 0x1b, 0, 0, 0, 1, 0, 0, 0, 0, 0x01, 0x40))); // id 2^32
    await until(() => drops.slice(n).some((d) => d.side === "device" && d.reason === "bad_message"));
    await stillServes();
  });
});

describe("handles", () => {
  it("a handle that was never created, or was freed, is a typed bad_handle error", async () => {
    const err = await dev.rpc.call(Op.hashUpdate, [0x7fff_0001, utf8("x")]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadHandleError);
    expect((err as BadHandleError).message).toBe(`handle ${0x7fff_0001} is not live`);
    await dev.rpc.call(Op.hashNew, [0x7fff_0002, 4]);
    await dev.rpc.call(Op.free, [0x7fff_0002]);
    await expect(dev.rpc.call(Op.free, [0x7fff_0002])).rejects.toBeInstanceOf(BadHandleError);
    await expect(dev.rpc.call(Op.hashDigest, [0x7fff_0002])).rejects.toBeInstanceOf(BadHandleError);
    await stillServes();
  });

  it("the handle table can be filled, is answered with too_many_handles, and recovers when freed", async () => {
    // Raw creates: the SDK's own objects swap out instead of filling the table.
    const max = dev.info.maxHandles;
    const hashes = Array.from({ length: max }, () => dev._nextHandle());
    await Promise.all(hashes.map((h) => dev.rpc.call(Op.hashNew, [h, 4])));
    await expect(dev.rpc.call(Op.hashNew, [dev._nextHandle(), 4])).rejects.toBeInstanceOf(TooManyHandlesError);
    expect((await dev.stats()).handlesUsed).toBe(max);
    for (const h of hashes) await dev.rpc.call(Op.free, [h]);
    const again = dev.hash.sha256(utf8("abc"));
    expect(await again.hexdigest()).toBe(createHash("sha256").update("abc").digest("hex"));
    await again.close();
    expect((await dev.stats()).handlesUsed).toBe(0);
  });
});

describe("bulk traffic", () => {
  it("pipelined 16 KiB frames do not hang the serial write path (bindings-cpp 13.0.0 trap)", async () => {
    const size = Math.min(16 * 1024, dev.info.mtu - 32); // 16 KiB on native; the MTU bounds it on boards
    const payloads = Array.from({ length: bulk(256, 12) }, () => rand(size));
    const replies = await Promise.all(payloads.map((p) => dev.echo(p)));
    for (const [i, r] of replies.entries()) expect(hex(r), `echo ${i}`).toBe(hex(payloads[i] as Uint8Array));
  });

  it("a request larger than the MTU is refused on the host before anything is sent", async () => {
    const sent = dev.linkCounters.txFrames;
    await expect(dev.echo(new Uint8Array(dev.info.mtu))).rejects.toBeInstanceOf(ArgumentError);
    expect(dev.linkCounters.txFrames).toBe(sent);
  });
});
