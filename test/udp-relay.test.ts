// hil/udp-relay.ts between plain dgram sockets on the loopback: datagrams
// pass whole and in order without faults, the seeded faults are the same
// for the same seed (and differ for another), each kind of fault does what
// its stats say, dropNext loses exactly one datagram, and rebind() makes the
// server see the client from another port while the answers still arrive.
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { type DatagramFaults, startUdpRelay, type UdpRelay } from "../hil/udp-relay.js";

const sockets: Socket[] = [];
const relays: UdpRelay[] = [];
afterEach(async () => {
  for (const r of relays.splice(0)) await r.stop();
  for (const s of sockets.splice(0)) s.close();
});

interface Endpoint {
  socket: Socket;
  port: number;
  got: { data: Buffer; from: RemoteInfo; at: number }[];
  /** Resolves once `n` datagrams arrived in all, or after `ms` with what came. */
  until(n: number, ms?: number): Promise<void>;
}

async function endpoint(onMessage?: (e: Endpoint, data: Buffer, from: RemoteInfo) => void): Promise<Endpoint> {
  const socket = createSocket("udp4");
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const waiters = new Set<() => void>();
  const e: Endpoint = {
    socket,
    port: (socket.address() as { port: number }).port,
    got: [],
    until: (n, ms = 3000) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (e.got.length < n) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          resolve();
        }, ms);
        waiters.add(check);
        check();
      }),
  };
  socket.on("message", (data, from) => {
    e.got.push({ data, from, at: performance.now() });
    onMessage?.(e, data, from);
    for (const w of [...waiters]) w();
  });
  return e;
}

/** A server that answers each datagram with "re:" and the datagram. */
const echoServer = () => endpoint((e, data, from) => e.socket.send(Buffer.concat([Buffer.from("re:"), data]), from.port, from.address));

async function relayTo(server: Endpoint, seed: number, up?: DatagramFaults, down?: DatagramFaults): Promise<UdpRelay> {
  const r = await startUdpRelay({ server: { port: server.port }, seed, ...(up ? { up } : {}), ...(down ? { down } : {}) });
  relays.push(r);
  return r;
}

/** Sends datagrams "0".."n-1" one at a time (a few ms apart, so the loopback keeps their order). */
async function sendNumbered(client: Endpoint, relay: UdpRelay, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    client.socket.send(String(i), relay.port, relay.host);
    await new Promise((r) => setTimeout(r, 2));
  }
  // until the relay has them all
  for (let t = 0; relay.stats().up.datagramsIn < n && t < 100; t++) await new Promise((r) => setTimeout(r, 10));
}

const numbers = (e: Endpoint) => e.got.map((g) => Number(g.data.toString()));

