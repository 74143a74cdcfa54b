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

/** What one benchmark pass runs: the target alone, or with the Eagle3 draft. */
export const BenchMode = z.enum(['baseline', 'eagle3']);
export type BenchMode = z.infer<typeof BenchMode>;

/** One measured request. */
export const BenchRequest = z.strictObject({
  id: z.string(),
  /** The round it ran in (1-based; absent in reports from before rounds). */
  round: z.number().int().positive().optional(),
  promptTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  /** Seconds from submission to the last token. */
  latency: z.number().nonnegative(),
  /** Seconds to the first output token, where the backend measures it. */
  ttft: z.number().nonnegative().optional(),
  finishReason: z.string().optional(),
});
export type BenchRequest = z.infer<typeof BenchRequest>;

/** One mode over every measured round: the prompts ran once per round, all pooled here. */
export const BenchRun = z.strictObject({
  mode: BenchMode,
  /** Prompts per round (the same prompts every round). */
  numPrompts: z.number().int().nonnegative(),
  /** Measured rounds pooled here (reports from before rounds: 1). */
  rounds: z.number().int().positive().default(1),
  /** Output tokens of every measured request, all rounds. */
  outputTokens: z.number().int().nonnegative(),
  /** Wall seconds of every measured pass, all rounds. */
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
  /**
   * Index of the first prompt whose outputs differ, the first differing token position, and the
   * round where they differed (1-based; absent in reports from before rounds).
   */
  firstMismatch: z
    .strictObject({
      prompt: z.number().int(),
      id: z.string().optional(),
      position: z.number().int(),
      round: z.number().int().positive().optional(),
    })
    .optional(),
});

/** One mode's figures in one round. */
export const BenchRoundRun = z.strictObject({
  outputTokens: z.number().int().nonnegative(),
  wallSeconds: z.number().nonnegative(),
  throughput: z.number().nonnegative(),
  /** Eagle3: 1 + accepted / drafts in this round. */
  meanAcceptanceLength: z.number().nonnegative().optional(),
});

/** One round: every mode once over the same prompts, in the order given. */
export const BenchRound = z.strictObject({
  /** 1-based. */
  round: z.number().int().positive(),
  /** The modes in the order they ran (it alternates from round to round). */
  order: z.array(BenchMode).min(1),
  baseline: BenchRoundRun.optional(),
  eagle3: BenchRoundRun.optional(),
  /** eagle3 throughput / baseline throughput in this round. */
  speedup: z.number().positive().optional(),
  /**
   * Whether this round's figure (its speedup; its throughput when one mode ran) disagrees with the
   * other rounds beyond noise (see the report's definitions).
   */
  disagrees: z.boolean(),
});

/**
 * A benchmark report. Version 2 measures in rounds (`rounds`, `speedupInterval`, `speedupBound`,
 * `trustworthy`); version 1 reports, one pass per mode, still parse, with those absent.
 */
export const BenchReport = z.strictObject({
  schemaVersion: z.union([z.literal(1), z.literal(2)]),
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
  /**
   * When both ran: the geometric mean over rounds of eagle3 throughput / baseline throughput
   * (version 1: the one pass's ratio). Read it only with `trustworthy`.
   */
  speedup: z.number().positive().optional(),
  /** 95% confidence interval of `speedup` (two rounds or more; see the definitions). */
  speedupInterval: z.strictObject({ low: z.number().positive(), high: z.number().positive() }).optional(),
  /** The most `speedup` can be: the mean acceptance length (see the definitions). */
  speedupBound: z.number().positive().optional(),
  /** Each measured round (empty in version 1). */
  rounds: z.array(BenchRound).default([]),
  /**
   * Whether the measured speed can be taken as a result: false, with `trustReasons`, when one round
   * was measured, the speedup exceeds its bound, a round disagrees with the others beyond noise, or
   * the rounds scatter beyond noise (see the definitions). Absent in version 1, which was not checked.
   */
  trustworthy: z.boolean().optional(),
  /** Why the measurement is not trustworthy (empty when it is). */
  trustReasons: z.array(z.string()).default([]),
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
export type BenchRoundRun = z.infer<typeof BenchRoundRun>;
export type BenchRound = z.infer<typeof BenchRound>;
export type BenchReport = z.infer<typeof BenchReport>;
