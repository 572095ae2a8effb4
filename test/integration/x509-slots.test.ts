// Certificates in the key store: a slot keeps its pk key's certificate chain
// (leaf first) and the store a trust-anchor set. Certificates are made by the
// OpenSSL CLI in a temporary directory; what slot_list reports (subject,
// serial, expiry) is checked against Node's crypto.X509Certificate, what
// comes back against the bytes OpenSSL wrote. The limit (slot_chain_max
// bytes of DER) is tested on both sides; refusals are typed and leave the
// slot as it was; everything survives a restart. One boot (plus a restart)
// per target.
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Limits, Op } from "../../host/src/base/protocol.generated.js";
import {
  BadArgumentError,
  CertificateError,
  type Device,
  type ECC,
  HandleInUseError,
  hex,
  SlotEmptyError,
  SlotInUseError,
  StorageFullError,
  utf8,
} from "../../host/src/index.js";
import type { SlotCertificate, SlotInfo, StoredCertificate } from "../../host/src/modules/slots.js";
import { useSession } from "./session.js";

const session = useSession({ keepStore: true, endsAt: { heap: "open", handles: true } });
let dev: Device;

const dir = mkdtempSync(join(tmpdir(), "mbedlink-x509-slots-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
const der = (name: string) => new Uint8Array(openssl("x509", "-in", `${name}.pem`, "-outform", "DER"));
const keyDer = (name: string) => new Uint8Array(openssl("pkcs8", "-topk8", "-nocrypt", "-in", `${name}.key`, "-outform", "DER"));

/** A key (EC P-256) and a certificate for it, signed by `ca` (self-signed without). */
function makeCert(name: string, subject: string, ca?: string, ext = "basicConstraints=critical,CA:TRUE", rsaBits = 0): void {
  const alg = rsaBits ? ["RSA", "-pkeyopt", `rsa_keygen_bits:${rsaBits}`] : ["EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
  openssl("genpkey", "-algorithm", ...alg, "-out", `${name}.key`);
  openssl("req", "-new", "-key", `${name}.key`, "-subj", subject, "-out", `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  execFileSync("sh", ["-c", `printf '%s\\n' '${ext}' > '${extFile}'`]);
  const sign = ca ? ["-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial"] : ["-signkey", `${name}.key`];
  openssl("x509", "-req", "-in", `${name}.csr`, ...sign, "-days", "400", "-sha256", "-extfile", extFile, "-out", `${name}.pem`);
}

/** What slot_list should say of a certificate, from Node's parser. */
function summary(d: Uint8Array): SlotCertificate {
  const x = new X509Certificate(d);
  return { subject: x.subject.split("\n").join(", "), serialNumber: BigInt(`0x${x.serialNumber}`), notAfter: new Date(x.validTo) };
}

let root: Uint8Array;
let inter: Uint8Array;
let leaf: Uint8Array;
let other: Uint8Array; // certifies a key that is in no slot
let big: Uint8Array; // certifies an RSA-4096 key (the capacity test's)
beforeAll(async () => {
  dev = session.dev;
  makeCert("root", "/C=NL/O=mbedlink test/CN=Test Root CA");
  makeCert("inter", "/C=NL/O=mbedlink test/CN=Test Intermediate", "root");
  makeCert("leaf", "/C=NL/O=mbedlink test/OU=factory 1/CN=device-0001", "inter", "basicConstraints=CA:FALSE");
  makeCert("other", "/CN=someone else", "inter", "basicConstraints=CA:FALSE");
  makeCert("big", "/C=NL/O=mbedlink test/CN=device-rsa-4096", "inter", "basicConstraints=CA:FALSE", 4096);
  [root, inter, leaf, other, big] = ["root", "inter", "leaf", "other", "big"].map(der) as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  // The device key the leaf certifies, non-exportable, in slot 2; a symmetric key in slot 5.
  await using key = await dev.pk.ECC.fromDER(keyDer("leaf"), { exportable: false });
  await dev.slots.store(key, 2, { label: "device identity" });
  await using sym = dev.keys.generateSymmetric(16);
  await dev.slots.store(sym, 5, { label: "hmac" });
}, 60_000);

/** A raw certificate-chain handle made by slot_chain_load, usable in storeChain's list. */
const RAW_BASE = 0x7fff0000;
let rawNext = RAW_BASE;
async function loadRaw(slot: number): Promise<{ handle: number; count: number; holder: StoredCertificate }> {
  const handle = rawNext++;
  const count = (await dev.rpc.call(Op.slotChainLoad, [slot, handle])) as number;
  return { handle, count, holder: { _use: (_s, fn) => fn(handle) } };
}
const freeRaw = (handle: number) => dev.rpc.call(Op.free, [handle]);

describe("a slot's certificate chain", () => {
  it("stored beside the key: list() shows its length and the leaf's subject, serial and expiry as Node reads them", async () => {
    await dev.slots.storeChain(2, [leaf, inter]);
    const entry = (await dev.slots.list()).find((s) => s.slot === 2);
    expect([entry?.label, entry?.kind, entry?.chain]).toEqual(["device identity", "pk", 2]);
    expect(entry?.certificate).toEqual(summary(leaf));
    expect(entry?.certificate?.subject).toBe("C=NL, O=mbedlink test, OU=factory 1, CN=device-0001");
    // the single-slot form of slot_list, and slot_load, say the same
    expect(((await dev.rpc.call(Op.slotList, [2])) as unknown[]).length).toBe(1);
    expect(await dev.rpc.call(Op.slotList, [7])).toEqual([]);
    const symEntry = (await dev.slots.list()).find((s) => s.slot === 5);
    expect([symEntry?.chain, symEntry?.certificate]).toEqual([0, undefined]);
  });

  it("reads back byte for byte, and loads on the device as a chain object", async () => {
    const back = await dev.slots.loadChainDER(2);
    expect(back.map(hex)).toEqual([leaf, inter].map(hex));
    const raw = await loadRaw(2);
    expect(raw.count).toBe(2);
    await expect(dev.rpc.call(Op.slotChainLoad, [2, raw.handle])).rejects.toBeInstanceOf(HandleInUseError);
    await freeRaw(raw.handle);
    await expect(dev.rpc.call(Op.slotChainLoad, [5, rawNext])).rejects.toBeInstanceOf(SlotEmptyError);
    await expect(dev.slots.loadChainDER(5)).resolves.toEqual([]);
  });

  it("takes and gives dev.x509.CRT objects: stored by handle, loaded back with the same accessors", async () => {
    await using leafCrt = await dev.x509.CRT.fromDER(leaf);
    await using interCrt = await dev.x509.CRT.fromDER(inter);
    await dev.slots.storeChain(2, [leafCrt, interCrt], { overwrite: true });
    const chain = await dev.slots.loadChain(2);
    try {
      expect(chain.map((c) => hex(c.der))).toEqual([leaf, inter].map(hex));
      const [first] = chain;
      expect([first?.subject, first?.serialNumber, first?.notAfter]).toEqual([leafCrt.subject, leafCrt.serialNumber, leafCrt.notAfter]);
      expect((await dev.slots.list()).find((s) => s.slot === 2)?.certificate).toEqual({
        subject: leafCrt.subject,
        serialNumber: leafCrt.serialNumber,
        notAfter: leafCrt.notAfter,
      });
    } finally {
      await Promise.all(chain.map((c) => c.close()));
    }
  });

  it("overwrite rules like keys: SlotInUseError without overwrite; an empty list removes the chain", async () => {
    await expect(dev.slots.storeChain(2, [leaf])).rejects.toBeInstanceOf(SlotInUseError);
    expect((await dev.slots.loadChainDER(2)).length).toBe(2);
    await dev.slots.storeChain(2, [leaf], { overwrite: true });
    expect((await dev.slots.list()).find((s) => s.slot === 2)?.chain).toBe(1);
    await dev.slots.storeChain(2, [], { overwrite: true });
    expect((await dev.slots.list()).find((s) => s.slot === 2)?.chain).toBe(0);
    await dev.slots.storeChain(2, [leaf, inter, root]);
    expect((await dev.slots.loadChainDER(2)).map(hex)).toEqual([leaf, inter, root].map(hex));
  });

  it("refusals are typed and leave the slot as it was; the device keeps serving", async () => {
    const before = (await dev.slots.loadChainDER(2)).map(hex);
    // a leaf for another key, a CA certificate first, garbage, truncated DER
    await expect(dev.slots.storeChain(2, [other, inter], { overwrite: true })).rejects.toThrow(/not slot 2's key/);
    await expect(dev.slots.storeChain(2, [inter], { overwrite: true })).rejects.toBeInstanceOf(BadArgumentError);
    await expect(dev.slots.storeChain(2, [utf8("not a certificate")], { overwrite: true })).rejects.toBeInstanceOf(CertificateError);
    await expect(dev.slots.storeChain(2, [leaf.subarray(0, leaf.length - 10)], { overwrite: true })).rejects.toBeInstanceOf(
      CertificateError,
    );
    const corrupt = leaf.slice();
    corrupt[4] = 0x31; // the TBSCertificate is a SET now
    await expect(dev.slots.storeChain(2, [corrupt, inter], { overwrite: true })).rejects.toBeInstanceOf(CertificateError);
    // no pk key: a symmetric key's slot, an empty slot, a slot out of range
    await expect(dev.slots.storeChain(5, [leaf])).rejects.toThrow(/symmetric key/);
    await expect(dev.slots.storeChain(7, [leaf])).rejects.toBeInstanceOf(SlotEmptyError);
    await expect(dev.slots.storeChain(dev.info.slots, [leaf])).rejects.toBeInstanceOf(BadArgumentError);
    expect((await dev.slots.loadChainDER(2)).map(hex)).toEqual(before);
  });

  it(`holds at most slot_chain_max (${Limits.slotChainMax}) bytes of DER: one certificate more is StorageFullError, the slot unchanged`, async () => {
    // Chains bigger than a 4 KiB frame go by handle: copies of slot 2's
    // chain (leaf, intermediate, root) loaded as device objects.
    const chainBytes = leaf.length + inter.length + root.length;
    const fit = Math.floor(Limits.slotChainMax / chainBytes);
    const raws = [];
    for (let i = 0; i <= fit; i++) raws.push(await loadRaw(2));
    const before = (await dev.slots.list()).find((s) => s.slot === 2);
    try {
      const tooMany = raws.map((r) => r.holder);
      expect(chainBytes * tooMany.length).toBeGreaterThan(Limits.slotChainMax);
      await expect(dev.slots.storeChain(2, tooMany, { overwrite: true })).rejects.toThrow(StorageFullError);
      expect((await dev.slots.list()).find((s) => s.slot === 2)).toEqual(before);
      // `fit` copies are at most the limit: stored, listed and read back whole.
      await dev.slots.storeChain(
        2,
        raws.slice(0, fit).map((r) => r.holder),
        { overwrite: true },
      );
      expect((await dev.slots.list()).find((s) => s.slot === 2)?.chain).toBe(3 * fit);
      const back = await dev.slots.loadChainDER(2);
      expect(hex(Buffer.concat(back))).toBe(hex(Buffer.concat(Array(fit).fill([leaf, inter, root]).flat())));
    } finally {
      for (const r of raws) await freeRaw(r.handle);
    }
    await dev.slots.storeChain(2, [leaf, inter], { overwrite: true });
  }, 120_000);
});

describe("the store's capacity", () => {
  // Every record lives in one sector of the store (64 KiB native, 128 KiB
  // on the STM32 and in QEMU): 16-byte sector header, then per record a
  // 20-byte header, label + data padded to 4, a 4-byte CRC. A key record's
  // data is the private DER (slot-info size) + 8 + the public DER.
  const sectorSize = () => (dev.info.keyStore === "file" ? 64 * 1024 : 128 * 1024);
  const recordSize = (labelAndData: number) => 20 + Math.ceil(labelAndData / 4) * 4 + 4;

  it("slots fill with RSA-4096 keys and near-limit chains until the sector is full: StorageFullError exactly where the arithmetic says", async () => {
    // the chain to copy: RSA-4096 leaf, intermediate, root, first in slot 0
    await using key = await dev.pk.RSA.fromDER(keyDer("big"), { exportable: false });
    await dev.slots.store(key, 0, { label: "s0" });
    await dev.slots.storeChain(0, [big, inter, root]);
    const chainBytes = big.length + inter.length + root.length;
    const fit = Math.floor(Limits.slotChainMax / chainBytes);
    const raws = [];
    for (let i = 0; i < fit; i++) raws.push(await loadRaw(0));
    const full = raws.map((r) => r.holder);
    const chainRecord = recordSize(chainBytes * fit);
    const slot2Chain = (await dev.slots.loadChainDER(2)).reduce((n, c) => n + c.length, 0);
    const filled: number[] = [];
    let refused: number | undefined;
    try {
      for (let slot = 0; slot < dev.info.slots && refused === undefined; slot++) {
        if (slot === 2 || slot === 5) continue;
        try {
          await dev.slots.store(key, slot, { label: `s${slot}`, overwrite: true });
        } catch (e) {
          expect(e).toBeInstanceOf(StorageFullError);
          refused = slot;
          break;
        }
        try {
          await dev.slots.storeChain(slot, full);
          filled.push(slot);
        } catch (e) {
          expect(e).toBeInstanceOf(StorageFullError);
          refused = slot;
        }
      }
      const list = await dev.slots.list();
      const keyRecord = (e: SlotInfo, label = e.label) =>
        recordSize(utf8(label).length + e.size + (e.publicKey ? 8 + e.publicKey.length : 0));
      // what the live records take: keys, then chains
      const used =
        16 + list.reduce((n, e) => n + keyRecord(e) + (e.chain > 0 ? recordSize(e.slot === 2 ? slot2Chain : chainBytes * fit) : 0), 0);
      expect(used).toBeLessThanOrEqual(sectorSize());
      const msg = `${filled.length} slots with an RSA-4096 key and a ${chainBytes * fit}-B chain, and slot 2's P-256 key with ${slot2Chain} B`;
      // the sector is full before the slots run out, on every target
      expect(refused).toBeDefined();
      const twin = list.find((e) => e.slot === 0) as SlotInfo;
      const refusedEntry = list.find((e) => e.slot === refused);
      expect(refusedEntry?.chain ?? 0).toBe(0); // the refused chain left nothing behind
      expect(used + (refusedEntry ? chainRecord : keyRecord(twin, `s${refused}`))).toBeGreaterThan(sectorSize());
      console.log(`${dev.info.keyStore}: ${msg} fit one ${sectorSize() / 1024} KiB sector (${used} B); slot ${refused} refused`);
    } finally {
      for (const r of raws) await freeRaw(r.handle);
      for (const e of await dev.slots.list()) if (e.slot !== 2 && e.slot !== 5) await dev.slots.delete(e.slot);
    }
    expect((await dev.slots.list()).map((e) => e.slot)).toEqual([2, 5]);
  }, 120_000);
});

