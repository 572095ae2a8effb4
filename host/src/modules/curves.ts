// Elliptic curves by name and by wire id (ids.json's CURVES), with the
// OpenSSL / Node aliases. Its own file because both EC keys (pk-key.ts) and
// key exchanges (kex.ts) look curves up, and pk-key.ts builds key exchanges.

import { ArgumentError } from "../base/errors.js";
import { CURVES, type CurveInfo } from "../base/protocol.generated.js";

const CURVE_BY_ID: ReadonlyMap<number, CurveInfo> = new Map(CURVES.map((c) => [c.id, c]));
const CURVE_BY_NAME: ReadonlyMap<string, CurveInfo> = new Map(CURVES.map((c) => [c.name.toLowerCase(), c]));
/** OpenSSL / Node names (crypto.getCurves()) of the same curves. */
const CURVE_ALIASES: Readonly<Record<string, string>> = {
  prime192v1: "secp192r1",
  prime256v1: "secp256r1",
  "p-192": "secp192r1",
  "p-224": "secp224r1",
  "p-256": "secp256r1",
  "p-384": "secp384r1",
  "p-521": "secp521r1",
  curve25519: "x25519",
  curve448: "x448",
};

/**
 * A curve by name: python-mbedtls's spelling (CURVES[].name, e.g.
 * "secp256r1", "brainpoolP256r1", "x25519"), case-insensitive, or an OpenSSL
 * alias such as "prime256v1". Throws ArgumentError for a name the protocol
 * does not know.
 */
export function lookupCurve(name: string): CurveInfo {
  const key = typeof name === "string" ? name.toLowerCase() : "";
  const c = CURVE_BY_NAME.get(CURVE_ALIASES[key] ?? key);
  if (!c) throw new ArgumentError(`unknown curve ${JSON.stringify(name)}; known: ${CURVES.map((x) => x.name).join(", ")}`);
  return c;
}

/** The curve of an exact protocol name (as a key's info reports it), undefined for any other string. */
export function curveNamed(name: string): CurveInfo | undefined {
  return CURVES.find((c) => c.name === name);
}

/** Curve name of a wire id ("curve<N>" for ids this SDK does not know). */
export function curveNameOf(id: number): string {
  return CURVE_BY_ID.get(id)?.name ?? `curve${id}`;
}
