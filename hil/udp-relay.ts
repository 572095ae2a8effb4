// Datagram fault injector: a UDP relay between clients and one server
// endpoint (hil/fault-relay.ts is its twin for the serial line) that damages
// the datagrams going through it, each direction on its own terms. For the
// DTLS tests: retransmission, reassembly, replay and reordering are what a
// DTLS stack must survive, and loopback UDP never loses anything by itself.
//
// * Clients send to `port` (on `host`, default 127.0.0.1). Each client
//   address gets an upstream socket of its own, as a NAT would: the server
//   sees one peer per client and its answers go back to that client.
//   `rebind()` gives the clients new upstream sockets, so the server sees
//   the same peer arrive from another address (RFC 9146's Connection ID
//   case: a NAT rebinding).
// * Faults, per datagram and per direction ("up" client→server, "down"
//   server→client), are drawn from a PRNG seeded with `seed` and the
//   direction, so the same datagrams with the same seed get the same faults:
//   drop (lost), dup (sent twice), reorder (held back until the next
//   datagram of that direction has gone, or `reorderMs`), delay (sent after
//   `delayMs`, the others not waiting). Stats count what was done.
// * Targeted: `dropNext(direction, match)` drops exactly one datagram, the
//   next one in that direction that `match` accepts (or the n-th from now),
//   before the random faults, and resolves with it: a test can lose exactly
//   one flight.
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { prng } from "./fault-relay.js";

/** Faults of one direction. Probabilities are per datagram, 0..1. */
export interface DatagramFaults {
  /** The datagram is lost. */
  drop?: number;
  /** The datagram is sent twice. */
  dup?: number;
  /** The datagram is held back and goes after the next one (or after `reorderMs`). */
  reorder?: number;
  /** The datagram goes `delayMs` late; later ones do not wait for it. */
  delay?: number;
  /** A delay's length: a fixed ms or a [min, max] range drawn uniformly (default 50). */
  delayMs?: number | readonly [number, number];
  /** How long a held-back datagram waits for one to overtake it (default 50 ms). */
  reorderMs?: number;
}

export interface DatagramLaneStats {
  /** Datagrams that entered the relay in this direction. */
  datagramsIn: number;
  bytesIn: number;
  /** Datagrams sent on (duplicates included, drops not). */
  datagramsOut: number;
  bytesOut: number;
  dropped: number;
  duplicated: number;
  /** Datagrams that went out after one that came in later. */
  reordered: number;
  delayed: number;
  /** Total delay in ms. */
  delayedMs: number;
  /** Dropped by dropNext. */
  targeted: number;
}

export interface UdpRelayStats {
  up: DatagramLaneStats;
  down: DatagramLaneStats;
}

/** "up" client → server, "down" server → client. */
export type DatagramDirection = "up" | "down";

/** Which datagram dropNext drops: the first `match` accepts, or the n-th from now (1: the next). */
export type DatagramMatch = ((datagram: Uint8Array) => boolean) | number;

export interface UdpRelayOptions {
  /** The server endpoint datagrams are relayed to. */
  server: { port: number; host?: string };
  /** PRNG seed (uint32); the same seed replays the same faults on the same datagrams. */
  seed: number;
  /** client → server faults. */
  up?: DatagramFaults;
  /** server → client faults. */
  down?: DatagramFaults;
  /** The address clients send to (default 127.0.0.1). */
  host?: string;
  /** Its port (default: any free one). */
  port?: number;
  /** Sees every datagram as it enters the relay, before any fault. */
  tap?: (direction: DatagramDirection, datagram: Uint8Array, client: string) => void;
}

export interface UdpRelay {
  /** The address and port clients send to instead of the server. */
  readonly host: string;
  readonly port: number;
  stats(): UdpRelayStats;
  /** Replaces the fault specs; directions not given keep theirs. */
  set(spec: { up?: DatagramFaults; down?: DatagramFaults }): void;
  /** Drops exactly one datagram going `direction`: the next `match` selects. Resolves with it once dropped. */
  dropNext(direction: DatagramDirection, match: DatagramMatch): Promise<Uint8Array>;
  /** The clients seen so far, as "address:port". */
  clients(): string[];
  /** The upstream port the server sees for `client` ("address:port"). */
  upstreamPort(client: string): number | undefined;
  /**
   * New upstream sockets for every client (or one): the server sees them
   * come from other ports. Takes effect at the call (datagrams arriving from
   * then on wait for the new socket), so a `tap` may call it to move a
   * client right before a chosen datagram.
   */
  rebind(client?: string): Promise<void>;
  /** Closes every socket and drops what is pending. Idempotent. */
  stop(): Promise<void>;
}

