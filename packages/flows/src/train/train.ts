import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  CAPTURE_FILES,
  EagletError,
  engineTarget,
  loadRunConfig,
  type NodeLaunch,
  nodeLaunch,
  type PluginRegistry,
  resolveTarget,
  TrainConfig,
  type TrainConfigInput,
  TrainEngineConfig,
  TrainEngineResult,
} from '@eaglet/core';
import { runEngine } from '@eaglet/engine';
import type { FlowContext } from '../context.js';
import { dataFolderKind } from '../data/capture.js';
import { modelSource } from '../data/sources.js';
import { readVocabShapes } from '../data/vocab.js';
import { makeOutputFolder, type OutputFolder } from '../util/output-folder.js';
import { readDraftConfig, resolveDraftConfig } from './draft-config.js';
import { claimTrainOutput } from './train-output.js';

export interface TrainOptions {
  /** Train config file (JSON). Relative paths in it resolve against its folder. */
  file?: string;
  /** `key.path=value` overrides, applied after the file. */
  overrides?: readonly string[];
  /** Fields set directly (e.g. from command-line flags); relative paths resolve against `cwd`. */
  fields?: Partial<TrainConfigInput>;
  /** Continue from the newest checkpoint in the output folder. */
  resume?: boolean;
  /** Delete an earlier run in the output folder first (without it or `resume`, such a folder is refused). */
  overwrite?: boolean;
  cwd?: string;
  /** Engine Python (default: the environment bootstrap made). */
  python?: string;
}

export interface TrainResult extends TrainEngineResult {
  /** The resolved config the engine ran with (also written to `outputDir/train-config.json`). */
  config: TrainEngineConfig;
  /** One JSON line per logged step: train and eval metrics (acc_i, ploss_i, loss, tokens/s). */
  metrics: string;
  /** Loss and acc_i curves (PNG), when plotting is on. */
  plot?: string;
  /** The engine's stderr. */
  logFile: string;
}

/**
 * `eaglet train`: validates the config, resolves what the target plugin supplies (the engine's
 * target block, the full draft architecture, the chat template), checks the inputs, and runs the
 * engine's `train` command (under torchrun for `nprocPerNode` > 1): online from prepared folders,
 * offline from capture folders (the engine refuses a mix, and captures of another target). Events
 * stream to `ctx.events`; an abort stops the engine after its current step with a checkpoint
 * (`stopped: true`). The outputDir is locked for the run, and one holding an earlier run needs
 * `resume` or `overwrite` (claimTrainOutput).
 */
export async function train(
  registry: PluginRegistry,
  options: TrainOptions,
  ctx: FlowContext = {},
): Promise<TrainResult> {
  const cwd = options.cwd ?? process.cwd();
  const fields: Record<string, unknown> = { ...options.fields };
  if (options.resume) fields.resume = true;
  if (options.overwrite) fields.overwrite = true;
  const base = loadRunConfig(TrainConfig, {
    ...(options.file ? { file: options.file } : {}),
    overrides: options.overrides ?? [],
    fields,
    cwd,
  });
  const { config, pythonPath } = await resolveTrainConfig(registry, base, ctx);
  const nodes = nodeLaunch(base);
  const outputDir = resolve(config.outputDir);
  // Node 0 holds rank 0, the one that writes outputDir: it alone checks, locks and writes the
  // folder. The other nodes only make sure it exists and write nothing there (on a shared filesystem
  // a file of theirs would race node 0's check of the folder); their engine log stays in a
  // temporary folder of their own.
  const owner = !nodes || nodes.nodeRank === 0;
  const output: OutputFolder = owner
    ? claimTrainOutput(outputDir, config)
    : { dir: outputDir, created: makeOutputFolder(outputDir), share: () => {}, release: () => {} };
  try {
    return await trainInto(output, owner, config, pythonPath, nodes, options, ctx);
  } finally {
    output.release();
  }
}

