import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  checkAuxLayerIds,
  DraftConfig,
  type DraftConfigInput,
  EagletError,
  ExportConfig,
  type ExportConfigInput,
  ExportEngineResult,
  engineTarget,
  loadRunConfig,
  type NodeLaunch,
  nodeLaunch,
  type PluginRegistry,
  PREPARED_FILES,
  resolveTarget,
  type TargetInfo,
  type TargetModel,
  TrainConfig,
  type TrainConfigInput,
  TrainEngineConfig,
  TrainEngineResult,
} from '@eaglet/core';
import { runEngine } from '@eaglet/engine';
import { makeOutputFolder, type OutputFolder } from './output-folder.js';
import { claimTrainOutput } from './train-output.js';
import type { FlowContext } from './validate.js';

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
 * engine's `train` command (under torchrun for `nprocPerNode` > 1). Events stream to `ctx.events`;
 * an abort stops the engine after its current step with a checkpoint (`stopped: true`). The
 * outputDir is locked for the run, and one holding an earlier run needs `resume` or `overwrite`
 * (claimTrainOutput).
 */
export async function train(
  registry: PluginRegistry,
  options: TrainOptions,
  ctx: FlowContext & { signal?: AbortSignal } = {},
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
  const { config, pythonPath } = await resolveTrainConfig(registry, base);
  const nodes = nodeLaunch(base);
  const outputDir = resolve(config.outputDir);
  // Node 0 holds rank 0, the one that writes outputDir: it alone checks and locks the folder.
  const output: OutputFolder =
    nodes && nodes.nodeRank > 0
      ? { dir: outputDir, created: makeOutputFolder(outputDir), share: () => {}, release: () => {} }
      : claimTrainOutput(outputDir, config);
  try {
    return await trainInto(output, config, pythonPath, nodes, options, ctx);
  } finally {
    output.release();
  }
}

async function trainInto(
  output: OutputFolder,
  config: TrainEngineConfig,
  pythonPath: string[],
  nodes: NodeLaunch | undefined,
  options: TrainOptions,
  ctx: FlowContext,
): Promise<TrainResult> {
  const outputDir = output.dir;
  writeFileSync(join(outputDir, 'train-config.json'), `${JSON.stringify(config, null, 2)}\n`);

  let done: { stopped: boolean; result?: unknown } | undefined;
  const onEvent: FlowContext['events'] = (event) => {
    if (event.type === 'done') done = event;
    ctx.events?.(event);
  };
  let logFile = join(outputDir, 'engine.log');
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
  config: TrainConfig,
): Promise<{ config: TrainEngineConfig; pythonPath: string[] }> {
  const target = resolveTarget(registry, config.target, config.targetModel);
  const info = await target.inspect(config.targetModel);
  for (const folder of [...config.trainData, ...config.evalData]) {
    if (!existsSync(join(folder, PREPARED_FILES.manifest)))
      throw new EagletError('EAGLET_DATA_INVALID', `${folder} is not a prepared dataset (no manifest.json)`, {
        hint: 'make it with `eaglet data prepare`',
      });
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
      target: engineTarget(target, info, targetModel, draftConfig.eagle_aux_hidden_state_layer_ids),
      chatTemplate: config.chatTemplate ?? target.chatTemplate,
      draftConfig,
    }),
    pythonPath: target.enginePath ? [target.enginePath] : [],
  };
}

/**
 * The draft architecture, resolved in this one place: the target plugin's defaults for the
 * checkpoint, then the user's draftConfig fields, then the sizes the vocabulary mapping fixes,
 * then the aux layer ids (the user's, else the target's rule) and the target's width where it
 * differs from the draft's. A user field that contradicts the mapping or the target is refused.
 */
