import { join, resolve } from 'node:path';
import {
  EagletError,
  type EventSink,
  type PluginRegistry,
  QuickstartConfig,
  type QuickstartConfigInput,
  RegenerateConfig,
  type ValidationReport,
} from '@eaglet/core';
import { corpusSpeechDataset, makeSpeechDataset, trainedQwen2AudioModel } from '@eaglet/fixtures';
import { type BenchOutcome, bench } from './bench.js';
import { makeOutputFolder } from './output-folder.js';
import { type PrepareResult, prepareData } from './prepare.js';
import { type RegenerateReport, regenerate } from './regenerate.js';
import { serveBackend } from './serve-backend.js';
import { type TrainResult, train } from './train.js';
import { validateData } from './validate.js';
import { buildVocab, type VocabResult } from './vocab.js';

/** Clips of each corpus sentence in the training data (40 sentences). */
const CORPUS_CLIPS = 3;
/** Held-out prompts the benchmark answers. */
const BENCH_PROMPTS = 20;

export interface QuickstartResult {
  dir: string;
  dataset: string;
  validation: ValidationReport;
  /** The small trained Qwen2-Audio model folder (cached). */
  model: string;
  prepared: PrepareResult;
  /** The target's own answers to the dataset's user turns, through the embedded OpenAI server. */
  regenerated: RegenerateReport;
  preparedRegenerated: PrepareResult;
  vocab: VocabResult;
  /** The exported Eagle3 draft folder (the layout vLLM loads). */
  draft: string;
  train: TrainResult;
  bench: BenchOutcome;
}

/**
 * `eaglet quickstart`: the whole pipeline on CPU in minutes, from real speech (LibriVox clips and
 * espeak-ng sentences) through the steps eaglet has. Each step reports what it made.
 */
