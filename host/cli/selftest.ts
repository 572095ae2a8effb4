// The selftest's engine: named checks run one after another against a
// device, each timed, each passing, failing (with what was expected and what
// came back) or skipped (what the device lacks). The checks themselves are
// in selftest-kat.ts (published vectors) and selftest-cross.ts (random
// inputs against node:crypto).
//
// MBEDLINK_SELFTEST_CORRUPT=<check name> alters that check's known answers
// (one bit of every expected value flipped, every expected boolean negated),
// so a test can prove that a wrong answer fails the run.
import type { Device } from "../src/index.js";
import { CROSS_CHECKS } from "./selftest-cross.js";
import { KAT_CHECKS } from "./selftest-kat.js";

/** A mismatch between the device's answer and the known one. */
export class CheckFailure extends Error {
  override name = "CheckFailure";
}

const short = (h: string) => (h.length > 40 ? `${h.slice(0, 32)}…(${h.length / 2} bytes)` : h || "(empty)");
const toHex = (b: Uint8Array | string) => (typeof b === "string" ? b.toLowerCase() : Buffer.from(b).toString("hex"));

/** The assertions a check makes; `corrupted` when this check is the one the environment names. */
export class Expect {
  constructor(readonly corrupted: boolean) {}

  /** A known answer as bytes (hex accepted), one bit flipped when corrupted. */
  known(expected: Uint8Array | string): Uint8Array {
    const bytes = Uint8Array.from(Buffer.from(toHex(expected), "hex"));
    if (this.corrupted) {
      if (bytes.length === 0) return Uint8Array.of(0);
      bytes[0] = (bytes[0] as number) ^ 0x01;
    }
    return bytes;
  }

  /** The device's bytes equal the known answer. */
  equal(actual: Uint8Array, expected: Uint8Array | string, what: string): void {
    const want = toHex(this.known(expected));
    const got = toHex(actual);
    if (got !== want) throw new CheckFailure(`${what}: got ${short(got)}, expected ${short(want)}`);
  }

  /** A property that must hold (negated when corrupted). */
  true(cond: boolean, what: string): void {
    if (cond === this.corrupted)
      throw new CheckFailure(`${what}: ${this.corrupted ? "held, expected not to (corrupted)" : "does not hold"}`);
  }

  /** A property that must not hold. */
  false(cond: boolean, what: string): void {
    this.true(!cond, what);
  }
}

export interface Check {
  name: string;
  /** What it checks, and against what. */
  title: string;
  /** Why it cannot run on this device, or undefined. */
  skip?: (dev: Device) => string | undefined | Promise<string | undefined>;
  run: (dev: Device, t: Expect) => Promise<void>;
  /** Starts host-side work early (Node's RSA key generation), before the first check runs. */
  prepare?: () => void;
}

export interface CheckResult {
  name: string;
  title: string;
  status: "pass" | "fail" | "skip";
  ms: number;
  /** The failure, or why the check was skipped. */
  detail?: string;
}

export const CHECKS: readonly Check[] = [...KAT_CHECKS, ...CROSS_CHECKS];

export interface SelftestOptions {
  /** Run only checks whose name contains one of these. */
  only?: readonly string[];
  /** The check whose known answers are altered. */
  corrupt?: string;
  onStart?: (check: Check) => void;
  onResult?: (result: CheckResult) => void;
  /** Wraps each check's run (the CLI shows a progress line). */
  around?: <T>(check: Check, work: Promise<T>) => Promise<T>;
}

export function selectChecks(only: readonly string[] | undefined): Check[] {
  if (!only || only.length === 0) return [...CHECKS];
  return CHECKS.filter((c) => only.some((w) => c.name.includes(w)));
}

export async function runSelftest(dev: Device, opts: SelftestOptions = {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const checks = selectChecks(opts.only);
  for (const check of checks) check.prepare?.();
  for (const check of checks) {
    opts.onStart?.(check);
    const started = performance.now();
    let result: CheckResult;
    try {
      const why = await check.skip?.(dev);
      if (why) result = { name: check.name, title: check.title, status: "skip", ms: 0, detail: why };
      else {
        const work = check.run(dev, new Expect(check.name === opts.corrupt));
        await (opts.around ? opts.around(check, work) : work);
        result = { name: check.name, title: check.title, status: "pass", ms: performance.now() - started };
      }
    } catch (e) {
      const detail = e instanceof CheckFailure ? e.message : `${(e as Error).name}: ${(e as Error).message}`;
      result = { name: check.name, title: check.title, status: "fail", ms: performance.now() - started, detail };
    }
    results.push(result);
    opts.onResult?.(result);
  }
  return results;
}
