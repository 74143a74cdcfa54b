import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EagletError, type EventSink, type PluginRegistry, type ValidationReport } from '@eaglet/core';
import { makeSpeechDataset } from '@eaglet/fixtures';
import { validateData } from './validate.js';

export interface QuickstartOptions {
  /** Work folder for everything the quickstart makes. */
  dir: string;
}

export interface QuickstartResult {
  dir: string;
  dataset: string;
  validation: ValidationReport;
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
  return { dir, dataset: dataset.jsonl, validation };
}
