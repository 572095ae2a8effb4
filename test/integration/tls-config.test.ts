// TLS configurations against OpenSSL (issue 17, slice 4), native and QEMU:
// a server's PSK store (identities looked up on the device, a key from a
// slot among them; an unknown identity fails typed and the server serves
// the next), TLS 1.3 pure PSK (no key_share in OpenSSL's trace of the
// ServerHello, no "Server Temp Key") and PSK + ECDHE, mutual TLS with the
// client's key non-exportable in a slot (`openssl s_server -Verify 1
// -verify_return_error` names its subject) and a device server that
// requires a client certificate, SNI choosing among chains by host name
// (s_client verifies the chain for the name it sent), and ALPN on a device
// server (the agreed protocol on both sides; no overlap fails typed). One
// session at a time (the STM32 holds one); the heap ends where it began.
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ArgumentError,
  type CRT,
  CryptoError,
  type Device,
  type ECC,
  type SymmetricKey,
  TLSAlertError,
  type TLSConfigurationOptions,
  type TLSContext,
  TLSHandshakeError,
  type TLSWrappedSocket,
  type TrustStore,
} from "../../host/src/index.js";
import { useSession } from "./session.js";
import { TARGET } from "./target.js";
import {
  connectTo,
  freePort,
  type Listener,
  listenLoopback,
  opensslDir,
  type Peer,
  recvUntil,
  SERVER_CHAIN_ARGS,
  stopPeers,
  utf8,
  TLS_VERSIONS as VERSIONS,
} from "./tls-peers.js";
import { makePki } from "./x509-verify-pki.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
const work = opensslDir("tls-config-");
const { dir, path, run: ossl, spawn: spawnOpenssl } = work;
const derOf = (pemFile: string) => new Uint8Array(new X509Certificate(readFileSync(path(pemFile))).raw);

/** Mbed TLS's codes the failures below end with. */
const UNKNOWN_IDENTITY = -0x6c80;
const NO_CLIENT_CERTIFICATE = -0x7480;
const NO_APPLICATION_PROTOCOL = -0x7580;
const UNRECOGNIZED_NAME = -0x7800;
const HANDSHAKE_FAILURE = -0x6e00;

/** The PSK store: three identities; beta's key is a device SymmetricKey kept in a slot. */
const PSKS = {
  alpha: "000102030405060708090a0b0c0d0e0f",
  beta: "f0e1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff",
  gamma: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
} as const;
const PSK_SLOT = 6;
const CLIENT_SLOT = 7;

let root: CRT;
let inter: CRT;
let trust: TrustStore;
let serverCrt: CRT;
let serverKey: ECC;
let listener: Listener;

/** A key made by OpenSSL, imported into the device (exportable: it is a test key). */
async function importKey(name: string): Promise<ECC> {
  ossl(["pkcs8", "-topk8", "-nocrypt", "-in", `${name}.key`, "-outform", "DER", "-out", `${name}.p8`]);
  const der = new Uint8Array(readFileSync(path(`${name}.p8`)));
  return dev.pk.ECC.fromDER(der);
}

/** A server leaf for `host` (its SAN), signed by the PKI's intermediate. */
function issueServerLeaf(name: string, host: string): void {
  ossl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${name}.key`]);
  ossl(["req", "-new", "-key", `${name}.key`, "-subj", `/CN=${host}`, "-out", `${name}.csr`]);
  writeFileSync(
    path(`${name}.ext`),
    `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:${host}\n`,
  );
  ossl(
    ["x509", "-req", "-in", `${name}.csr`, "-CA", "inter.crt", "-CAkey", "inter.key", "-CAcreateserial", "-days", "30", "-sha256"].concat([
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.crt`,
    ]),
  );
}

beforeAll(async () => {
  dev = session.dev;
  makePki(dir); // root -> inter -> server (DNS:device.example) and client (clientAuth)
  root = await dev.x509.CRT.fromPEM(readFileSync(path("root.crt"), "utf8"));
  inter = await dev.x509.CRT.fromPEM(readFileSync(path("inter.crt"), "utf8"));
  serverCrt = await dev.x509.CRT.fromPEM(readFileSync(path("server.crt"), "utf8"));
  serverKey = await importKey("server");
  trust = new dev.tls.TrustStore();
  await trust.add(root);
  listener = await listenLoopback();
}, 120_000);

