import { z } from 'zod';
import { EagletError } from '../../errors.js';
import { DraftConfig } from '../draft.js';
import { EngineTarget } from '../engine-target.js';
import { Device, PathOrHubId, PathString, Seed } from './common.js';

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
 * `eaglet train`: the user's config. Fields marked `seed:` are the parameters of the user's
 * original training script. `eaglet train` resolves it into the `TrainEngineConfig` the engine
 * receives.
 */
export const TrainConfig = z.strictObject({
  /** Target plugin id; absent: the plugin whose architectures claim the checkpoint's. */
  target: z.string().min(1).optional(),
  /** seed: TARGET_MODEL_NAME_OR_PATH: a local checkpoint folder or a Hugging Face Hub id (`org/name[@revision]`). */
  targetModel: PathOrHubId,
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
   * Run the frozen target's decoder linears as FP8 e4m3 products with row-wise scales (weights
   * quantised once at load): on an H100/H200 those products run at twice the bf16 rate. Needs CUDA
   * compute capability 8.9+ with precision bf16 (the CPU runs it too, slowly). Off by default: on
   * the fixture it left acceptance unchanged (docs/perf/train.md); check your own target first.
   * Online training only (offline captures hold the states as captured).
   */
  targetFp8: z.boolean().default(false),
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
  /** Machines in the run (torchrun --nnodes); every node runs the same command (docs/multi-node.md). */
  nnodes: z.number().int().positive().default(1),
  /**
   * This machine's index, 0..nnodes-1 (torchrun --node-rank; required with nnodes > 1). Node 0 holds
   * rank 0, which writes outputDir; only node 0 checks and locks it.
   */
  nodeRank: z.number().int().nonnegative().optional(),
  /** HOST:PORT every node reaches (torchrun --rdzv-endpoint): node 0's address and a free port. */
  rdzvEndpoint: z
    .string()
    .regex(/^[^\s:]+:\d{1,5}$/, 'HOST:PORT, e.g. node0.cluster:29500')
    .optional(),
  /** Id shared by the nodes of one run (torchrun --rdzv-id). */
  rdzvId: z.string().min(1).default('eaglet'),
  /** Seconds the nodes wait for each other at the rendezvous before the run fails. */
  rdzvTimeoutSeconds: z.number().int().positive().default(900),
  /** Seconds a collective (the gradient all-reduce) waits for the other ranks before the run fails. */
  distTimeoutSeconds: z.number().int().positive().default(1800),
  /**
   * `true`: continue from the latest checkpoint in outputDir; a path: that checkpoint. An outputDir
   * that holds an earlier run is refused unless `resume` or `overwrite` is set.
   */
  resume: z.union([z.boolean(), PathString]).default(false),
  /** Delete an earlier run in outputDir before training (its checkpoints, metrics and draft). */
  overwrite: z.boolean().default(false),
  /** Initialise the draft from an exported draft folder (its vocab mapping must match). */
  warmStart: PathOrHubId.optional(),
  export: ExportSpec.prefault({}),
  /** Write `curves.png` (loss and acc_i per step) beside metrics.jsonl. */
  plot: z.boolean().default(true),
  seed: Seed,
});
export type TrainConfig = z.infer<typeof TrainConfig>;
export type TrainConfigInput = z.input<typeof TrainConfig>;

/** How the nodes of a run meet: what `eaglet train` hands torchrun beyond --nproc-per-node. */
export interface NodeLaunch {
  nnodes: number;
  nodeRank: number;
  rdzvEndpoint: string;
  rdzvId: string;
  rdzvTimeoutSeconds: number;
}

/**
 * The multi-node settings of a train config, checked across fields (a node rank within range, an
 * endpoint when there are several nodes); undefined for a one-node run.
 */
export function nodeLaunch(config: TrainConfig): NodeLaunch | undefined {
  const { nnodes, nodeRank, rdzvEndpoint, rdzvId, rdzvTimeoutSeconds } = config;
  if (nodeRank !== undefined && nodeRank >= nnodes)
    throw new EagletError(
      'EAGLET_CONFIG_INVALID',
      `nodeRank ${nodeRank} is out of range for nnodes ${nnodes}`,
      {
        hint: `node ranks run from 0 to ${nnodes - 1}; under SLURM pass --node-rank $SLURM_NODEID`,
      },
    );
  if (nnodes === 1) return undefined;
  if (!rdzvEndpoint)
    throw new EagletError('EAGLET_CONFIG_INVALID', `nnodes is ${nnodes} but rdzvEndpoint is not set`, {
      hint: "pass --rdzv-endpoint HOST:PORT (node 0's address and a free port, the same on every node)",
    });
  if (nodeRank === undefined)
    throw new EagletError('EAGLET_CONFIG_INVALID', `nnodes is ${nnodes} but nodeRank is not set`, {
      hint: `pass --node-rank 0..${nnodes - 1} (under SLURM: $SLURM_NODEID); node 0 is the one at rdzvEndpoint`,
    });
  return { nnodes, nodeRank, rdzvEndpoint, rdzvId, rdzvTimeoutSeconds };
}

/**
 * What the engine's `train` command receives: the user's config with the target resolved into
 * the engine's target block and the draft architecture fully resolved (plugin defaults, the
 * user's draftConfig, the vocabulary mapping's sizes, the aux layer ids, the target's width).
 * The engine merges nothing.
 */
export const TrainEngineConfig = TrainConfig.omit({
  target: true,
  targetModel: true,
  draftConfig: true,
}).extend({
  target: EngineTarget,
  draftConfig: DraftConfig,
});
export type TrainEngineConfig = z.infer<typeof TrainEngineConfig>;

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
  /** Final acc_i / ploss_i / loss (the objective) and bigram_acc on the eval split, when there is one. */
  eval: z.record(z.string(), z.number()).optional(),
  /** What the run computed in and what the target checkpoint stores (e.g. an fp32 CPU run of a bf16 checkpoint). */
  precision: z.string().optional(),
  /** Where the draft's weights started: fresh (and its seed) or the warm start's folder. */
  draftOrigin: z.string().optional(),
});
export type TrainEngineResult = z.infer<typeof TrainEngineResult>;

/** What the engine's `export` command returns in its `done` event. */
export const ExportEngineResult = z.object({
  checkpoint: z.string(),
  step: z.number().int(),
  drafts: z.record(z.string(), z.string()),
});
export type ExportEngineResult = z.infer<typeof ExportEngineResult>;
