// Cross-checks on random inputs: the device's answer against node:crypto's
// (OpenSSL) for every module of the SDK, both directions where there are two
// (the device signs and Node verifies, Node signs and the device verifies).
// RSA uses a 2048-bit key made by Node and imported, not one generated on the
// device (minutes on an emulated STM32); ECC uses P-256.
import {
  checkPrimeSync,
  constants,
  createCipheriv,
  createECDH,
  createHash,
  createHmac,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  getHashes,
  hkdfSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  randomInt,
} from "node:crypto";
import { promisify } from "node:util";
import { AuthFailedError, type Device, ECC, type RSA } from "../src/index.js";
import type { Check } from "./selftest.js";

const u8 = (b: Buffer | Uint8Array) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const rnd = (n: number) => u8(randomBytes(n));
/** Node's name of one of our digests. */
const nodeHash = (alg: string) => (alg.startsWith("sha3_") ? alg.replace("_", "-") : alg);
/** Sizes that keep the run short on a 115200-baud link and still span frames on any link. */
const small = (dev: Device) => Math.min(1000, dev.chunkSize);
const multiFrame = (dev: Device) => 2 * dev.chunkSize + 33;

function flipped(b: Uint8Array, at = 0): Uint8Array {
  const c = Uint8Array.from(b);
  c[at] = (c[at] as number) ^ 0x01;
  return c;
}

// One RSA-2048 key pair from Node per run, made while the first checks run.
let rsaPair: Promise<{ privateKey: KeyObject; publicKey: KeyObject }> | undefined;
const nodeRsa = () => {
  rsaPair ??= promisify(generateKeyPair)("rsa", { modulusLength: 2048 });
  return rsaPair;
};
const prepare = () => void nodeRsa().catch(() => {});

async function importRsa(dev: Device): Promise<{ key: RSA; privateKey: KeyObject; publicKey: KeyObject }> {
  const { privateKey, publicKey } = await nodeRsa();
  const key = await dev.pk.RSA.fromDER(u8(privateKey.export({ type: "pkcs8", format: "der" })));
  return { key, privateKey, publicKey };
}

const spki = (der: Uint8Array) => createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });

const hashCheck: Check = {
  name: "x-hash",
  title: "every digest on random messages vs node:crypto",
  run: async (dev, t) => {
    const node = new Set(getHashes());
    for (const alg of dev.hash.algorithmsAvailable) {
      if (!node.has(nodeHash(alg))) continue;
      const msg = rnd(randomInt(0, small(dev)));
      t.equal(await dev.hash.digest(alg, msg), u8(createHash(nodeHash(alg)).update(msg).digest()), `${alg} of ${msg.length} bytes`);
    }
  },
};

const hashStreamCheck: Check = {
  name: "x-hash-stream",
  title: "sha256/sha512 streamed over several frames, and copy(), vs node:crypto",
  run: async (dev, t) => {
    const msg = rnd(multiFrame(dev));
    const cut = randomInt(1, msg.length);
    for (const alg of ["sha256", "sha512"]) {
      await using h = dev.hash.new(alg);
      h.update(msg.subarray(0, 7));
      h.update(msg.subarray(7, cut));
      await using fork = h.copy();
      h.update(msg.subarray(cut));
      t.equal(await h.digest(), u8(createHash(alg).update(msg).digest()), `${alg} of ${msg.length} bytes`);
      t.equal(await fork.digest(), u8(createHash(alg).update(msg.subarray(0, cut)).digest()), `${alg} copy at ${cut}`);
    }
  },
};

const hmacCheck: Check = {
  name: "x-hmac",
  title: "HMAC md5..sha512 with random keys (some longer than a block) vs node:crypto",
  run: async (dev, t) => {
    for (const alg of ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]) {
      if (!dev.hash.algorithmsAvailable.has(alg)) continue;
      const key = rnd(randomInt(1, 200));
      const msg = rnd(randomInt(0, small(dev)));
      t.equal(await dev.hmac.digest(key, msg, alg), u8(createHmac(alg, key).update(msg).digest()), `hmac-${alg}, ${key.length}-byte key`);
    }
  },
};