afterAll(async () => {
  stopPeers();
  await listener?.close();
  for (const o of [trust, serverKey, serverCrt, inter, root]) await o?.close();
  work.remove();
});

/** A device server session for the next connection, and the s_client that makes it. */
async function sClientTo(ctx: TLSContext, args: string[]): Promise<{ tls: TLSWrappedSocket; peer: Peer }> {
  const accepted = listener.accepted();
  const peer = spawnOpenssl(["s_client", "-connect", `127.0.0.1:${listener.port}`, ...args]);
  return { tls: ctx.wrapSocket(await accepted), peer };
}

/** An s_server on a free port, once it accepts. */
async function sServer(args: string[]): Promise<{ port: number; peer: Peer }> {
  const port = await freePort();
  const peer = spawnOpenssl(["s_server", "-accept", String(port), "-naccept", "1", ...args]);
  await peer.waitFor("ACCEPT");
  return { port, peer };
}

/** A line each way over an established session. */
async function exchange(tls: TLSWrappedSocket, peer: Peer, tag: string): Promise<void> {
  const toDevice = `openssl to device ${tag} ${Date.now()}\n`;
  peer.proc.stdin.write(toDevice);
  expect(await recvUntil(tls, toDevice)).toBe(toDevice);
  const toPeer = `device to openssl ${tag} ${Date.now()}\n`;
  await tls.send(utf8(toPeer));
  await peer.waitFor(toPeer);
}

/** The handshake's failure (it must fail). */
async function handshakeError(tls: TLSWrappedSocket): Promise<CryptoError> {
  const err = await tls.doHandshake().then(
    () => new Error("the handshake succeeded"),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CryptoError);
  return err as CryptoError;
}

/** The extensions of the ServerHello in an OpenSSL -trace output. */
function serverHelloExtensions(trace: string): string[] {
  const at = trace.indexOf("ServerHello, Length=");
  expect(at).toBeGreaterThanOrEqual(0);
  const block = trace.slice(at, trace.indexOf("\n\n", at));
  return [...block.matchAll(/extension_type=([a-z_]+)\(/g)].map((m) => m[1] as string);
}

describe("PSK store on a device server", () => {
  let symKey: SymmetricKey;
  let server: TLSContext;

  beforeAll(async () => {
    await using imported = dev.keys.importSymmetric(Buffer.from(PSKS.beta, "hex"));
    await dev.slots.store(imported, PSK_SLOT, { label: "psk beta" });
    symKey = (await dev.slots.load(PSK_SLOT)) as SymmetricKey;
    const s0 = await dev.stats();
    server = dev.tls.ServerContext(
      new dev.tls.TLSConfiguration({
        preSharedKeyStore: new Map<string, Uint8Array | SymmetricKey>([
          ["alpha", Buffer.from(PSKS.alpha, "hex")],
          ["beta", symKey],
          ["gamma", Buffer.from(PSKS.gamma, "hex")],
        ]),
      }),
    );
    await server.ready;
    const s1 = await dev.stats();
    console.log(`[tls-config ${TARGET}] a server configuration with a 3-entry PSK store takes ${s1.heapUsed - s0.heapUsed} B of heap`);
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await symKey?.close();
    await dev.slots.delete(PSK_SLOT).catch(() => {});
  });

  describe.each(VERSIONS)("%s", (version, flag) => {
    it.each(["alpha", "beta"] as const)("s_client -psk_identity %s gets its key, data both ways", async (id) => {
      const { tls, peer } = await sClientTo(server, [flag, "-psk", PSKS[id], "-psk_identity", id]);
      try {
        await tls.doHandshake();
        expect(tls.buffer.negotiatedTlsVersion()).toBe(version);
        expect(tls.buffer.cipher()?.[0]).toMatch(version === "TLSv1.2" ? /PSK/ : /^TLS1-3-/);
        await exchange(tls, peer, `${version} ${id}`);
        await tls.shutdown();
      } finally {
        peer.stop();
        await tls.close();
      }
    });

    it("an unknown identity fails typed, and the server serves the next client", async () => {
      const bad = await sClientTo(server, [flag, "-psk", PSKS.alpha, "-psk_identity", "mallory"]);
      try {
        const err = await handshakeError(bad.tls);
        expect(err).toBeInstanceOf(TLSHandshakeError);
        if (version === "TLSv1.2") {
          // Mbed TLS's PSK callback said no: unknown_psk_identity.
          expect(err.mbedtlsCode).toBe(UNKNOWN_IDENTITY);
          expect((err as TLSHandshakeError).reason).toMatch(/unknown PSK identity/);
          await bad.peer.waitFor(/unknown psk identity/);
        } else {
          // TLS 1.3: an unknown identity is no PSK (RFC 8446 4.2.11); without a certificate no key exchange is left.
          expect(err.mbedtlsCode).toBe(HANDSHAKE_FAILURE);
          await bad.peer.waitFor(/handshake failure/);
        }
      } finally {
        bad.peer.stop();
        await bad.tls.close();
      }
      const next = await sClientTo(server, [flag, "-psk", PSKS.alpha, "-psk_identity", "alpha"]);
      try {
        await next.tls.doHandshake();
        await exchange(next.tls, next.peer, `${version} after mallory`);
      } finally {
        next.peer.stop();
        await next.tls.close();
      }
    });
  });

  it("refuses a store on a client, and bad entries, before the device is asked", async () => {
    expect(() => new dev.tls.TLSConfiguration({ preSharedKeyStore: { a: new Uint8Array(33) } })).toThrow(ArgumentError);
    expect(() => new dev.tls.TLSConfiguration({ preSharedKeyStore: {} })).toThrow(ArgumentError);
    const ctx = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ preSharedKeyStore: { a: new Uint8Array(16) } }));
    await expect(ctx.ready).rejects.toMatchObject({ statusName: "bad_argument" });
    await ctx.close();
    const both = dev.tls.ServerContext(
      new dev.tls.TLSConfiguration({ preSharedKey: ["a", new Uint8Array(16)], preSharedKeyStore: { b: new Uint8Array(16) } }),
    );
    await expect(both.ready).rejects.toMatchObject({ statusName: "bad_argument" });
    await both.close();
  });
});

