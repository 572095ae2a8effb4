// Third-party DTLS 1.2 peers for the dtls-*.test.ts files, each a Peer of
// tls-peers.ts (output collected, waitFor, stopped by stopPeers()):
// GnuTLS's gnutls-serv --udp --echo / gnutls-cli --udp (certificates),
// libcoap's coap-server / coap-client over coaps with a PSK (two builds:
// libcoap on OpenSSL or on GnuTLS), and Mbed TLS's own ssl_server2 /
// ssl_client2 built from the pinned tree by tools/build-mbedtls-programs.sh
// (DTLS Connection ID: cid=1 cid_val=...). Plus a free loopback UDP port and
// the lines in which each program reports its success.
import { execFileSync } from "node:child_process";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import type {
  CRT,
  Device,
  DTLSConfigurationOptions,
  DTLSServer,
  DTLSServerOptions,
  DTLSSession,
  ECC,
  TrustStore,
} from "../../host/src/index.js";
import { REPO_ROOT } from "../../host/src/targets/process.js";
import { requireTool } from "../../tools/programs.js";
import { deviceServerLeaf, type OpensslDir, type Peer, spawnPeer } from "./tls-peers.js";
import { makePki, type Pki } from "./x509-verify-pki.js";

/** A free UDP port on the loopback (released before the peer binds it). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    s.once("error", reject);
    s.bind(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A peer that listens, with the UDP port it listens on. */
export interface ListeningPeer {
  peer: Peer;
  port: number;
}

