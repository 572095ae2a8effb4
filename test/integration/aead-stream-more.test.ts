// AEAD messages of any length, continued (aead-stream.test.ts has AES-GCM,
// AES-CCM, the heap bound and the protocol edges; a second file so the QEMU
// pass streams both halves side by side): ARIA-GCM and ChaCha20-Poly1305
// over 1 MiB, equal to Node's, and one changed tag byte releases nothing.
import { beforeAll, describe, it } from "vitest";
import type { Device } from "../../host/src/index.js";
import { ARIA_GCM, aeadRoundTrip, CHACHA20_POLY1305, MESSAGE } from "./aead-fixtures.js";
import { useSession } from "./session.js";

const session = useSession({ endsAt: { heap: "open", handles: true } });
let dev: Device;
beforeAll(() => {
  dev = session.dev;
});

describe(`AEAD messages of ${MESSAGE} bytes stream through the device`, () => {
  it.each([ARIA_GCM, CHACHA20_POLY1305].map((a) => [a.node, a] as const))(
    "%s equals Node's, and one changed tag byte releases nothing",
    (_n, a) => aeadRoundTrip(dev, a),
    300_000,
  );
});