describe("TLS 1.3 PSK: pure (no ECDHE) and with ECDHE", () => {
  const id = "device-13";
  const key = PSKS.gamma;

  it.each([
    ["psk", ["psk"], false],
    ["psk + ECDHE", undefined, true],
  ] as const)("device client (%s) against s_server -allow_no_dhe_kex", async (_name, modes, ecdhe) => {
    const { port, peer } = await sServer(["-tls1_3", "-nocert", "-psk", key, "-psk_identity", id, "-allow_no_dhe_kex", "-trace"]);
    // The pure PSK client's key is a device SymmetricKey (its bytes are not in the configuration's request).
    await using symKey = dev.keys.importSymmetric(Buffer.from(key, "hex"));
    const options: TLSConfigurationOptions = {
      preSharedKey: [id, ecdhe ? Buffer.from(key, "hex") : symKey],
      validateCertificates: false,
      lowestSupportedVersion: "TLSv1.3",
      ...(modes ? { tls13KeyExchangeModes: modes } : {}),
    };
    const ctx = dev.tls.ClientContext(new dev.tls.TLSConfiguration(options));
    const tls = ctx.wrapSocket(await connectTo(port), null);
    try {
      await tls.doHandshake();
      expect(tls.buffer.negotiatedTlsVersion()).toBe("TLSv1.3");
      await exchange(tls, peer, `1.3 client ${_name}`);
      const ext = serverHelloExtensions(peer.out());
      expect(ext).toContain("psk");
      expect(ext.includes("key_share")).toBe(ecdhe);
      await tls.shutdown();
    } finally {
      peer.stop();
      await tls.close();
      await ctx.close();
    }
  });

  it.each([
    ["psk", ["psk"], false],
    ["psk + ECDHE", undefined, true],
  ] as const)("device server (%s) against s_client -allow_no_dhe_kex", async (_name, modes, ecdhe) => {
    const server = dev.tls.ServerContext(
      new dev.tls.TLSConfiguration({
        preSharedKeyStore: { [id]: Buffer.from(key, "hex") },
        ...(modes ? { tls13KeyExchangeModes: modes } : {}),
      }),
    );
    const { tls, peer } = await sClientTo(server, ["-tls1_3", "-psk", key, "-psk_identity", id, "-allow_no_dhe_kex", "-trace"]);
    try {
      await tls.doHandshake();
      await exchange(tls, peer, `1.3 server ${_name}`);
      const ext = serverHelloExtensions(peer.out());
      expect(ext).toContain("psk");
      expect(ext.includes("key_share")).toBe(ecdhe);
      expect(peer.out().includes("Server Temp Key")).toBe(ecdhe);
      await tls.shutdown();
    } finally {
      peer.stop();
      await tls.close();
      await server.close();
    }
  });
});