describe("the trust-anchor set", () => {
  it("stored, read back, loaded on the device; overwrite rules; an empty list removes it", async () => {
    await expect(dev.slots.trustAnchorsDER()).resolves.toEqual([]);
    await dev.slots.storeTrustAnchors([root]);
    await expect(dev.slots.storeTrustAnchors([inter])).rejects.toBeInstanceOf(SlotInUseError);
    await dev.slots.storeTrustAnchors([root, inter], { overwrite: true });
    expect((await dev.slots.trustAnchorsDER()).map(hex)).toEqual([root, inter].map(hex));
    const anchors = await dev.slots.trustAnchors();
    expect(anchors.map((c) => c.subject)).toEqual([summary(root).subject, summary(inter).subject]);
    await Promise.all(anchors.map((c) => c.close()));
    const handle = rawNext++;
    expect(await dev.rpc.call(Op.slotTrustLoad, [handle])).toBe(2);
    await freeRaw(handle);
    await expect(dev.slots.storeTrustAnchors([utf8("junk")], { overwrite: true })).rejects.toBeInstanceOf(CertificateError);
    await dev.slots.storeTrustAnchors([], { overwrite: true });
    await expect(dev.slots.trustAnchorsDER()).resolves.toEqual([]);
    await dev.slots.storeTrustAnchors([root]);
  });
});

