// Key exchange on the device (ECDH ephemeral and static, finite-field DH)
// against Node's crypto (OpenSSL) as the peer: the device's TLS payloads are
// parsed here by the RFC formats (RFC 8422 ECParameters / ECPoint, RFC 5246
// ServerDHParams), Node computes its side with its own keys, and both
// secrets must be equal. Device<->device exchanges, a secret kept on the
// device as a key (checked through HMAC against Node), out-of-order calls
// and malformed peer payloads (typed errors, the device keeps serving).
import {
  createDiffieHellman,
  createDiffieHellmanGroup,
  createECDH,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  getCurves,
  randomBytes,
} from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { ArgumentError, BadArgumentError, type Device, fromBytes, hex, toBytes } from "../../host/src/index.js";
import { useCurveSession } from "./session.js";

const session = useCurveSession({ endsAt: { heap: "open" } });
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

const u8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.length);
const cat = (...parts: (Uint8Array | number[])[]) => new Uint8Array(parts.flatMap((p) => [...p]));

/** TLS NamedCurve ids (RFC 8422 section 5.1.1, RFC 7027, RFC 8446). */
const TLS_GROUP: Record<string, number> = {
  secp192k1: 18,
  secp192r1: 19,
  secp224k1: 20,
  secp224r1: 21,
  secp256k1: 22,
  secp256r1: 23,
  secp384r1: 24,
  secp521r1: 25,
  brainpoolP256r1: 26,
  brainpoolP384r1: 27,
  brainpoolP512r1: 28,
  x25519: 29,
  x448: 30,
};
/** OpenSSL's names where they differ from ours. */
const NODE_NAME: Record<string, string> = { secp192r1: "prime192v1", secp256r1: "prime256v1" };
const nodeName = (c: string) => NODE_NAME[c] ?? c;

const WEIERSTRASS = ["secp192r1", "secp224r1", "secp256r1", "secp384r1", "secp521r1", "secp192k1", "secp224k1", "secp256k1"]
  .concat(["brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1"])
  .filter((c) => getCurves().includes(nodeName(c)));
const MONTGOMERY = ["x25519", "x448"];

/** ServerKeyExchange of ECDH: curve_type 3 (named_curve), 2-byte group, 1-byte length, point. */
function parseEcdhSke(ske: Uint8Array, curve: string): Uint8Array {
  expect(ske[0], "curve_type named_curve").toBe(3);
  expect(((ske[1] as number) << 8) | (ske[2] as number), "NamedCurve").toBe(TLS_GROUP[curve]);
  const len = ske[3] as number;
  expect(ske.length).toBe(4 + len);
  return ske.subarray(4);
}
function ecdhSke(curve: string, point: Uint8Array): Uint8Array {
  const group = TLS_GROUP[curve] as number;
  return cat([3, group >> 8, group & 0xff, point.length], point);
}
/** ClientKeyExchange of ECDH: 1-byte length, point. */
function parseEcdhCke(cke: Uint8Array): Uint8Array {
  expect(cke.length).toBe(1 + (cke[0] as number));
  return cke.subarray(1);
}
const ecdhCke = (point: Uint8Array) => cat([point.length], point);

/** A device server and client trade their payloads: the server's SKE (returned), then the client's CKE. */
async function handshake(
  srv: { generate(): Promise<Uint8Array>; importCKE(cke: Uint8Array): Promise<void> },
  cli: { generate(): Promise<Uint8Array>; importSKE(ske: Uint8Array): Promise<void> },
): Promise<Uint8Array> {
  const ske = await srv.generate();
  await cli.importSKE(ske);
  await srv.importCKE(await cli.generate());
  return ske;
}

