// The sans-I/O DTLSWrappedBuffer on its own (issue 18): the retransmission
// timer as the step answers give it (nextTimeout(); the same ClientHello
// again once it fires, the delay doubling, Mbed TLS's own timeout at
// handshakeTimeoutMax), and a device client and a device server wired to
// each other by hand with Connection IDs both ways (RFC 9146: each side's
// peerCid is the other's cid) and an MTU both keep to. The DTLS options
// the host checks before anything reaches the device are ArgumentErrors.
import { setTimeout as sleep } from "node:timers/promises";
import { beforeAll, describe, expect, it } from "vitest";
import { ArgumentError, CryptoError, type Device, type DTLSWrappedBuffer, HelloVerifyRequest, WantRead } from "../../host/src/index.js";
import { useSession } from "./session.js";
import { SLOW_LINK, TARGET } from "./target.js";
import { text, utf8 } from "./tls-peers.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const PSK = Uint8Array.from(Buffer.from("00112233445566778899aabbccddeeff", "hex"));
const PSK_ID = "device-1";

beforeAll(() => {
  dev = session.dev;
});

/** A record's content type (22: handshake) and, for a handshake record, its message type (1: ClientHello). */
const recordKind = (d: Uint8Array) => [d[0], d[13]];

describe("the retransmission timer", () => {
  it("nextTimeout() from the step answers; the ClientHello again when it fires, the delay doubled; Mbed TLS's timeout at handshakeTimeoutMax", async () => {
    const min = 300;
    const ctx = dev.dtls.ClientContext(
      new dev.dtls.DTLSConfiguration({
        preSharedKey: [PSK_ID, PSK],
        validateCertificates: false,
        handshakeTimeoutMin: min,
        handshakeTimeoutMax: 4 * min,
      }),
    );
    const buf = ctx.wrapBuffers();
    try {
      expect(buf.nextTimeout()).toBeNull(); // no step yet
      expect(await buf.doHandshake()).toBe(WantRead);
      const [hello, ...more] = buf.takeDatagrams();
      expect(more).toHaveLength(0);
      expect(recordKind(hello as Uint8Array)).toEqual([22, 1]);
      const delays: number[] = [];
      let failure: unknown;
      for (let fired = 0; failure === undefined && fired < 8; fired++) {
        const t = buf.nextTimeout();
        expect(t).not.toBeNull();
        delays.push(t as number);
        // Step again once the timer of the latest answer fired (the device's clock decides: on QEMU it may
        // lag the host's, and then the step answers what is left).
        let again: Uint8Array[] = [];
        for (let tries = 0; again.length === 0 && failure === undefined && tries < 5; tries++) {
          await sleep((buf.nextTimeout() ?? 0) + 20);
          expect(buf.nextTimeout()).toBe(0);
          try {
            expect(await buf.doHandshake()).toBe(WantRead);
          } catch (e) {
            failure = e;
          }
          again = buf.takeDatagrams();
        }
        if (failure !== undefined) break;
        expect(again).toHaveLength(1);
        // The same ClientHello (handshake header and body), under the next record sequence number.
        expect((again[0] as Uint8Array).subarray(13)).toEqual((hello as Uint8Array).subarray(13));
      }
      console.log(`[dtls-buffer ${TARGET}] retransmission delays from the step answers: ${delays.join(", ")} ms`);
      // Mbed TLS: 300, 600, 1200 ms; the step after the last delay fails the handshake (MBEDTLS_ERR_SSL_TIMEOUT).
      expect(delays).toHaveLength(3);
      // What is left of each delay when the host reads it: at most the delay, and most of it (the step and the
      // answer's way to the host take some of it; more on QEMU's line).
      const left = SLOW_LINK ? 0.5 : 0.75;
      delays.forEach((d, i) => {
        expect(d).toBeLessThanOrEqual(min * 2 ** i);
        expect(d).toBeGreaterThan(min * 2 ** i * left);
      });
      expect(failure).toBeInstanceOf(CryptoError);
      expect((failure as CryptoError).mbedtlsCode).toBe(-0x6800);
    } finally {
      await buf.close();
      await ctx.close();
    }
  }, 30_000);
});

