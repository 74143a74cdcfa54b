import { hostname } from 'node:os';
import {
  disagreeingRounds,
  latencyStats,
  logSpread,
  ROUND_OUTLIER_Z,
  ROUND_TOLERANCE,
  ratioMean,
} from './bench-stats.js';
import type { BenchPass, ResolvedBenchConfig } from './interfaces/backend.js';
import {
  type BenchMode,
  type BenchReport,
  BenchReport as BenchReportSchema,
  type BenchRound,
  type BenchRoundRun,
  type BenchRun,
  type OutputComparison,
  type SpecDecodeCounters,
  type SpecDecodeStats,
} from './schemas/report.js';

/**
 * The one definition of every benchmark figure. Backends measure requests and counters, the bench
 * flow times each pass; these functions turn them into the report, so the embedded backend and
 * vLLM are compared like for like.
 */
export const BENCH_DEFINITIONS: Record<string, string> = {
  rounds:
    'every round runs each mode once over the same prompts, each pass right after an unmeasured warm-up of its mode (warmupPrompts prompts, a few tokens each); the order alternates from round to round (baseline first in odd rounds, Eagle3 first in even ones)',
  throughput:
    "output tokens / wall seconds of the measured passes, all rounds pooled (per round: that round's pass); the bench flow times each pass around the backend's call, one clock for every backend",
  latency:
    'seconds from submitting a request to its last token, as the backend measures it; p50/p90 interpolate linearly (numpy default)',
  speedup:
    'geometric mean over rounds of (eagle3 throughput / baseline throughput in the same round); not a result unless trustworthy',
  speedupInterval:
    "95% confidence interval of the speedup: a t-interval over the rounds' log speedups (mean +- t(0.975, rounds - 1) x standard deviation / sqrt(rounds)), exponentiated",
  speedupBound:
    "the mean acceptance length: each verification step yields that many tokens on average and costs at least one target decode step, so Eagle3 cannot be faster than that (the tighter bound, x target step / (target step + draft chain), needs the draft chain's time, which the backends do not measure apart)",
  disagrees: `a round disagrees with the others beyond noise when its log speedup (log throughput when one mode ran) lies further from the median of the other rounds than ${ROUND_OUTLIER_Z} x 1.4826 x their median absolute deviation and than ln(1 + ${ROUND_TOLERANCE})`,
  scatter: `the rounds scatter beyond noise when the standard deviation of their log speedups (log throughputs when one mode ran) exceeds ln(1 + ${ROUND_TOLERANCE}): repeats of the same work differ by more than about ${100 * ROUND_TOLERANCE}%`,
  trustworthy:
    'false, with the reasons, when fewer than 2 rounds were measured, the speedup exceeds its bound, a round disagrees with the others beyond noise, or the rounds scatter beyond noise',
  latencySpeedup: 'baseline mean latency / eagle3 mean latency, all rounds pooled',
  meanAcceptanceLength:
    '1 + accepted / drafts: tokens produced per target verification step, counting the bonus token (+1) the target adds after the accepted draft tokens',
  draftAcceptanceRate: 'accepted draft tokens / proposed draft tokens',
  acceptanceRatePerPosition:
    'accepted tokens at draft position i / drafts (vLLM spec_decode_num_accepted_tokens_per_pos / spec_decode_num_drafts)',
  outputsMatch:
    'at temperature 0: prompts whose eagle3 output token ids equal the baseline output token ids of the same round, in every round',
};

/** Adds vLLM-style counters together (per-position vectors element-wise). */
export function addCounters(a: SpecDecodeCounters, b: SpecDecodeCounters): SpecDecodeCounters {
  const n = Math.max(a.acceptedPerPosition.length, b.acceptedPerPosition.length);
  return {
    numDrafts: a.numDrafts + b.numDrafts,
    numDraftTokens: a.numDraftTokens + b.numDraftTokens,
    numAcceptedTokens: a.numAcceptedTokens + b.numAcceptedTokens,
    acceptedPerPosition: Array.from(
      { length: n },
      (_, i) => (a.acceptedPerPosition[i] ?? 0) + (b.acceptedPerPosition[i] ?? 0),
    ),
  };
}

export const emptyCounters = (numSpecTokens: number): SpecDecodeCounters => ({
  numDrafts: 0,
  numDraftTokens: 0,
  numAcceptedTokens: 0,
  acceptedPerPosition: new Array(numSpecTokens).fill(0),
});

/** The metrics of BENCH_DEFINITIONS from vLLM-style counters. */
export function specDecodeStats(c: SpecDecodeCounters): SpecDecodeStats {
  const drafts = c.numDrafts;
  return {
    ...c,
    meanAcceptanceLength: drafts ? 1 + c.numAcceptedTokens / drafts : 1,
    draftAcceptanceRate: c.numDraftTokens ? c.numAcceptedTokens / c.numDraftTokens : 0,
    acceptanceRatePerPosition: c.acceptedPerPosition.map((a) => (drafts ? a / drafts : 0)),
  };
}

