import { z } from 'zod';
import { BenchConfig } from './config/bench.js';

export const LatencyStats = z.strictObject({
  mean: z.number().nonnegative(),
  p50: z.number().nonnegative(),
  p90: z.number().nonnegative(),
});

/** Speculative-decoding counters, counted the way vLLM counts them. */
export const SpecDecodeStats = z.strictObject({
  /** Draft chains proposed (one per target verification step that had drafts). */
  numDrafts: z.number().int().nonnegative(),
  numDraftTokens: z.number().int().nonnegative(),
  numAcceptedTokens: z.number().int().nonnegative(),
  /** Accepted tokens at draft position i (length = num spec tokens). */
  acceptedPerPosition: z.array(z.number().int().nonnegative()),
  /** 1 + accepted / drafts: the +1 is the target's bonus token each step. */
  meanAcceptanceLength: z.number().nonnegative(),
  /** acceptedPerPosition[i] / numDrafts. */
  acceptanceRatePerPosition: z.array(z.number().min(0).max(1)),
});

export const BenchRun = z.strictObject({
  mode: z.enum(['baseline', 'eagle3']),
  numPrompts: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  wallSeconds: z.number().nonnegative(),
  /** Output tokens per second of wall time. */
  throughput: z.number().nonnegative(),
  /** Per-request latency in seconds. */
  latency: LatencyStats,
  spec: SpecDecodeStats.optional(),
});

export const OutputComparison = z.strictObject({
  compared: z.number().int().nonnegative(),
  identical: z.number().int().nonnegative(),
  /** Index of the first prompt whose outputs differ, and the first differing token position. */
  firstMismatch: z.strictObject({ prompt: z.number().int(), position: z.number().int() }).optional(),
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
  /** At temperature 0: whether the speculative outputs equal the baseline's token for token. */
  outputsMatch: OutputComparison.optional(),
});

export type LatencyStats = z.infer<typeof LatencyStats>;
export type SpecDecodeStats = z.infer<typeof SpecDecodeStats>;
export type BenchRun = z.infer<typeof BenchRun>;
export type OutputComparison = z.infer<typeof OutputComparison>;
export type BenchReport = z.infer<typeof BenchReport>;
