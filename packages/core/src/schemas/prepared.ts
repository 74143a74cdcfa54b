/**
 * The prepared-data contract between `eaglet data prepare` (TS, writer) and the engine (Python,
 * reader): Arrow IPC *file* format shards `shard-NNNNN.arrow` beside `manifest.json` and
 * `rejects.jsonl`. One row per conversation. Column names and Arrow types:
 */
export const PREPARED_COLUMNS = {
  /** utf8: the record's id. */
  id: 'id',
  /** utf8: input file (absolute path). */
  sourceFile: 'source_file',
  /** int32: 1-based line in the input file. */
  sourceLine: 'source_line',
  /** list<int32>: token ids, audio placeholders already expanded. */
  inputIds: 'input_ids',
  /** list<uint8>: 1 on tokens the draft learns (assistant replies incl. closing `<|im_end|>\n`). */
  lossMask: 'loss_mask',
  /** int32: length of input_ids (length-aware batching reads this without touching the lists). */
  numTokens: 'num_tokens',
  /** list<list<float32>>: one 16 kHz mono PCM clip per audio part, reading order, after the long-audio policy. */
  audio: 'audio',
  /** list<int32>: placeholder tokens per audio part (equals the processor's count). */
  audioTokenCounts: 'audio_token_counts',
} as const;

/** Shard file name for shard index i. */
export const shardFileName = (i: number): string => `shard-${String(i).padStart(5, '0')}.arrow`;

/**
 * The draft vocabulary file written by `eaglet data vocab` (safetensors):
 * - `d2t` int64 [draft_vocab_size]: target id = i + d2t[i]
 * - `t2d` bool [vocab_size]: true where a target id is in the draft vocabulary
 * - `freq` int64 [vocab_size]: loss-masked token counts it was built from
 * metadata (strings): `hash` (sha256 of d2t and t2d), `draft_vocab_size`, `vocab_size`,
 * `tokenizer_hash`, `datasets` (JSON list of manifest paths).
 */
export const VOCAB_TENSORS = { d2t: 'd2t', t2d: 't2d', freq: 'freq' } as const;
