import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EagletError, type EventSink, type PluginRegistry, type ValidationReport } from '@eaglet/core';
import { makeSpeechDataset, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { type PrepareResult, prepareData } from './prepare.js';
import { validateData } from './validate.js';
import { buildVocab, type VocabResult } from './vocab.js';

export interface QuickstartOptions {
  /** Work folder for everything the quickstart makes. */
  dir: string;
}

export interface QuickstartResult {
  dir: string;
  dataset: string;
  validation: ValidationReport;
  /** The tiny random Qwen2-Audio model folder (cached). */
  model: string;
  prepared: PrepareResult;
  vocab: VocabResult;
}

/**
 * `eaglet quickstart`: the whole pipeline on CPU in minutes, from real speech (LibriVox clips and
 * espeak-ng sentences) through the steps eaglet has. Each step reports what it made.
 */
export async function quickstart(
  registry: PluginRegistry,
  options: QuickstartOptions,
  ctx: { events?: EventSink; signal?: AbortSignal } = {},
): Promise<QuickstartResult> {
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const step = (message: string) => ctx.events?.({ type: 'log', level: 'info', message });

  step('1. real speech: LibriVox clips (pocketsphinx-testdata) and espeak-ng sentences, in the seed format');
  const dataset = makeSpeechDataset(join(dir, 'data'), {
    espeak: [
      'The quick brown fox jumps over the lazy dog.',
      'Speculative decoding makes language models faster.',
    ],
    longSeconds: 45, // longer than the 30 s audio window: shows the long-audio policy
  });
  ctx.events?.({ type: 'artifact', kind: 'dataset', path: dataset.jsonl });

  step('2. validate the dataset');
  const validation = await validateData(registry, { files: [dataset.jsonl] }, ctx);
  if (!validation.ok) {
    throw new EagletError(
      'EAGLET_QUICKSTART',
      `the quickstart dataset is invalid: ${validation.problems[0]?.reason}`,
    );
  }

  step(
    '3. a tiny random Qwen2-Audio (real Qwen2 tokenizer and Whisper processor config), built once and cached',
  );
  const model = tinyQwen2AudioModel();
  ctx.events?.({ type: 'artifact', kind: 'model', path: model });

  step('4. prepare: decode audio, render the chat template, tokenize, mask, write Arrow shards');
  const prepared = await prepareData(
    registry,
    { target: 'qwen2-audio', model, data: [dataset.jsonl], out: join(dir, 'prepared'), shardSize: 4 },
    ctx,
  );

  step('5. vocab: the draft vocabulary from the trained tokens');
  const vocab = await buildVocab({ data: [prepared.out], out: join(dir, 'vocab.safetensors') }, ctx);
  return { dir, dataset: dataset.jsonl, validation, model, prepared, vocab };
}
