import {
  type DraftConfig,
  type HubSource,
  type PluginRegistry,
  resolveTarget,
  type TargetInfo,
} from '@eaglet/core';
import type { FlowContext } from './context.js';
import { modelSource } from './data/sources.js';
import { resolveDraftConfig } from './train/draft-config.js';

export interface TargetDescription {
  target: string;
  /** The local checkpoint folder (a Hub id's snapshot folder). */
  model: string;
  /** The Hub repository and commit, when the model was named by a Hub id. */
  source?: HubSource;
  /** What the engine will use: aux layer ids (vLLM's numbering), the embedding key the checkpoint holds, every eos id. */
  info: TargetInfo;
  /** The draft architecture `eaglet train` resolves for this target (before the user's draftConfig and vocab mapping). */
  draft: DraftConfig;
}

/** `eaglet target info`: the one declaration of a target for a model folder, as the engine will use it. */
export async function describeTarget(
  registry: PluginRegistry,
  options: { target?: string; model: string },
  ctx: FlowContext = {},
): Promise<TargetDescription> {
  const model = await modelSource(options.model, ctx, 'model');
  const target = resolveTarget(registry, options.target, model.path);
  const info = await target.inspect(model.path);
  return {
    target: target.id,
    model: model.path,
    ...(model.hub ? { source: model.hub } : {}),
    info,
    draft: resolveDraftConfig(target, info),
  };
}