/** Starts a listener on a free UDP port; a few tries when another process took the port first. */
async function listenOnFreePort(start: (port: number) => Promise<Peer>): Promise<ListeningPeer> {
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeUdpPort();
    try {
      return { peer: await start(port), port };
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

// ------------------------------------------------------------------ GnuTLS

export interface GnutlsServerOptions {
  /** Working directory (the PKI's). */
  dir: string;
  /** PEM chain the server sends (leaf first) and its key, relative to `dir` or absolute. */
  certFile: string;
  keyFile: string;
  /** A GnuTLS priority string (default GnuTLS's NORMAL). */
  priority?: string;
  /** Client certificates: "request" (--verify-client-cert, with `caFile`) or "require" (--require-client-cert). */
  clientCert?: "request" | "require";
  caFile?: string;
  mtu?: number;
}

/**
 * `gnutls-serv --udp --echo` on a free port (it binds every interface): it
 * echoes each line a client sends. Ready once it prints
 * "UDP Echo Server listening on IPv4 0.0.0.0 port N...done".
 */
export function gnutlsServer(o: GnutlsServerOptions): Promise<ListeningPeer> {
  const gnutlsServ = requireTool("gnutls-serv");
  return listenOnFreePort(async (port) => {
    const args = ["--udp", "--echo", "-p", String(port), "--x509certfile", o.certFile, "--x509keyfile", o.keyFile];
    if (o.priority) args.push("--priority", o.priority);
    if (o.caFile) args.push("--x509cafile", o.caFile);
    if (o.clientCert === "require") args.push("--require-client-cert");
    else if (o.clientCert === "request") args.push("--verify-client-cert");
    if (o.mtu !== undefined) args.push("--mtu", String(o.mtu));
    const peer = spawnPeer(gnutlsServ, args, o.dir);
    try {
      await peer.waitFor(new RegExp(`listening on IPv4 0\\.0\\.0\\.0 port ${port}\\.\\.\\.done`), 5000);
    } catch (e) {
      peer.stop();
      throw e;
    }
    return peer;
  });
}

export interface GnutlsClientOptions {
  dir: string;
  port: number;
  /** The trust anchor (PEM). */
  caFile: string;
  /** The name the server's certificate must carry (default makePki's device.example). */
  hostname?: string;
  /** A client certificate chain and its key. */
  certFile?: string;
  keyFile?: string;
  priority?: string;
  mtu?: number;
}

/** The line gnutls-cli prints once the handshake is done. */
export const GNUTLS_HANDSHAKE_DONE = "- Handshake was completed";

/**
 * `gnutls-cli --udp` to the loopback's `port`, verifying the server's chain
 * against `caFile` and its name; what is written to its stdin goes to the
 * server, what it receives comes out on stdout. Ends at stdin's end.
 */
export function gnutlsClient(o: GnutlsClientOptions): Peer {
  const args = ["--udp", "-p", String(o.port), "--x509cafile", o.caFile, "--verify-hostname", o.hostname ?? "device.example"];
  if (o.certFile) args.push("--x509certfile", o.certFile);
  if (o.keyFile) args.push("--x509keyfile", o.keyFile);
  if (o.priority) args.push("--priority", o.priority);
  if (o.mtu !== undefined) args.push("--mtu", String(o.mtu));
  args.push("127.0.0.1");
  return spawnPeer(requireTool("gnutls-cli"), args, o.dir);
}

// ------------------------------------------------------------------ libcoap

/** Which TLS library libcoap's programs run on. */
export type CoapFlavor = "openssl" | "gnutls";

const coapServerProgram = (f: CoapFlavor) => (f === "openssl" ? requireTool("coap-server-openssl") : requireTool("coap-server-gnutls"));
const coapClientProgram = (f: CoapFlavor) => (f === "openssl" ? requireTool("coap-client-openssl") : requireTool("coap-client-gnutls"));

export interface CoapServerOptions {
  dir: string;
  /** The PSK as libcoap takes it: the key's bytes as a string (-k). */
  key: string;
  /** The identity hint it sends (-h; default libcoap's "CoAP"). */
  hint?: string;
  flavor?: CoapFlavor;
  /** Up to this many resources clients may create with PUT (-d; default 4). */
  dynamic?: number;
}

/**
 * libcoap's example `coap-server` with a PSK, on the loopback. Its
 * resources: "/" (a text naming libcoap, COAP_SERVER_INDEX), "/time",
 * "/async", and up to `dynamic` that a client PUTs. It listens for coap on
 * a port and for coaps (DTLS) on the next one: `port` here is the DTLS one.
 * Verbosity 7: it logs each DTLS session and each CoAP message.
 */
export function coapServer(o: CoapServerOptions): Promise<ListeningPeer> {
  const program = coapServerProgram(o.flavor ?? "openssl");
  return listenOnFreePort(async (dtlsPort) => {
    const plain = dtlsPort - 1;
    const args = ["-A", "127.0.0.1", "-p", String(plain), "-k", o.key, "-d", String(o.dynamic ?? 4), "-v", "7"];
    if (o.hint !== undefined) args.push("-h", o.hint);
    const peer = spawnPeer(program, args, o.dir);
    try {
      // all four endpoints (UDP, DTLS, TCP, TLS): a bind that failed is a retry
      await peer.waitFor(`created TLS  endpoint 127.0.0.1:${dtlsPort}`, 5000);
      if (/bind|Address already in use/i.test(peer.out())) throw new Error(`coap-server could not bind:\n${peer.out()}`);
    } catch (e) {
      peer.stop();
      throw e;
    }
    return peer;
  });
}

/** The start of the text of coap-server's "/" resource. */
export const COAP_SERVER_INDEX = "This is a test server made with libcoap";

export interface CoapClientOptions {
  dir: string;
  port: number;
  key: string;
  identity: string;
  method?: "get" | "put" | "post" | "delete";
  /** The resource path, without the leading slash. */
  path?: string;
  /** A request payload (written to a file for -f). */
  payload?: string;
  flavor?: CoapFlavor;
  /** How long it waits for the response (-B; default libcoap's 90 s). */
  waitSeconds?: number;
}

/** `coap-client` over coaps with a PSK: one request; the peer's output is the response's payload. */
export function coapClient(o: CoapClientOptions): Peer {
  const args = ["-m", o.method ?? "get", "-k", o.key, "-u", o.identity];
  if (o.waitSeconds !== undefined) args.push("-B", String(o.waitSeconds));
  if (o.payload !== undefined) {
    const file = join(o.dir, "coap-payload.txt");
    writeFileSync(file, o.payload);
    args.push("-f", file);
  }
  args.push(`coaps://127.0.0.1:${o.port}/${o.path ?? ""}`);
  return spawnPeer(coapClientProgram(o.flavor ?? "gnutls"), args, o.dir);
}

// ----------------------------------------------------------------- Mbed TLS

let programsDir: string | undefined;

/** The folder of Mbed TLS's ssl_server2 and ssl_client2, built on first use (about 30 s; then nothing). */
export function mbedtlsPrograms(): string {
  programsDir ??= execFileSync("bash", [join(REPO_ROOT, "tools", "build-mbedtls-programs.sh")], {
    stdio: ["ignore", "pipe", "inherit"],
  })
    .toString()
    .trim();
  return programsDir;
}

/** ssl_server2/ssl_client2's `name=value` arguments. */
export type MbedtlsArgs = Record<string, string | number>;

const mbedtlsArgs = (a: MbedtlsArgs): string[] => Object.entries(a).map(([k, v]) => `${k}=${v}`);

/**
 * Mbed TLS's ssl_server2 over DTLS (dtls=1) on the loopback, with `args`
 * added (psk=..., cid=1 cid_val=..., cookies=..., exchanges=...). It
 * answers a client's request with an HTTP page and serves the next client.
 * Ready at "Waiting for a remote connection".
 */
export function sslServer2(args: MbedtlsArgs, dir: string): Promise<ListeningPeer> {
  const program = join(mbedtlsPrograms(), "ssl_server2");
  return listenOnFreePort(async (port) => {
    const peer = spawnPeer(program, mbedtlsArgs({ dtls: 1, server_addr: "127.0.0.1", server_port: port, ...args }), dir);
    try {
      await peer.waitFor(/Waiting for a remote connection/, 5000);
    } catch (e) {
      peer.stop();
      throw e;
    }
    return peer;
  });
}

/** Mbed TLS's ssl_client2 over DTLS to the loopback's `port`: it sends an HTTP GET and reads the answer. */
export function sslClient2(port: number, args: MbedtlsArgs, dir: string): Peer {
  return spawnPeer(
    join(mbedtlsPrograms(), "ssl_client2"),
    mbedtlsArgs({ dtls: 1, server_addr: "127.0.0.1", server_port: port, ...args }),
    dir,
  );
}

/** The line ssl_server2/ssl_client2 print once the handshake is done. */
export const MBEDTLS_PROTOCOL_LINE = "[ Protocol is DTLSv1.2 ]";

/**
 * The peer's CID as ssl_server2/ssl_client2 report it after `phase`'s
 * handshake ("(initial handshake) Peer CID (length 4 Bytes): c1 c2 c3 c4"),
 * as hex; null when they report no CID negotiated, undefined when no report.
 */
export function reportedPeerCid(out: string, phase = "initial handshake"): string | null | undefined {
  const m = new RegExp(`\\(${phase}\\) Peer CID \\(length (\\d+) Bytes\\): ((?:[0-9a-f]{2} )*)`).exec(out);
  if (m) {
    const hex = (m[2] as string).replaceAll(" ", "");
    if (hex.length !== Number(m[1]) * 2) throw new Error(`CID report's length and bytes disagree: ${m[0]}`);
    return hex;
  }
  // the server's words and the client's
  return out.includes(`(${phase}) Use of Connection ID was not offered`) || out.includes(`(${phase}) Use of Connection ID was rejected`)
    ? null
    : undefined;
}

/** The next message of a device's DTLS session, or undefined after `ms`. */
export function nextMessage(s: DTLSSession, ms: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve) => {
    const done = (m: Uint8Array | undefined) => {
      clearTimeout(t);
      s.off("message", done);
      resolve(m);
    };
    const t = setTimeout(() => done(undefined), ms);
    s.on("message", done);
  });
}

