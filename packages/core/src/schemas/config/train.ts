import { z } from 'zod';
import { DraftConfig } from '../draft.js';
import { Device, PathString, Seed } from './common.js';

/**
 * Draft config fields given by the user: DraftConfig's fields, each optional and without its
 * default (the target plugin's `draftDefaults` supplies the rest; `eaglet train` merges them).
 */
export const DraftConfigOverrides = z.strictObject(
  Object.fromEntries(
    Object.entries(DraftConfig.shape).map(([key, schema]) => [
      key,
      (schema instanceof z.ZodDefault ? (schema.unwrap() as z.ZodType) : (schema as z.ZodType)).optional(),
    ]),
  ) as {
    [K in keyof typeof DraftConfig.shape]: z.ZodOptional<z.ZodType<z.output<(typeof DraftConfig.shape)[K]>>>;
  },
);

export const LrSchedule = z.strictObject({
  kind: z.enum(['constant', 'cosine']).default('constant'),
  warmupSteps: z.number().int().nonnegative().default(0),
  /** Floor of the cosine schedule as a fraction of `lr`. */
  minLrRatio: z.number().min(0).max(1).default(0),
});

export const Optimizer = z.strictObject({
  lr: z.number().positive().default(1e-4),
  weightDecay: z.number().nonnegative().default(0),
  /** The reference trains with Hugging Face Trainer's AdamW defaults (0.9, 0.999). */
  betas: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0.9, 0.999]),
  eps: z.number().positive().default(1e-8),
  /** Gradient-norm clip; 0 disables. */
  gradClip: z.number().nonnegative().default(1.0),
});

export const Batching = z.strictObject({
  /** Token budget per micro-batch (length-aware batching packs records up to this). */
  maxTokens: z.number().int().positive().default(4096),
  /** Upper bound on records per micro-batch. */
  maxRecords: z.number().int().positive().default(1),
  gradAccumulation: z.number().int().positive().default(1),
});

export const Ttt = z.strictObject({
  /** Training-time-test unroll length. */
  steps: z.number().int().positive().default(7),
  /** Loss weight of step i is decay^i. */
  lossDecay: z.number().positive().max(1).default(0.8),
  /**
   * Attention kernel of the unrolled steps: `flash` (flash attention + per-position terms merged by
   * log-sum-exp, O(length) memory) or `eager` (the reference: materialised scores, for checking).
   */
  attention: z.enum(['flash', 'eager']).default('flash'),
});

/** Where the trained draft goes at the end of training (and what `eaglet export` writes). */
export const ExportFormat = z.enum(['vllm', 'speculators']);
export const ExportSpec = z.strictObject({
  /** `vllm`: config.json + model.safetensors as vLLM's Eagle3 loader reads; `speculators`: vLLM's auto-detected speculators layout. */
  formats: z.array(ExportFormat).min(1).default(['vllm']),
  /** Draft tokens per step written into the speculators config (vLLM's default num_speculative_tokens). */
  speculativeTokens: z.number().int().positive().default(3),
});

/**
 * `eaglet train`: the validated config the engine receives. Fields marked `seed:` are the
 * parameters of the user's original training script.
 */