// ------------------------------------------------------------------- lane

function checkProbability(name: string, p: number | undefined): void {
  if (p !== undefined && !(p >= 0 && p <= 1)) throw new RangeError(`fault ${name} must be in 0..1, got ${p}`);
}

function checkFaults(f: DatagramFaults): void {
  checkProbability("drop", f.drop);
  checkProbability("dup", f.dup);
  checkProbability("reorder", f.reorder);
  checkProbability("delay", f.delay);
  if ((f.drop ?? 0) + (f.dup ?? 0) + (f.reorder ?? 0) > 1) throw new RangeError("drop + dup + reorder must not exceed 1");
  const d = f.delayMs;
  if (d !== undefined && (typeof d === "number" ? !(d >= 0) : !(d[0] >= 0 && d[1] >= d[0])))
    throw new RangeError(`delayMs must be >= 0 or a [min, max] range, got ${String(d)}`);
  if (f.reorderMs !== undefined && !(f.reorderMs >= 0)) throw new RangeError(`reorderMs must be >= 0, got ${f.reorderMs}`);
}

export function emptyDatagramStats(): DatagramLaneStats {
  return {
    datagramsIn: 0,
    bytesIn: 0,
    datagramsOut: 0,
    bytesOut: 0,
    dropped: 0,
    duplicated: 0,
    reordered: 0,
    delayed: 0,
    delayedMs: 0,
    targeted: 0,
  };
}

interface Target {
  match: DatagramMatch;
  seen: number;
  resolve: (d: Uint8Array) => void;
}

/** A datagram on its way, with where it goes. */
type Send = (datagram: Uint8Array) => void;

/**
 * One direction: `push` decides a datagram's faults at once, from the PRNG
 * alone (so the faults depend only on the seed and the order of the
 * datagrams), then sends it on through `send` now, later, or never.
 */
export class DatagramLane {
  readonly stats: DatagramLaneStats = emptyDatagramStats();
  private readonly rand: () => number;
  private readonly targets: Target[] = [];
  private held: { datagram: Uint8Array; send: Send; timer: ReturnType<typeof setTimeout> } | undefined;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private stopped = false;

  constructor(
    seed: number,
    private faults: DatagramFaults,
  ) {
    checkFaults(faults);
    this.rand = prng(seed);
  }

  setFaults(faults: DatagramFaults): void {
    checkFaults(faults);
    this.faults = faults;
  }

  dropNext(match: DatagramMatch): Promise<Uint8Array> {
    if (typeof match === "number" && !(Number.isInteger(match) && match >= 1))
      throw new RangeError(`datagram count must be 1 or more, got ${match}`);
    return new Promise((resolve) => this.targets.push({ match, seen: 0, resolve }));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.held) clearTimeout(this.held.timer);
    this.held = undefined;
  }

  push(datagram: Uint8Array, send: Send): void {
    if (this.stopped) return;
    const st = this.stats;
    st.datagramsIn++;
    st.bytesIn += datagram.length;
    if (this.targeted(datagram)) return;
    const { drop = 0, dup = 0, reorder = 0, delay = 0 } = this.faults;
    // Three draws per datagram whatever the rates: a datagram's faults depend
    // on its place in the stream, not on what earlier datagrams got.
    const u = this.rand();
    const v = this.rand();
    const w = this.rand();
    if (u < drop) {
      st.dropped++;
      return;
    }
    const delayMs = v < delay ? this.delayLength(w) : 0;
    const out: Send = (d) => this.later(d, send, delayMs);
    if (u < drop + dup) {
      st.duplicated++;
      this.release(datagram, out);
      this.release(datagram, out);
    } else if (u < drop + dup + reorder && !this.held) {
      const timer = setTimeout(() => {
        const h = this.held;
        this.held = undefined;
        if (h) h.send(h.datagram);
      }, this.faults.reorderMs ?? 50);
      this.held = { datagram, send: out, timer };
    } else {
      this.release(datagram, out);
    }
  }

  /** dropNext's targets, before the random faults: true when `datagram` was dropped. */
  private targeted(datagram: Uint8Array): boolean {
    for (let k = 0; k < this.targets.length; k++) {
      const t = this.targets[k] as Target;
      t.seen++;
      if (typeof t.match === "number" ? t.seen === t.match : t.match(datagram)) {
        this.targets.splice(k, 1);
        this.stats.targeted++;
        t.resolve(datagram);
        return true;
      }
    }
    return false;
  }

  /** Sends `datagram`, then the one held back (which it overtook). */
  private release(datagram: Uint8Array, send: Send): void {
    send(datagram);
    const h = this.held;
    if (h) {
      this.held = undefined;
      clearTimeout(h.timer);
      this.stats.reordered++;
      h.send(h.datagram);
    }
  }

  private delayLength(r: number): number {
    const d = this.faults.delayMs ?? 50;
    if (typeof d === "number") return d;
    return d[0] + r * (d[1] - d[0]);
  }

  private later(datagram: Uint8Array, send: Send, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) {
      this.emit(datagram, send);
      return;
    }
    this.stats.delayed++;
    this.stats.delayedMs += ms;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) this.emit(datagram, send);
    }, ms);
    this.timers.add(t);
  }

  private emit(datagram: Uint8Array, send: Send): void {
    this.stats.datagramsOut++;
    this.stats.bytesOut += datagram.length;
    send(datagram);
  }
}

