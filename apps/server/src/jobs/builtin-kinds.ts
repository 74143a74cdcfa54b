import {
  type Backend,
  BenchConfig,
  BenchReport,
  type FieldIssue,
  PathString,
  type PluginRegistry,
  PrepareConfig,
  PreparedManifest,
  pathFields,
  QuickstartConfig,
  RegenerateConfig,
  TrainConfig,
  TrainEngineResult,
  ValidationReport,
  VocabConfig,
} from '@eaglet/core';
import {
  backendOptionIssues,
  bench,
  buildVocab,
  prepareData,
  quickstart,
  regenerate,
  resolveBackend,
  train,
  validateData,
} from '@eaglet/flows';
import { z } from 'zod';
import { defineJobKind, type JobKind } from './kind.js';

/**
 * `validate`: the config of `eaglet data validate` (its flags, as fields). The flow's own options
 * type is a TS interface; passing the parsed config to `validateData` below is what keeps the two
 * in step (the compiler refuses a mismatch).
 */
export const ValidateJobConfig = z.strictObject({
  /** jsonl files to check. */
  files: z.array(PathString).min(1, 'give at least one jsonl file'),
  /** A format name, or `auto` to detect it per file. */
  format: z.string().min(1).default('auto'),
  /** `train`: every record needs an assistant reply; `regenerate`: replies are optional. */
  purpose: z.enum(['train', 'regenerate']).default('train'),
  /** Check every audio file: decoded to its end (an allowed container, readable, not truncated). */
  checkAudio: z.boolean().default(true),
});

export const validateKind = defineJobKind({
  kind: 'validate',
  title: 'Validate data',
  description:
    'Checks jsonl files: every invalid record (file, line, field, reason), missing or unreadable audio, and a summary. Same flow as `eaglet data validate`.',
  resource: 'light',
  config: ValidateJobConfig,
  result: ValidationReport,
  example: () => ({
    files: ['data/train.jsonl'],
    format: 'auto',
    purpose: 'train' as const,
    checkAudio: true,
  }),
  check(config, registry) {
    const issues: FieldIssue[] = [];
    const known = registry.ids('format');
    if (config.format !== 'auto' && !known.includes(config.format))
      issues.push({
        path: 'format',
        reason: `unknown format "${config.format}" (known: auto, ${known.join(', ')})`,
      });
    return issues;
  },
  run: ({ registry, config, events, signal, audioAccess }) =>
    validateData(registry, config, { events, signal, audioAccess }),
});

export const quickstartKind = defineJobKind({
  kind: 'quickstart',
  title: 'Quickstart',
  description:
    'The whole pipeline on CPU in minutes, as `eaglet quickstart` runs it: real speech, a tiny target model, prepare, regenerate with the target, vocab, train a draft (live curves), bench baseline vs Eagle3.',
  resource: 'heavy',
  config: QuickstartConfig,
  example: () => ({ dir: 'eaglet-quickstart', trainSteps: 300 }),
  run: ({ registry, config, events, signal }) => quickstart(registry, config, { events, signal }),
});

export const prepareKind = defineJobKind({
  kind: 'prepare',
  title: 'Prepare data',
  description:
    'jsonl conversations -> Arrow shards the engine trains on, with manifest.json and rejects.jsonl (every record is written or rejected with its reason). Same flow as `eaglet data prepare`; a rerun resumes.',
  resource: 'heavy',
  config: PrepareConfig,
  // The manifest is the contract with the engine; the rest of the result is the flow's summary.
  result: z.looseObject({ out: z.string(), manifest: PreparedManifest }),
  example: () => ({
    model: 'models/my-target-model',
    data: ['data/train.jsonl'],
    out: 'prepared/train',
  }),
  check: (config, registry) =>
    knownIds(registry, {
      target: config.target,
      format: config.format,
      ...(config.chatTemplate ? { chatTemplate: config.chatTemplate } : {}),
    }),
  run: ({ registry, config, events, signal, audioAccess }) =>
    prepareData(registry, config, { events, signal, audioAccess }),
});

export const vocabKind = defineJobKind({
  kind: 'vocab',
  title: 'Build the draft vocabulary',
  description:
    'Token frequencies over the loss-masked tokens of prepared data -> the d2t/t2d mapping (safetensors). Same flow as `eaglet data vocab`.',
  resource: 'light',
  config: VocabConfig,
  example: () => ({ data: ['prepared/train'], out: 'prepared/vocab.safetensors', draftVocabSize: 32000 }),
  run: ({ config, events, signal }) => buildVocab(config, { events, signal }),
});

