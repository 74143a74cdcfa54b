import { describe, expect, it } from 'vitest';
import {
  BenchConfig,
  BenchReport,
  benchReportMarkdown,
  buildBenchReport,
  disagreeingRounds,
  logSpread,
  type MeasuredRound,
  ROUND_OUTLIER_Z,
  ROUND_TOLERANCE,
  ratioMean,
  type TimedPass,
  tQuantile975,
} from '../src/index.js';

// Naive reference implementations, written the long way round, to check core's statistics against.

/** Student's t density. */
function tDensity(x: number, df: number): number {
  const lgamma = (z: number): number => {
    // Lanczos approximation (g = 7), accurate to ~1e-13 for z > 0.
    const c = [
      0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
      12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
    ];
    if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lgamma(1 - z);
    const zz = z - 1;
    let a = c[0]!;
    for (let i = 1; i < 9; i++) a += c[i]! / (zz + i);
    const t = zz + 7.5;
    return 0.5 * Math.log(2 * Math.PI) + (zz + 0.5) * Math.log(t) - t + Math.log(a);
  };
  const logC = lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * Math.log(df * Math.PI);
  return Math.exp(logC - ((df + 1) / 2) * Math.log(1 + (x * x) / df));
}

const quantiles = new Map<number, number>();

/** The 0.975 quantile by bisection on the CDF, the CDF by Simpson's rule from 0 (the density is symmetric). */
function tQuantileByIntegration(df: number): number {
  const known = quantiles.get(df);
  if (known !== undefined) return known;
  const cdfFromZero = (x: number) => {
    const n = 4000;
    const h = x / n;
    let s = tDensity(0, df) + tDensity(x, df);
    for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * tDensity(i * h, df);
    return (s * h) / 3;
  };
  let lo = 0;
  let hi = 20;
  for (let k = 0; k < 60; k++) {
    const mid = (lo + hi) / 2;
    if (cdfFromZero(mid) < 0.475) lo = mid;
    else hi = mid;
  }
  quantiles.set(df, (lo + hi) / 2);
  return (lo + hi) / 2;
}

