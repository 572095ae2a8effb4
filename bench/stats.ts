// Small statistics helpers for the benchmark.

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export function median(xs: readonly number[]): number {
  return percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
}

export interface Latency {
  /** microseconds */
  p50: number;
  p99: number;
  mean: number;
  n: number;
}

export function latencyOf(samplesUs: number[]): Latency {
  const s = [...samplesUs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return { p50: percentile(s, 50), p99: percentile(s, 99), mean, n: s.length };
}

/** Runs `n` sequential calls (after `warmup`) and appends each one's time in microseconds to `into`. */
export async function sampleSequential(n: number, warmup: number, fn: (i: number) => unknown, into: number[]): Promise<void> {
  for (let i = 0; i < warmup; i++) await fn(i);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    into.push((performance.now() - t0) * 1000);
  }
}

/** Times an async loop of `n` sequential calls (after `warmup`), in microseconds per call. */
export async function timeSequential(n: number, warmup: number, fn: (i: number) => Promise<unknown>): Promise<Latency> {
  const samples: number[] = [];
  await sampleSequential(n, warmup, fn, samples);
  return latencyOf(samples);
}

export const MiB = 1024 * 1024;