// -------------------------------------------------------------------- CoAP

/** A CoAP message (RFC 7252 §3), as much of it as the tests use. */
export interface CoapMessage {
  /** 0 CON, 1 NON, 2 ACK, 3 RST. */
  type: number;
  /** class * 32 + detail: 0x01 GET, 0x03 PUT, 0x45 2.05 Content, 0x44 2.04 Changed, 0x84 4.04. */
  code: number;
  messageId: number;
  token: Uint8Array;
  /** Options by number, in order (Uri-Path is 11, one per segment). */
  options: [number, Uint8Array][];
  payload: Uint8Array;
}

export const COAP_GET = 0x01;
export const COAP_CONTENT = 0x45;
export const COAP_URI_PATH = 11;

/** An option's delta or length nibble and its extended bytes (RFC 7252 §3.1). */
function coapNibble(v: number): [number, number[]] {
  if (v < 13) return [v, []];
  if (v < 269) return [13, [v - 13]];
  return [14, [(v - 269) >> 8, (v - 269) & 0xff]];
}

export function encodeCoap(m: CoapMessage): Uint8Array {
  if (m.token.length > 8) throw new RangeError("a CoAP token is at most 8 bytes");
  const out = [0x40 | (m.type << 4) | m.token.length, m.code, m.messageId >> 8, m.messageId & 0xff, ...m.token];
  let last = 0;
  for (const [n, v] of [...m.options].sort((a, b) => a[0] - b[0])) {
    const [d, dx] = coapNibble(n - last);
    const [l, lx] = coapNibble(v.length);
    out.push((d << 4) | l, ...dx, ...lx, ...v);
    last = n;
  }
  if (m.payload.length > 0) out.push(0xff, ...m.payload);
  return Uint8Array.from(out);
}