const hkdfCheck: Check = {
  name: "x-hkdf",
  title: "HKDF-SHA-256/512 on random inputs vs node:crypto hkdfSync",
  run: async (dev, t) => {
    for (const alg of ["sha256", "sha512"]) {
      const [ikm, salt, info] = [rnd(randomInt(1, 80)), rnd(randomInt(0, 64)), rnd(randomInt(0, 64))];
      const len = randomInt(1, 200);
      t.equal(
        await dev.hkdf.hkdf(alg, ikm, salt, info, len),
        u8(Buffer.from(hkdfSync(alg, ikm, salt, info, len))),
        `hkdf-${alg}, ${len} bytes`,
      );
    }
  },
};

const randomCheck: Check = {
  name: "random",
  title: "DRBG output: lengths, two draws differ, bit balance of 4 KiB",
  run: async (dev, t) => {
    t.true((await dev.random.randbytes(0)).length === 0, "0 bytes asked, 0 given");
    const n = dev.chunkSize + 100;
    t.true((await dev.random.randbytes(n)).length === n, `${n} bytes (more than a frame) asked, ${n} given`);
    const [a, b] = [await dev.random.randbytes(32), await dev.random.randbytes(32)];
    t.false(Buffer.from(a).equals(Buffer.from(b)), "two 32-byte draws are equal");
    const block = await dev.random.randbytes(4096);
    let ones = 0;
    for (const x of block) for (let v = x; v; v >>= 1) ones += v & 1;
    // 32768 bits: mean 16384, standard deviation 90.5; 5 deviations fail a good generator about once in 3.5 million runs.
    t.true(Math.abs(ones - 16384) < 453, `bit balance: ${ones} ones in 32768 bits`);
    const die = await dev.random.randbelow(6);
    t.true(die >= 0 && die < 6, "randbelow(6) in [0, 6)");
  },
};

function nodeCipher(name: string, key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const c = createCipheriv(name, key, iv);
  return u8(Buffer.concat([c.update(data), c.final()]));
}

const cipherChecks: Check[] = [
  {
    name: "x-aes-cbc",
    title: "AES-256-CBC (PKCS#7) both ways vs node:crypto",
    run: async (dev, t) => {
      const [key, iv, msg] = [rnd(32), rnd(16), rnd(randomInt(0, small(dev)))];
      const c = dev.cipher.AES.new(key, dev.cipher.MODE_CBC, iv);
      const want = nodeCipher("aes-256-cbc", key, iv, msg);
      t.equal(await c.encrypt(msg), want, `encrypt ${msg.length} bytes`);
      t.equal(await c.decrypt(want), msg, "decrypt Node's ciphertext");
    },
  },
  {
    name: "x-aes-ctr",
    title: "AES-128-CTR over several frames both ways vs node:crypto",
    run: async (dev, t) => {
      const [key, iv, msg] = [rnd(16), rnd(16), rnd(multiFrame(dev))];
      const c = dev.cipher.AES.new(key, dev.cipher.MODE_CTR, iv);
      const want = nodeCipher("aes-128-ctr", key, iv, msg);
      t.equal(await c.encrypt(msg), want, `encrypt ${msg.length} bytes`);
      t.equal(await c.decrypt(want), msg, "decrypt Node's ciphertext");
    },
  },
  ...(
    [
      ["x-aes-gcm", "AES-256-GCM", "aes-256-gcm"],
      ["x-chacha20-poly1305", "ChaCha20-Poly1305", "chacha20-poly1305"],
    ] as const
  ).map(
    ([name, label, nodeName]): Check => ({
      name,
      title: `${label} with AAD both ways, altered tag refused, vs node:crypto`,
      run: async (dev, t) => {
        const [key, nonce, aad, msg] = [rnd(32), rnd(12), rnd(randomInt(0, 64)), rnd(randomInt(0, small(dev)))];
        const aead =
          nodeName === "aes-256-gcm"
            ? dev.cipher.AES.new(key, dev.cipher.MODE_GCM, nonce)
            : dev.cipher.CHACHA20_POLY1305.new(key, dev.cipher.MODE_CHACHAPOLY, nonce);
        const nc =
          nodeName === "aes-256-gcm"
            ? createCipheriv(nodeName, key, nonce, { authTagLength: 16 })
            : createCipheriv(nodeName, key, nonce, { authTagLength: 16 });
        nc.setAAD(aad, { plaintextLength: msg.length });
        const wantCt = u8(Buffer.concat([nc.update(msg), nc.final()]));
        const wantTag = u8(nc.getAuthTag());
        const [ct, tag] = await aead.encrypt(msg, aad);
        t.equal(ct, wantCt, `ciphertext of ${msg.length} bytes`);
        t.equal(tag, wantTag, "tag");
        t.equal(await aead.decrypt(wantCt, wantTag, aad), msg, "decrypt Node's ciphertext");
        const refused = await aead.decrypt(wantCt, flipped(wantTag, 15), aad).then(
          () => false,
          (e) => e instanceof AuthFailedError,
        );
        t.true(refused, "an altered tag is refused");
      },
    }),
  ),
];