/** A Node peer on a curve: its public point as TLS carries it, and its secret with a peer point. */
interface NodePeer {
  point: Uint8Array;
  secret(peerPoint: Uint8Array): Uint8Array;
}
function nodePeer(curve: string): NodePeer {
  if (MONTGOMERY.includes(curve)) {
    const crv = curve === "x25519" ? "X25519" : "X448";
    const { privateKey, publicKey } = generateKeyPairSync(curve as "x25519");
    const point = u8(Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url"));
    return {
      point,
      secret: (peer) =>
        u8(
          diffieHellman({
            privateKey,
            publicKey: createPublicKey({ key: { kty: "OKP", crv, x: Buffer.from(peer).toString("base64url") }, format: "jwk" }),
          }),
        ),
    };
  }
  const ecdh = createECDH(nodeName(curve));
  ecdh.generateKeys();
  return { point: u8(ecdh.getPublicKey()), secret: (peer) => u8(ecdh.computeSecret(peer)) };
}

/** Field size in bytes: the length of an ECDH secret. */
const FIELD_BYTES: Record<string, number> = {
  secp192r1: 24,
  secp224r1: 28,
  secp256r1: 32,
  secp384r1: 48,
  secp521r1: 66,
  secp192k1: 24,
  secp224k1: 28,
  secp256k1: 32,
  brainpoolP256r1: 32,
  brainpoolP384r1: 48,
  brainpoolP512r1: 64,
  x25519: 32,
  x448: 56,
};

describe("ECDH against Node", () => {
  const curves = () => [...WEIERSTRASS, ...MONTGOMERY].filter((c) => session.curves.includes(c));

  it("the device has the common curves", () => {
    expect(session.curves).toEqual(expect.arrayContaining(["secp256r1", "secp384r1", "x25519"]));
    expect(curves().length).toBeGreaterThanOrEqual(3);
  });

  it("device server <-> Node client, every curve both know", async () => {
    for (const curve of curves()) {
      await using srv = dev.pk.ECDHServer(curve);
      expect(srv.curve).toBe(curve);
      const point = parseEcdhSke(await srv.generate(), curve);
      const node = nodePeer(curve);
      const want = node.secret(point);
      await srv.importCKE(ecdhCke(node.point));
      const got = await srv.generateSecretBytes();
      expect(hex(got), curve).toBe(hex(want));
      expect(got.length).toBe(FIELD_BYTES[curve]);
      expect(srv.sharedSecret).toBe(fromBytes(want));
    }
  });

  it("device client <-> Node server, every curve both know", async () => {
    for (const curve of curves()) {
      await using cli = dev.pk.ECDHClient(curve);
      const node = nodePeer(curve);
      await cli.importSKE(ecdhSke(curve, node.point));
      const point = parseEcdhCke(await cli.generate());
      const want = fromBytes(node.secret(point));
      expect(await cli.generateSecret(), curve).toBe(want);
      expect(cli.sharedSecret).toBe(want);
    }
  });
});

describe("ECDH device <-> device", () => {
  it("the seed example: ephemeral, default curve (secp256r1)", async () => {
    await using srv = dev.pk.ECDHServer();
    await using cli = dev.pk.ECDHClient();
    expect(srv.curve).toBe("secp256r1");
    await handshake(srv, cli);
    const secret = await srv.generateSecret();
    expect(await cli.generateSecret()).toBe(secret);
    expect(srv.sharedSecret).toBe(cli.sharedSecret);
    expect(secret > 0n).toBe(true);
    // a new exchange gives a new secret
    await using srv2 = dev.pk.ECDHServer();
    await using cli2 = dev.pk.ECDHClient();
    await handshake(srv2, cli2);
    expect(await srv2.generateSecret()).not.toBe(secret);
  });

  it("x25519", async () => {
    await using srv = dev.pk.ECDHServer("x25519");
    await using cli = dev.pk.ECDHClient("x25519");
    await handshake(srv, cli);
    const a = await srv.generateSecretBytes();
    expect(a.length).toBe(32);
    expect(hex(await cli.generateSecretBytes())).toBe(hex(a));
  });
});

describe("static ECDH from an EC key on the device", () => {
  it("an imported non-exportable P-256 key: same public point and secret as Node with that key", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const d = Buffer.from(privateKey.export({ format: "jwk" }).d as string, "base64url");
    const ref = createECDH("prime256v1");
    ref.setPrivateKey(d);
    await using key = await dev.pk.ECC.fromBuffer(u8(privateKey.export({ format: "der", type: "sec1" })), { exportable: false });
    expect(key.exportable).toBe(false);
    await using srv = key.toECDHServer();
    expect(srv.isStatic).toBe(true);
    const ske = await srv.generate();
    expect(hex(parseEcdhSke(ske, "secp256r1"))).toBe(hex(u8(ref.getPublicKey())));
    // static: another exchange with the key sends the same payload
    await using again = dev.pk.ECDHServer(key);
    expect(hex(await again.generate())).toBe(hex(ske));
    const node = nodePeer("secp256r1");
    await srv.importCKE(ecdhCke(node.point));
    const want = u8(ref.computeSecret(node.point));
    expect(hex(node.secret(parseEcdhSke(ske, "secp256r1")))).toBe(hex(want));
    expect(hex(await srv.generateSecretBytes())).toBe(hex(want));

    // the same key as a static client, via dev.pk.ECDHClient(key)
    await using cli = dev.pk.ECDHClient(key);
    const node2 = nodePeer("secp256r1");
    await cli.importSKE(ecdhSke("secp256r1", node2.point));
    expect(hex(parseEcdhCke(await cli.generate()))).toBe(hex(u8(ref.getPublicKey())));
    expect(await cli.generateSecret()).toBe(fromBytes(u8(ref.computeSecret(node2.point))));
  });

  it("a generated non-exportable x25519 key against Node, and static <-> static on the device", async () => {
    await using a = dev.pk.ECC("x25519");
    await a.generate({ exportable: false });
    await using srv = dev.pk.ECDHServer(a);
    expect(srv.curve).toBe("x25519");
    const point = parseEcdhSke(await srv.generate(), "x25519");
    expect(hex(point)).toBe(hex(await a.exportPublicKey("RAW")));
    const node = nodePeer("x25519");
    await srv.importCKE(ecdhCke(node.point));
    expect(hex(await srv.generateSecretBytes())).toBe(hex(node.secret(point)));

    await using b = dev.pk.ECC("secp384r1");
    await using c = dev.pk.ECC("secp384r1");
    await Promise.all([b.generate({ exportable: false }), c.generate()]);
    await using s2 = b.toECDHServer();
    await using c2 = c.toECDHClient();
    await handshake(s2, c2);
    const secret = await s2.generateSecret();
    expect(await c2.generateSecret()).toBe(secret);
    // Node with c's exported private scalar and b's public point agrees
    const ref = createECDH("secp384r1");
    ref.setPrivateKey(toBytes(await c.exportKey("NUM"), 48));
    expect(fromBytes(u8(ref.computeSecret(await b.exportPublicKey("POINT"))))).toBe(secret);
  });

  it("no key, an empty key or a public-only key is refused", async () => {
    expect(() => dev.pk.ECDHServer(42 as unknown as string)).toThrow(ArgumentError);
    await using empty = dev.pk.ECC("secp256r1");
    await using srv = dev.pk.ECDHServer(empty);
    await expect(srv.generate()).rejects.toBeInstanceOf(ArgumentError);
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    await using pub = await dev.pk.ECC.fromBuffer(u8(publicKey.export({ format: "der", type: "spki" })));
    expect(pub.isPrivate).toBe(false);
    await using pubSrv = pub.toECDHServer();
    await expect(pubSrv.generate()).rejects.toBeInstanceOf(BadArgumentError);
    expect(hex(await dev.echo(new Uint8Array([5])))).toBe("05");
  });
});