export const trainKind = defineJobKind({
  kind: 'train',
  title: 'Train an Eagle3 draft',
  description:
    'Online training on prepared data with the frozen target: checkpoints, metrics (loss, acc_i, ploss_i) as live curves, an exported draft vLLM loads. Same flow as `eaglet train`; cancel checkpoints and stops, `resume: true` (or a retry of the job) continues; an outputDir holding another run needs `resume` or `overwrite`.',
  resource: 'heavy',
  config: TrainConfig,
  result: TrainEngineResult.extend({ metrics: z.string(), plot: z.string().optional() }).loose(),
  example: () => ({
    targetModel: 'models/my-target-model',
    trainData: ['prepared/train'],
    vocab: 'prepared/vocab.safetensors',
    outputDir: 'train',
    maxSteps: 300,
  }),
  // The engine imports only the adapter a registered target declares: a config cannot name another.
  check: (config, registry) =>
    knownIds(registry, {
      target: config.target,
      ...(config.chatTemplate ? { chatTemplate: config.chatTemplate } : {}),
    }),
  // A retry continues the interrupted or failed run in outputDir (never deletes it again).
  retryConfig: (config) => ({ ...config, resume: true, overwrite: false }),
  run: ({ registry, config, events, signal, dir }) =>
    train(registry, { fields: config, cwd: dir }, { events, signal }),
});

export const regenerateKind = defineJobKind({
  kind: 'regenerate',
  title: 'Regenerate answers',
  description:
    'Answers the user turns again with the target through OpenAI-compatible endpoints (vLLM, or `eaglet backend serve`); sharded output, resumable, failures in rejects.jsonl. Same flow as `eaglet data regenerate`.',
  resource: 'light',
  config: RegenerateConfig,
  example: () => ({ data: ['data/train.jsonl'], outputDir: 'regenerated', basePort: 6000, numEndpoints: 1 }),
  check: (config, registry) => knownIds(registry, { format: config.format }),
  run: ({ registry, config, events, signal, audioAccess }) =>
    regenerate(registry, config, { events, signal, audioAccess }),
});

export const benchKind = defineJobKind({
  kind: 'bench',
  title: 'Benchmark baseline vs Eagle3',
  description:
    "Baseline and Eagle3 decoding on the same prompts in alternating rounds: throughput, latency, each round's speedup and their mean with a 95% interval, acceptance per draft position, whether outputs match at temperature 0, and whether the measurement is trustworthy. Same flow as `eaglet bench`; writes JSON, Markdown and a plot.",
  resource: 'heavy',
  config: BenchConfig,
  result: z.looseObject({ report: BenchReport }),
  example: () => ({
    targetModel: 'models/my-target-model',
    draftModel: 'train/draft',
    testDataPath: 'data/test.jsonl',
    outputFile: 'bench/report.json',
    numPrompts: 10,
  }),
  // A backend's options may name files too (vLLM's `vllmPython`, a program the job would run).
  pluginPathFields: (config, registry) => {
    const backend = chosenBackend(registry, config.backend);
    return backend?.optionsSchema
      ? pathFields(backend.optionsSchema, config.backendOptions, ['backendOptions'])
      : [];
  },
  check: (config, registry) => {
    const issues = knownIds(registry, {
      backend: config.backend,
      target: config.target,
      format: config.format,
    });
    const backend = chosenBackend(registry, config.backend);
    if (!backend && !config.backend) issues.push({ path: 'backend', reason: 'no backend is registered' });
    return backend ? [...issues, ...backendOptionIssues(backend, config.backendOptions)] : issues;
  },
  run: ({ registry, config, events, signal, audioAccess }) =>
    bench(registry, config, { events, signal, audioAccess }),
});

/** The backend a bench runs on (the one named, or the default); undefined when there is none (check says why). */
function chosenBackend(registry: PluginRegistry, id: string | undefined): Backend | undefined {
  try {
    return resolveBackend(registry, id);
  } catch {
    return undefined;
  }
}

const KIND_OF = { format: 'format', target: 'target', chatTemplate: 'template', backend: 'backend' } as const;

/** Plugin ids a config names (format, target, template, backend) must be registered; `auto` is a format too. */
function knownIds(
  registry: PluginRegistry,
  ids: Partial<Record<keyof typeof KIND_OF, string | undefined>>,
): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const [field, id] of Object.entries(ids) as Array<[keyof typeof KIND_OF, string | undefined]>) {
    const known = registry.ids(KIND_OF[field]);
    // An absent target is found by the checkpoint's architecture when the job runs.
    if (id === undefined || (field === 'format' && id === 'auto')) continue;
    if (!known.includes(id))
      issues.push({
        path: field,
        reason: `unknown ${field} "${id}" (known: ${[...(field === 'format' ? ['auto'] : []), ...known].join(', ') || 'none registered'})`,
      });
  }
  return issues;
}

/** Every job kind the server offers, in the order the dashboard lists them. */
export const BUILTIN_JOB_KINDS: ReadonlyArray<JobKind> = [
  validateKind,
  prepareKind,
  vocabKind,
  trainKind,
  regenerateKind,
  benchKind,
  quickstartKind,
] as JobKind[];
