// Writes the fuzzers' seed inputs: one valid request per op in
// protocol/ids.json (ops without an example here get a bare request, so a new
// op is still fuzzed), a few multi-step lifecycles, and the golden frames.
//   node --import tsx firmware/fuzz/seeds.ts OUT_DIR
// OUT_DIR/dispatch/*: records of u16 big-endian length + CBOR (fuzz_dispatch.c)
// OUT_DIR/link/*: SLIP-framed wire bytes with CRCs (fuzz_link.c)
import { generateKeyPairSync, getDiffieHellman } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32Of, encodeBody } from "../../host/src/link/codec.js";
import { SlipDecoder, slipEncode } from "../../host/src/link/slip.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const out = process.argv[2];
if (out === undefined) throw new Error("usage: seeds.ts OUT_DIR");

interface Ids {
  ops: { name: string; id: number }[];
}
interface Golden {
  sessions: { name: string; exchanges: { request_hex: string }[] }[];
}
const ids = JSON.parse(readFileSync(join(root, "protocol/ids.json"), "utf8")) as Ids;
const golden = JSON.parse(readFileSync(join(root, "protocol/golden.json"), "utf8")) as Golden;
const opId = new Map(ids.ops.map((o) => [o.name, o.id]));

// A fixed P-256 test key (generated for these seeds; it protects nothing).
const ecPrivDer = Buffer.from(
  "3077020101042084e7ffe27f95d96a524a3a106a8fc8a0e20d17fb55c5a9db14043b79541a34e3a00a06082a8648ce3d030107a14403420004deb19da485f30a65ea1460588365f0b17139aeeccc44b4a098e852410d2ee3a1e78b1f7f667e0778777da9334564f04fe444d527ae77224fa3943bd3dda3bac5",
  "hex",
);
const ecPubDer = Buffer.from(
  "3059301306072a8648ce3d020106082a8648ce3d03010703420004deb19da485f30a65ea1460588365f0b17139aeeccc44b4a098e852410d2ee3a1e78b1f7f667e0778777da9334564f04fe444d527ae77224fa3943bd3dda3bac5",
  "hex",
);
const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
const rsaPrivDer = rsa.privateKey.export({ type: "pkcs1", format: "der" });
const rsaPubPem = Buffer.from(rsa.publicKey.export({ type: "spki", format: "pem" }));
const dh = getDiffieHellman("modp2");
const dhParams = [dh.getPrime(), Buffer.from([2])];

