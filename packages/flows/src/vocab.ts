import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  EagletError,
  PREPARED_COLUMNS,
  PREPARED_FILES,
  PreparedManifest,
  readJsonFile,
  VOCAB_TENSORS,
  VocabConfig,
  type VocabConfigInput,
} from '@eaglet/core';
import { makeOutputFolder } from './output-folder.js';
import { readShardBatches } from './prepared-io.js';
import { writeSafetensors } from './safetensors.js';
import type { FlowContext } from './validate.js';

/** What `eaglet data vocab` returns (also in the file's metadata). */
export interface VocabResult {
  out: string;
  hash: string;
  draftVocabSize: number;
  vocabSize: number;
  tokenizerHash: string;
  /** Loss-masked tokens counted. */
  lossTokens: number;
  /** Ids seen at least once. */
  distinctTokens: number;
  /** Share of counted tokens whose id is in the draft vocabulary. */
  coverage: number;
  /** Draft slots filled with unseen ids (the data had fewer distinct tokens than the draft vocabulary). */
  filled: number;
}

/**
 * The draft vocabulary of a frequency table: the `draftVocabSize` most frequent ids (ties to the
 * lower id), sorted by id. With fewer distinct ids than slots, the remaining slots take the lowest
 * unseen ids, so `d2t` always has `draftVocabSize` distinct entries.
 */
export function draftVocabulary(freq: Float64Array, draftVocabSize: number): Int32Array {
  if (draftVocabSize > freq.length)
    throw new EagletError(
      'EAGLET_VOCAB_SIZE',
      `draft vocabulary ${draftVocabSize} is larger than the vocabulary ${freq.length}`,
    );
  const order = Int32Array.from({ length: freq.length }, (_, i) => i);
  order.sort((a, b) => freq[b]! - freq[a]! || a - b);
  return order.subarray(0, draftVocabSize).slice().sort();
}

/** sha256 of d2t (little-endian int64) then t2d (one byte per id): the mapping's identity. */
export function vocabHash(d2t: BigInt64Array, t2d: Uint8Array): string {
  return createHash('sha256')
    .update(new Uint8Array(d2t.buffer, d2t.byteOffset, d2t.byteLength))
    .update(t2d)
    .digest('hex');
}

/**
 * `eaglet data vocab`: counts loss-masked tokens over prepared datasets and writes the draft
 * vocabulary mapping (d2t, t2d, freq) as safetensors, with its hash in the metadata.
 */
export async function buildVocab(input: VocabConfigInput, ctx: FlowContext = {}): Promise<VocabResult> {
  const config = VocabConfig.parse(input);
  const dirs = config.data.map((d) => resolve(d));
  const manifests = dirs.map((dir) => {
    const path = join(dir, PREPARED_FILES.manifest);
    if (!existsSync(path)) {
      throw new EagletError('EAGLET_VOCAB_INPUT', `${dir} has no ${PREPARED_FILES.manifest}`, {
        hint: existsSync(join(dir, PREPARED_FILES.progress))
          ? 'its `eaglet data prepare` run did not finish: rerun it to resume'
          : 'pass folders written by `eaglet data prepare`',
      });
    }
    const parsed = PreparedManifest.safeParse(readJsonFile(path, 'the prepared folder (prepare it again)'));
    if (!parsed.success)
      throw new EagletError(
        'EAGLET_VOCAB_INPUT',
        `${path} is not a prepared-data manifest: ${parsed.error.issues[0]?.message}`,
      );
    return parsed.data;
  });
  const first = manifests[0]!;
  for (const [i, m] of manifests.entries()) {
    if (m.tokenizerHash !== first.tokenizerHash || m.vocabSize !== first.vocabSize) {
      throw new EagletError(
        'EAGLET_VOCAB_INPUT',
        `${dirs[i]} was prepared with another tokenizer than ${dirs[0]}`,
        {
          hint: 'prepare every dataset with the same target model folder',
        },
      );
    }
  }
  const vocabSize = first.vocabSize;
  const freq = new Float64Array(vocabSize);
  const totalRows = manifests.reduce((n, m) => n + m.counts.written, 0);
  let rows = 0;
  for (const [i, m] of manifests.entries()) {
    for (const shard of m.shards) {
      for await (const batch of readShardBatches(join(dirs[i]!, shard.file))) {
        const ids = batch.getChild(PREPARED_COLUMNS.inputIds)!;
        const mask = batch.getChild(PREPARED_COLUMNS.lossMask)!;
        // Read the flat child buffers directly: one pass, no per-row objects.
        const idData = ids.data[0]!;
        const maskValues = mask.data[0]!.children[0]!.values as Uint8Array;
        const idValues = idData.children[0]!.values as Int32Array;
        const offsets = idData.valueOffsets as Int32Array;
        const start = offsets[0]!;
        const end = offsets[batch.numRows]!;
        const maskStart = (mask.data[0]!.valueOffsets as Int32Array)[0]!;
        for (let j = start; j < end; j++) {
          if (maskValues[maskStart + (j - start)] === 1) {
            const id = idValues[j]!;
            if (id >= vocabSize)
              throw new EagletError(
                'EAGLET_VOCAB_INPUT',
                `token id ${id} in ${shard.file} is outside the vocabulary (${vocabSize})`,
              );
            freq[id]!++;
          }
        }
        rows += batch.numRows;
        ctx.events?.({ type: 'progress', task: 'vocab', done: rows, total: totalRows, unit: 'record' });
      }
    }
  }

  const draft = draftVocabulary(freq, config.draftVocabSize);
  const d2t = BigInt64Array.from(draft, (id, i) => BigInt(id - i));
  const t2d = new Uint8Array(vocabSize);
  for (const id of draft) t2d[id] = 1;
  const freqInt = BigInt64Array.from(freq, (f) => BigInt(f));
  const hash = vocabHash(d2t, t2d);
  let lossTokens = 0;
  let covered = 0;
  let distinct = 0;
  for (let id = 0; id < vocabSize; id++) {
    lossTokens += freq[id]!;
    if (freq[id]! > 0) distinct++;
    if (t2d[id]) covered += freq[id]!;
  }
  const filled = Math.max(0, config.draftVocabSize - distinct);
  const result: VocabResult = {
    out: resolve(config.out),
    hash,
    draftVocabSize: config.draftVocabSize,
    vocabSize,
    tokenizerHash: first.tokenizerHash,
    lossTokens,
    distinctTokens: distinct,
    coverage: lossTokens ? covered / lossTokens : 0,
    filled,
  };
  makeOutputFolder(dirname(result.out));
  const bytes = (a: BigInt64Array | Uint8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  writeSafetensors(
    result.out,
    {
      [VOCAB_TENSORS.d2t]: { dtype: 'I64', shape: [config.draftVocabSize], data: bytes(d2t) },
      [VOCAB_TENSORS.t2d]: { dtype: 'BOOL', shape: [vocabSize], data: t2d },
      [VOCAB_TENSORS.freq]: { dtype: 'I64', shape: [vocabSize], data: bytes(freqInt) },
    },
    {
      hash,
      draft_vocab_size: String(config.draftVocabSize),
      vocab_size: String(vocabSize),
      tokenizer_hash: first.tokenizerHash,
      datasets: JSON.stringify(dirs),
      loss_tokens: String(lossTokens),
      distinct_tokens: String(distinct),
      coverage: String(result.coverage),
      filled: String(filled),
    },
  );
  ctx.events?.({ type: 'artifact', kind: 'vocab', path: result.out, description: `hash ${hash}` });
  return result;
}
