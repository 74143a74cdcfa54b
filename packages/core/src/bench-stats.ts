import type { LatencyStats } from './schemas/report.js';

/**
 * The statistics behind the benchmark report. A round's speedup is a ratio of two throughputs, so
 * rounds are compared on the log scale: there a ratio's noise is symmetric (2x and 0.5x are equally
 * far from 1), and the mean of the logs is the log of the ratios' geometric mean.
 */

/** Linear-interpolation percentile (numpy's default), p in [0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function latencyStats(values: readonly number[]): LatencyStats {
  const mean = values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0;
  return { mean, p50: percentile(values, 50), p90: percentile(values, 90) };
}

/** t(0.975, df) of Student's t for df = 1..30, to 4 decimals (the published table). */
const T975 = [
  12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.306, 2.2622, 2.2281, 2.201, 2.1788, 2.1604,
  2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.093, 2.086, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555,
  2.0518, 2.0484, 2.0452, 2.0423,
];

/**
 * The 0.975 quantile of Student's t with `df` degrees of freedom (the half-width factor of a
 * two-sided 95% interval): the table up to 30, beyond it the Cornish-Fisher expansion around the
 * normal quantile, which is within 1e-3 of the exact value there.
 */
export function tQuantile975(df: number): number {
  if (!Number.isInteger(df) || df < 1)
    throw new RangeError(`degrees of freedom must be a positive integer, got ${df}`);
  if (df <= T975.length) return T975[df - 1]!;
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2);
}

/** A two-sided 95% confidence interval. */
export interface Interval {
  low: number;
  high: number;
}

/**
 * The geometric mean of positive ratios and, from two ratios on, the 95% t-interval of it: the
 * mean of the logs +- t(0.975, n-1) x their standard deviation / sqrt(n), exponentiated. With a few
 * rounds the t-interval is the honest choice; a bootstrap over 3 to 5 values has too few distinct
 * resamples and comes out too narrow.
 */
export function ratioMean(ratios: readonly number[]): { mean: number; interval?: Interval } {
  if (!ratios.length || ratios.some((r) => !(r > 0)))
    throw new RangeError(`ratios must be positive numbers, got [${ratios.join(', ')}]`);
  const logs = ratios.map(Math.log);
  const n = logs.length;
  const mean = logs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean: Math.exp(mean) };
  const sd = Math.sqrt(logs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
  const half = (tQuantile975(n - 1) * sd) / Math.sqrt(n);
  return { mean: Math.exp(mean), interval: { low: Math.exp(mean - half), high: Math.exp(mean + half) } };
}

/**
 * How far rounds may stray from one another before they count as disagreeing: 10%. Repeats of the
 * same work on a machine nothing else disturbs differ by a few percent; beyond that a round
 * measured something else (a burst of load, a paused process, a slowed mode).
 */
export const ROUND_TOLERANCE = 0.1;

/** The robust z cut-off for an outlier (Iglewicz and Hoaglin's 3.5 on the median absolute deviation). */
export const ROUND_OUTLIER_Z = 3.5;

/** The median absolute deviation as an estimate of a normal standard deviation. */
const MAD_TO_SD = 1.4826;

/**
 * Which rounds disagree with the rest beyond noise, for a positive figure per round (a speedup, or
 * a throughput when one mode ran). Round r disagrees when its log lies further from the median of
 * the other rounds' logs than both ROUND_OUTLIER_Z robust standard deviations of those rounds
 * (1.4826 x their median absolute deviation) and ln(1 + ROUND_TOLERANCE). Leaving the round out
 * keeps one disturbed round from widening the noise it is measured against. With two rounds each
 * is measured against the other, and both disagree when they differ by more than the tolerance.
 */
export function disagreeingRounds(values: readonly number[]): boolean[] {
  if (values.some((v) => !(v > 0)))
    throw new RangeError(`values must be positive, got [${values.join(', ')}]`);
  const logs = values.map(Math.log);
  return logs.map((x, r) => {
    const others = logs.filter((_, i) => i !== r);
    if (!others.length) return false;
    const centre = percentile(others, 50);
    const spread =
      MAD_TO_SD *
      percentile(
        others.map((o) => Math.abs(o - centre)),
        50,
      );
    return Math.abs(x - centre) > Math.max(ROUND_OUTLIER_Z * spread, Math.log1p(ROUND_TOLERANCE));
  });
}

/**
 * The scatter of positive per-round figures: the standard deviation of their logs (about the
 * relative spread: 0.1 is rounds about 10% apart). Zero for fewer than two.
 */
export function logSpread(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const logs = values.map(Math.log);
  const mean = logs.reduce((a, b) => a + b, 0) / logs.length;
  return Math.sqrt(logs.reduce((a, x) => a + (x - mean) ** 2, 0) / (logs.length - 1));
}