describe("mutual TLS", () => {
  it.each(VERSIONS)(
    "%s: the device client's key is non-exportable in a slot; s_server -Verify 1 -verify_return_error accepts its chain",
    async (version, flag) => {
      const made = dev.pk.ECC("secp256r1");
      await made.generate({ exportable: false });
      await dev.slots.store(made, CLIENT_SLOT, { label: "tls client" });
      await made.close();
      const slotKey = (await dev.slots.load(CLIENT_SLOT)) as ECC;
      expect(slotKey.exportable).toBe(false);
      const cn = `mbedlink client ${version}`;
      const csr = await dev.x509.CSR.new(slotKey, `CN=${cn}`, "sha256");
      writeFileSync(path("slot.csr.der"), csr.toDER());
      await csr.close();
      ossl(["req", "-inform", "DER", "-in", "slot.csr.der", "-out", "slot.csr"]);
      ossl(
        ["x509", "-req", "-in", "slot.csr", "-CA", "inter.crt", "-CAkey", "inter.key", "-CAcreateserial", "-days", "30", "-sha256"].concat([
          "-extfile",
          "ext.cnf",
          "-extensions",
          "client",
          "-out",
          "slot.crt",
        ]),
      );
      const leaf = await dev.x509.CRT.fromPEM(readFileSync(path("slot.crt"), "utf8"));
      const ctx = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust, certificateChain: [[leaf, inter], slotKey] }));
      const { port, peer } = await sServer(
        [flag, ...SERVER_CHAIN_ARGS].concat(["-Verify", "1", "-CAfile", "root.crt", "-verify_return_error"]),
      );
      const tls = ctx.wrapSocket(await connectTo(port), "device.example");
      try {
        await tls.doHandshake();
        expect(tls.buffer.negotiatedTlsVersion()).toBe(version);
        await exchange(tls, peer, `mutual ${version}`);
        expect(peer.out()).toContain(`depth=0 CN = ${cn}\nverify return:1`);
        expect(peer.out()).toContain(`Client certificate`);
        expect(peer.out()).toContain(`subject=CN = ${cn}`);
        await tls.shutdown();
      } finally {
        peer.stop();
        await tls.close();
        for (const o of [ctx, leaf, slotKey]) await o.close();
        await dev.slots.delete(CLIENT_SLOT);
      }
    },
  );

  describe("a device server that requires a client certificate", () => {
    let server: TLSContext;
    beforeAll(async () => {
      server = dev.tls.ServerContext(
        new dev.tls.TLSConfiguration({ certificateChain: [[serverCrt, inter], serverKey], trustStore: trust, validateCertificates: true }),
      );
      await server.ready;
    });
    afterAll(() => server?.close());

    it.each(VERSIONS)("%s: refuses an s_client without a certificate", async (_v, flag) => {
      const { tls, peer } = await sClientTo(server, [flag, "-CAfile", "root.crt"]);
      try {
        const err = await handshakeError(tls);
        expect(err).toBeInstanceOf(TLSHandshakeError);
        expect(err.mbedtlsCode).toBe(NO_CLIENT_CERTIFICATE);
      } finally {
        peer.stop();
        await tls.close();
      }
    });

    it.each(VERSIONS)("%s: accepts one with a certificate from the trusted root", async (version, flag) => {
      const { tls, peer } = await sClientTo(
        server,
        [flag, "-CAfile", "root.crt", "-verify_return_error", "-cert", "client.crt", "-key", "client.key"].concat([
          "-cert_chain",
          "inter.crt",
        ]),
      );
      try {
        await tls.doHandshake();
        expect(tls.buffer.negotiatedTlsVersion()).toBe(version);
        expect((await tls.buffer.info()).verifyBits).toBe(0);
        expect(tls.buffer.peerCertificate()).toEqual(derOf("client.crt"));
        await exchange(tls, peer, `client cert ${version}`);
        await tls.shutdown();
      } finally {
        peer.stop();
        await tls.close();
      }
    });
  });
});