describe("the secret as a device-held key", () => {
  it("generateSecretKey(): HMAC with the held key equals Node's HMAC with the secret", async () => {
    await using srv = dev.pk.ECDHServer("secp256r1");
    const node = nodePeer("secp256r1");
    const want = node.secret(parseEcdhSke(await srv.generate(), "secp256r1"));
    await srv.importCKE(ecdhCke(node.point));
    await using key = await srv.generateSecretKey();
    expect([key.size, key.origin]).toEqual([32, "device"]);
    expect(srv.sharedSecret).toBeUndefined();
    const msg = new Uint8Array(randomBytes(100));
    const mac = dev.hmac.new(key, { digestmod: "sha256" });
    mac.update(msg);
    expect(hex(await mac.digest())).toBe(hex(u8(createHmac("sha256", want).update(msg).digest())));
    await mac.close();
  });

  it("a secret longer than symkey_max (P-521: 66 bytes) is BadArgumentError", async () => {
    if (!session.curves.includes("secp521r1")) return;
    await using srv = dev.pk.ECDHServer("secp521r1");
    await using cli = dev.pk.ECDHClient("secp521r1");
    await handshake(srv, cli);
    await expect(srv.generateSecretKey()).rejects.toBeInstanceOf(BadArgumentError);
    // the context still gives the secret as bytes
    expect(await srv.generateSecret()).toBe(await cli.generateSecret());
  });
});

