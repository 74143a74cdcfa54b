import { resolve } from 'node:path';
import { z } from 'zod';
import type { TargetInfo, TargetModel } from '../interfaces/target-model.js';
import { PathString } from './config/common.js';
import { HubSource } from './hub.js';

/**
 * The resolved target as the engine receives it, the same block in the train config and the
 * generation worker's config: which adapter loads which checkpoint and which layers it taps. Built
 * from the target plugin's declaration by `engineTarget`; the engine restates none of it.
 */
export const EngineTarget = z.strictObject({
  /** Target plugin id. */
  id: z.string().min(1),
  /** Python module of the plugin's adapter (`load_target(target, *, device, dtype)`); the plugin's enginePath is on PYTHONPATH. */
  adapter: z.string().min(1),
  /** Absolute path of the local checkpoint folder. */
  model: PathString,
  /** config.json `architectures[0]`. */
  architecture: z.string().min(1),
  /** vLLM's aux hidden-state layer ids: id k is the state after k decoder layers (0 = the embeddings). */
  auxLayerIds: z.array(z.number().int().nonnegative()).length(3),
  /** Placeholder id that stands for one audio frame (audio targets). */
  audioTokenId: z.number().int().nonnegative().optional(),
  /** The Hub repository and commit the checkpoint came from, when it was named by a Hub id (checkpoints record it). */
  source: HubSource.optional(),
});
export type EngineTarget = z.infer<typeof EngineTarget>;

/**
 * The engine's target block for a checkpoint, from its plugin and what `inspect` read; `auxLayerIds`
 * replaces the target's own where a resolved draft config names others.
 */
export function engineTarget(
  target: TargetModel,
  info: TargetInfo,
  modelDir: string,
  auxLayerIds: readonly number[] = info.auxLayerIds,
  source?: HubSource,
): EngineTarget {
  return {
    id: target.id,
    adapter: target.engineAdapter,
    model: resolve(modelDir),
    architecture: info.architecture,
    auxLayerIds: [...auxLayerIds],
    ...(info.audioTokenId === undefined ? {} : { audioTokenId: info.audioTokenId }),
    ...(source ? { source } : {}),
  };
}
