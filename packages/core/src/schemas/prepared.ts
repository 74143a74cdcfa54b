/**
 * The prepared-data contract between `eaglet data prepare` (TS, writer) and the engine (Python,
 * reader): Arrow IPC *file* format shards `shard-NNNNN.arrow` beside `manifest.json` and
 * `rejects.jsonl`. One row per conversation, in input order (files in the order given, lines in
 * file order). A shard holds one or more record batches (bounded in bytes, so writers and readers
 * never hold a whole shard's audio); `pyarrow.ipc.open_file(path)` reads it, batch by batch or
 * whole. Every field and list item is non-null. Column names and Arrow types:
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
  /** list<uint8>: 1 on tokens the draft learns (assistant replies incl. their closing end-of-turn tokens). */
  lossMask: 'loss_mask',
  /** int32: length of input_ids (length-aware batching reads this without touching the lists). */
  numTokens: 'num_tokens',
  /** list<list<float32>>: one 16 kHz mono PCM clip per audio part, reading order, after the long-audio policy. */
  audio: 'audio',
  /** list<int32>: placeholder tokens per audio part (equals the processor's count). */
  audioTokenCounts: 'audio_token_counts',
} as const;

/** Files of a prepared folder besides the shards. */
export const PREPARED_FILES = {
  manifest: 'manifest.json',
  /** One JSON line per rejected record: {file, line, id?, kind, code?, reason, raw}. */
  rejects: 'rejects.jsonl',
  /** Present only while a run is unfinished: what `prepare` resumes from. */
  progress: 'progress.json',
} as const;

/** Shard file name for shard index i. */
export const shardFileName = (i: number): string => `shard-${String(i).padStart(5, '0')}.arrow`;

/**
 * The draft vocabulary file written by `eaglet data vocab` (safetensors):
 * - `d2t` int64 [draft_vocab_size]: target id = i + d2t[i]
 * - `t2d` bool [vocab_size]: true where a target id is in the draft vocabulary
 * - `freq` int64 [vocab_size]: loss-masked token counts it was built from
 * metadata (strings): `hash`, `draft_vocab_size`, `vocab_size`, `tokenizer_hash`, `datasets`
 * (JSON list of the prepared folders), `loss_tokens` (tokens counted), `distinct_tokens` (ids seen
 * at least once), `coverage` (share of counted tokens inside the draft vocabulary), `filled`
 * (draft slots filled with unseen ids because the data had fewer distinct tokens).
 *
 * `hash` = hex sha256 of `d2t` as little-endian int64 bytes followed by `t2d` as one byte per id
 * (0/1), i.e. in numpy `sha256(d2t.astype('<i8').tobytes() + t2d.astype(np.uint8).tobytes())`.
 * A checkpoint records it; training or a warm start must refuse a mapping whose hash differs.
 */
export const VOCAB_TENSORS = { d2t: 'd2t', t2d: 't2d', freq: 'freq' } as const;

/** Metadata keys of the vocab safetensors file. */
export const VOCAB_METADATA = [
  'hash',
  'draft_vocab_size',
  'vocab_size',
  'tokenizer_hash',
  'datasets',
  'loss_tokens',
  'distinct_tokens',
  'coverage',
  'filled',
] as const;