describe("ECDH errors", () => {
  it("garbage payloads, a point off the curve and out-of-order calls are BadArgumentError", async () => {
    await using cli = dev.pk.ECDHClient("secp256r1");
    await expect(cli.generate()).rejects.toBeInstanceOf(BadArgumentError); // no SKE yet
    await expect(cli.importSKE(new Uint8Array([1, 2, 3]))).rejects.toBeInstanceOf(BadArgumentError);
    await expect(cli.generateSecret()).rejects.toBeInstanceOf(BadArgumentError);

    await using srv = dev.pk.ECDHServer("secp256r1");
    await expect(srv.generateSecret()).rejects.toBeInstanceOf(BadArgumentError); // nothing generated
    await srv.generate();
    const good = nodePeer("secp256r1").point;
    const off = Uint8Array.from(good);
    off[64] = (off[64] as number) ^ 1; // y + small change: not on the curve
    await expect(
      (async () => {
        await srv.importCKE(ecdhCke(off));
        await srv.generateSecret();
      })(),
    ).rejects.toBeInstanceOf(BadArgumentError);
    await expect(srv.importCKE(new Uint8Array([65, 4, 1, 2]))).rejects.toBeInstanceOf(BadArgumentError);
    expect(hex(await dev.echo(new Uint8Array([7])))).toBe("07");
  });

  it("unknown curve names are refused before anything is sent", () => {
    expect(() => dev.pk.ECDHServer("secp999r1")).toThrow(ArgumentError);
  });
});