async function trainInto(
  output: OutputFolder,
  owner: boolean,
  config: TrainEngineConfig,
  pythonPath: string[],
  nodes: NodeLaunch | undefined,
  options: TrainOptions,
  ctx: FlowContext,
): Promise<TrainResult> {
  const outputDir = output.dir;
  if (owner) writeFileSync(join(outputDir, 'train-config.json'), `${JSON.stringify(config, null, 2)}\n`);

  let done: { stopped: boolean; result?: unknown } | undefined;
  const onEvent: FlowContext['events'] = (event) => {
    if (event.type === 'done') done = event;
    ctx.events?.(event);
  };
  let logFile = owner
    ? join(outputDir, 'engine.log')
    : join(mkdtempSync(join(tmpdir(), 'eaglet-train-')), `engine-node-${nodes?.nodeRank}.log`);
  try {
    const run = await runEngine({
      command: 'train',
      config,
      nprocPerNode: config.nprocPerNode,
      ...(nodes ? { nodes } : {}),
      pythonPath,
      onEvent,
      onSpawn: (pid) => output.share(pid),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(options.python ? { python: options.python } : {}),
      logFile,
      // A checkpoint of a large draft takes a while to write: give a stop time to finish it.
      stopGraceSeconds: 900,
      env: { TORCH_ELASTIC_SHUTDOWN_TIMEOUT: '900' },
    });
    logFile = run.logFile;
    done = run.done;
  } catch (e) {
    // Under torchrun, a stop ends the launcher with a signal exit code after the ranks finished
    // cleanly: the `done {stopped}` event is what counts.
    if (!(done?.stopped && ctx.signal?.aborted)) throw e;
  }
  const parsed = TrainEngineResult.safeParse(done?.result);
  if (!parsed.success) {
    throw new EagletError(
      'EAGLET_ENGINE_PROTOCOL',
      `engine train returned an unexpected result: ${parsed.error.message}`,
    );
  }
  const plot = join(outputDir, 'curves.png');
  return {
    ...parsed.data,
    config,
    metrics: join(outputDir, 'metrics.jsonl'),
    ...(existsSync(plot) ? { plot } : {}),
    logFile,
  };
}

/**
 * Resolves the user's config into what the engine receives: the target plugin (named, or found by
 * the checkpoint's architecture) becomes the engine's target block, the chat template is the
 * target's unless the config names one (the data must have been prepared with it), and the draft
 * architecture is resolved in full (`resolveDraftConfig`). Checks the inputs exist before any
 * Python starts.
 */
export async function resolveTrainConfig(
  registry: PluginRegistry,
  given: TrainConfig,
  ctx: FlowContext = {},
): Promise<{ config: TrainEngineConfig; pythonPath: string[] }> {
  // Hub ids become the snapshot folders they resolve to; the target block keeps the commit.
  const model = await modelSource(given.targetModel, ctx, 'targetModel');
  const warmStart = given.warmStart ? (await modelSource(given.warmStart, ctx, 'warmStart')).path : undefined;
  const config = { ...given, targetModel: model.path, ...(warmStart ? { warmStart } : {}) };
  const target = resolveTarget(registry, config.target, config.targetModel);
  const info = await target.inspect(config.targetModel);
  // Prepared folders train online; capture folders (`eaglet data capture`) offline.
  for (const folder of [...config.trainData, ...config.evalData]) {
    if (!dataFolderKind(folder))
      throw new EagletError(
        'EAGLET_DATA_INVALID',
        `${folder} is not a prepared dataset (no manifest.json) nor a capture (no capture.json)`,
        {
          hint: existsSync(join(folder, CAPTURE_FILES.progress))
            ? 'its `eaglet data capture` run did not finish: rerun it to resume'
            : 'make it with `eaglet data prepare` (and `eaglet data capture` to train offline)',
        },
      );
  }
  const vocab = readVocabShapes(config.vocab);
  if (vocab.vocabSize !== info.vocabSize)
    throw new EagletError(
      'EAGLET_VOCAB_INVALID',
      `${config.vocab} maps a vocabulary of ${vocab.vocabSize} ids, the target ${config.targetModel} has ${info.vocabSize}`,
      { hint: 'build the mapping from data prepared for this model with `eaglet data vocab`' },
    );
  const draftConfig = resolveDraftConfig(target, info, {
    given: readDraftConfig(config.draftConfig),
    vocab: { ...vocab, source: config.vocab },
  });
  if (config.chatTemplate !== undefined) registry.template(config.chatTemplate);
  const { target: _id, targetModel, draftConfig: _given, ...rest } = config;
  return {
    config: TrainEngineConfig.parse({
      ...rest,
      target: engineTarget(
        target,
        info,
        targetModel,
        draftConfig.eagle_aux_hidden_state_layer_ids,
        model.hub,
      ),
      chatTemplate: config.chatTemplate ?? target.chatTemplate,
      draftConfig,
    }),
    pythonPath: target.enginePath ? [target.enginePath] : [],
  };
}
