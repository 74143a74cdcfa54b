import { z } from 'zod';
import { EngineTarget } from './engine-target.js';

/** Schema version of captures; bump when the shard layout or the manifest change. */
export const CAPTURE_SCHEMA_VERSION = 2;

/**
 * The capture contract between `eaglet data capture` (the engine writes it) and offline training
 * (the engine reads it): what the frozen target computed once over prepared data, so the draft
 * trains without running it. A capture folder holds:
 *
 * - `shard-NNNNN.safetensors`: consecutive records of the prepared data (in its order). Tensors
 *   (bf16): `taps` [sum of record lengths, 3 x hidden], the aux layers' hidden states of every
 *   position, records one after another; `final_hidden` [sum of rows, hidden], the target's final
 *   hidden state (its norm's output, what lm_head reads) on each record's *loss rows* only: the
 *   positions p whose previous token p-1 is an assistant token (the positions whose target
 *   distribution a training-time-test step learns). String metadata `records`: a JSON list of
 *   `[dataset, shard, row, length, rows]` per record: its place in the prepared data (`dataset`
 *   indexes the manifest's `data`), its token count and its loss rows.
 * - `target-head.safetensors`: `embed_tokens` and `lm_head` [vocab, hidden] in the dtype the target
 *   ran in: the draft's frozen embedding and the projection that turns `final_hidden` into the
 *   target's logits, so offline training never loads the target's decoder.
 * - `capture.json` (`CaptureManifest`), written last: its presence marks the capture complete.
 *
 * The loss signal is the final hidden state rather than logits over the draft vocabulary: 2 x
 * hidden bytes per loss row instead of 2 x draft vocabulary (8 KiB instead of 62.5 KiB for a
 * 4096-wide target and 32,000 draft ids), and a capture stays valid for any draft vocabulary
 * mapping (docs/perf/train.md).
 */
export const CAPTURE_FILES = {
  manifest: 'capture.json',
  /** Present only while a capture is unfinished: what it was started with (a rerun must match). */
  progress: 'capture-progress.json',
  head: 'target-head.safetensors',
} as const;

/** Shard file name for shard index i (its commit record is the same name with `.json`). */
export const captureShardFileName = (i: number): string => `shard-${String(i).padStart(5, '0')}.safetensors`;

/** A prepared folder a capture read: where it was and which prepared run made it. */
export const CapturedData = z.strictObject({
  /** Absolute path of the prepared folder (offline training reads its token ids and loss masks). */
  folder: z.string(),
  /** The prepared manifest's fingerprint: training refuses the folder once it holds other data. */
  fingerprint: z.string(),
  chatTemplate: z.string(),
  tokenizerHash: z.string(),
});
export type CapturedData = z.infer<typeof CapturedData>;

/** `capture.json`. */
export const CaptureManifest = z.strictObject({
  schemaVersion: z.literal(CAPTURE_SCHEMA_VERSION),
  /**
   * sha256 of what the bytes depend on (the target block without its snapshot path, the prepared
   * data's fingerprints, the forward's precision, shard and batch sizes): a rerun with the same
   * fingerprint resumes or is already done.
   */
  fingerprint: z.string(),
  /** The target as the engine ran it: adapter, checkpoint, aux layers, the Hub commit when there is one. */
  target: EngineTarget,
  /** The target's shape: the widths of `taps` (3 x hiddenSize) and `final_hidden`, the rows of the head. */
  numLayers: z.number().int().positive(),
  hiddenSize: z.number().int().positive(),
  vocabSize: z.number().int().positive(),
  data: z.array(CapturedData).min(1),
  /** dtype of taps and final_hidden. */
  dtype: z.literal('bfloat16'),
  /** dtype the target ran in (and of the head). */
  precision: z.enum(['bf16', 'fp32']),
  shardTokens: z.number().int().positive(),
  batchTokens: z.number().int().positive(),
  head: z.strictObject({ file: z.string(), sha256: z.string(), bytes: z.number().int().nonnegative() }),
  shards: z.array(
    z.strictObject({
      file: z.string(),
      records: z.number().int().nonnegative(),
      tokens: z.number().int().nonnegative(),
      rows: z.number().int().nonnegative(),
      bytes: z.number().int().nonnegative(),
      sha256: z.string(),
    }),
  ),
  counts: z.strictObject({
    /** Prepared records captured (every record with assistant tokens). */
    records: z.number().int().nonnegative(),
    tokens: z.number().int().nonnegative(),
    /** Loss rows (final_hidden rows). */
    rows: z.number().int().nonnegative(),
    /** Prepared records left out: no assistant tokens, nothing to train on. */
    skippedNoLoss: z.number().int().nonnegative(),
  }),
  /** Shard bytes over tokens (the head excluded). */
  bytesPerToken: z.number().nonnegative(),
  createdWith: z.string(),
});
export type CaptureManifest = z.infer<typeof CaptureManifest>;