/** ServerDHParams: P, G, G^X, each with a 2-byte length. */
function parseDhSke(ske: Uint8Array): [bigint, bigint, Uint8Array] {
  const parts: Uint8Array[] = [];
  let off = 0;
  for (let i = 0; i < 3; i++) {
    const len = ((ske[off] as number) << 8) | (ske[off + 1] as number);
    parts.push(ske.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  expect(off).toBe(ske.length);
  return [fromBytes(parts[0] as Uint8Array), fromBytes(parts[1] as Uint8Array), parts[2] as Uint8Array];
}
function dhSke(p: Uint8Array, g: Uint8Array, gx: Uint8Array): Uint8Array {
  const lp = (b: Uint8Array) => cat([b.length >> 8, b.length & 0xff], b);
  return cat(lp(p), lp(g), lp(gx));
}

describe("DH against Node", () => {
  const modp14 = createDiffieHellmanGroup("modp14");
  const p = u8(modp14.getPrime());

  it("RFC 3526 group 14 (2048-bit), device server <-> Node client", async () => {
    await using srv = dev.pk.DHServer(fromBytes(p), 2n);
    const [sp, sg, gx] = parseDhSke(await srv.generate());
    expect([sp, sg]).toEqual([fromBytes(p), 2n]);
    const node = createDiffieHellman(p, new Uint8Array([2]));
    node.generateKeys();
    const want = fromBytes(u8(node.computeSecret(gx)));
    await srv.importCKE(toBytes(fromBytes(u8(node.getPublicKey())), p.length));
    expect(await srv.generateSecret()).toBe(want);
  });

  it("RFC 3526 group 14, device client <-> Node server", async () => {
    await using cli = dev.pk.DHClient(p, new Uint8Array([2]));
    const node = createDiffieHellman(p, new Uint8Array([2]));
    node.generateKeys();
    await cli.importSKE(dhSke(p, new Uint8Array([2]), u8(node.getPublicKey())));
    const gy = await cli.generate();
    expect(gy.length).toBe(p.length);
    expect(await cli.generateSecret()).toBe(fromBytes(u8(node.computeSecret(gy))));
  });

  it("the seed example: P = prime(128), G = prime(96) from the device; device <-> device and Node", async () => {
    const [P, G] = await Promise.all([dev.mpi.prime(128), dev.mpi.prime(96)]);
    await using srv = dev.pk.DHServer(P, G);
    await using cli = dev.pk.DHClient(P, G);
    const [sp, sg, gx] = parseDhSke(await handshake(srv, cli));
    expect([sp, sg]).toEqual([P, G]);
    const secret = await srv.generateSecret();
    expect(await cli.generateSecret()).toBe(secret);
    expect(srv.sharedSecret).toBe(cli.sharedSecret);
    // Node, given the client's G^Y with its own exponent, cannot know the
    // device secret; instead it plays the client against the same server
    // parameters in a second exchange.
    await using srv2 = dev.pk.DHServer(P, G);
    const [, , gx2] = parseDhSke(await srv2.generate());
    const node = createDiffieHellman(toBytes(P), toBytes(G));
    node.generateKeys();
    await srv2.importCKE(toBytes(fromBytes(u8(node.getPublicKey())), 128));
    expect(await srv2.generateSecret()).toBe(fromBytes(u8(node.computeSecret(gx2))));
    expect(gx.length).toBeLessThanOrEqual(128);
  });
});

describe("DH errors", () => {
  it("a modulus below 64 bytes, out-of-order calls and out-of-range G^Y are BadArgumentError", async () => {
    const small = await dev.mpi.prime(32);
    await using tiny = dev.pk.DHServer(small, 2n);
    await expect(tiny.generate()).rejects.toBeInstanceOf(BadArgumentError);

    const P = fromBytes(u8(createDiffieHellmanGroup("modp2").getPrime())); // RFC 2409 group 2, 1024-bit
    await using srv = dev.pk.DHServer(P, 2n);
    await expect(srv.generateSecret()).rejects.toBeInstanceOf(BadArgumentError);
    await srv.generate();
    await expect(
      (async () => {
        await srv.importCKE(toBytes(1n, 128)); // G^Y = 1 is outside [2, P-2]
        await srv.generateSecret();
      })(),
    ).rejects.toBeInstanceOf(BadArgumentError);

    await using cli = dev.pk.DHClient(P, 2n);
    await expect(cli.generate()).rejects.toBeInstanceOf(BadArgumentError); // no SKE yet
    await expect(cli.importSKE(new Uint8Array([0, 5, 1, 2]))).rejects.toBeInstanceOf(BadArgumentError);
    expect(() => dev.pk.DHServer(-5n, 2n)).toThrow(ArgumentError);
    // a server that names another group than the client's
    const p14 = u8(createDiffieHellmanGroup("modp14").getPrime());
    await using other = dev.pk.DHClient(P, 2n);
    await expect(other.importSKE(dhSke(p14, new Uint8Array([2]), new Uint8Array([5])))).rejects.toBeInstanceOf(ArgumentError);
    expect(hex(await dev.echo(new Uint8Array([9])))).toBe("09");
  });
});