function naiveMedian(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Round r disagrees: its log is further from the others' median than 3.5 robust SDs of the others and than 10%. */
function naiveDisagreeing(values: number[]): boolean[] {
  return values.map((v, r) => {
    const others = values.filter((_, i) => i !== r).map((o) => Math.log(o));
    if (others.length === 0) return false;
    const m = naiveMedian(others);
    const mad = naiveMedian(others.map((o) => Math.abs(o - m)));
    const threshold = Math.max(ROUND_OUTLIER_Z * 1.4826 * mad, Math.log(1 + ROUND_TOLERANCE));
    return Math.abs(Math.log(v) - m) > threshold;
  });
}

/** Geometric mean as the n-th root of the product; the interval from the sum-of-squares variance. */
function naiveRatioMean(ratios: number[]) {
  const n = ratios.length;
  const mean = ratios.reduce((a, b) => a * b, 1) ** (1 / n);
  const logs = ratios.map((r) => Math.log(r));
  const sum = logs.reduce((a, b) => a + b, 0);
  const sumSq = logs.reduce((a, b) => a + b * b, 0);
  const variance = (sumSq - (sum * sum) / n) / (n - 1);
  const half = tQuantileByIntegration(n - 1) * Math.sqrt(variance / n);
  return { mean, low: Math.exp(sum / n - half), high: Math.exp(sum / n + half) };
}

/** A deterministic pseudo-random stream (mulberry32), so the cases are the same every run. */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('benchmark statistics against naive references', () => {
  it('t quantiles match numerical integration of the t density (table to 30, expansion beyond)', () => {
    for (const df of [1, 2, 3, 4, 5, 7, 10, 15, 20, 29, 30, 31, 40, 60, 120, 500])
      expect(Math.abs(tQuantile975(df) - tQuantileByIntegration(df)), `df ${df}`).toBeLessThan(1e-3);
    expect(() => tQuantile975(0)).toThrow(/positive integer/);
  });

  it('the geometric mean and its t-interval match the textbook computation', () => {
    const next = random(7);
    for (let c = 0; c < 50; c++) {
      const n = 2 + Math.floor(next() * 8);
      const ratios = Array.from({ length: n }, () => 0.5 + 2 * next());
      const got = ratioMean(ratios);
      const want = naiveRatioMean(ratios);
      expect(got.mean).toBeCloseTo(want.mean, 10);
      // Relative: with one degree of freedom the interval spans orders of magnitude.
      expect(got.interval!.low / want.low).toBeCloseTo(1, 3);
      expect(got.interval!.high / want.high).toBeCloseTo(1, 3);
      expect(got.interval!.low).toBeLessThanOrEqual(got.mean);
      expect(got.interval!.high).toBeGreaterThanOrEqual(got.mean);
    }
    expect(ratioMean([2])).toEqual({ mean: 2 }); // one round: no interval
    expect(ratioMean([2, 2, 2]).interval).toEqual({ low: 2, high: 2 });
    expect(() => ratioMean([1, 0])).toThrow(/positive/);
  });

  it('flags the rounds the naive rule flags, on random rounds with and without a disturbed one', () => {
    const next = random(11);
    let flagged = 0;
    for (let c = 0; c < 300; c++) {
      const n = 2 + Math.floor(next() * 7);
      const noise = 0.01 + 0.2 * next();
      const values = Array.from({ length: n }, () => Math.exp(noise * (next() - 0.5)));
      if (next() < 0.5) values[Math.floor(next() * n)]! *= 1 + 4 * next(); // a disturbed round
      const got = disagreeingRounds(values);
      expect(got, `values ${values.join(', ')}`).toEqual(naiveDisagreeing(values));
      flagged += got.filter(Boolean).length;
    }
    expect(flagged).toBeGreaterThan(50); // the cases exercise both answers
  });

  it('measures the scatter of rounds as the standard deviation of their logs', () => {
    const next = random(3);
    for (let c = 0; c < 50; c++) {
      const values = Array.from({ length: 2 + Math.floor(next() * 8) }, () => 0.3 + 3 * next());
      const logs = values.map((v) => Math.log(v));
      const n = logs.length;
      const sumSq = logs.reduce((a, b) => a + b * b, 0);
      const sum = logs.reduce((a, b) => a + b, 0);
      expect(logSpread(values)).toBeCloseTo(Math.sqrt((sumSq - (sum * sum) / n) / (n - 1)), 10);
    }
    expect(logSpread([2])).toBe(0);
    expect(logSpread([1.1, 1.1, 1.1])).toBe(0);
  });

  it('singles out one slowed round among steady ones, and flags neither of two that agree', () => {
    expect(disagreeingRounds([0.8, 0.81, 3.2])).toEqual([false, false, true]);
    expect(disagreeingRounds([0.8, 0.79, 0.81, 0.8, 1.6])).toEqual([false, false, false, false, true]);
    // Noise within the 10% tolerance is not disagreement, even when the others agree exactly.
    expect(disagreeingRounds([1, 1, 1.08])).toEqual([false, false, false]);
    expect(disagreeingRounds([1, 1.05])).toEqual([false, false]);
    // Two rounds that differ: neither can be blamed alone.
    expect(disagreeingRounds([1, 1.5])).toEqual([true, true]);
    expect(disagreeingRounds([1])).toEqual([false]);
  });
});

describe('the report flags what it cannot present as a result', () => {
  const config = {
    ...BenchConfig.parse({ targetModel: '/m', draftModel: '/d', outputFile: '/o.json', testDataPath: '/t' }),
    backend: 'torch',
    target: 'some-target',
  };
  const outputs = [
    { id: 'a', ids: [1, 2, 3] },
    { id: 'b', ids: [4, 5] },
  ];
  /** A pass of two prompts, 100 tokens each, in `wall` seconds; Eagle3 with acceptance length `tau`. */
  const pass = (wall: number, tau?: number): TimedPass => ({
    requests: ['a', 'b'].map((id) => ({ id, promptTokens: 10, outputTokens: 100, latency: wall / 2 })),
    outputs,
    wallSeconds: wall,
    ...(tau
      ? {
          counters: {
            numDrafts: 100,
            numDraftTokens: 300,
            numAcceptedTokens: Math.round(100 * (tau - 1)),
            acceptedPerPosition: [Math.round(100 * (tau - 1)), 0, 0],
          },
        }
      : {}),
  });
  /** Rounds with these baseline and Eagle3 wall times, the order alternating. */
  const rounds = (walls: Array<[number, number]>, tau = 2): MeasuredRound[] =>
    walls.map(([b, e], i) => ({
      order: i % 2 ? ['eagle3', 'baseline'] : ['baseline', 'eagle3'],
      baseline: pass(b),
      eagle3: pass(e, tau),
    }));

  it('trusts rounds that agree under the bound, and gives the spread', () => {
    const r = buildBenchReport({
      config,
      device: 'cpu',
      rounds: rounds([
        [2, 1.6],
        [2.02, 1.61],
        [1.98, 1.59],
      ]),
    });
    expect(r.trustworthy).toBe(true);
    expect(r.trustReasons).toEqual([]);
    expect(r.rounds.map((x) => x.order)).toEqual([
      ['baseline', 'eagle3'],
      ['eagle3', 'baseline'],
      ['baseline', 'eagle3'],
    ]);
    const perRound = [2 / 1.6, 2.02 / 1.61, 1.98 / 1.59];
    expect(r.rounds.map((x) => x.speedup)).toEqual(perRound.map((s) => expect.closeTo(s, 10)));
    const want = naiveRatioMean(perRound);
    expect(r.speedup).toBeCloseTo(want.mean, 10);
    expect(r.speedupInterval!.low).toBeCloseTo(want.low, 3);
    expect(r.speedupInterval!.high).toBeCloseTo(want.high, 3);
    expect(r.speedupBound).toBeCloseTo(2);
    expect(r.baseline).toMatchObject({ numPrompts: 2, rounds: 3, outputTokens: 600, wallSeconds: 6 });
    expect(r.baseline!.requests.map((q) => q.round)).toEqual([1, 1, 2, 2, 3, 3]);
    expect(r.outputsMatch).toEqual({ compared: 2, identical: 2 });
    const md = benchReportMarkdown(r);
    expect(md).toMatch(/\*\*Speedup \(throughput\): 1\.25x\*\* \(geometric mean of 3 rounds, 95% CI /);
    expect(md).not.toMatch(/not trustworthy/);
  });

  it('refuses a speedup above the mean acceptance length', () => {
    const r = buildBenchReport({
      config,
      device: 'cpu',
      rounds: rounds(
        [
          [3, 1],
          [3.05, 1.01],
          [2.98, 0.99],
        ],
        1.3,
      ),
    });
    expect(r.speedup).toBeCloseTo(3, 1);
    expect(r.speedupBound).toBeCloseTo(1.3);
    expect(r.rounds.some((x) => x.disagrees)).toBe(false);
    expect(r.trustworthy).toBe(false);
    expect(r.trustReasons).toEqual([
      expect.stringMatching(/speedup 3\.01x exceeds its upper bound, the mean acceptance length 1\.30/),
    ]);
    const md = benchReportMarkdown(r);
    expect(md).toMatch(/\*\*Speedup: not trustworthy\.\*\* The measured 3\.01x .* is not a result, because:/);
    expect(md).not.toMatch(/Speedup \(throughput\)/);
  });

  it('names a round whose baseline was slowed, and does not present the speedup', () => {
    const r = buildBenchReport({
      config,
      device: 'cpu',
      rounds: rounds([
        [2, 1.6],
        [8, 1.6], // the baseline of round 2 ran 4x slower
        [2.01, 1.6],
      ]),
    });
    expect(r.rounds.map((x) => x.disagrees)).toEqual([false, true, false]);
    expect(r.trustworthy).toBe(false);
    expect(r.trustReasons.join('\n')).toMatch(
      /round 2 disagrees with the others beyond noise: speedup 5\.00x against 1\.25x, 1\.26x/,
    );
    expect(benchReportMarkdown(r)).toMatch(
      /\| 2 \| eagle3, baseline \| 25\.00 \| 125\.00 \| 5\.00x \| 2\.00 \| disagrees with the others \|/,
    );
  });

  it('does not trust one round, and judges throughput when one mode ran', () => {
    const one = buildBenchReport({ config, device: 'cpu', rounds: rounds([[2, 1.6]]) });
    expect(one.trustworthy).toBe(false);
    expect(one.trustReasons).toEqual([expect.stringMatching(/only 1 round was measured/)]);
    expect(one.speedupInterval).toBeUndefined();
    const baselineOnly = buildBenchReport({
      config: { ...config, useEagle: false },
      device: 'cpu',
      rounds: [2, 2.01, 6].map((b) => ({ order: ['baseline'], baseline: pass(b) })),
    });
    expect(baselineOnly.speedup).toBeUndefined();
    expect(baselineOnly.rounds.map((x) => x.disagrees)).toEqual([false, false, true]);
    expect(baselineOnly.trustReasons).toEqual([
      expect.stringMatching(
        /round 3 disagrees .*: baseline throughput 33\.33 tok\/s against 100\.00 tok\/s, 99\.50 tok\/s/,
      ),
      expect.stringMatching(
        /the rounds scatter beyond noise: baseline throughput 100\.00 tok\/s, 99\.50 tok\/s, 33\.33 tok\/s/,
      ),
    ]);
    expect(benchReportMarkdown(baselineOnly)).toMatch(/\*\*Not trustworthy\*\*/);
  });

  it('does not trust rounds that scatter widely even when none stands out', () => {
    // Speedups 0.97x, 1.65x, 0.49x (measured on a loaded 2-core machine): each round lies within
    // the others' own spread, but together they are far beyond timing noise.
    const r = buildBenchReport({
      config,
      device: 'cpu',
      rounds: rounds([
        [1.6 * 0.97, 1.6],
        [1.6 * 1.65, 1.6],
        [1.6 * 0.49, 1.6],
      ]),
    });
    expect(r.rounds.map((x) => x.disagrees)).toEqual([false, false, false]);
    expect(r.trustworthy).toBe(false);
    expect(r.trustReasons).toEqual([
      expect.stringMatching(
        /the rounds scatter beyond noise: speedup 0\.97x, 1\.65x, 0\.49x \(about 61% apart;/,
      ),
    ]);
    expect(r.speedupInterval!.high / r.speedupInterval!.low).toBeGreaterThan(10);
  });

  it('compares outputs in every round and names the round of the first difference', () => {
    const [r1, r2] = rounds([
      [2, 1.6],
      [2, 1.6],
    ]);
    r2!.eagle3 = { ...r2!.eagle3!, outputs: [outputs[0]!, { id: 'b', ids: [4, 9] }] };
    const r = buildBenchReport({ config, device: 'cpu', rounds: [r1!, r2!] });
    expect(r.outputsMatch).toEqual({
      compared: 2,
      identical: 1,
      firstMismatch: { prompt: 1, id: 'b', position: 1, round: 2 },
    });
    expect(benchReportMarkdown(r)).toMatch(
      /1 of 2 Eagle3 outputs equal the baseline's token for token in every round \(first difference: prompt 1 \[b\] at token 1 in round 2\)/,
    );
  });

  it('still reads a report from before rounds (schema version 1)', () => {
    const v1 = {
      schemaVersion: 1,
      createdAt: '2026-11-28T00:00:00.000Z',
      backend: 'torch',
      target: 'some-target',
      config,
      machine: { hostname: 'h', device: 'cpu', engineVersions: {} },
      baseline: {
        mode: 'baseline',
        numPrompts: 2,
        outputTokens: 200,
        wallSeconds: 4,
        throughput: 50,
        latency: { mean: 2, p50: 2, p90: 2 },
        perRequestTokensPerSecond: 50,
      },
      eagle3: {
        mode: 'eagle3',
        numPrompts: 2,
        outputTokens: 200,
        wallSeconds: 2,
        throughput: 100,
        latency: { mean: 1, p50: 1, p90: 1 },
        perRequestTokensPerSecond: 100,
      },
      speedup: 2,
      outputsMatch: { compared: 2, identical: 2, firstMismatch: undefined },
      definitions: {},
    };
    const { rounds: _r, ...config1 } = config; // version 1 configs had no rounds
    const r = BenchReport.parse({ ...v1, config: config1 });
    expect(r).toMatchObject({ schemaVersion: 1, rounds: [], trustReasons: [], speedup: 2 });
    expect(r.trustworthy).toBeUndefined();
    expect(r.baseline!.rounds).toBe(1);
    expect(benchReportMarkdown(r)).toMatch(
      /\*\*Speedup \(throughput\): 2\.00x\*\* \(one pass per mode, not checked for trust\)/,
    );
    expect(() => BenchReport.parse({ ...v1, schemaVersion: 3 })).toThrow(/schemaVersion/);
  });
});
