import { z } from 'zod';
import { BenchConfig } from './config/bench.js';
import { HubSource } from './hub.js';

export const LatencyStats = z.strictObject({
  mean: z.number().nonnegative(),
  p50: z.number().nonnegative(),
  p90: z.number().nonnegative(),
});

/**
 * Speculative-decoding counters, counted the way vLLM counts them (`vllm:spec_decode_num_drafts`,
 * `..._num_draft_tokens`, `..._num_accepted_tokens`, `..._num_accepted_tokens_per_pos`): every
 * verification step that had drafts adds 1 draft, N draft tokens, the accepted prefix length a,
 * and 1 to positions 0..a-1.
 */
export const SpecDecodeCounters = z.strictObject({
  numDrafts: z.number().int().nonnegative(),
  numDraftTokens: z.number().int().nonnegative(),
  numAcceptedTokens: z.number().int().nonnegative(),
  /** Accepted tokens at draft position i (length = num spec tokens). */
  acceptedPerPosition: z.array(z.number().int().nonnegative()),
});
export type SpecDecodeCounters = z.infer<typeof SpecDecodeCounters>;

/** The counters and the metrics derived from them (see `specDecodeStats`). */
export const SpecDecodeStats = SpecDecodeCounters.extend({
  /** 1 + accepted / drafts: the +1 is the target's bonus token each verification step. */
  meanAcceptanceLength: z.number().nonnegative(),
  /** accepted / draft tokens. */
  draftAcceptanceRate: z.number().min(0).max(1),
  /** acceptedPerPosition[i] / numDrafts. */
  acceptanceRatePerPosition: z.array(z.number().min(0).max(1)),
});

/** One measured request. */
export const BenchRequest = z.strictObject({
  id: z.string(),
  promptTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  /** Seconds from submission to the last token. */
  latency: z.number().nonnegative(),
  /** Seconds to the first output token, where the backend measures it. */
  ttft: z.number().nonnegative().optional(),
  finishReason: z.string().optional(),
});
export type BenchRequest = z.infer<typeof BenchRequest>;

export const BenchRun = z.strictObject({
  mode: z.enum(['baseline', 'eagle3']),
  numPrompts: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  wallSeconds: z.number().nonnegative(),
  /** Output tokens per second of wall time. */
  throughput: z.number().nonnegative(),
  /** Per-request latency in seconds. */
  latency: LatencyStats,
  /** Per-request time to first token in seconds, where measured. */
  ttft: LatencyStats.optional(),
  /** Output tokens per second of each request's own decode (output tokens / latency), mean. */
  perRequestTokensPerSecond: z.number().nonnegative(),
  spec: SpecDecodeStats.optional(),
  requests: z.array(BenchRequest).default([]),
});

export const OutputComparison = z.strictObject({
  compared: z.number().int().nonnegative(),
  identical: z.number().int().nonnegative(),
  /** Index of the first prompt whose outputs differ, and the first differing token position. */
  firstMismatch: z
    .strictObject({ prompt: z.number().int(), id: z.string().optional(), position: z.number().int() })
    .optional(),
});

export const BenchReport = z.strictObject({
  schemaVersion: z.literal(1),
  createdAt: z.string(),
  backend: z.string(),
  target: z.string(),
  config: BenchConfig,
  machine: z.strictObject({
    hostname: z.string(),
    device: z.string(),
    engineVersions: z.record(z.string(), z.string()).default({}),
  }),
  baseline: BenchRun.optional(),
  eagle3: BenchRun.optional(),
  /** eagle3.throughput / baseline.throughput, when both ran. */
  speedup: z.number().positive().optional(),
  /** baseline mean latency / eagle3 mean latency, when both ran. */
  latencySpeedup: z.number().positive().optional(),
  /** At temperature 0: whether the speculative outputs equal the baseline's token for token. */
  outputsMatch: OutputComparison.optional(),
  /** How each figure is defined, so numbers from different tools can be compared. */
  definitions: z.record(z.string(), z.string()).default({}),
  /** Files written with the report (markdown, plot, raw outputs). */
  files: z.record(z.string(), z.string()).default({}),
  /** The Hub repositories and commits of models named by Hub ids (targetModel, draftModel). */
  sources: z.record(z.string(), HubSource).optional(),
});

export type LatencyStats = z.infer<typeof LatencyStats>;
export type SpecDecodeStats = z.infer<typeof SpecDecodeStats>;
export type BenchRun = z.infer<typeof BenchRun>;
export type BenchRunInput = z.input<typeof BenchRun>;
export type OutputComparison = z.infer<typeof OutputComparison>;
export type BenchReport = z.infer<typeof BenchReport>;
