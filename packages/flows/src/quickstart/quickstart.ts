import { join, resolve } from 'node:path';
import {
  EagletError,
  type EventSink,
  type PluginRegistry,
  QuickstartConfig,
  type QuickstartConfigInput,
  type TargetModel,
  type ValidationReport,
} from '@eaglet/core';
import { type PrepareResult, prepareData } from '../data/prepare/prepare.js';
import { type RegenerateReport, regenerate } from '../data/regenerate/regenerate.js';
import { validateData } from '../data/validate.js';
import { buildVocab, type VocabResult } from '../data/vocab.js';
import { type BenchOutcome, bench } from '../serve/bench.js';
import { serveBackend } from '../serve/serve-backend.js';
import { type TrainResult, train } from '../train/train.js';
import { makeOutputFolder } from '../util/output-folder.js';
import { type DemoDataset, writeDemoDataset } from './demo-data.js';
import { demoModel } from './demo-model.js';

/** The quickstart runs on the embedded PyTorch backend: on a CPU, the one that runs anywhere. */
const EMBEDDED = 'torch';

export interface QuickstartResult {
  dir: string;
  /** The target plugin whose demo ran. */
  target: string;
  dataset: string;
  validation: ValidationReport;
  /** The target's demo model folder (built once, cached under $EAGLET_HOME/demo). */
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
 * The target whose demo runs: the one named, else the first registered target that has one
 * (eaglet's built-ins register theirs first).
 */
export function demoTarget(registry: PluginRegistry, id: string | undefined): TargetModel {
  if (id !== undefined) {
    const target = registry.target(id);
    if (!target.demo)
      throw new EagletError('EAGLET_QUICKSTART', `target ${id} has no quickstart demo`, {
        hint: `targets with one: ${
          registry
            .targets()
            .filter((t) => t.demo)
            .map((t) => t.id)
            .join(', ') || 'none'
        }`,
      });
    return target;
  }
  const found = registry.targets().find((t) => t.demo);
  if (!found)
    throw new EagletError('EAGLET_QUICKSTART', 'no registered target plugin has a quickstart demo', {
      hint: "a target plugin declares one as its `demo` (see @eaglet/core's TargetDemo)",
    });
  return found;
}

/**
 * `eaglet quickstart`: the whole pipeline on CPU in minutes, on a target plugin's demo (its small
 * model, built offline and cached, and the conversations it ships) through the steps eaglet has.
 * Each step reports what it made.
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
  const target = demoTarget(registry, options.target);
  const demo = target.demo!;

  step(`1. the ${target.id} demo's conversations, in the seed format`);
  const dataset: DemoDataset = writeDemoDataset(demo, join(dir, 'data'));
  step(`  ${dataset.about}`);
  ctx.events?.({ type: 'artifact', kind: 'dataset', path: dataset.jsonl });

  step('2. validate the dataset');
  const validation = await validateData(registry, { files: [dataset.jsonl] }, ctx);
  if (!validation.ok) {
    throw new EagletError(
      'EAGLET_QUICKSTART',
      `the quickstart dataset is invalid: ${validation.problems[0]?.reason}`,
    );
  }

  step(`3. the demo target: ${demo.description}; built once and cached`);
  const model = await demoModel(target, ctx);
  ctx.events?.({ type: 'artifact', kind: 'model', path: model });

  step('4. prepare: decode audio, render the chat template, tokenize, mask, write Arrow shards');
  const prepared = await prepareData(
    registry,
    { target: target.id, model, data: [dataset.jsonl], out: join(dir, 'prepared'), shardSize: 4 },
    ctx,
  );

  step(
    '5. regenerate: the target answers every user turn again through the embedded OpenAI-compatible server',
  );
  const server = await serveBackend(
    registry,
    {
      backend: EMBEDDED,
      target: target.id,
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
  try {
    ctx.events?.({
      type: 'log',
      level: 'info',
      message: `  serving ${server.model} at ${server.urls.join(', ')}`,
    });
    regenerated = await regenerate(
      registry,
      {
        data: [dataset.jsonl],
        outputDir: join(dir, 'regenerated'),
        endpoints: [...server.urls],
        model: server.model,
        concurrency: 2,
        maxTokens: 48,
        temperature: 0,
        shardSize: 1000,
      },
      ctx,
    );
  } finally {
    await server.stop();
  }
  if (regenerated.rejected) {
    ctx.events?.({
      type: 'log',
      level: 'info',
      message: `  ${regenerated.rejected} record(s) in ${regenerated.rejectsFile}${dataset.longSeconds ? ` (the ${dataset.longSeconds.toFixed(0)} s recording: the server hears ${target.audio?.maxSeconds ?? '?'} s at most; prepare segments it)` : ''}`,
    });
  }

  step('6. prepare the regenerated answers too');
  const preparedRegenerated = await prepareData(
    registry,
    {
      target: target.id,
      model,
      data: regenerated.shards,
      out: join(dir, 'prepared-regenerated'),
      shardSize: 4,
    },
    ctx,
  );

  step('7. vocab: the draft vocabulary from the trained tokens');
  const vocab = await buildVocab(
    {
      data: [prepared.out, preparedRegenerated.out],
      out: join(dir, 'vocab.safetensors'),
      ...(demo.draftVocabSize ? { draftVocabSize: demo.draftVocabSize } : {}),
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
          ...demo.train,
          target: target.id,
          targetModel: model,
          trainData: [preparedRegenerated.out, prepared.out],
          vocab: vocab.out,
          outputDir: trainOut,
          maxSteps: steps,
          epochs: 1000,
          logEvery: 25,
          device: 'cpu',
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
  const testData = regenerated.shards[0];
  if (!testData) throw new EagletError('EAGLET_QUICKSTART', 'regenerate wrote no answers to benchmark on');
  step(`9. bench: baseline vs Eagle3 (${n} draft tokens) on the embedded backend, temperature 0`);
  const benchOutcome = await bench(
    registry,
    {
      backend: EMBEDDED,
      target: target.id,
      targetModel: model,
      draftModel: draft,
      testDataPath: testData,
      outputFile: join(dir, 'bench', 'report.json'),
      numPrompts: 6,
      outputLen: 32,
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
    target: target.id,
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