const rsaChecks: Check[] = [
  {
    name: "x-rsa-sign",
    prepare,
    title: "RSA-2048 PKCS#1 v1.5 and PSS signatures by the device, checked by Node (key from Node, imported)",
    run: async (dev, t) => {
      const { key, privateKey, publicKey } = await importRsa(dev);
      await using _ = key;
      const msg = rnd(randomInt(1, 300));
      const sig = await key.sign(msg, "sha256");
      // PKCS#1 v1.5 is deterministic: the same bytes as Node's.
      t.equal(sig, u8(nodeSign("sha256", msg, privateKey)), "PKCS#1 v1.5 signature");
      const pss = await key.sign(msg, "sha256", { scheme: "pss" });
      const pssOk = nodeVerify("sha256", msg, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, pss);
      t.true(pssOk, "Node verifies the device's PSS signature (salt = digest length)");
    },
  },
  {
    name: "x-rsa-verify",
    prepare,
    title: "RSA-2048 signatures by Node (PKCS#1 v1.5, PSS) verified on the device, altered ones refused",
    run: async (dev, t) => {
      const { key, privateKey } = await importRsa(dev);
      await using _ = key;
      const msg = rnd(randomInt(1, 300));
      const sig = u8(nodeSign("sha384", msg, privateKey));
      t.true(await key.verify(msg, sig, "sha384"), "PKCS#1 v1.5 sha384 signature verifies");
      t.false(await key.verify(msg, flipped(sig, 100), "sha384"), "an altered signature verifies");
      const pss = u8(nodeSign("sha256", msg, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }));
      t.true(await key.verify(msg, pss, "sha256", { scheme: "pss" }), "PSS signature verifies");
    },
  },
  {
    name: "x-rsa-encrypt",
    prepare,
    title: "RSA-2048 OAEP and PKCS#1 v1.5 encryption both ways vs node:crypto",
    run: async (dev, t) => {
      const { key, publicKey, privateKey } = await importRsa(dev);
      await using _ = key;
      const msg = rnd(randomInt(1, 100));
      const ct = await key.encrypt(msg, { padding: "oaep" });
      t.equal(
        u8(privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, ct)),
        msg,
        "Node decrypts OAEP",
      );
      const oaep = u8(publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, msg));
      t.equal(await key.decrypt(oaep, { padding: "oaep" }), msg, "device decrypts Node's OAEP");
      const v15 = u8(publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, msg));
      t.equal(await key.decrypt(v15), msg, "device decrypts Node's PKCS#1 v1.5");
    },
  },
];

const ecdsaChecks: Check[] = [
  {
    name: "x-ecdsa-sign",
    title: "ECDSA P-256 key made on the device signs, Node verifies with its exported public key",
    run: async (dev, t) => {
      await using key = dev.pk.ECC("secp256r1");
      await key.generate({ exportable: false });
      const pub = spki((await key.exportPublicKey("DER")) as Uint8Array);
      const msg = rnd(randomInt(1, 300));
      const sig = await key.sign(msg, "sha256");
      t.true(nodeVerify("sha256", msg, pub, sig), "Node verifies the device's signature");
      t.false(nodeVerify("sha256", flipped(msg), pub, sig), "Node verifies it for another message");
    },
  },
  {
    name: "x-ecdsa-verify",
    title: "ECDSA P-256 key made by Node: Node's signatures verify on the device and the device's in Node",
    run: async (dev, t) => {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
      await using prv = await dev.pk.ECC.fromDER(u8(privateKey.export({ type: "pkcs8", format: "der" })));
      await using pub = await dev.pk.ECC.fromDER(u8(publicKey.export({ type: "spki", format: "der" })));
      const msg = rnd(randomInt(1, 300));
      const sig = u8(nodeSign("sha256", msg, privateKey));
      t.true(await pub.verify(msg, sig, "sha256"), "the device verifies Node's signature");
      t.false(await pub.verify(flipped(msg), sig, "sha256"), "the device verifies it for another message");
      t.true(nodeVerify("sha384", msg, publicKey, await prv.sign(msg, "sha384")), "Node verifies the imported key's signature");
    },
  },
];

