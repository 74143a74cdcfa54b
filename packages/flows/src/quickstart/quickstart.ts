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
import { type DemoBuild, demoModel } from './demo-model.js';

/** The quickstart runs on the embedded PyTorch backend: on a CPU, the one that runs anywhere. */
const EMBEDDED = 'torch';
/** Benchmark prompts: from the held-out split when the demo has one, else its own conversations. */
const HELD_OUT_BENCH = { numPrompts: 20, outputLen: 48 };
const DEMO_DATA_BENCH = { numPrompts: 6, outputLen: 32 };

export interface QuickstartResult {
  dir: string;
  /** The target plugin whose demo ran. */
  target: string;
  /** The demo data folder's conversations, in the seed format. */
  dataset: string;
  /** The builder's training datasets (absent: the demo has none). */
  trainDatasets: string[];
  /** The builder's held-out dataset: eval split and benchmark prompts (absent: the demo has none). */
  heldOutDataset?: string;
  validation: ValidationReport;
  /** The target's demo model folder (built once, cached under $EAGLET_HOME/demo). */
  model: string;
  /** What the demo builder returned (its summary). */
  build: DemoBuild['result'];
  prepared: PrepareResult;
  /** The target's own answers to the training conversations, through the embedded OpenAI server. */
  regenerated: RegenerateReport;
  preparedRegenerated: PrepareResult;
  /** The target's answers to the held-out conversations, prepared: the eval split. */
  preparedHeldOut?: PrepareResult;
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
 * model and datasets, built offline and cached, and the conversations it ships) through the steps
 * eaglet has. Each step reports what it made. A demo with a held-out split is measured on it:
 * eval metrics (with the bigram baseline) and the benchmark's prompts come from conversations
 * the draft never trained on.
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

  step(`1. the demo target: ${demo.description}; built once and cached`);
  const build = await demoModel(target, ctx);
  const model = build.dir;
  ctx.events?.({ type: 'artifact', kind: 'model', path: model });
  const datasets = build.result.datasets;
  const trainDatasets = (datasets?.train ?? []).map((f) => join(model, f));
  const heldOut = datasets ? join(model, datasets.heldOut) : undefined;

  step(`2. the ${target.id} demo's conversations, in the seed format`);
  const dataset: DemoDataset = writeDemoDataset(demo, join(dir, 'data'));
  step(`  ${dataset.about}`);
  for (const path of [dataset.jsonl, ...trainDatasets])
    ctx.events?.({ type: 'artifact', kind: 'dataset', path });
  if (heldOut) step(`  held out (eval and benchmark prompts, never trained on): ${heldOut}`);
  const trainFiles = [dataset.jsonl, ...trainDatasets];

  step('3. validate the datasets');
  const validation = await validateData(
    registry,
    { files: [...trainFiles, ...(heldOut ? [heldOut] : [])] },
    ctx,
  );
  if (!validation.ok) {
    throw new EagletError(
      'EAGLET_QUICKSTART',
      `the quickstart dataset is invalid: ${validation.problems[0]?.reason}`,
    );
  }

  step('4. prepare: decode audio, render the chat template, tokenize, mask, write Arrow shards');
  const prepareInto = (data: string[], out: string) =>
    prepareData(registry, { target: target.id, model, data, out: join(dir, out), shardSize: 64 }, ctx);
  const prepared = await prepareInto(trainFiles, 'prepared');

  step(
    '5. regenerate: the target answers every user turn again through the embedded OpenAI-compatible server',
  );
  const answered = await regenerateAll(registry, target, model, dir, trainFiles, heldOut, ctx);
  const regenerated = answered.train;
  if (regenerated.rejected) {
    ctx.events?.({
      type: 'log',
      level: 'info',
      message: `  ${regenerated.rejected} record(s) in ${regenerated.rejectsFile}${dataset.longSeconds ? ` (the ${dataset.longSeconds.toFixed(0)} s recording: the server hears ${target.audio?.maxSeconds ?? '?'} s at most; prepare segments it)` : ''}`,
    });
  }

  step('6. prepare the regenerated answers too');
  const preparedRegenerated = await prepareInto(regenerated.shards, 'prepared-regenerated');
  const preparedHeldOut = answered.heldOut
    ? await prepareInto(answered.heldOut.shards, 'prepared-held-out')
    : undefined;

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
  step(
    `8. train an Eagle3 draft for ${steps} steps on CPU (online: the frozen target runs inside the job)${preparedHeldOut ? ', evaluated on the held-out split' : ''}`,
  );
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
          ...(preparedHeldOut ? { evalData: [preparedHeldOut.out] } : {}),
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
  const testData = heldOut ?? regenerated.shards[0];
  if (!testData) throw new EagletError('EAGLET_QUICKSTART', 'regenerate wrote no answers to benchmark on');
  const prompts = heldOut ? HELD_OUT_BENCH : DEMO_DATA_BENCH;
  step(
    `9. bench: baseline vs Eagle3 (${n} draft tokens) on the embedded backend, temperature 0, ${prompts.numPrompts} ${heldOut ? 'held-out ' : ''}prompts`,
  );
  const benchOutcome = await bench(
    registry,
    {
      backend: EMBEDDED,
      target: target.id,
      targetModel: model,
      draftModel: draft,
      testDataPath: testData,
      outputFile: join(dir, 'bench', 'report.json'),
      ...prompts,
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
    trainDatasets,
    ...(heldOut ? { heldOutDataset: heldOut } : {}),
    validation,
    model,
    build: build.result,
    prepared,
    regenerated,
    preparedRegenerated,
    ...(preparedHeldOut ? { preparedHeldOut } : {}),
    vocab,
    draft,
    train: trained,
    bench: benchOutcome,
  };
}

/**
 * The target's own answers, through one embedded server: to the training conversations (into
 * `regenerated/`) and to the held-out ones (into `regenerated-held-out/`).
 */
async function regenerateAll(
  registry: PluginRegistry,
  target: TargetModel,
  model: string,
  dir: string,
  trainFiles: string[],
  heldOut: string | undefined,
  ctx: { events?: EventSink; signal?: AbortSignal },
): Promise<{ train: RegenerateReport; heldOut?: RegenerateReport }> {
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
  try {
    ctx.events?.({
      type: 'log',
      level: 'info',
      message: `  serving ${server.model} at ${server.urls.join(', ')}`,
    });
    const answer = (data: string[], outputDir: string) =>
      regenerate(
        registry,
        {
          data,
          outputDir: join(dir, outputDir),
          endpoints: [...server.urls],
          model: server.model,
          concurrency: 2,
          maxTokens: 48,
          temperature: 0,
          shardSize: 1000,
        },
        ctx,
      );
    const train = await answer(trainFiles, 'regenerated');
    return heldOut ? { train, heldOut: await answer([heldOut], 'regenerated-held-out') } : { train };
  } finally {
    await server.stop();
  }
}
