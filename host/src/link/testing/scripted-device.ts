// A device for unit tests that answers as the test tells it, over
// MemTransport: hello gets HELLO (fields overridable), any other op what
// `answers` has for it (null when nothing), a fail() answer becomes a
// failure response. Connect a Device to it in the test:
//
//   t = new ScriptedDevice();
//   dev = await Device.connect(t, { timeoutMs: 2000 });
//   t.answers.set(Op.pkGenerate, () => EC_INFO);
import { Op } from "../../base/protocol.generated.js";
import { MemTransport } from "./mem-transport.js";

/** The hello result of a small volatile device with secp256r1 and x25519. */
export const HELLO = {
  proto: 1,
  fw: "test",
  mbedtls: "3.6.6",
  board: "mem",
  mtu: 2048,
  window: 4,
  max_handles: 64,
  heap_size: 1,
  heap_used: 0,
  heap_peak: 0,
  boot_id: new Uint8Array(8),
  entropy: "test",
  hashes: [] as number[],
  curves: [3, 12],
  key_store: "volatile",
  persistent: false,
  slots: 0,
};

/** An answer that makes the device fail the request with `status` and `message`. */
export const fail = (status: number, message: string) => ({ fail: [status, message] as [number, string] });

export class ScriptedDevice extends MemTransport {
  /** Answers by op: the result, or fail(...). */
  readonly answers = new Map<number, (args: unknown[]) => unknown>();
  /** Requests other than hello are answered after this many ms (0: on the next turn of the event loop). */
  delayMs = 0;

  constructor(private readonly hello: Partial<typeof HELLO> = {}) {
    super();
    this.onRequest = (msg) => {
      const [id, op, ...args] = msg as [number, number, ...unknown[]];
      const answer = op === Op.hello ? { ...HELLO, ...this.hello } : (this.answers.get(op)?.(args) ?? null);
      const reply = () => {
        if (answer && typeof answer === "object" && "fail" in answer) {
          const [status, message] = (answer as { fail: [number, string] }).fail;
          this.deliver([id, status, 0, message]);
        } else this.deliver([id, 0, answer]);
      };
      const ms = op === Op.hello ? 0 : this.delayMs;
      if (ms === 0) setImmediate(reply);
      else setTimeout(reply, ms);
    };
  }

  /** The arguments of each request for `op` the host sent, in order. */
  sentOp(op: number): unknown[][] {
    return this.sent.filter((m) => m[1] === op).map((m) => m.slice(2));
  }
}