describe("SNI: chains by host name on a device server", () => {
  const objs: { close(): Promise<void> }[] = [];
  let sni: TLSConfigurationOptions["sniCertificates"];

  beforeAll(async () => {
    const chains = new Map<string, readonly [CRT[], ECC]>();
    for (const name of ["a", "b"]) {
      issueServerLeaf(`sni-${name}`, `${name}.example`);
      const crt = await dev.x509.CRT.fromPEM(readFileSync(path(`sni-${name}.crt`), "utf8"));
      const key = await importKey(`sni-${name}`);
      objs.push(crt, key);
      chains.set(`${name}.example`, [[crt, inter], key]);
    }
    sni = chains;
  }, 60_000);

  afterAll(async () => {
    for (const o of objs) await o.close();
  });

  /** s_client -servername `name`, verifying against the root for `expect`; the subject it saw. */
  async function subjectFor(server: TLSContext, name: string, verifyHost: string): Promise<string> {
    const { tls, peer } = await sClientTo(server, [
      "-servername",
      name,
      "-CAfile",
      "root.crt",
      "-verify_return_error",
      "-verify_hostname",
      verifyHost,
    ]);
    try {
      await tls.doHandshake();
      await peer.waitFor("Verify return code: 0 (ok)");
      await tls.shutdown();
      return /subject=CN = ([^\n]*)/.exec(peer.out())?.[1] ?? "";
    } finally {
      peer.stop();
      await tls.close();
    }
  }

  it("a.example gets chain A, b.example chain B, another name the default chain", async () => {
    const p0 = await dev.stats();
    const plain = dev.tls.ServerContext(new dev.tls.TLSConfiguration({ certificateChain: [[serverCrt, inter], serverKey] }));
    await plain.ready;
    const p1 = await dev.stats();
    await plain.close();
    console.log(
      `[tls-config ${TARGET}] a server configuration with one chain (leaf + intermediate) takes ${p1.heapUsed - p0.heapUsed} B of heap`,
    );
    const s0 = await dev.stats();
    const server = dev.tls.ServerContext(
      new dev.tls.TLSConfiguration({ certificateChain: [[serverCrt, inter], serverKey], sniCertificates: sni }),
    );
    await server.ready;
    const s1 = await dev.stats();
    console.log(
      `[tls-config ${TARGET}] a server configuration with a default chain and two chains by host name takes ${s1.heapUsed - s0.heapUsed} B of heap`,
    );
    try {
      expect(await subjectFor(server, "a.example", "a.example")).toBe("a.example");
      expect(await subjectFor(server, "B.Example", "b.example")).toBe("b.example");
      expect(await subjectFor(server, "c.example", "device.example")).toBe("device.example");
    } finally {
      await server.close();
    }
  });

  it("without a default chain, an unknown name fails typed with an unrecognized_name alert", async () => {
    const s0 = await dev.stats();
    const server = dev.tls.ServerContext(new dev.tls.TLSConfiguration({ sniCertificates: sni }));
    await server.ready;
    const s1 = await dev.stats();
    console.log(`[tls-config ${TARGET}] a server configuration with two chains by host name takes ${s1.heapUsed - s0.heapUsed} B of heap`);
    try {
      expect(await subjectFor(server, "b.example", "b.example")).toBe("b.example");
      const { tls, peer } = await sClientTo(server, ["-servername", "c.example"]);
      try {
        const err = await handshakeError(tls);
        expect(err).toBeInstanceOf(TLSHandshakeError);
        expect(err.mbedtlsCode).toBe(UNRECOGNIZED_NAME);
        await peer.waitFor(/unrecognized name/);
      } finally {
        peer.stop();
        await tls.close();
      }
    } finally {
      await server.close();
    }
  });
});