export const TrainConfig = z.strictObject({
  /** Target plugin id. */
  target: z.string().min(1).default('qwen2-audio'),
  /**
   * Python module of the engine-side target adapter (`load_target(...)`). Filled from the target
   * plugin's `engineAdapter` by `eaglet train`; set it only to use another adapter.
   */
  targetAdapter: z.string().min(1).optional(),
  /** seed: TARGET_MODEL_NAME_OR_PATH (a local folder; hubs are not reached). */
  targetModel: PathString,
  /** seed: DRAFT_MODEL_CONFIG_PATH. A config.json path, or fields that override the target's draft defaults. */
  draftConfig: z.union([PathString, DraftConfigOverrides]).optional(),
  /** seed: TRAIN_DATA_PATH. Prepared dataset folders. */
  trainData: z.array(PathString).min(1),
  /** seed: EVAL_DATA_PATH. Prepared dataset folders held out for acc_i / ploss_i. */
  evalData: z.array(PathString).default([]),
  /** seed: OUTPUT_DIR. Checkpoints, metrics.jsonl, exported draft. */
  outputDir: PathString,
  /** seed: MODEL_MAX_LENGTH. Longer records are cut (prepare already enforced its own policy). */
  maxLength: z.number().int().positive().default(4096),
  /** seed: CHAT_TEMPLATE_TYPE. Must equal the template the data was prepared with. */
  chatTemplate: z.string().optional(),
  /** Draft vocabulary mapping from `eaglet data vocab` (safetensors). */
  vocab: PathString,
  ttt: Ttt.prefault({}),
  optimizer: Optimizer.prefault({}),
  schedule: LrSchedule.prefault({}),
  batching: Batching.prefault({}),
  epochs: z.number().int().positive().default(20),
  /** Stop after this many optimizer steps (overrides epochs when smaller). */
  maxSteps: z.number().int().positive().optional(),
  logEvery: z.number().int().positive().default(10),
  evalEvery: z.number().int().nonnegative().default(0),
  saveEvery: z.number().int().nonnegative().default(0),
  keepCheckpoints: z.number().int().positive().default(2),
  precision: z.enum(['bf16', 'fp32']).default('bf16'),
  /**
   * Fuse elementwise work (norms, rope, activations, the loss's softmax) with torch.compile:
   * `auto` on GPUs, `on` everywhere (CPU needs a C++ compiler), `off` never. The first steps
   * pay the compilation; shapes are dynamic, so new sequence lengths do not recompile.
   */
  compile: z.enum(['auto', 'on', 'off']).default('auto'),
  device: Device.default('auto'),
  /** GPUs on this node; more than 1 launches torchrun. */
  nprocPerNode: z.number().int().positive().default(1),
  parallel: z.enum(['ddp', 'fsdp']).default('ddp'),
  /**
   * `true`: continue from the latest checkpoint in outputDir; a path: that checkpoint. An outputDir
   * that holds an earlier run is refused unless `resume` or `overwrite` is set.
   */
  resume: z.union([z.boolean(), PathString]).default(false),
  /** Delete an earlier run in outputDir before training (its checkpoints, metrics and draft). */
  overwrite: z.boolean().default(false),
  /** Initialise the draft from an exported draft folder (its vocab mapping must match). */
  warmStart: PathString.optional(),
  export: ExportSpec.prefault({}),
  /** Write `curves.png` (loss and acc_i per step) beside metrics.jsonl. */
  plot: z.boolean().default(true),
  seed: Seed,
});
export type TrainConfig = z.infer<typeof TrainConfig>;
export type TrainConfigInput = z.input<typeof TrainConfig>;

/** `eaglet export`: a training checkpoint -> exported draft folder(s). */
export const ExportConfig = z.strictObject({
  /** A checkpoint folder, or a training output folder (its newest checkpoint is used). */
  checkpoint: PathString,
  /** Where the draft goes (one folder per format when several are asked for). */
  outputDir: PathString,
  formats: z.array(ExportFormat).min(1).default(['vllm']),
  speculativeTokens: z.number().int().positive().default(3),
  /** The verifier named in a speculators config (default: the training run's targetModel). */
  targetModel: PathString.optional(),
});
export type ExportConfig = z.infer<typeof ExportConfig>;
export type ExportConfigInput = z.input<typeof ExportConfig>;

/** What the engine's `train` command returns in its `done` event. */
export const TrainEngineResult = z.object({
  steps: z.number().int(),
  totalSteps: z.number().int(),
  outputDir: z.string(),
  stopped: z.boolean(),
  /** Exported draft folders by format (absent when the run stopped early). */
  draft: z.record(z.string(), z.string()).optional(),
  /** Final acc_i / ploss_i on the eval split, when there is one. */
  eval: z.record(z.string(), z.number()).optional(),
});
export type TrainEngineResult = z.infer<typeof TrainEngineResult>;

/** What the engine's `export` command returns in its `done` event. */
export const ExportEngineResult = z.object({
  checkpoint: z.string(),
  step: z.number().int(),
  drafts: z.record(z.string(), z.string()),
});
export type ExportEngineResult = z.infer<typeof ExportEngineResult>;
