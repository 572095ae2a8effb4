// dev.pk: RSA and EC keys held on the device (python-mbedtls's mbedtls.pk).
//
//   const rsa = dev.pk.RSA();  await rsa.generate();        // 2048 bits
//   const ecc = dev.pk.ECC("secp384r1");  await ecc.generate();
//   const key = await dev.pk.RSA.fromBuffer(der_or_pem, { password });
//
// dev.pk.RSA and dev.pk.ECC are functions with properties, like the Python
// classes they mirror: calling one makes an empty key object, and
// fromBuffer/fromDER/fromPEM import a key (parsed on the device).

import { ArgumentError, ProtocolError } from "../base/errors.js";
import { looksLikePem } from "../base/pem.js";
import { Op } from "../base/protocol.generated.js";
import { utf8 } from "../base/util.js";
import { atLeast, type CallOptions, type SessionContext } from "../session/context.js";
import { adoptHandle } from "../session/device-object.js";
import { curveNameOf } from "./curves.js";
import { DHClient, DHServer, ECDHClient, ECDHServer, type StaticEcdhKey } from "./kex.js";
import { ECC, type PkInfo, PkKey, parsePkInfo, pkFlags, RSA } from "./pk-key.js";

export interface ImportOptions extends CallOptions {
  /** Password of an encrypted PKCS#8 key (text is UTF-8 encoded). */
  password?: string | Uint8Array;
  /** Whether the private part may leave the device again (default true). */
  exportable?: boolean;
}

/** `dev.pk.RSA`: `dev.pk.RSA()` makes an empty RSA key object; the properties import one. */
export interface RSAFactory {
  (): RSA;
  /** Imports a DER or PEM key (PKCS#1, PKCS#8, encrypted PKCS#8, SubjectPublicKeyInfo); ArgumentError if it is not RSA. */
  fromBuffer(data: Uint8Array | string, opts?: ImportOptions): Promise<RSA>;
  fromDER(der: Uint8Array, opts?: ImportOptions): Promise<RSA>;
  fromPEM(pem: string, opts?: ImportOptions): Promise<RSA>;
}

/** `dev.pk.ECC`: `dev.pk.ECC(curve)` makes an empty EC key object (secp256r1 by default); the properties import one. */
export interface ECCFactory {
  (curve?: string): ECC;
  /** Imports a DER or PEM key (SEC1, PKCS#8, encrypted PKCS#8, SubjectPublicKeyInfo); ArgumentError if it is not EC. */
  fromBuffer(data: Uint8Array | string, opts?: ImportOptions): Promise<ECC>;
  fromDER(der: Uint8Array, opts?: ImportOptions): Promise<ECC>;
  fromPEM(pem: string, opts?: ImportOptions): Promise<ECC>;
}

/** Importing an encrypted key runs a password KDF on the device (PBKDF2: about a second on a Cortex-M4). */
const IMPORT_TIMEOUT_MS = 60_000;

/** The pk-info of a create answer: a pk-info itself, or a slot-info whose "pk" field is one. */
function pkInfoOf(result: unknown, op: string): PkInfo {
  if (typeof result === "object" && result !== null && !Array.isArray(result) && !(result instanceof Uint8Array)) {
    const pk = (result as Record<string, unknown>).pk;
    if (typeof pk === "object" && pk !== null) return parsePkInfo(pk, op);
  }
  return parsePkInfo(result, op);
}

/**
 * @internal An RSA or ECC object (by the key type the device reports) under a
 * handle that `create` sends its create op under: pk_import, slot_load of a
 * pk slot (slot-info with a "pk" pk-info), ...
 */
export async function _adoptKey(ctx: SessionContext, create: (handle: number) => Promise<unknown>): Promise<RSA | ECC> {
  return adoptHandle(ctx, create, (handle, result) => {
    const info = pkInfoOf(result, "key create");
    return info.type === "rsa" ? new RSA(ctx, { handle, info }) : new ECC(ctx, { handle, info });
  });
}

function keyBytes(data: Uint8Array | string): Uint8Array {
  if (typeof data !== "string" && !(data instanceof Uint8Array))
    throw new ArgumentError("a key must be a Uint8Array (DER or PEM) or a PEM string");
  const bytes = typeof data === "string" ? utf8(data) : data;
  if (bytes.length === 0) throw new ArgumentError("the key is empty");
  // Mbed TLS parses PEM only from NUL-terminated text.
  if (looksLikePem(bytes) && bytes[bytes.length - 1] !== 0) {
    const z = new Uint8Array(bytes.length + 1);
    z.set(bytes);
    return z;
  }
  return bytes;
}

function passwordBytes(password: string | Uint8Array | undefined): Uint8Array | null {
  if (password === undefined) return null;
  if (typeof password === "string") return utf8(password);
  if (password instanceof Uint8Array) return password;
  throw new ArgumentError("password must be a string or a Uint8Array");
}

