/** Small statistics helpers for the benchmark: percentiles of latency samples and medians of per-round figures. */
import type { LatencySummary } from './messages.js';

/** The q-quantile (0..1) of ascending-sorted values, nearest-rank. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** p50, p99, p99.9 and max of a run's latencies in ms (sorts them in place). */
export function summarizeLatencies(latencies: number[]): LatencySummary {
  latencies.sort((a, b) => a - b);
  return {
    p50: quantileSorted(latencies, 0.5),
    p99: quantileSorted(latencies, 0.99),
    p999: quantileSorted(latencies, 0.999),
    max: latencies.length === 0 ? NaN : latencies[latencies.length - 1],
  };
}
