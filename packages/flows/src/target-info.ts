import { DraftConfig, type PluginRegistry, type TargetInfo } from '@eaglet/core';

export interface TargetDescription {
  target: string;
  model: string;
  info: TargetInfo;
  /** The draft architecture eaglet would train for this target (before user overrides). */
  draft: DraftConfig;
}

/** `eaglet target info`: what a target plugin reads from a model folder, and the draft it implies. */
export async function describeTarget(
  registry: PluginRegistry,
  options: { target: string; model: string },
): Promise<TargetDescription> {
  const target = registry.target(options.target);
  const info = await target.inspect(options.model);
  return {
    target: target.id,
    model: options.model,
    info,
    draft: DraftConfig.parse(target.draftDefaults(info)),
  };
}
