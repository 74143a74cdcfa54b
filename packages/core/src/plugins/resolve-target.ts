import { modelArchitecture } from '../checkpoint.js';
import { EagletError } from '../errors.js';
import type { TargetModel } from '../interfaces/target-model.js';
import type { PluginRegistry } from './registry.js';

/**
 * The target plugin for a model folder: the one a config names (`target`), or else the one whose
 * `architectures` claim the checkpoint's config.json architecture. An error lists the known
 * architectures when no plugin claims it.
 */
export function resolveTarget(
  registry: Pick<PluginRegistry, 'target' | 'targets'>,
  id: string | undefined,
  modelDir: string,
): TargetModel {
  if (id !== undefined) return registry.target(id);
  const architecture = modelArchitecture(modelDir);
  const targets = registry.targets();
  const found = targets.filter((t) => architecture !== undefined && t.architectures.includes(architecture));
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
    { hint: `known architectures: ${known}; add a plugin for it or name one with target (--target)` },
  );
}