const b = (hex: string) => Buffer.from(hex, "hex");
const key16 = b("000102030405060708090a0b0c0d0e0f");
const sha256 = b("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

// One example argument list per op (messages.cddl); handles 1.. are created
// by the same seed when an op needs a live object.
const single: Record<string, unknown[][]> = {
  hello: [[], [b("00112233")]],
  echo: [[b("616263")]],
  stats: [[]],
  hash_oneshot: [
    [4, b("616263")],
    [11, b("")],
  ],
  hmac_oneshot: [[4, key16, b("616263")]],
  hkdf_extract: [[4, b("00"), key16]],
  hkdf_expand: [[4, sha256, b("696e666f"), 42]],
  hkdf: [[4, b("00"), key16, b("696e666f"), 42]],
  rng_bytes: [[32]],
  rng_reseed: [[b("0102")]],
  cipher_crypt: [
    ["AES", "CBC", key16, key16, true, key16],
    ["CHACHA20", "STREAM", Buffer.concat([key16, key16]), b("000000000000000000000000"), false, b("00")],
  ],
  cipher_auth_encrypt: [["AES", "GCM", key16, b("000102030405060708090a0b"), b("aa"), b("616263"), 16]],
  cipher_auth_decrypt: [["AES", "GCM", key16, b("000102030405060708090a0b"), b(""), b("616263"), key16]],
  mpi_prime: [[32, 0]],
  mpi_random: [[1, b("0100")]],
  pk_curves: [[]],
  slot_list: [[]],
  slot_delete: [[0]],
};
// Create-then-use sequences: [op name, args] steps.
type Step = [string, ...unknown[]];
const lifecycles: Record<string, Step[]> = {
  hash: [
    ["hash_new", 1, 4],
    ["hash_update", 1, b("616263")],
    ["hash_copy", 1, 2],
    ["hash_digest", 2],
    ["free", 1],
    ["free", 2],
  ],
  hmac: [
    ["hmac_new", 1, 4, key16],
    ["hmac_update", 1, b("616263")],
    ["hmac_copy", 1, 2],
    ["hmac_digest", 2],
    ["free", 1],
  ],
  cipher: [
    ["cipher_new", 1, "AES", "CTR", key16, key16, true],
    ["cipher_update", 1, b("616263")],
    ["cipher_finish", 1],
    ["free", 1],
  ],
  cipher_buf: [
    ["cipher_buf_new", 1, "AES", "GCM", key16, b("000102030405060708090a0b"), true, b("aa"), 16, 5],
    ["cipher_buf_update", 1, b("6162636465")],
    ["cipher_buf_finish", 1],
    ["cipher_buf_read", 1, 0, 5],
    ["free", 1],
  ],
  key: [
    ["key_import", 1, key16],
    ["key_generate", 2, 32],
    ["hmac_oneshot", 4, 1, b("616263")],
    ["cipher_crypt", "AES", "ECB", 2, b(""), true, key16],
    ["free", 1],
  ],
  pk_ec: [
    ["pk_import", 1, ecPrivDer, null, 0],
    ["pk_import", 2, ecPubDer, null, 0],
    ["pk_info", 1],
    ["pk_export", 1, 3],
    ["pk_sign", 1, 4, sha256, 0],
    ["pk_verify", 2, 4, sha256, b("3006020101020101"), 0],
    ["pk_check_pair", 2, 1],
    ["pk_export", 1, 1],
    ["free", 1],
  ],
  pk_rsa: [
    ["pk_import", 1, rsaPrivDer, null, 1],
    ["pk_import", 2, rsaPubPem, null, 0],
    ["pk_encrypt", 2, b("616263"), 1, 4],
    ["pk_decrypt", 1, Buffer.alloc(128, 1), 0, 0],
    ["pk_sign", 1, 4, sha256, 1],
    ["pk_export", 1, 2],
  ],
  pk_generate: [
    ["pk_generate", 1, 2, 3, 0, 0],
    ["pk_generate", 2, 1, 1024, 65537, 1],
  ],
  slot: [
    ["key_import", 1, key16],
    ["slot_store", 1, 0, "k", false],
    ["slot_load", 0, 2],
    ["slot_list"],
    ["pk_import", 3, ecPrivDer, null, 0],
    ["slot_store", 3, 1, "ec", true],
    ["slot_delete", 0],
  ],
  slot_reboot: [
    ["pk_import", 1, ecPrivDer, null, 0],
    ["slot_store", 1, 0, "ec", false],
    ["key_import", 2, key16],
    ["slot_store", 2, 1, "k", false],
    ["slot_delete", 1],
    ["slot_store", 2, 2, "k2", false],
    ["@reset", []],
    ["slot_list"],
    ["slot_load", 0, 3],
    ["slot_load", 2, 4],
    ["pk_sign", 3, 4, sha256, 0],
    ["@reset", [[0x10, 0x01]]],
    ["slot_list"],
    ["slot_load", 0, 5],
  ],
  kex_ecdh: [
    ["kex_new", 1, 1, 1, 3, null],
    ["kex_new", 2, 1, 2, 3, null],
    ["kex_generate", 1],
    ["kex_import", 2, b("03001741040000")],
    ["kex_generate", 2],
    ["kex_secret", 1, null],
    ["kex_secret", 2, 3],
  ],
  kex_static: [
    ["pk_import", 1, ecPrivDer, null, 0],
    ["kex_new", 2, 1, 1, 3, 1],
    ["kex_generate", 2],
  ],
  kex_dh: [
    ["kex_new", 1, 2, 1, dhParams, null],
    ["kex_generate", 1],
    ["kex_import", 1, Buffer.alloc(128, 3)],
    ["kex_secret", 1, null],
  ],
};

function request(id: number, name: string, args: unknown[]): Uint8Array {
  const op = opId.get(name);
  if (op === undefined) throw new Error(`seeds.ts names op ${name}, which ids.json does not have`);
  const body = encodeBody([id, op, ...args]);
  return body.subarray(0, body.length - 4);
}

// A reset between requests (fuzz_dispatch only; the link target skips it):
// bit flips [offset, mask] applied to the key store medium, then a reboot.
const RESET = Symbol("reset");
type Item = Uint8Array | { [RESET]: [number, number][] };

function records(items: Item[]): Buffer {
  return Buffer.concat(
    items.flatMap((m) => {
      if (!(m instanceof Uint8Array)) {
        const flips = m[RESET];
        return [Buffer.from([0xff, 0xff, flips.length]), ...flips.map(([off, mask]) => Buffer.from([off >> 8, off & 0xff, mask]))];
      }
      const len = Buffer.alloc(2);
      len.writeUInt16BE(m.length);
      return [len, Buffer.from(m)];
    }),
  );
}

function wire(items: Item[]): Buffer {
  return Buffer.concat(
    items
      .filter((m): m is Uint8Array => m instanceof Uint8Array)
      .map((cbor) => {
        const body = new Uint8Array(cbor.length + 4);
        body.set(cbor);
        new DataView(body.buffer).setUint32(cbor.length, crc32Of(cbor));
        return slipEncode(body);
      }),
  );
}

const seeds = new Map<string, Item[]>();
for (const o of ids.ops) {
  const examples = single[o.name];
  if (examples === undefined) seeds.set(`op-${o.name}-bare`, [request(1, o.name, [1])]);
  else for (const [i, args] of examples.entries()) seeds.set(`op-${o.name}-${i}`, [request(1, o.name, args)]);
}
for (const [name, steps] of Object.entries(lifecycles)) {
  seeds.set(
    `seq-${name}`,
    steps.map(([op, ...args], i): Item => (op === "@reset" ? { [RESET]: args[0] as [number, number][] } : request(i + 1, op, args))),
  );
}
golden.sessions.forEach((s, i) => {
  const messages: Uint8Array[] = [];
  for (const ex of s.exchanges) {
    const decoder = new SlipDecoder(1 << 16, { frame: (f) => messages.push(f.subarray(0, f.length - 4)), drop: () => {} });
    decoder.push(Buffer.from(ex.request_hex, "hex"));
  }
  seeds.set(`golden-${i}`, messages);
});

// A frame one byte over the native MTU (dropped as oversize), then an echo.
seeds.set("oversize-then-echo", [new Uint8Array(16449).fill(0x61), request(2, "echo", [b("6f6b")])]);

mkdirSync(join(out, "dispatch"), { recursive: true });
mkdirSync(join(out, "link"), { recursive: true });
// The link target is about framing: it gets the cheap requests only, so its
// executions are not spent on RSA and big-number arithmetic (fuzz_dispatch
// covers those handlers).
const slow = /pk_|kex|mpi|slot/;
for (const [name, messages] of seeds) {
  writeFileSync(join(out, "dispatch", name), records(messages));
  if (!slow.test(name)) writeFileSync(join(out, "link", name), wire(messages));
}
console.log(`fuzz seeds: ${seeds.size} in ${out}`);
