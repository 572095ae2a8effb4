// Authoring aid for golden.json: writes the wire bytes (SLIP + CBOR + CRC)
// of the exchanges below with the host codec and Node's crypto. golden.json
// is committed data, not generated on every run: the C tests replay it
// against the firmware and the TS tests against the host codec, so the two
// implementations must agree byte for byte.
//   node --import tsx protocol/golden-author.ts > protocol/golden.json
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { encodeBody } from "../host/src/link/codec.js";
import { slipEncode } from "../host/src/link/slip.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const utf8 = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));
const frame = (m: unknown) => hex(slipEncode(encodeBody(m)));
const sha256 = (s: string) => new Uint8Array(createHash("sha256").update(s).digest());
const md5 = (s: string) => new Uint8Array(createHash("md5").update(s).digest());

function x(meaning: string, request: unknown, response: unknown | null) {
  return { meaning, request_hex: frame(request), response_hex: response === null ? null : frame(response) };
}
/** An exchange given as raw wire bytes; the device answers with zero or more frames. */
function raw(meaning: string, requestHex: string, responses: unknown[]) {
  return { meaning, request_hex: requestHex, response_hex: responses.length === 0 ? null : responses.map(frame).join("") };
}

// A body whose CRC is wrong: echo [1, 1, h'00'] with the CRC's last byte flipped.
const goodEcho = encodeBody([9, 1, utf8("x")]);
const badCrc = goodEcho.slice();
badCrc[badCrc.length - 1] = (badCrc[badCrc.length - 1] as number) ^ 0x01;
// A CBOR text string (not an array) with a correct CRC.
const notArray = new Uint8Array([0x63, 0x61, 0x62, 0x63]);
const notArrayBody = new Uint8Array(8);
notArrayBody.set(notArray);
new DataView(notArrayBody.buffer).setUint32(4, crc32(notArray) >>> 0);

const golden = {
  $comment:
    "Golden frames: full wire bytes (SLIP-framed CBOR + CRC-32). Each session starts on a freshly booted device; exchanges run in order. response_hex null means the device sends nothing. Written with protocol/golden-author.ts; replayed by firmware/test (C) and host/src/link/codec.test.ts (TS).",
  sessions: [
    {
      name: "echo and one-shot digests",
      exchanges: [
        x("echo returns its argument", [1, 1, utf8("abc")], [1, 0, utf8("abc")]),
        x("echo of an empty byte string", [2, 1, new Uint8Array(0)], [2, 0, new Uint8Array(0)]),
        x("sha256('abc') one-shot (FIPS 180-2 example)", [3, 20, 4, utf8("abc")], [3, 0, sha256("abc")]),
        x("md5('') one-shot (RFC 1321)", [4, 20, 1, new Uint8Array(0)], [4, 0, md5("")]),
        x(
          "bytes that need SLIP escapes (C0, DB) survive",
          [5, 1, new Uint8Array([0xc0, 0xdb, 0xdc, 0xdd])],
          [5, 0, new Uint8Array([0xc0, 0xdb, 0xdc, 0xdd])],
        ),
      ],
    },
    {
      name: "digest context lifecycle",
      exchanges: [
        x("hash_new handle 7 sha256", [1, 16, 7, 4], [1, 0, null]),
        x("hash_update 'ab'", [2, 17, 7, utf8("ab")], [2, 0, null]),
        x("hash_update 'c'", [3, 17, 7, utf8("c")], [3, 0, null]),
        x("hash_digest gives sha256('abc')", [4, 18, 7], [4, 0, sha256("abc")]),
        x("hash_copy 7 -> 8", [5, 19, 7, 8], [5, 0, null]),
        x("hash_update the copy with 'd'", [6, 17, 8, utf8("d")], [6, 0, null]),
        x("the copy digests 'abcd'", [7, 18, 8], [7, 0, sha256("abcd")]),
        x("the original still digests 'abc'", [8, 18, 7], [8, 0, sha256("abc")]),
        x("free handle 7", [9, 3, 7], [9, 0, null]),
        x("a freed handle is a bad handle", [10, 18, 7], [10, 4, 0, "handle 7 is not live"]),
        x("creating over a live handle is refused", [11, 16, 8, 4], [11, 6, 0, "handle 8 is already live"]),
        x("free handle 8", [12, 3, 8], [12, 0, null]),
      ],
    },
    {
      name: "errors and dropped frames",
      exchanges: [
        x("unknown op", [1, 200], [1, 2, 0, "unknown op 200"]),
        x("text where bytes are expected", [2, 20, 4, "abc"], [2, 1, 0, "arg 2: expected a byte string"]),
        x("missing argument", [3, 20, 4], [3, 1, 0, "op 20 takes 2 args, got 1"]),
        x("unsupported hash algorithm", [4, 20, 99, new Uint8Array(0)], [4, 10, 0, "hash algorithm 99 is not supported"]),
        x("handle 0 is invalid", [5, 16, 0, 4], [5, 3, 0, "arg 1: handle must be 1..4294967295"]),
        raw("bad CRC: dropped, reported as an event", hex(slipEncode(badCrc)), [[null, 2, 1, 1]]),
        raw("bad SLIP escape: dropped, reported", "c00183db01c0", [[null, 2, 2, 2]]),
        raw("CRC ok but not an array: dropped, reported", hex(slipEncode(notArrayBody)), [[null, 2, 5, 3]]),
        raw("line noise before END is dropped as too short, then the echo behind it is served", `4142${hex(slipEncode(goodEcho))}`, [
          [null, 2, 4, 4],
          [9, 0, utf8("x")],
        ]),
        x("the device still serves", [6, 1, utf8("ok")], [6, 0, utf8("ok")]),
      ],
    },
  ],
};

process.stdout.write(`${JSON.stringify(golden, null, 2)}\n`);
