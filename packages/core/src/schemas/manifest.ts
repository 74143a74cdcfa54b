import { z } from 'zod';
import { LongAudioPolicy, MaxLengthPolicy } from './config/prepare.js';
import { HubSource } from './hub.js';

/** Schema version of prepared data; bump when the Arrow columns or the manifest change. */
export const PREPARED_SCHEMA_VERSION = 1;

/**
 * `manifest.json` beside the Arrow shards written by `eaglet data prepare`: the contract between
 * the TS data pipeline and the engine.
 */
export const PreparedManifest = z.strictObject({
  schemaVersion: z.literal(PREPARED_SCHEMA_VERSION),
  /**
   * sha256 of everything the output depends on (inputs' bytes, the settings that change rows,
   * tokenizer hash, eaglet version): a rerun with the same fingerprint resumes or is already done.
   */
  fingerprint: z.string(),
  target: z.string(),
  /** Absolute path of the model folder the data was prepared with. */
  model: z.string(),
  /** Where Hub inputs came from: the model's and the datasets' repositories and commits. */
  sources: z.strictObject({ model: HubSource.optional(), data: z.array(HubSource).default([]) }).optional(),
  chatTemplate: z.string(),
  /** Rows of the target's embedding / lm_head (config vocab_size): the length of `t2d`. */
  vocabSize: z.number().int().positive(),
  /** sha256 over the tokenizer files the ids were produced with. */
  tokenizerHash: z.string(),
  maxLength: z.number().int().positive(),
  maxLengthPolicy: MaxLengthPolicy,
  longAudioPolicy: LongAudioPolicy,
  sampleRate: z.number().int().positive(),
  /** Input files: absolute path, sha256 of the bytes, data format, records (non-blank lines). */
  inputs: z.array(
    z.strictObject({ file: z.string(), sha256: z.string(), format: z.string(), records: z.number().int() }),
  ),
  shards: z.array(z.strictObject({ file: z.string(), records: z.number().int(), sha256: z.string() })),
  counts: z.strictObject({
    records: z.number().int().nonnegative(),
    written: z.number().int().nonnegative(),
    rejected: z.number().int().nonnegative(),
    /** Written records cut to maxLength (maxLengthPolicy `truncate`). */
    truncated: z.number().int().nonnegative(),
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
      /** 0-based index of the audio part in the input record (reading order). */
      part: z.number().int().nonnegative(),
      action: z.enum(['truncated', 'segmented']),
      /** Length of the recording before the action. */
      seconds: z.number(),
      /** `segmented`: segment boundaries in seconds, [start, end) each, covering the recording. */
      segments: z.array(z.tuple([z.number(), z.number()])).optional(),
      /** `segmented`: cuts made at the window limit because no pause was found there. */
      hardCuts: z.number().int().nonnegative().optional(),
    }),
  ),
  /** eaglet version that wrote the data (no timestamps: identical inputs give identical files). */
  createdWith: z.string(),
});
export type PreparedManifest = z.infer<typeof PreparedManifest>;