describe("refusals", () => {
  it("a chain whose key is not the leaf's, and SNI or a PSK store on a client, fail typed; the device keeps serving", async () => {
    const wrongKey = dev.pk.ECC("secp256r1");
    await wrongKey.generate();
    try {
      const bad = dev.tls.ServerContext(new dev.tls.TLSConfiguration({ sniCertificates: { "a.example": [[serverCrt, inter], wrongKey] } }));
      await expect(bad.ready).rejects.toBeInstanceOf(CryptoError);
      await bad.close();
      const client = dev.tls.ClientContext(
        new dev.tls.TLSConfiguration({ validateCertificates: false, sniCertificates: { "a.example": [[serverCrt], serverKey] } }),
      );
      await expect(client.ready).rejects.toMatchObject({ statusName: "bad_argument" });
      await client.close();
    } finally {
      await wrongKey.close();
    }
    expect(() => new dev.tls.TLSConfiguration({ sniCertificates: { "a.example": [[], serverKey] } })).toThrow(ArgumentError);
    expect(() => new dev.tls.TLSConfiguration({ tls13KeyExchangeModes: [] })).toThrow(ArgumentError);
  });
});

describe("ALPN on a device client", () => {
  const innerProtocols = ["h2", "http/1.1"];

  it("s_server -alpn sees the device's list and the device reads the protocol it chose", async () => {
    const { port, peer } = await sServer([...SERVER_CHAIN_ARGS, "-alpn", "spdy/3,http/1.1"]);
    const ctx = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust, innerProtocols }));
    const tls = ctx.wrapSocket(await connectTo(port), "device.example");
    try {
      await tls.doHandshake();
      expect(tls.buffer.negotiatedProtocol()).toBe("http/1.1");
      await peer.waitFor("ALPN protocols advertised by the client: h2, http/1.1");
      await exchange(tls, peer, "alpn client");
      await tls.shutdown();
    } finally {
      peer.stop();
      await tls.close();
      await ctx.close();
    }
  });

  it("no protocol in common: OpenSSL 3 sends no_application_protocol, the device names the alert", async () => {
    const { port, peer } = await sServer([...SERVER_CHAIN_ARGS, "-alpn", "spdy/3"]);
    const ctx = dev.tls.ClientContext(new dev.tls.TLSConfiguration({ trustStore: trust, innerProtocols }));
    const tls = ctx.wrapSocket(await connectTo(port), "device.example");
    try {
      const err = await handshakeError(tls);
      expect(err).toBeInstanceOf(TLSAlertError);
      expect((err as TLSAlertError).alertName).toBe("no_application_protocol");
    } finally {
      peer.stop();
      await tls.close();
      await ctx.close();
    }
  });
});

describe("ALPN on a device server", () => {
  let server: TLSContext;
  beforeAll(async () => {
    server = dev.tls.ServerContext(
      new dev.tls.TLSConfiguration({ certificateChain: [[serverCrt, inter], serverKey], innerProtocols: ["h2", "http/1.1"] }),
    );
    await server.ready;
  });
  afterAll(() => server?.close());

  it.each(VERSIONS)("%s: s_client -alpn agrees on the protocol both sides read", async (version, flag) => {
    const { tls, peer } = await sClientTo(server, [flag, "-alpn", "spdy/3,http/1.1"]);
    try {
      await tls.doHandshake();
      expect(tls.buffer.negotiatedProtocol()).toBe("http/1.1");
      await peer.waitFor("ALPN protocol: http/1.1");
      await exchange(tls, peer, `alpn ${version}`);
      await tls.shutdown();
    } finally {
      peer.stop();
      await tls.close();
    }
  });

  it("no protocol in common fails typed with a no_application_protocol alert", async () => {
    const { tls, peer } = await sClientTo(server, ["-alpn", "spdy/3"]);
    try {
      const err = await handshakeError(tls);
      expect(err.mbedtlsCode).toBe(NO_APPLICATION_PROTOCOL);
      expect(err).toBeInstanceOf(TLSHandshakeError);
      await peer.waitFor(/alert no application protocol/);
    } finally {
      peer.stop();
      await tls.close();
    }
  });
});
