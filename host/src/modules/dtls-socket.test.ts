// dtls-socket.ts's datagram parsing, without a device: the transport id a
// cookie is bound to (RFC 4291's address text forms as their 16 bytes), the
// ClientHellos the acceptor takes (whole, epoch 0) and the CID a server reads
// from a tls12_cid record header (RFC 9146 §4).
import { describe, expect, it } from "vitest";
import { isClientHello, recordCid, transportId } from "./dtls-socket.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("transportId", () => {
  it("IPv4: the 4 address bytes and the port, big-endian", () => {
    expect(hex(transportId({ address: "192.0.2.33", port: 5684 }))).toBe("c000022116" + "34");
  });

  it.each([
    ["2001:DB8:0:0:8:800:200C:417A", "20010db80000000000080800200c417a"],
    ["2001:DB8::8:800:200C:417A", "20010db80000000000080800200c417a"],
    ["::1", "00000000000000000000000000000001"],
    ["::", "00000000000000000000000000000000"],
    ["FF01::101", "ff010000000000000000000000000101"],
    ["::13.1.68.3", "0000000000000000000000000d014403"],
    ["::FFFF:129.144.52.38", "00000000000000000000ffff81903426"],
    ["fe80::1%eth0", "fe800000000000000000000000000001"],
  ])("IPv6 %s (RFC 4291 2.2): its 16 bytes and the port", (address, bytes) => {
    expect(hex(transportId({ address, port: 443 }))).toBe(`${bytes}01bb`);
  });
});

/** A DTLS 1.2 handshake record: header, then a handshake header (type, length, seq, fragment offset and length) and the body. */
function handshakeRecord(type: number, epoch: number, length: number, offset: number, fragment: number): Uint8Array {
  const r = Buffer.alloc(13 + 12 + fragment);
  r.set([22, 0xfe, 0xfd, epoch >> 8, epoch & 0xff], 0);
  r.writeUInt16BE(12 + fragment, 11);
  r[13] = type;
  r.writeUIntBE(length, 14, 3);
  r.writeUIntBE(offset, 19, 3);
  r.writeUIntBE(fragment, 22, 3);
  return r;
}

describe("isClientHello", () => {
  it("a whole ClientHello in epoch 0", () => {
    expect(isClientHello(handshakeRecord(1, 0, 200, 0, 200))).toBe(true);
  });

  it.each([
    ["a first fragment", handshakeRecord(1, 0, 400, 0, 300)],
    ["a later fragment", handshakeRecord(1, 0, 400, 300, 100)],
    ["another handshake message", handshakeRecord(16, 0, 100, 0, 100)],
    ["epoch 1", handshakeRecord(1, 1, 200, 0, 200)],
    ["application data", Uint8Array.from([23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1, 0, 30, ...new Array(30).fill(0)])],
    ["a short datagram", Uint8Array.from([22, 0xfe, 0xfd, 0, 0])],
  ])("not %s", (_what, d) => {
    expect(isClientHello(d)).toBe(false);
  });
});

describe("recordCid", () => {
  const cid = Uint8Array.from([0xde, 0xad, 0xbe, 0xef]);
  const record = Uint8Array.from([25, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 7, ...cid, 0, 3, 1, 2, 3]);

  it("the bytes after the sequence number of a tls12_cid record", () => {
    expect(recordCid(record, 4)).toBe("deadbeef");
  });

  it("none from another content type, a configuration without CID, or a record too short for one", () => {
    expect(recordCid(Uint8Array.from([23, ...record.subarray(1)]), 4)).toBeUndefined();
    expect(recordCid(record, 0)).toBeUndefined();
    expect(recordCid(record.subarray(0, 14), 4)).toBeUndefined();
  });
});