// ------------------------------------------------------------------ relay

function bindSocket(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    s.once("error", reject);
    s.bind(port, host, () => {
      s.off("error", reject);
      s.on("error", () => {}); // ICMP port unreachable and the like: UDP goes on
      resolve(s);
    });
  });
}

const closeSocket = (s: Socket): Promise<void> =>
  new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });

/** Starts a relay in front of `opts.server`. */
export async function startUdpRelay(opts: UdpRelayOptions): Promise<UdpRelay> {
  const seed = opts.seed >>> 0;
  const host = opts.host ?? "127.0.0.1";
  const serverHost = opts.server.host ?? "127.0.0.1";
  const serverPort = opts.server.port;
  const up = new DatagramLane(seed ^ 0x55500000, opts.up ?? {});
  const down = new DatagramLane(seed ^ 0xd0e00000, opts.down ?? {});
  const front = await bindSocket(host, opts.port ?? 0);
  /** client "address:port" -> its upstream socket. */
  const upstream = new Map<string, { socket: Socket; address: string; port: number }>();
  let stopping: Promise<void> | undefined;

  const attach = async (client: string, address: string, port: number): Promise<Socket> => {
    const socket = await bindSocket("0.0.0.0", 0);
    socket.on("message", (msg: Buffer) => {
      // a socket rebind() replaced still answers until it is closed, as a NAT's old mapping would
      opts.tap?.("down", msg, client);
      down.push(msg, (d) => front.send(d, port, address));
    });
    upstream.set(client, { socket, address, port });
    return socket;
  };
  /** Upstream sockets being made (a new client's, a rebind's): the datagrams after it wait for it, in order. */
  const pending = new Map<string, Promise<Socket>>();
  const making = (client: string, p: Promise<Socket>): Promise<Socket> => {
    pending.set(client, p);
    void p.then(
      () => pending.get(client) === p && pending.delete(client),
      () => pending.get(client) === p && pending.delete(client),
    );
    return p;
  };
  front.on("message", (msg: Buffer, rinfo: RemoteInfo) => {
    if (stopping) return;
    const client = `${rinfo.address}:${rinfo.port}`;
    opts.tap?.("up", msg, client);
    const known = upstream.get(client);
    const socket =
      pending.get(client) ?? (known ? Promise.resolve(known.socket) : making(client, attach(client, rinfo.address, rinfo.port)));
    // The lane decides now, in arrival order; the send waits for the socket.
    up.push(msg, (d) => {
      void socket.then((first) => {
        // after a rebind() the client's current socket
        if (!stopping) (upstream.get(client)?.socket ?? first).send(d, serverPort, serverHost);
      });
    });
  });

  return {
    host,
    port: (front.address() as { port: number }).port,
    stats: () => ({ up: { ...up.stats }, down: { ...down.stats } }),
    set(spec) {
      if (spec.up) up.setFaults(spec.up);
      if (spec.down) down.setFaults(spec.down);
    },
    dropNext: (direction, match) => (direction === "up" ? up : down).dropNext(match),
    clients: () => [...upstream.keys()],
    upstreamPort: (client) => {
      const u = upstream.get(client);
      return u ? (u.socket.address() as { port: number }).port : undefined;
    },
    rebind(client) {
      // the new sockets are pending at once: a datagram arriving from here on goes out on its client's new socket
      const moves = [...upstream]
        .filter(([key]) => client === undefined || key === client)
        .map(async ([key, u]) => {
          await making(key, attach(key, u.address, u.port));
          await closeSocket(u.socket);
        });
      return Promise.all(moves).then(() => undefined);
    },
    stop() {
      stopping ??= (async () => {
        up.stop();
        down.stop();
        await Promise.all([...pending.values()].map((p) => p.catch(() => undefined)));
        await Promise.all([front, ...[...upstream.values()].map((u) => u.socket)].map(closeSocket));
        upstream.clear();
      })();
      return stopping;
    },
  };
}
