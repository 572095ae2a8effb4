// dev.tls resumption (spec.md 7.12): a TLSSession is a client session the
// device saved (tls_session_get) for a later connection to the same server
// (`context.wrapBuffers(hostname, { session })`, tls_session_set). The host
// holds only a sealed blob: the device encrypted and authenticated it under
// its per-boot wrap key, so the host may keep it, even on disk
// (toBytes() / TLSSession.fromBytes()), but cannot read its secrets or edit
// it, and another device, or this one after a reboot, refuses it
// (AuthFailedError); the connection is then a full handshake.
//
//   const first = ctx.wrapSocket(sock1, "server.example");
//   ... handshake, read (TLS 1.3 tickets arrive with the first read) ...
//   const saved = await first.buffer.session();
//   const again = ctx.wrapSocket(sock2, "server.example", { session: saved });

import { ArgumentError } from "../base/errors.js";
import { checkBytes } from "../base/util.js";

/** The blob's first byte (the device's TLS session handle type) and its clear header: type, TLS version (big-endian). */
const BLOB_TYPE = 14;
const HEADER = 3;
/** Header, nonce, format byte and tag: a blob is longer. */
const OVERHEAD = HEADER + 12 + 1 + 16;
/** The clear version: TLS's, or DTLS 1.2's wire version (0xfefd) for a session of a datagram configuration. */
const VERSIONS = new Map<number, TLSSession["version"]>([
  [0x0303, "TLSv1.2"],
  [0x0304, "TLSv1.3"],
  [0xfefd, "DTLSv1.2"],
]);

/** A saved TLS client session, sealed by the device that made it (python-mbedtls has no counterpart). */
export class TLSSession {
  readonly #blob: Uint8Array;
  /** The version the session resumes ("TLSv1.2": a TLS 1.2 ticket or session id; "TLSv1.3": a ticket; "DTLSv1.2": a DTLS 1.2 ticket or session id, for DTLS sessions only). */
  readonly version: "TLSv1.2" | "TLSv1.3" | "DTLSv1.2";

  private constructor(blob: Uint8Array) {
    const version = blob.length > OVERHEAD && blob[0] === BLOB_TYPE ? VERSIONS.get(((blob[1] ?? 0) << 8) | (blob[2] ?? 0)) : undefined;
    if (version === undefined) throw new ArgumentError("not a saved TLS session (TLSSession.toBytes() output)");
    this.#blob = blob;
    this.version = version;
  }

  /** A session from toBytes() output, e.g. read back from disk; the device checks it when a connection offers it. */
  static fromBytes(bytes: Uint8Array): TLSSession {
    return new TLSSession(Uint8Array.from(checkBytes(bytes, "TLSSession.fromBytes()")));
  }

  /** The sealed bytes, to keep (they hold no secret the host can read). */
  toBytes(): Uint8Array {
    return Uint8Array.from(this.#blob);
  }

  /** @internal The blob as tls_session_get answered it. */
  static _fromDevice(blob: Uint8Array): TLSSession {
    return new TLSSession(blob);
  }

  /** @internal What tls_session_set sends. */
  get _blob(): Uint8Array {
    return this.#blob;
  }
}