export function resolveDraftConfig(
  target: TargetModel,
  info: TargetInfo,
  options: {
    given?: Partial<DraftConfigInput>;
    vocab?: { draftVocabSize: number; vocabSize: number; source: string };
  } = {},
): DraftConfig {
  const given = options.given ?? {};
  const vocab = options.vocab;
  if (vocab) {
    for (const [key, value] of [
      ['draft_vocab_size', vocab.draftVocabSize],
      ['vocab_size', vocab.vocabSize],
    ] as const) {
      if (given[key] !== undefined && given[key] !== value)
        throw new EagletError(
          'EAGLET_CONFIG_INVALID',
          `draftConfig.${key} is ${given[key]} but ${vocab.source} holds a mapping of ${value}`,
          { hint: `drop ${key} from draftConfig (the mapping decides it) or rebuild the mapping` },
        );
    }
  }
  if (given.target_hidden_size !== undefined && given.target_hidden_size !== info.hiddenSize)
    throw new EagletError(
      'EAGLET_CONFIG_INVALID',
      `draftConfig.target_hidden_size is ${given.target_hidden_size} but the target's hidden size is ${info.hiddenSize}`,
      { hint: 'drop target_hidden_size from draftConfig (the target decides it)' },
    );
  const auxLayerIds = checkAuxLayerIds(
    given.eagle_aux_hidden_state_layer_ids ?? info.auxLayerIds,
    info.numLayers,
    'draftConfig.eagle_aux_hidden_state_layer_ids',
  );
  const merged = DraftConfig.safeParse({
    ...target.draftDefaults(info),
    ...given,
    ...(vocab ? { draft_vocab_size: vocab.draftVocabSize, vocab_size: vocab.vocabSize } : {}),
    eagle_aux_hidden_state_layer_ids: auxLayerIds,
  });
  if (!merged.success)
    throw new EagletError(
      'EAGLET_CONFIG_INVALID',
      `invalid draftConfig: ${merged.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const draft = merged.data;
  const { target_hidden_size: _, ...rest } = draft;
  return info.hiddenSize === draft.hidden_size ? rest : { ...rest, target_hidden_size: info.hiddenSize };
}

function readDraftConfig(value: TrainConfig['draftConfig']): Partial<DraftConfigInput> {
  if (value === undefined) return {};
  if (typeof value !== 'string') return value;
  if (!existsSync(value))
    throw new EagletError('EAGLET_CONFIG_INVALID', `draftConfig: ${value} does not exist`);
  try {
    const body = JSON.parse(readFileSync(value, 'utf8')) as Record<string, unknown>;
    // A Hugging Face config.json carries fields eaglet does not model; keep the draft's own.
    const known = Object.keys(DraftConfig.shape);
    return Object.fromEntries(
      Object.entries(body).filter(([k]) => known.includes(k)),
    ) as Partial<DraftConfigInput>;
  } catch (e) {
    throw new EagletError(
      'EAGLET_CONFIG_INVALID',
      `draftConfig: ${value} is not valid JSON: ${(e as Error).message}`,
    );
  }
}

/** Sizes of a vocab mapping from its safetensors header (no tensor is read). */
export function readVocabShapes(path: string): { draftVocabSize: number; vocabSize: number; hash?: string } {
  if (!existsSync(path))
    throw new EagletError('EAGLET_VOCAB_INVALID', `vocab file ${path} does not exist`, {
      hint: 'build it with `eaglet data vocab`',
    });
  const fd = openSync(path, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE());
    if (n <= 0 || n > 1 << 24) throw new Error('bad header length');
    const header = Buffer.alloc(n);
    readSync(fd, header, 0, n, 8);
    const body = JSON.parse(header.toString('utf8')) as Record<string, { shape?: number[] }> & {
      __metadata__?: Record<string, string>;
    };
    const d2t = body.d2t?.shape;
    const t2d = body.t2d?.shape;
    if (!d2t || !t2d) throw new Error('no d2t/t2d tensors');
    return {
      draftVocabSize: d2t[0]!,
      vocabSize: t2d[0]!,
      ...(body.__metadata__?.hash ? { hash: body.__metadata__.hash } : {}),
    };
  } catch (e) {
    throw new EagletError(
      'EAGLET_VOCAB_INVALID',
      `${path} is not a vocab mapping file: ${(e as Error).message}`,
    );
  } finally {
    closeSync(fd);
  }
}

export type ExportResult = ExportEngineResult;

/** `eaglet export`: a training checkpoint (or an output folder's newest) -> exported draft folder(s). */
export async function exportDraft(
  input: ExportConfigInput & { cwd?: string; python?: string },
  ctx: FlowContext = {},
): Promise<ExportResult> {
  const { cwd, python, ...fields } = input;
  const config = loadRunConfig(ExportConfig, { fields, cwd: cwd ?? process.cwd() });
  if (!existsSync(config.checkpoint))
    throw new EagletError('EAGLET_CHECKPOINT_INVALID', `${config.checkpoint} does not exist`);
  const { done } = await runEngine({
    command: 'export',
    config,
    ...(python ? { python } : {}),
    ...(ctx.events ? { onEvent: ctx.events } : {}),
  });
  const parsed = ExportEngineResult.safeParse(done.result);
  if (!parsed.success)
    throw new EagletError(
      'EAGLET_ENGINE_PROTOCOL',
      `engine export returned an unexpected result: ${parsed.error.message}`,
    );
  return parsed.data;
}
