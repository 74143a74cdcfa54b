import { z } from 'zod';
import { EngineTarget } from '../engine-target.js';
import { Device, PathOrHubId, PathString } from './common.js';

/**
 * `eaglet data capture`: the frozen target runs once over prepared data and writes what offline
 * training reads (schemas/capture.ts). A train config whose `trainData` and `evalData` name capture
 * folders trains offline.
 */
export const CaptureConfig = z.strictObject({
  /** Target plugin id; absent: the plugin whose architectures claim the model's config.json. */
  target: z.string().min(1).optional(),
  /** The target checkpoint: a local folder or a Hugging Face Hub id (`org/name[@revision]`). */
  model: PathOrHubId,
  /** Prepared dataset folders (outputs of `eaglet data prepare`), captured in this order. */
  data: z.array(PathString).min(1, 'give at least one prepared folder'),
  /** Output folder: shards, target-head.safetensors, capture.json. */
  out: PathString,
  /**
   * vLLM's aux layer ids to tap (default: the target plugin's). Must equal the draft's
   * `eagle_aux_hidden_state_layer_ids` at training, which refuses a capture of other layers.
   */
  auxLayerIds: z.array(z.number().int().nonnegative()).length(3).optional(),
  /** Tokens per shard: a shard is written (and committed) whole, so this bounds what a kill loses and the host memory a rank holds. */
  shardTokens: z.number().int().positive().default(65536),
  /** Padded tokens per target forward (records of a shard packed in order). */
  batchTokens: z.number().int().positive().default(8192),
  /** dtype the target runs in; what is written is bf16 either way. */
  precision: z.enum(['bf16', 'fp32']).default('bf16'),
  /** torch.compile of the target's layers: `auto` on GPUs (as in training). */
  compile: z.enum(['auto', 'on', 'off']).default('auto'),
  device: Device.default('auto'),
  /** GPUs on this machine; more than 1 runs torchrun, each rank writing every n-th shard. */
  nprocPerNode: z.number().int().positive().default(1),
  /** Seconds a rank waits for the others at the end before the run fails. */
  distTimeoutSeconds: z.number().int().positive().default(1800),
  /** Delete an earlier or unfinished capture in `out` first. */
  overwrite: z.boolean().default(false),
});
export type CaptureConfig = z.infer<typeof CaptureConfig>;
export type CaptureConfigInput = z.input<typeof CaptureConfig>;

/** What the engine's `capture` command receives: the target resolved into the engine's target block. */
export const CaptureEngineConfig = CaptureConfig.omit({
  target: true,
  model: true,
  auxLayerIds: true,
}).extend({
  target: EngineTarget,
});
export type CaptureEngineConfig = z.infer<typeof CaptureEngineConfig>;

/** What the engine's `capture` command returns in its `done` event. */
export const CaptureEngineResult = z.object({
  out: z.string(),
  /** The folder already held this capture, complete. */
  alreadyDone: z.boolean(),
  /** Shards this run wrote (the rest were committed by an interrupted run or are still to do). */
  shardsWritten: z.number().int().nonnegative(),
  shards: z.number().int().nonnegative(),
  /** Tokens this run's target forwards covered, and their rate over all ranks. */
  tokens: z.number().int().nonnegative(),
  seconds: z.number().nonnegative(),
  tokensPerSecond: z.number().nonnegative(),
});
export type CaptureEngineResult = z.infer<typeof CaptureEngineResult>;
