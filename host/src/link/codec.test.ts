// Golden replay: protocol/golden.json's wire bytes through our SLIP + codec,
// and through the Rpc layer (the host must write the same request bytes).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DeviceError } from "../base/errors.js";
import { Op, Status } from "../base/protocol.generated.js";
import { fromHex, hex } from "../base/util.js";
import { Rpc } from "../rpc/rpc.js";
import { decodeBody, encodeBody } from "./codec.js";
import { SlipDecoder, slipEncode } from "./slip.js";
import { MemTransport } from "./testing/mem-transport.js";

interface Exchange {
  meaning: string;
  request_hex: string;
  response_hex: string | null;
}
interface Session {
  name: string;
  exchanges: Exchange[];
}
const golden = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), "../../../protocol/golden.json"), "utf8")) as {
  sessions: Session[];
};

type Decoded = { ok: true; body: Uint8Array; message: unknown } | { ok: false; reason: string };

function frames(hexStr: string): Decoded[] {
  const out: Decoded[] = [];
  const d = new SlipDecoder(65536, {
    frame: (body) => {
      const r = decodeBody(body);
      out.push(r.ok ? { ok: true, body, message: r.message } : { ok: false, reason: r.reason });
    },
    drop: (reason) => out.push({ ok: false, reason }),
  });
  d.push(fromHex(hexStr));
  return out;
}

const isRequest = (m: unknown): m is [number, number, ...unknown[]] =>
  Array.isArray(m) && typeof m[0] === "number" && typeof m[1] === "number" && m.length >= 2;

const b = (s: string) => Buffer.from(s);
const sha256abc = fromHex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

// What each response must decode to, by meaning (events first, then the reply).
const expected: Record<string, unknown[][]> = {
  "echo returns its argument": [[1, 0, b("abc")]],
  "echo of an empty byte string": [[2, 0, b("")]],
  "sha256('abc') one-shot (FIPS 180-2 example)": [[3, 0, sha256abc]],
  "md5('') one-shot (RFC 1321)": [[4, 0, fromHex("d41d8cd98f00b204e9800998ecf8427e")]],
  "bytes that need SLIP escapes (C0, DB) survive": [[5, 0, fromHex("c0dbdcdd")]],
  "hash_new handle 7 sha256": [[1, 0, null]],
  "hash_digest gives sha256('abc')": [[4, 0, sha256abc]],
  "a freed handle is a bad handle": [[10, Status.badHandle, 0, "handle 7 is not live"]],
  "bad CRC: dropped, reported as an event": [[null, 2, 1, 1]],
  "bad SLIP escape: dropped, reported": [[null, 2, 2, 2]],
  "CRC ok but not an array: dropped, reported": [[null, 2, 5, 3]],
  "line noise before END is dropped as too short, then the echo behind it is served": [
    [null, 2, 4, 4],
    [9, 0, b("x")],
  ],
};

const norm = (v: unknown): unknown => (v instanceof Uint8Array ? `bytes:${hex(v)}` : Array.isArray(v) ? v.map(norm) : v);

describe("golden frames", () => {
  for (const session of golden.sessions) {
    describe(session.name, () => {
      for (const ex of session.exchanges) {
        it(ex.meaning, () => {
          const req = frames(ex.request_hex);
          const valid = req.filter((f): f is Extract<Decoded, { ok: true }> => f.ok && isRequest(f.message));
          // Re-encoding a valid request gives the very same body bytes.
          for (const f of valid) expect(hex(encodeBody(f.message))).toBe(hex(f.body));
          if (ex.response_hex === null) return;
          const res = frames(ex.response_hex);
          expect(res.every((f) => f.ok)).toBe(true);
          const msgs = res.map((f) => (f.ok ? f.message : undefined)) as unknown[][];
          for (const m of msgs) {
            expect(Array.isArray(m)).toBe(true);
            if (m[0] === null) continue; // event
            // A response answers the request id of this exchange.
            expect(valid.map((f) => (f.message as unknown[])[0])).toContain(m[0]);
            if (m[1] === 0) expect(m.length).toBe(3);
            else {
              expect(m.length).toBe(4);
              expect(typeof m[2]).toBe("number");
              expect(typeof m[3]).toBe("string");
            }
          }
          const want = expected[ex.meaning];
          if (want) expect(norm(msgs)).toEqual(norm(want));
        });
      }
    });
  }

  it("covers every exchange with a response that decodes", () => {
    expect(golden.sessions.length).toBeGreaterThan(0);
    expect(Object.keys(expected).every((k) => golden.sessions.some((s) => s.exchanges.some((e) => e.meaning === k)))).toBe(true);
  });
});

describe("golden sessions through Rpc", () => {
  // Sessions whose requests are all well-formed: our Rpc (ids from 1, window
  // 1) must write exactly the golden request frames and decode the replies.
  for (const session of golden.sessions) {
    const reqs = session.exchanges.map((e) => frames(e.request_hex));
    const plain = reqs.every((r) => r.length === 1 && r[0]?.ok && isRequest(r[0].message));
    const ids = reqs.map((r) => (r[0]?.ok ? (r[0].message as unknown[])[0] : -1));
    if (!plain || ids.some((id, i) => id !== i + 1)) continue;
    it(`${session.name}: same request bytes, same results`, async () => {
      const t = new MemTransport();
      const rpc = new Rpc(t, { timeoutMs: 1000 });
      t.onRequest = () => {
        const ex = session.exchanges[t.sent.length - 1];
        if (ex?.response_hex) setImmediate(() => t.deliverRaw(fromHex(ex.response_hex as string)));
      };
      for (const [i, ex] of session.exchanges.entries()) {
        const first = reqs[i]?.[0];
        if (!first?.ok) throw new Error("golden request did not decode");
        const m = first.message;
        const [, op, ...args] = m as [number, number, ...unknown[]];
        const result = await rpc.call(op, args).then(
          (v) => ({ ok: true, v }),
          (e: unknown) => ({ ok: false, e }),
        );
        expect(hex(slipEncode(t.bodies[i] as Uint8Array))).toBe(ex.request_hex);
        const res = frames(ex.response_hex as string).at(-1);
        const reply = (res as { message: unknown[] }).message;
        if (reply[1] === 0) expect(norm(result)).toEqual(norm({ ok: true, v: reply[2] }));
        else {
          expect(result.ok).toBe(false);
          const e = (result as { e: DeviceError }).e;
          expect(e).toBeInstanceOf(DeviceError);
          expect([e.status, e.mbedtlsCode, e.message]).toEqual(reply.slice(1));
        }
      }
      expect(Op.hello).toBe(0);
      await rpc.close();
    });
  }
});