describe("keys and chains together", () => {
  it("a key stored over a slot's key drops its chain; delete empties key and chain", async () => {
    await using k = dev.pk.ECC("secp256r1");
    await k.generate();
    await dev.slots.store(k, 3, { label: "temp" });
    await expect(dev.slots.storeChain(3, [leaf])).rejects.toThrow(/not slot 3's key/);
    await dev.slots.store(k, 6, { label: "to delete" });
    // slot 6: the leaf's key (a copy), with its chain; then deleted
    await using same = await dev.slots.load(2);
    await dev.slots.store(same as ECC, 6, { overwrite: true });
    await dev.slots.storeChain(6, [leaf, inter]);
    await dev.slots.store(same as ECC, 6, { label: "again", overwrite: true });
    expect((await dev.slots.list()).find((s) => s.slot === 6)?.chain).toBe(0);
    await dev.slots.storeChain(6, [leaf]);
    await dev.slots.delete(6);
    await expect(dev.slots.loadChainDER(6)).resolves.toEqual([]);
    await dev.slots.delete(3);
    expect((await dev.slots.list()).map((s) => s.slot)).toEqual([2, 5]);
  });
});

describe("persistence", () => {
  it("after a restart with the same store the chain, its summary and the anchors are there", async () => {
    const listed = (await dev.slots.list()).find((s) => s.slot === 2);
    await session.restart();
    dev = session.dev;
    expect((await dev.slots.list()).find((s) => s.slot === 2)).toEqual(listed);
    expect((await dev.slots.loadChainDER(2)).map(hex)).toEqual([leaf, inter].map(hex));
    expect((await dev.slots.trustAnchorsDER()).map(hex)).toEqual([hex(root)]);
    // the key still signs, and the leaf's public key is the key's
    await using key = (await dev.slots.load(2)) as ECC;
    expect(hex(await key.exportPublicKey())).toBe(hex(new X509Certificate(leaf).publicKey.export({ format: "der", type: "spki" })));
    await dev.slots.delete(2);
    await dev.slots.delete(5);
    await dev.slots.storeTrustAnchors([], { overwrite: true });
  }, 120_000);
});
