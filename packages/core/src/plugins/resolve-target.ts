import { modelArchitecture } from '../checkpoint.js';
import { EagletError } from '../errors.js';
import type { TargetModel } from '../interfaces/target-model.js';
import type { PluginRegistry } from './registry.js';

/**
 * The target plugin for a model folder: the one a config names (`target`), or else the one whose
 * `architectures` claim the checkpoint's config.json architecture (a target for one family before
 * a generic one). An error lists the known architectures, and how to add one, when no plugin
 * claims it.
 */
export function resolveTarget(
  registry: Pick<PluginRegistry, 'target' | 'targets'>,
  id: string | undefined,
  modelDir: string,
): TargetModel {
  if (id !== undefined) return registry.target(id);
  const architecture = modelArchitecture(modelDir);
  const targets = registry.targets();
  const claims = targets.filter((t) => architecture !== undefined && t.architectures.includes(architecture));
  // A target written for one family takes precedence over a catch-all one.
  const specific = claims.filter((t) => !t.generic);
  const found = specific.length ? specific : claims;
  if (found.length === 1) return found[0]!;
  const known = targets.map((t) => `${t.architectures.join(', ')} (${t.id})`).join('; ') || 'none';
  if (found.length > 1)
    throw new EagletError(
      'EAGLET_TARGET_AMBIGUOUS',
      `${modelDir}: architecture ${architecture} is claimed by several target plugins (${found.map((t) => t.id).join(', ')})`,
      { hint: 'name one with target (--target)' },
    );
  throw new EagletError(
    'EAGLET_UNKNOWN_TARGET',
    `${modelDir}: no target plugin handles architecture ${architecture ?? '(config.json names none)'}`,
    {
      hint: `known architectures: ${known}. For another architecture, write a target plugin (README, "Writing a plugin": copy the folder of a built-in target plugin under plugins/, text or audio, and change its declaration and its Python adapter), or name a target that loads it with target (--target)`,
    },
  );
}
