// The session fixture of the integration suite: `useSession()` at the top of
// a test file (or in a describe) boots the target under test once for the
// file's tests (one QEMU per file on the QEMU pass), and at the end checks
// that the device is back at the file's baseline, then closes the session
// (recording the heap and stack peaks, as startSession's close does).
//
//   const session = useSession({ endsAt: { heap: "open", handles: true } });
//   let dev: Device;
//   beforeAll(() => {
//     dev = session.dev;
//   });
//
// Files whose point is the device's own lifecycle (lifecycle, reset-recovery,
// faults) start and stop their devices themselves.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import type { Device } from "../../host/src/index.js";
import { type Session, type StartOptions, startSession, type TargetControl } from "./target.js";

/**
 * What the device must be back at. `heap`: "open", the heap used as stats()
 * reported right after open; "boot", hello's figure on the freshly booted
 * device. `handles`: and no handle is live.
 */
export interface Baseline {
  heap: "open" | "boot";
  handles?: boolean;
}

export interface SessionOptions {
  /** open()'s request timeout. */
  timeoutMs?: number;
  /**
   * The key store lives in a temporary directory for the whole file, so the
   * device restart() starts finds the same slots; removed after the close.
   * Default: a fresh store per boot.
   */
  keepStore?: boolean;
  /**
   * Checked after the file's tests, before the session closes. Absent: no
   * check (files that reset the device, or check mid-file with expectAt()).
   */
  endsAt?: Baseline;
}

export interface SessionFixture {
  /** The device (a new one after restart()). */
  readonly dev: Device;
  /** Pause, reset, kill (absent on a real board). */
  readonly control: TargetControl | undefined;
  /** Hello's heap figure on the freshly booted device. */
  readonly bootHeap: number;
  /** stats() right after open. */
  readonly openHeap: number;
  readonly openHandles: number;
  /** Asserts the device is back at `baseline` now. */
  expectAt(baseline: Baseline): Promise<void>;
  /** Stops the device and starts it again (same store with keepStore); the baselines stay. */
  restart(): Promise<void>;
}

export function useSession(opts: SessionOptions = {}): SessionFixture {
  const { endsAt, timeoutMs, keepStore } = opts;
  let start: StartOptions = timeoutMs === undefined ? {} : { timeoutMs };
  let session: Session | undefined;
  let bootHeap = 0;
  let open = { heapUsed: 0, handlesUsed: 0 };
  const current = (): Session => {
    if (!session) throw new Error("no session: useSession's beforeAll has not run (or failed)");
    return session;
  };

  const fixture: SessionFixture = {
    get dev() {
      return current().dev;
    },
    get control() {
      return current().control;
    },
    get bootHeap() {
      return bootHeap;
    },
    get openHeap() {
      return open.heapUsed;
    },
    get openHandles() {
      return open.handlesUsed;
    },
    async expectAt(baseline) {
      const st = await current().dev.stats();
      if (baseline.handles) expect(st.handlesUsed, "live handles").toBe(0);
      expect(st.heapUsed, `heap used against its ${baseline.heap} baseline`).toBe(baseline.heap === "boot" ? bootHeap : open.heapUsed);
    },
    async restart() {
      await current().close();
      session = undefined;
      session = await startSession(start);
    },
  };

  beforeAll(async () => {
    if (keepStore) start = { ...start, storeDir: mkdtempSync(join(tmpdir(), "mbedlink-store-")) };
    session = await startSession(start);
    bootHeap = session.dev.info.heapUsed;
    open = await session.dev.stats();
  });
  afterAll(async () => {
    try {
      if (session && endsAt) await fixture.expectAt(endsAt);
    } finally {
      await session?.close();
      session = undefined;
      if (start.storeDir) rmSync(start.storeDir, { recursive: true, force: true });
    }
  });
  return fixture;
}

export interface CurveSession extends SessionFixture {
  /** The curves' names, in the device's order; empty until the session has started. */
  readonly curves: readonly string[];
}

/**
 * useSession(opts), and the curves the device has compiled in
 * (dev.pk.getSupportedCurves(), asked once after the session starts), for the
 * suites that run per curve and skip an absent one.
 */
export function useCurveSession(opts: SessionOptions = {}): CurveSession {
  const fixture = useSession(opts);
  let curves: string[] = [];
  beforeAll(async () => {
    curves = await fixture.dev.pk.getSupportedCurves();
  });
  return Object.defineProperty(fixture, "curves", { get: () => curves, enumerable: true }) as CurveSession;
}