/** Steps both sessions, moving each one's datagrams to the other (checking each fits `mtu`), until both are done. */
async function handshakeBoth(client: DTLSWrappedBuffer, server: DTLSWrappedBuffer, mtu: number): Promise<number> {
  const move = (from: DTLSWrappedBuffer, to: DTLSWrappedBuffer) => {
    for (const d of from.takeDatagrams()) {
      expect(d.length).toBeLessThanOrEqual(mtu);
      to.receiveFromNetwork(d);
    }
  };
  let hvr = 0;
  let fresh = true; // the server session waits for a ClientHello: the peer's transport id goes first
  let done = [false, false];
  for (let round = 0; round < 40 && !(done[0] && done[1]); round++) {
    const c = await client.doHandshake();
    move(client, server);
    if (fresh) await server.setCookieParam(utf8("127.0.0.1:5684"));
    const s = await server.doHandshake();
    fresh = s === HelloVerifyRequest; // the device reset the session after it
    if (fresh) hvr++;
    move(server, client);
    done = [c === "done", s === "done"];
  }
  expect(done).toEqual([true, true]);
  return hvr;
}

describe("device client to device server, datagrams moved by hand", () => {
  it("Connection IDs both ways (each peerCid is the other's cid), every datagram within the MTU, data both ways", async () => {
    const mtu = 300;
    const conf = { preSharedKey: [PSK_ID, PSK] as const, mtu, validateCertificates: false };
    const server = dev.dtls.ServerContext(new dev.dtls.DTLSConfiguration({ ...conf, cid: 4 }));
    const client = dev.dtls.ClientContext(new dev.dtls.DTLSConfiguration({ ...conf, cid: 6 }));
    const clientCid = Uint8Array.from([1, 2, 3, 4, 5, 6]);
    const c = client.wrapBuffers(null, { cid: clientCid });
    const s = server.wrapBuffers();
    try {
      expect(await handshakeBoth(c, s, mtu)).toBe(1); // the first ClientHello carried no cookie
      const [ci, si] = [await c.info(), await s.info()];
      expect(ci).toMatchObject({ transport: "datagram", mtu, cid: clientCid, established: true });
      expect(si).toMatchObject({ transport: "datagram", mtu, peerCid: clientCid, established: true });
      expect(si.cid).toHaveLength(4);
      expect(ci.peerCid).toEqual(si.cid);
      for (const [from, to, msg] of [
        [c, s, "client to server"],
        [s, c, "server to client"],
      ] as const) {
        expect(await from.write(utf8(msg))).toBe(msg.length);
        const records = from.takeDatagrams();
        expect(records).toHaveLength(1);
        expect((records[0] as Uint8Array)[0]).toBe(25); // tls12_cid: the record carries the receiver's CID
        to.receiveFromNetwork(records[0] as Uint8Array);
        const got = await to.read();
        expect(got).toBeInstanceOf(Uint8Array);
        expect(text(got as Uint8Array)).toBe(msg);
      }
    } finally {
      for (const x of [c, s, client, server]) await x.close();
    }
  }, 60_000);
});

describe("DTLS options the host checks", () => {
  it.each([
    [{ cid: 33 }, /cid/],
    [{ mtu: 63 }, /mtu/],
    [{ handshakeTimeoutMin: 2000, handshakeTimeoutMax: 1000 }, /handshakeTimeoutMin/],
    [{ badMacLimit: -1 }, /badMacLimit/],
    [{ highestSupportedVersion: "DTLSv1.3" }, /DTLS version/],
  ] as const)("%o: ArgumentError", (options, message) => {
    expect(() => new dev.dtls.DTLSConfiguration(options as never)).toThrow(ArgumentError);
    expect(() => new dev.dtls.DTLSConfiguration(options as never)).toThrow(message);
  });
});