export async function quickstart(
  registry: PluginRegistry,
  input: QuickstartConfigInput,
  ctx: { events?: EventSink; signal?: AbortSignal } = {},
): Promise<QuickstartResult> {
  const options = QuickstartConfig.parse(input);
  const dir = resolve(options.dir);
  makeOutputFolder(dir);
  const step = (message: string) => ctx.events?.({ type: 'log', level: 'info', message });

  step('1. real speech: LibriVox clips (pocketsphinx-testdata) and espeak-ng sentences, in the seed format');
  const dataset = makeSpeechDataset(join(dir, 'data'), {
    espeak: [
      'The quick brown fox jumps over the lazy dog.',
      'Speculative decoding makes language models faster.',
    ],
    longSeconds: 45, // longer than the 30 s audio window: shows the long-audio policy
  });
  // The target's sentences in new voices: enough records to train a draft, and a held-out split
  // (other voices) for eval metrics and the benchmark's prompts.
  // Distinct file names: regenerate writes one output folder per input, named after it.
  const corpus = corpusSpeechDataset(join(dir, 'corpus'), {
    split: 'quickstart',
    perSentence: CORPUS_CLIPS,
    name: 'corpus.jsonl',
  });
  const heldOut = corpusSpeechDataset(join(dir, 'held-out'), {
    split: 'quickstart-held-out',
    perSentence: 1,
    name: 'held-out.jsonl',
  });
  const trainFiles = [dataset.jsonl, corpus.jsonl];
  ctx.events?.({ type: 'artifact', kind: 'dataset', path: dataset.jsonl });

  step('2. validate the dataset');
  const validation = await validateData(registry, { files: [...trainFiles, heldOut.jsonl] }, ctx);
  if (!validation.ok) {
    throw new EagletError(
      'EAGLET_QUICKSTART',
      `the quickstart dataset is invalid: ${validation.problems[0]?.reason}`,
    );
  }

  step(
    '3. a small Qwen2-Audio trained to transcribe 40 sentences (real Qwen2 tokenizer and Whisper processor), built once (minutes) and cached',
  );
  // A trained target: its answers are fluent sentences chosen by the audio, which a draft can
  // learn from its hidden states (a random model's answers are arbitrary; docs/perf/quality.md).
  const model = trainedQwen2AudioModel();
  ctx.events?.({ type: 'artifact', kind: 'model', path: model });

  step('4. prepare: decode audio, render the chat template, tokenize, mask, write Arrow shards');
  const prepared = await prepareData(
    registry,
    { target: 'qwen2-audio', model, data: trainFiles, out: join(dir, 'prepared'), shardSize: 64 },
    ctx,
  );

  step(
    '5. regenerate: the target answers every user turn again through the embedded OpenAI-compatible server',
  );
  const server = await serveBackend(
    registry,
    {
      backend: 'torch',
      target: 'qwen2-audio',
      targetModel: model,
      host: '127.0.0.1',
      port: 0,
      device: 'cpu',
      maxModelLen: 4096,
      backendOptions: { cpuThreads: 1 },
    },
    ctx,
  );
  let regenerated: RegenerateReport;
  let regeneratedHeldOut: RegenerateReport;
  try {
    ctx.events?.({
      type: 'log',
      level: 'info',
      message: `  serving ${server.model} at ${server.urls.join(', ')}`,
    });
    const answer = (data: string[], outputDir: string) =>
      regenerate(
        registry,
        RegenerateConfig.parse({
          data,
          outputDir,
          endpoints: [...server.urls],
          model: server.model,
          concurrency: 2,
          maxTokens: 48,
          temperature: 0,
          shardSize: 1000,
        }),
        ctx,
      );
    regenerated = await answer(trainFiles, join(dir, 'regenerated'));
    regeneratedHeldOut = await answer([heldOut.jsonl], join(dir, 'regenerated-held-out'));
  } finally {
    await server.stop();
  }
  if (regenerated.rejected) {
    ctx.events?.({
      type: 'log',
      level: 'info',
      message: `  ${regenerated.rejected} record(s) in ${regenerated.rejectsFile} (the 45 s recording: the server hears 30 s at most; prepare segments it)`,
    });
  }

  step('6. prepare the regenerated answers too');
  const preparedRegenerated = await prepareData(
    registry,
    {
      target: 'qwen2-audio',
      model,
      data: regenerated.shards,
      out: join(dir, 'prepared-regenerated'),
      shardSize: 64,
    },
    ctx,
  );
  const preparedHeldOut = await prepareData(
    registry,
    {
      target: 'qwen2-audio',
      model,
      data: regeneratedHeldOut.shards,
      out: join(dir, 'prepared-held-out'),
      shardSize: 64,
    },
    ctx,
  );

  step('7. vocab: the draft vocabulary from the trained tokens');
  const vocab = await buildVocab(
    {
      data: [prepared.out, preparedRegenerated.out],
      out: join(dir, 'vocab.safetensors'),
      draftVocabSize: 4096,
    },
    ctx,
  );

  const steps = options.trainSteps;
  step(`8. train an Eagle3 draft for ${steps} steps on CPU (online: the frozen target runs inside the job)`);
  const trainOut = join(dir, 'train');
  // A tiny model on a small CPU trains several times faster on one thread (no oversubscription);
  // the engine inherits the variable.
  const threads = process.env.OMP_NUM_THREADS;
  process.env.OMP_NUM_THREADS = '1';
  let trained: TrainResult;
  try {
    trained = await train(
      registry,
      {
        fields: {
          target: 'qwen2-audio',
          targetModel: model,
          trainData: [preparedRegenerated.out, prepared.out],
          evalData: [preparedHeldOut.out],
          vocab: vocab.out,
          outputDir: trainOut,
          maxSteps: steps,
          epochs: 1000,
          logEvery: 25,
          evalEvery: 50,
          precision: 'fp32',
          device: 'cpu',
          // The budget measured in docs/perf/quality.md (a tiny draft learns at a far higher lr
          // than the 7B reference's 1e-4).
          optimizer: { lr: 3e-3 },
          batching: { maxRecords: 8 },
          ttt: { steps: 3 },
          seed: 0,
        },
      },
      ctx,
    );
  } finally {
    if (threads === undefined) delete process.env.OMP_NUM_THREADS;
    else process.env.OMP_NUM_THREADS = threads;
  }
  const draft = join(trainOut, 'draft');

  const n = options.numSpecTokens;
  step(`9. bench: baseline vs Eagle3 (${n} draft tokens) on the embedded backend, temperature 0`);
  const benchOutcome = await bench(
    registry,
    {
      backend: 'torch',
      targetModel: model,
      draftModel: draft,
      testDataPath: heldOut.jsonl, // prompts the draft never trained on
      outputFile: join(dir, 'bench', 'report.json'),
      numPrompts: BENCH_PROMPTS,
      outputLen: 48,
      numSpecTokens: n,
      temperature: 0,
      maxModelLen: 4096,
      device: 'cpu',
      backendOptions: { cpuThreads: 1 },
    },
    ctx,
  );
  return {
    dir,
    dataset: dataset.jsonl,
    validation,
    model,
    prepared,
    regenerated,
    preparedRegenerated,
    vocab,
    draft,
    train: trained,
    bench: benchOutcome,
  };
}
