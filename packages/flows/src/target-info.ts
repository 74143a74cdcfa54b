import { type DraftConfig, type PluginRegistry, resolveTarget, type TargetInfo } from '@eaglet/core';
import { resolveDraftConfig } from './train.js';

export interface TargetDescription {
  target: string;
  model: string;
  /** What the engine will use: aux layer ids (vLLM's numbering), the embedding key the checkpoint holds, every eos id. */
  info: TargetInfo;
  /** The draft architecture `eaglet train` resolves for this target (before the user's draftConfig and vocab mapping). */
  draft: DraftConfig;
}

/** `eaglet target info`: the one declaration of a target for a model folder, as the engine will use it. */
export async function describeTarget(
  registry: PluginRegistry,
  options: { target?: string; model: string },
): Promise<TargetDescription> {
  const target = resolveTarget(registry, options.target, options.model);
  const info = await target.inspect(options.model);
  return { target: target.id, model: options.model, info, draft: resolveDraftConfig(target, info) };
}