/** `dev.pk`: RSA and EC keys on the device. */
export class PkModule {
  /** RSA keys: `dev.pk.RSA()`, `dev.pk.RSA.fromBuffer(bytes)`. */
  readonly RSA: RSAFactory;
  /** EC keys: `dev.pk.ECC(curve = "secp256r1")`, `dev.pk.ECC.fromBuffer(bytes)`. */
  readonly ECC: ECCFactory;

  /** @internal */
  constructor(private readonly ctx: SessionContext) {
    const typed =
      <K extends PkKey>(cls: abstract new (...a: never[]) => K, what: string) =>
      async (data: Uint8Array | string, opts?: ImportOptions): Promise<K> => {
        const key = await this.fromBuffer(data, opts);
        if (key instanceof cls) return key;
        await key.close().catch(() => {});
        throw new ArgumentError(
          `the key is ${key.name === "RSA" ? "an RSA" : "an EC"} key, not ${what}; use dev.pk.fromBuffer() for either`,
        );
      };
    const importers = <K extends PkKey>(from: (data: Uint8Array | string, opts?: ImportOptions) => Promise<K>) => ({
      fromBuffer: from,
      fromDER: (der: Uint8Array, opts?: ImportOptions) => {
        if (!(der instanceof Uint8Array)) return Promise.reject(new ArgumentError("fromDER() takes a Uint8Array"));
        return from(der, opts);
      },
      fromPEM: (pem: string, opts?: ImportOptions) => {
        if (typeof pem !== "string" || !looksLikePem(pem))
          return Promise.reject(new ArgumentError("fromPEM() takes PEM text (-----BEGIN ...)"));
        return from(pem, opts);
      },
    });
    this.RSA = Object.assign(() => new RSA(ctx), importers(typed(RSA, "RSA")));
    this.ECC = Object.assign((curve = "secp256r1") => new ECC(ctx, { curve }), importers(typed(ECC, "EC")));
  }

  /**
   * Imports a key of either type, DER or PEM: PKCS#1 RSAPrivateKey /
   * RSAPublicKey, PKCS#8 (encrypted with `password`), SEC1 ECPrivateKey,
   * SubjectPublicKeyInfo. The device parses it; a malformed key is
   * BadArgumentError, an encrypted one without its password
   * BadArgumentError, legacy encrypted PEM UnsupportedAlgorithmError.
   */
  async fromBuffer(data: Uint8Array | string, opts: ImportOptions = {}): Promise<RSA | ECC> {
    const bytes = keyBytes(data);
    const password = passwordBytes(opts.password);
    const flags = pkFlags(opts);
    return _adoptKey(this.ctx, (h) => this.ctx.call(Op.pkImport, [h, bytes, password, flags], atLeast(this.ctx, opts, IMPORT_TIMEOUT_MS)));
  }

  /** Names of the curves compiled into the firmware (pk_curves), e.g. ["secp192r1", ..., "x25519"]. */
  async getSupportedCurves(opts: CallOptions = {}): Promise<string[]> {
    const r = await this.ctx.call(Op.pkCurves, [], opts);
    if (!Array.isArray(r) || !r.every((x) => typeof x === "number"))
      throw new ProtocolError("pk_curves: result is not a list of curve ids");
    return r.map((id: number) => curveNameOf(id));
  }

  /**
   * ECDH server (python-mbedtls's pk.ECDHServer): ephemeral on a curve
   * (secp256r1 by default), or static with an ECC key's private part.
   */
  ECDHServer(curveOrKey?: string | StaticEcdhKey): ECDHServer {
    return new ECDHServer(this.ctx, curveOrKey);
  }

  /** ECDH client (python-mbedtls's pk.ECDHClient): ephemeral on a curve (secp256r1 by default), or static with an ECC key. */
  ECDHClient(curveOrKey?: string | StaticEcdhKey): ECDHClient {
    return new ECDHClient(this.ctx, curveOrKey);
  }

  /** Finite-field DH server over modulus `p` (at least 64 bytes) and generator `g` (python-mbedtls's pk.DHServer). */
  DHServer(p: bigint | Uint8Array, g: bigint | Uint8Array): DHServer {
    return new DHServer(this.ctx, p, g);
  }

  /** Finite-field DH client over modulus `p` and generator `g` (python-mbedtls's pk.DHClient). */
  DHClient(p: bigint | Uint8Array, g: bigint | Uint8Array): DHClient {
    return new DHClient(this.ctx, p, g);
  }

  /** python-mbedtls's check_pair(pub, prv): whether the two keys belong together. */
  checkPair(pub: PkKey, prv: PkKey, opts: CallOptions = {}): Promise<boolean> {
    if (!(pub instanceof PkKey) || !(prv instanceof PkKey))
      return Promise.reject(new ArgumentError("checkPair() takes two RSA or ECC keys"));
    return pub.checkPair(prv, opts);
  }
}