const ecdhCheck: Check = {
  name: "x-ecdh",
  title: "ECDH P-256, device as server and as client, secret equal to Node's",
  run: async (dev, t) => {
    // TLS payloads (RFC 8422): ServerKeyExchange = curve_type 3, NamedCurve 23 (secp256r1), ECPoint; ClientKeyExchange = ECPoint.
    const point = (p: Buffer) => u8(Buffer.concat([Buffer.of(p.length), p]));
    {
      await using srv = dev.pk.ECDHServer("secp256r1");
      const ske = await srv.generate();
      t.true(ske[0] === 3 && ske[1] === 0 && ske[2] === 23 && ske[3] === ske.length - 4, "ServerKeyExchange names secp256r1");
      const node = createECDH("prime256v1");
      node.generateKeys();
      await srv.importCKE(point(node.getPublicKey()));
      t.equal(await srv.generateSecretBytes(), u8(node.computeSecret(Buffer.from(ske.subarray(4)))), "server's secret");
    }
    await using cli = dev.pk.ECDHClient("secp256r1");
    const node = createECDH("prime256v1");
    node.generateKeys();
    await cli.importSKE(u8(Buffer.concat([Buffer.of(3, 0, 23), point(node.getPublicKey())])));
    const cke = await cli.generate();
    t.equal(await cli.generateSecretBytes(), u8(node.computeSecret(Buffer.from(cke.subarray(1)))), "client's secret");
  },
};

const mpiCheck: Check = {
  name: "mpi",
  title: "a 256-bit prime (Node's checkPrime agrees) and a number in a range",
  run: async (dev, t) => {
    const p = await dev.mpi.prime(32);
    t.true(p >> 255n === 1n, "the prime has 256 bits");
    t.true(checkPrimeSync(p), `Node finds ${p.toString(16).slice(0, 16)}… prime`);
    const r = await dev.mpi.random(1000n, p);
    t.true(r >= 1000n && r < p, "random(1000, p) in range");
  },
};

const slotsCheck: Check = {
  name: "slots",
  title: "store a P-256 key in a free slot, list, load, sign (Node verifies), delete",
  skip: async (dev) => {
    if (dev.info.slots === 0) return "the device has no key store";
    const used = new Set((await dev.slots.list()).map((e) => e.slot));
    return used.size >= dev.info.slots ? "no free slot (the selftest does not touch stored keys)" : undefined;
  },
  run: async (dev, t) => {
    const used = new Set((await dev.slots.list()).map((e) => e.slot));
    let slot = dev.info.slots - 1;
    while (used.has(slot)) slot--;
    await using key = dev.pk.ECC("secp256r1");
    await key.generate({ exportable: false });
    const pubDer = (await key.exportPublicKey("DER")) as Uint8Array;
    await dev.slots.store(key, slot, { label: "mbedlink selftest" });
    try {
      const entry = (await dev.slots.list()).find((e) => e.slot === slot);
      t.true(entry?.label === "mbedlink selftest" && entry.exportable === false, `slot ${slot} is listed with its label, non-exportable`);
      t.equal(entry?.publicKey ?? new Uint8Array(0), pubDer, "listed public key");
      await using loaded = await dev.slots.load(slot);
      t.true(loaded instanceof ECC, "the slot loads as an EC key");
      const msg = rnd(100);
      const sig = await (loaded as ECC).sign(msg);
      t.true(nodeVerify("sha256", msg, spki(pubDer), sig), "Node verifies the loaded key's signature");
    } finally {
      await dev.slots.delete(slot);
    }
    t.false(
      (await dev.slots.list()).some((e) => e.slot === slot),
      `slot ${slot} is still listed after delete`,
    );
  },
};

export const CROSS_CHECKS: readonly Check[] = [
  hashCheck,
  hashStreamCheck,
  hmacCheck,
  hkdfCheck,
  randomCheck,
  ...cipherChecks,
  ...rsaChecks,
  ...ecdsaChecks,
  ecdhCheck,
  mpiCheck,
  slotsCheck,
];
