import { z } from 'zod';
import { LongAudioPolicy, MaxLengthPolicy } from './config/prepare.js';

/** Schema version of prepared data; bump when the Arrow columns or the manifest change. */
export const PREPARED_SCHEMA_VERSION = 1;

/**
 * `manifest.json` beside the Arrow shards written by `eaglet data prepare`: the contract between
 * the TS data pipeline and the engine.
 */
export const PreparedManifest = z.strictObject({
  schemaVersion: z.literal(PREPARED_SCHEMA_VERSION),
  target: z.string(),
  chatTemplate: z.string(),
  /** sha256 over the tokenizer files the ids were produced with. */
  tokenizerHash: z.string(),
  maxLength: z.number().int().positive(),
  maxLengthPolicy: MaxLengthPolicy,
  longAudioPolicy: LongAudioPolicy,
  sampleRate: z.number().int().positive(),
  inputs: z.array(z.strictObject({ file: z.string(), sha256: z.string(), records: z.number().int() })),
  shards: z.array(z.strictObject({ file: z.string(), records: z.number().int(), sha256: z.string() })),
  counts: z.strictObject({
    records: z.number().int().nonnegative(),
    written: z.number().int().nonnegative(),
    rejected: z.number().int().nonnegative(),
  }),
  stats: z.strictObject({
    tokens: z.number().int().nonnegative(),
    lossTokens: z.number().int().nonnegative(),
    audioSeconds: z.number().nonnegative(),
    audioClips: z.number().int().nonnegative(),
    /** Record-length histogram: upper bin edges (tokens) and counts. */
    lengthHistogram: z.strictObject({ edges: z.array(z.number()), counts: z.array(z.number().int()) }),
  }),
  /** What was done to long audio, per record. */
  audioActions: z.array(
    z.strictObject({
      id: z.string(),
      file: z.string(),
      line: z.number().int(),
      action: z.enum(['truncated', 'segmented']),
      seconds: z.number(),
      segments: z.number().int().optional(),
    }),
  ),
  createdWith: z.string(),
});
export type PreparedManifest = z.infer<typeof PreparedManifest>;