describe("udp relay", () => {
  it("without faults: every datagram whole and in order, both ways, and counted", async () => {
    const server = await echoServer();
    const client = await endpoint();
    const relay = await relayTo(server, 1);
    const big = Buffer.alloc(1400, 0xa5);
    client.socket.send(big, relay.port, relay.host);
    await client.until(1);
    await sendNumbered(client, relay, 50);
    await client.until(51);
    expect(server.got[0]?.data.equals(big)).toBe(true);
    expect(numbers(server).slice(1)).toEqual([...Array(50).keys()]);
    expect(client.got.slice(1).map((g) => g.data.toString())).toEqual([...Array(50).keys()].map((i) => `re:${i}`));
    // the server sees the relay's upstream socket, the client the relay
    expect(server.got[0]?.from.port).toBe(relay.upstreamPort(relay.clients()[0] as string));
    expect(client.got[0]?.from.port).toBe(relay.port);
    const st = relay.stats();
    expect(st.up).toMatchObject({ datagramsIn: 51, datagramsOut: 51, bytesIn: 1400 + 90, dropped: 0, duplicated: 0, reordered: 0 });
    expect(st.down).toMatchObject({ datagramsIn: 51, datagramsOut: 51, bytesOut: 1403 + 90 + 150 });
  });

  it("the same seed gives the same drops and duplicates; another seed others", async () => {
    const faults = { drop: 0.2, dup: 0.15 };
    const run = async (seed: number) => {
      const server = await endpoint();
      const client = await endpoint();
      const relay = await relayTo(server, seed, faults);
      await sendNumbered(client, relay, 200);
      const st = relay.stats().up;
      await server.until(st.datagramsOut);
      return { seen: numbers(server), st };
    };
    const a = await run(42);
    const b = await run(42);
    const c = await run(43);
    expect(b.seen).toEqual(a.seen);
    expect(b.st).toEqual(a.st);
    expect(c.seen).not.toEqual(a.seen);
    // the counts agree with what arrived: each number 0, 1 or 2 times
    const counts = new Map<number, number>();
    for (const n of a.seen) counts.set(n, (counts.get(n) ?? 0) + 1);
    const lost = [...Array(200).keys()].filter((i) => !counts.has(i)).length;
    const twice = [...counts.values()].filter((k) => k === 2).length;
    expect(lost).toBe(a.st.dropped);
    expect(twice).toBe(a.st.duplicated);
    expect(a.seen.length).toBe(a.st.datagramsOut);
    // rates near what was asked (200 draws: 40 and 30 expected)
    expect(a.st.dropped).toBeGreaterThan(20);
    expect(a.st.dropped).toBeLessThan(65);
    expect(a.st.duplicated).toBeGreaterThan(12);
    expect(a.st.duplicated).toBeLessThan(50);
  });

  it("reorder: a held datagram goes right after the next one; a lone one after reorderMs", async () => {
    const server = await endpoint();
    const client = await endpoint();
    const relay = await relayTo(server, 7, { reorder: 0.3, reorderMs: 1000 });
    await sendNumbered(client, relay, 100);
    await server.until(100);
    const seen = numbers(server);
    expect([...seen].sort((x, y) => x - y)).toEqual([...Array(100).keys()]);
    // each swap is a neighbour pair (k+1, k); the last one may have waited for reorderMs
    let swaps = 0;
    for (let i = 0; i + 1 < seen.length; i++) if ((seen[i] as number) === (seen[i + 1] as number) + 1) swaps++;
    const st = relay.stats().up;
    expect(st.reordered).toBeGreaterThan(10);
    expect(swaps).toBe(st.reordered);
    const r2 = await relayTo(server, 7, { reorder: 1, reorderMs: 150 });
    const t0 = performance.now();
    client.socket.send("lone", r2.port, r2.host);
    await server.until(101);
    expect(server.got[100]?.data.toString()).toBe("lone");
    expect((server.got[100]?.at as number) - t0).toBeGreaterThanOrEqual(140);
    expect(r2.stats().up.reordered).toBe(0);
  });

  it("delay: a delayed datagram arrives late and the others do not wait for it", async () => {
    const server = await endpoint();
    const client = await endpoint();
    const relay = await relayTo(server, 3, { delay: 1, delayMs: 200 });
    const t0 = performance.now();
    client.socket.send("slow", relay.port, relay.host);
    await new Promise((r) => setTimeout(r, 20));
    relay.set({ up: {} });
    client.socket.send("fast", relay.port, relay.host);
    await server.until(2);
    expect(server.got.map((g) => g.data.toString())).toEqual(["fast", "slow"]);
    expect((server.got[1]?.at as number) - t0).toBeGreaterThanOrEqual(190);
    expect(relay.stats().up).toMatchObject({ delayed: 1, delayedMs: 200, datagramsOut: 2 });
  });

  it("dropNext loses exactly the datagram chosen, in the direction chosen", async () => {
    const server = await echoServer();
    const client = await endpoint();
    const relay = await relayTo(server, 5);
    const lostUp = relay.dropNext("up", (d) => Buffer.from(d).toString() === "3");
    const lostDown = relay.dropNext("down", 2); // the answer to "1"
    await sendNumbered(client, relay, 6);
    await client.until(4);
    expect(Buffer.from(await lostUp).toString()).toBe("3");
    expect(Buffer.from(await lostDown).toString()).toBe("re:1");
    expect(numbers(server)).toEqual([0, 1, 2, 4, 5]);
    expect(client.got.map((g) => g.data.toString())).toEqual(["re:0", "re:2", "re:4", "re:5"]);
    expect(relay.stats().up.targeted).toBe(1);
    expect(relay.stats().down.targeted).toBe(1);
  });

  it("two clients are two peers to the server; rebind() moves one to another port and its answers still arrive", async () => {
    const server = await echoServer();
    const a = await endpoint();
    const b = await endpoint();
    const relay = await relayTo(server, 9);
    a.socket.send("a1", relay.port, relay.host);
    await a.until(1);
    b.socket.send("b1", relay.port, relay.host);
    await b.until(1);
    expect(relay.clients()).toHaveLength(2);
    const keyA = `127.0.0.1:${a.port}`;
    const before = relay.upstreamPort(keyA);
    expect(new Set(server.got.map((g) => g.from.port)).size).toBe(2);
    await relay.rebind(keyA);
    const after = relay.upstreamPort(keyA);
    expect(after).not.toBe(before);
    a.socket.send("a2", relay.port, relay.host);
    await a.until(2);
    expect(server.got[2]?.from.port).toBe(after);
    expect(a.got.map((g) => g.data.toString())).toEqual(["re:a1", "re:a2"]);
    expect(b.got.map((g) => g.data.toString())).toEqual(["re:b1"]);
  });

  it("rebind() from the tap moves the client right before the datagram the tap saw", async () => {
    const server = await echoServer();
    const client = await endpoint();
    let relay: UdpRelay | undefined;
    const seen: string[] = [];
    relay = await startUdpRelay({
      server: { port: server.port },
      seed: 11,
      tap: (direction, d) => {
        seen.push(`${direction}:${Buffer.from(d).toString()}`);
        if (direction === "up" && Buffer.from(d).toString() === "move") void relay?.rebind();
      },
    });
    relays.push(relay);
    for (const m of ["one", "two", "move", "three"]) client.socket.send(m, relay.port, relay.host);
    await server.until(4);
    const from = new Map(server.got.map((g) => [g.data.toString(), g.from.port]));
    expect(from.get("one")).toBe(from.get("two"));
    expect(from.get("move")).not.toBe(from.get("two"));
    expect(from.get("three")).toBe(from.get("move"));
    expect(from.get("move")).toBe(relay.upstreamPort(relay.clients()[0] as string));
    // the answers from the new port arrive (those to the old one may have been in flight when it closed)
    await client.until(4, 500);
    expect(client.got.map((g) => g.data.toString())).toEqual(expect.arrayContaining(["re:move", "re:three"]));
    expect(seen.filter((x) => x.startsWith("up:"))).toEqual(["up:one", "up:two", "up:move", "up:three"]);
  });

  it("rates out of range are a RangeError", async () => {
    const server = await endpoint();
    await expect(relayTo(server, 1, { drop: 1.5 })).rejects.toThrow(RangeError);
    await expect(relayTo(server, 1, { drop: 0.6, dup: 0.6 })).rejects.toThrow(/must not exceed 1/);
    const relay = await relayTo(server, 1);
    expect(() => relay.set({ down: { delay: -1 } })).toThrow(RangeError);
    expect(() => relay.dropNext("up", 0)).toThrow(RangeError);
  });
});
