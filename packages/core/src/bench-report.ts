import { hostname } from 'node:os';
import type { ResolvedBenchConfig } from './interfaces/backend.js';
import {
  type BenchReport,
  BenchReport as BenchReportSchema,
  type BenchRequest,
  type BenchRun,
  type LatencyStats,
  type OutputComparison,
  type SpecDecodeCounters,
  type SpecDecodeStats,
} from './schemas/report.js';

/**
 * The one definition of every benchmark figure. Backends measure requests and counters; these
 * functions turn them into the report, so the embedded backend and vLLM are compared like for like.
 */
export const BENCH_DEFINITIONS: Record<string, string> = {
  throughput: 'output tokens of all measured requests / wall seconds of the run',
  latency:
    'seconds from submitting a request to its last token; p50/p90 interpolate linearly (numpy default)',
  speedup: 'eagle3 throughput / baseline throughput on the same prompts',
  latencySpeedup: 'baseline mean latency / eagle3 mean latency',
  meanAcceptanceLength:
    '1 + accepted / drafts: tokens produced per target verification step, counting the bonus token (+1) the target adds after the accepted draft tokens',
  draftAcceptanceRate: 'accepted draft tokens / proposed draft tokens',
  acceptanceRatePerPosition:
    'accepted tokens at draft position i / drafts (vLLM spec_decode_num_accepted_tokens_per_pos / spec_decode_num_drafts)',
  outputsMatch: 'at temperature 0: prompts whose eagle3 output token ids equal the baseline output token ids',
};

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

/** A run's figures from its measured requests, its wall time and (Eagle3) its counters. */
export function buildBenchRun(
  mode: BenchRun['mode'],
  requests: BenchRequest[],
  wallSeconds: number,
  counters?: SpecDecodeCounters,
): BenchRun {
  const outputTokens = requests.reduce((a, r) => a + r.outputTokens, 0);
  const ttfts = requests.flatMap((r) => (r.ttft === undefined ? [] : [r.ttft]));
  const rates = requests.filter((r) => r.latency > 0).map((r) => r.outputTokens / r.latency);
  return {
    mode,
    numPrompts: requests.length,
    outputTokens,
    wallSeconds,
    throughput: wallSeconds > 0 ? outputTokens / wallSeconds : 0,
    latency: latencyStats(requests.map((r) => r.latency)),
    ...(ttfts.length === requests.length && ttfts.length ? { ttft: latencyStats(ttfts) } : {}),
    perRequestTokensPerSecond: rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : 0,
    ...(counters ? { spec: specDecodeStats(counters) } : {}),
    requests,
  };
}

/** Compares output token ids prompt by prompt (same order, same ids). */
export function compareOutputs(
  baseline: ReadonlyArray<{ id: string; ids: readonly number[] }>,
  eagle3: ReadonlyArray<{ id: string; ids: readonly number[] }>,
): OutputComparison {
  const n = Math.min(baseline.length, eagle3.length);
  let identical = 0;
  let firstMismatch: OutputComparison['firstMismatch'];
  for (let i = 0; i < n; i++) {
    const a = baseline[i]!.ids;
    const b = eagle3[i]!.ids;
    let pos = 0;
    while (pos < a.length && pos < b.length && a[pos] === b[pos]) pos++;
    if (pos === a.length && pos === b.length) identical++;
    else firstMismatch ??= { prompt: i, id: baseline[i]!.id, position: pos };
  }
  return { compared: n, identical, ...(firstMismatch ? { firstMismatch } : {}) };
}