/** A pass as the bench flow measured it: what the backend returned and the wall time around it. */
export type TimedPass = BenchPass & { wallSeconds: number };

/** One measured round: the order the modes ran in and each mode's pass. */
export interface MeasuredRound {
  order: readonly BenchMode[];
  baseline?: TimedPass;
  eagle3?: TimedPass;
}

/** A mode's figures over its passes (one per round, in round order), pooled. */
export function buildBenchRun(mode: BenchMode, passes: readonly TimedPass[]): BenchRun {
  const requests = passes.flatMap((p, i) => p.requests.map((r) => ({ ...r, round: i + 1 })));
  const wallSeconds = passes.reduce((a, p) => a + p.wallSeconds, 0);
  const outputTokens = requests.reduce((a, r) => a + r.outputTokens, 0);
  const ttfts = requests.flatMap((r) => (r.ttft === undefined ? [] : [r.ttft]));
  const rates = requests.filter((r) => r.latency > 0).map((r) => r.outputTokens / r.latency);
  const counters = passes.flatMap((p) => (p.counters ? [p.counters] : []));
  return {
    mode,
    numPrompts: passes[0]?.requests.length ?? 0,
    rounds: Math.max(1, passes.length),
    outputTokens,
    wallSeconds,
    throughput: wallSeconds > 0 ? outputTokens / wallSeconds : 0,
    latency: latencyStats(requests.map((r) => r.latency)),
    ...(ttfts.length === requests.length && ttfts.length ? { ttft: latencyStats(ttfts) } : {}),
    perRequestTokensPerSecond: rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : 0,
    ...(counters.length ? { spec: specDecodeStats(counters.reduce(addCounters)) } : {}),
    requests,
  };
}

function roundRun(pass: TimedPass): BenchRoundRun {
  const outputTokens = pass.requests.reduce((a, r) => a + r.outputTokens, 0);
  return {
    outputTokens,
    wallSeconds: pass.wallSeconds,
    throughput: pass.wallSeconds > 0 ? outputTokens / pass.wallSeconds : 0,
    ...(pass.counters ? { meanAcceptanceLength: specDecodeStats(pass.counters).meanAcceptanceLength } : {}),
  };
}

type Outputs = ReadonlyArray<{ id: string; ids: readonly number[] }>;

/**
 * Compares each round's Eagle3 outputs with the same round's baseline outputs, prompt by prompt
 * (same order, same ids): a prompt counts as identical when they are equal in every round. The
 * first difference names its round when there were several.
 */
export function compareOutputs(
  rounds: ReadonlyArray<{ baseline: Outputs; eagle3: Outputs }>,
): OutputComparison {
  const n = rounds.length ? Math.min(...rounds.map((r) => Math.min(r.baseline.length, r.eagle3.length))) : 0;
  let identical = 0;
  let firstMismatch: OutputComparison['firstMismatch'];
  for (let i = 0; i < n; i++) {
    const mismatch = rounds.findIndex(
      (r) => firstDifference(r.baseline[i]!.ids, r.eagle3[i]!.ids) !== undefined,
    );
    if (mismatch < 0) {
      identical++;
      continue;
    }
    const r = rounds[mismatch]!;
    firstMismatch ??= {
      prompt: i,
      id: r.baseline[i]!.id,
      position: firstDifference(r.baseline[i]!.ids, r.eagle3[i]!.ids)!,
      ...(rounds.length > 1 ? { round: mismatch + 1 } : {}),
    };
  }
  return { compared: n, identical, ...(firstMismatch ? { firstMismatch } : {}) };
}

/** The first position where two token sequences differ; undefined when they are equal. */
function firstDifference(a: readonly number[], b: readonly number[]): number | undefined {
  let pos = 0;
  while (pos < a.length && pos < b.length && a[pos] === b[pos]) pos++;
  return pos === a.length && pos === b.length ? undefined : pos;
}

const f = (v: number) => v.toFixed(2);