export function decodeCoap(b: Uint8Array): CoapMessage {
  const at = (i: number): number => {
    if (i >= b.length) throw new RangeError("truncated CoAP message");
    return b[i] as number;
  };
  if (at(0) >> 6 !== 1) throw new RangeError("not CoAP version 1");
  const tkl = at(0) & 0x0f;
  const m: CoapMessage = {
    type: (at(0) >> 4) & 3,
    code: at(1),
    messageId: (at(2) << 8) | at(3),
    token: b.slice(4, 4 + tkl),
    options: [],
    payload: new Uint8Array(0),
  };
  let i = 4 + tkl;
  let n = 0;
  const ext = (v: number): number => {
    if (v === 13) return at(i++) + 13;
    if (v === 14) {
      const x = (at(i) << 8) | at(i + 1);
      i += 2;
      return x + 269;
    }
    if (v === 15) throw new RangeError("reserved CoAP option nibble");
    return v;
  };
  while (i < b.length) {
    if (at(i) === 0xff) {
      m.payload = b.slice(i + 1);
      break;
    }
    const head = at(i++);
    n += ext(head >> 4);
    const len = ext(head & 0x0f);
    m.options.push([n, b.slice(i, i + len)]);
    i += len;
  }
  return m;
}

/** A confirmable GET of `path` ("a/b"). */
export function coapGet(path: string, messageId: number, token: Uint8Array): Uint8Array {
  const options = path
    .split("/")
    .filter((s) => s !== "")
    .map((s): [number, Uint8Array] => [COAP_URI_PATH, new TextEncoder().encode(s)]);
  return encodeCoap({ type: 0, code: COAP_GET, messageId, token, options, payload: new Uint8Array(0) });
}

/** A request's Uri-Path, joined with "/". */
export const coapPath = (m: CoapMessage): string =>
  m.options
    .filter(([n]) => n === COAP_URI_PATH)
    .map(([, v]) => new TextDecoder().decode(v))
    .join("/");