/** Assembles and validates the report every backend returns. */
export function buildBenchReport(input: {
  /** The config the backend ran (its backend and target resolved). */
  config: ResolvedBenchConfig<unknown>;
  device: string;
  engineVersions?: Record<string, string>;
  baseline?: BenchRun;
  eagle3?: BenchRun;
  /** Output token ids per prompt, for the temperature-0 comparison. */
  outputs?: {
    baseline: ReadonlyArray<{ id: string; ids: readonly number[] }>;
    eagle3: ReadonlyArray<{ id: string; ids: readonly number[] }>;
  };
}): BenchReport {
  const { baseline, eagle3 } = input;
  const both = baseline && eagle3;
  return BenchReportSchema.parse({
    schemaVersion: 1,
    createdAt: new Date().toISOString(),
    backend: input.config.backend,
    target: input.config.target,
    config: input.config,
    machine: { hostname: hostname(), device: input.device, engineVersions: input.engineVersions ?? {} },
    ...(baseline ? { baseline } : {}),
    ...(eagle3 ? { eagle3 } : {}),
    ...(both && baseline.throughput > 0 && eagle3.throughput > 0
      ? { speedup: eagle3.throughput / baseline.throughput }
      : {}),
    ...(both && baseline.latency.mean > 0 && eagle3.latency.mean > 0
      ? { latencySpeedup: baseline.latency.mean / eagle3.latency.mean }
      : {}),
    ...(input.outputs && input.config.temperature === 0
      ? { outputsMatch: compareOutputs(input.outputs.baseline, input.outputs.eagle3) }
      : {}),
    definitions: BENCH_DEFINITIONS,
  });
}

const f = (v: number | undefined, digits = 2) => (v === undefined ? '-' : v.toFixed(digits));

/** The report as Markdown: a summary table, the acceptance per position, the definitions. */
export function benchReportMarkdown(r: BenchReport): string {
  const runs = [r.baseline, r.eagle3].filter((x): x is BenchRun => !!x);
  const lines = [
    `# eaglet bench: ${r.target} on ${r.backend}`,
    '',
    `${r.createdAt} on ${r.machine.hostname} (${r.machine.device}); ` +
      `${r.config.numPrompts} prompts requested, temperature ${r.config.temperature}, ` +
      `output_len ${r.config.outputLen}, num_spec_tokens ${r.config.numSpecTokens}, ` +
      `max_num_seqs ${r.config.maxNumSeqs}, tp ${r.config.tp}, seed ${r.config.seed}.`,
    '',
    '| run | prompts | output tokens | wall s | throughput tok/s | latency mean s | p50 s | p90 s | mean acceptance length |',
    '|---|---|---|---|---|---|---|---|---|',
    ...runs.map(
      (x) =>
        `| ${x.mode} | ${x.numPrompts} | ${x.outputTokens} | ${f(x.wallSeconds)} | ${f(x.throughput)} | ` +
        `${f(x.latency.mean, 3)} | ${f(x.latency.p50, 3)} | ${f(x.latency.p90, 3)} | ` +
        `${x.spec ? f(x.spec.meanAcceptanceLength) : '-'} |`,
    ),
    '',
  ];
  if (r.speedup !== undefined)
    lines.push(`**Speedup (throughput): ${f(r.speedup)}x**; latency speedup ${f(r.latencySpeedup)}x.`, '');
  const spec = r.eagle3?.spec;
  if (spec) {
    lines.push(
      `Mean acceptance length ${f(spec.meanAcceptanceLength)} = 1 + ${spec.numAcceptedTokens} accepted / ` +
        `${spec.numDrafts} drafts (the +1 is the bonus token of each verification step); ` +
        `draft acceptance rate ${f(100 * spec.draftAcceptanceRate, 1)}% of ${spec.numDraftTokens} draft tokens.`,
      '',
      `| draft position | ${spec.acceptanceRatePerPosition.map((_, i) => i).join(' | ')} |`,
      `|---|${spec.acceptanceRatePerPosition.map(() => '---').join('|')}|`,
      `| acceptance rate | ${spec.acceptanceRatePerPosition.map((a) => f(a, 3)).join(' | ')} |`,
      '',
    );
  }
  if (r.outputsMatch) {
    const m = r.outputsMatch;
    lines.push(
      `Temperature 0: ${m.identical} of ${m.compared} Eagle3 outputs equal the baseline's token for token` +
        (m.firstMismatch
          ? ` (first difference: prompt ${m.firstMismatch.prompt}${m.firstMismatch.id ? ` [${m.firstMismatch.id}]` : ''} at token ${m.firstMismatch.position}).`
          : '.'),
      '',
    );
  }
  lines.push('## Definitions', '', ...Object.entries(r.definitions).map(([k, v]) => `- **${k}**: ${v}`), '');
  lines.push(
    '## Machine',
    '',
    `- device: ${r.machine.device}`,
    ...Object.entries(r.machine.engineVersions).map(([k, v]) => `- ${k}: ${v}`),
    '',
  );
  return lines.join('\n');
}