/** Why the measured speed is not a result; empty when it is (see BENCH_DEFINITIONS.trustworthy). */
function untrustworthyBecause(input: {
  rounds: readonly BenchRound[];
  /** The figure each round is judged by: its speedup, or its throughput when one mode ran. */
  figure: { name: string; unit: string; values: ReadonlyArray<number | undefined> };
  speedup?: number;
  bound?: number;
}): string[] {
  const { rounds, figure, speedup, bound } = input;
  const reasons: string[] = [];
  if (rounds.length < 2)
    reasons.push(
      `only ${rounds.length} round was measured, so nothing shows how much the figures vary between runs (set rounds to 3 or more)`,
    );
  const missing = rounds.filter((_, i) => figure.values[i] === undefined).map((r) => r.round);
  if (missing.length)
    reasons.push(`round ${missing.join(', ')} has no ${figure.name} (no output tokens or no wall time)`);
  if (speedup !== undefined && bound !== undefined && speedup > bound)
    reasons.push(
      `the speedup ${f(speedup)}x exceeds its upper bound, the mean acceptance length ${f(bound)}: each verification step yields that many tokens on average and costs at least one baseline decode step, so the baseline was slowed or the two modes did different work`,
    );
  const value = (i: number) => `${f(figure.values[i]!)}${figure.unit}`;
  const off = rounds.filter((r) => r.disagrees);
  if (off.length) {
    const others = rounds.filter((r) => !r.disagrees).map((r) => value(r.round - 1));
    reasons.push(
      `round ${off.map((r) => r.round).join(', ')} disagrees with the others beyond noise: ${figure.name} ${off.map((r) => value(r.round - 1)).join(', ')}` +
        (others.length ? ` against ${others.join(', ')}` : '') +
        ' (the load on the machine changed during the benchmark)',
    );
  }
  const spread = missing.length ? 0 : logSpread(figure.values as number[]);
  if (spread > Math.log1p(ROUND_TOLERANCE))
    reasons.push(
      `the rounds scatter beyond noise: ${figure.name} ${rounds.map((r) => value(r.round - 1)).join(', ')} ` +
        `(about ${Math.round(100 * spread)}% apart; the same work repeated should differ by less than ${100 * ROUND_TOLERANCE}%): ` +
        'the machine is too busy or too uneven for this benchmark; run it on a quiet machine, or with more prompts per round',
    );
  return reasons;
}

/** Assembles and validates the report from the measured rounds (core's one definition of each figure). */
export function buildBenchReport(input: {
  /** The config the backend ran (its backend and target resolved). */
  config: ResolvedBenchConfig<unknown>;
  device: string;
  engineVersions?: Record<string, string>;
  /** The measured rounds, in the order they ran. */
  rounds: readonly MeasuredRound[];
}): BenchReport {
  const measured = input.rounds;
  const passesOf = (mode: BenchMode) => measured.flatMap((r) => (r[mode] ? [r[mode]] : []));
  const baseline = passesOf('baseline').length ? buildBenchRun('baseline', passesOf('baseline')) : undefined;
  const eagle3 = passesOf('eagle3').length ? buildBenchRun('eagle3', passesOf('eagle3')) : undefined;
  const both = !!(baseline && eagle3);
  const perRound = measured.map((r, i) => {
    const b = r.baseline && roundRun(r.baseline);
    const e = r.eagle3 && roundRun(r.eagle3);
    const speedup = b && e && b.throughput > 0 && e.throughput > 0 ? e.throughput / b.throughput : undefined;
    return {
      round: i + 1,
      order: [...r.order],
      ...(b ? { baseline: b } : {}),
      ...(e ? { eagle3: e } : {}),
      speedup,
    };
  });
  const only = baseline ? 'baseline' : 'eagle3';
  const figure = both
    ? { name: 'speedup', unit: 'x', values: perRound.map((r) => r.speedup) }
    : {
        name: `${only} throughput`,
        unit: ' tok/s',
        values: perRound.map((r) => r[only]?.throughput || undefined),
      };
  const judged = figure.values.every((v) => v !== undefined) ? (figure.values as number[]) : undefined;
  const disagrees = judged ? disagreeingRounds(judged) : perRound.map(() => false);
  const rounds: BenchRound[] = perRound.map(({ speedup, ...r }, i) => ({
    ...r,
    ...(speedup !== undefined ? { speedup } : {}),
    disagrees: disagrees[i]!,
  }));
  const speed = both && judged?.length ? ratioMean(judged) : undefined;
  const bound = both ? eagle3.spec?.meanAcceptanceLength : undefined;
  const reasons = untrustworthyBecause({
    rounds,
    figure,
    ...(speed ? { speedup: speed.mean } : {}),
    ...(bound !== undefined ? { bound } : {}),
  });
  return BenchReportSchema.parse({
    schemaVersion: 2,
    createdAt: new Date().toISOString(),
    backend: input.config.backend,
    target: input.config.target,
    config: input.config,
    machine: { hostname: hostname(), device: input.device, engineVersions: input.engineVersions ?? {} },
    ...(baseline ? { baseline } : {}),
    ...(eagle3 ? { eagle3 } : {}),
    ...(speed ? { speedup: speed.mean } : {}),
    ...(speed?.interval ? { speedupInterval: speed.interval } : {}),
    ...(bound !== undefined ? { speedupBound: bound } : {}),
    ...(both && baseline.latency.mean > 0 && eagle3.latency.mean > 0
      ? { latencySpeedup: baseline.latency.mean / eagle3.latency.mean }
      : {}),
    rounds,
    trustworthy: reasons.length === 0,
    trustReasons: reasons,
    ...(both && input.config.temperature === 0
      ? {
          outputsMatch: compareOutputs(
            measured.flatMap((r) =>
              r.baseline && r.eagle3 ? [{ baseline: r.baseline.outputs, eagle3: r.eagle3.outputs }] : [],
            ),
          ),
        }
      : {}),
    definitions: BENCH_DEFINITIONS,
  });
}