// ------------------------------------------------- device sessions, sockets

/** makePki's chain on the device: its root in a trust store, the intermediate, and a device server key (not exportable) with its leaf. */
export interface DevicePki {
  /** makePki's files (in the OpensslDir's directory). */
  files: Pki;
  root: CRT;
  inter: CRT;
  trust: TrustStore;
  serverKey: ECC;
  serverLeaf: CRT;
  /** Frees them on the device. */
  close(): Promise<void>;
}

/** makePki in `o`'s directory, and its chain on the device with a server leaf for `host` (deviceServerLeaf). */
export async function devicePki(dev: Device, o: OpensslDir, host: string): Promise<DevicePki> {
  const files = makePki(o.dir);
  const root = await dev.x509.CRT.fromPEM(readFileSync(files.root, "utf8"));
  const inter = await dev.x509.CRT.fromPEM(readFileSync(files.inter, "utf8"));
  const trust = new dev.dtls.TrustStore();
  await trust.add(root);
  const { key: serverKey, leaf: serverLeaf } = await deviceServerLeaf(dev, o, host);
  return {
    files,
    root,
    inter,
    trust,
    serverKey,
    serverLeaf,
    close: async () => {
      for (const x of [serverLeaf, serverKey, trust, inter, root]) await x.close();
    },
  };
}

/** A builder of PSK configurations: `key` authenticates both sides (no certificates), Mbed TLS's first retransmission after `hsMin` ms, `more` on top. */
export const pskOptions =
  (key: [string, Uint8Array], hsMin: number) =>
  (more: DTLSConfigurationOptions = {}): DTLSConfigurationOptions => ({
    preSharedKey: key,
    validateCertificates: false,
    handshakeTimeoutMin: hsMin,
    ...more,
  });

/** A UDP socket on the loopback recording what it receives. */
export interface RecordingSocket {
  socket: Socket;
  port: number;
  got: { msg: Buffer; from: RemoteInfo }[];
  close(): void;
}

export async function recordingSocket(): Promise<RecordingSocket> {
  const socket = createSocket("udp4");
  const got: { msg: Buffer; from: RemoteInfo }[] = [];
  socket.on("message", (msg, from) => got.push({ msg, from }));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { socket, port: socket.address().port, got, close: () => socket.close() };
}

/** A device server on the loopback echoing every message back; its port and the 'sessionError's it reported. */
export async function echoServer(
  dev: Device,
  conf: DTLSConfigurationOptions,
  opts: DTLSServerOptions = {},
): Promise<{ server: DTLSServer; port: number; errors: Error[] }> {
  const server = dev.dtls.createServer(
    new dev.dtls.DTLSConfiguration(conf),
    (s) => {
      s.on("message", (m: Uint8Array) => void s.send(m).catch(() => {}));
    },
    opts,
  );
  const errors: Error[] = [];
  server.on("sessionError", (e: Error) => errors.push(e));
  const { port } = await server.listen(0, "127.0.0.1");
  return { server, port, errors };
}

/** Sends `m` on `s` and expects it echoed back within `ms`. */
export async function echoes(s: DTLSSession, m: Uint8Array, ms: number): Promise<void> {
  const back = nextMessage(s, ms);
  await s.send(m);
  expect(Buffer.from((await back) ?? [])).toEqual(Buffer.from(m));
}

/** The first ClientHello (no cookie) of a device client of `conf`, caught by a silent peer. */
export async function deviceClientHello(dev: Device, conf: DTLSConfigurationOptions, handshakeTimeoutMs: number): Promise<Buffer> {
  const silent = await recordingSocket();
  try {
    await dev.dtls.connect({ ...conf, port: silent.port, handshakeTimeoutMs }).catch(() => {});
  } finally {
    silent.close();
  }
  const hello = silent.got[0]?.msg;
  if (!hello) throw new Error("the device client sent no ClientHello");
  return hello;
}
