import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EagletError, type PluginRegistry, type TargetModel } from '@eaglet/core';

/**
 * The target plugin for a model folder: the one a config names (`target`), or else the one whose
 * `architectures` claim the checkpoint's config.json architecture. (Same contract as core's
 * `resolveTarget` from branch t12-target, which replaces this file when the branches merge.)
 */
export function resolveTarget(
  registry: Pick<PluginRegistry, 'target' | 'targets'>,
  id: string | undefined,
  modelDir: string,
): TargetModel {
  if (id !== undefined) return registry.target(id);
  const file = join(modelDir, 'config.json');
  const architecture = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as { architectures?: string[] }).architectures?.[0]
    : undefined;
  const targets = registry.targets();
  const found = targets.find((t) => architecture !== undefined && t.architectures.includes(architecture));
  if (found) return found;
  const known = targets.map((t) => `${t.architectures.join(', ')} (${t.id})`).join('; ') || 'none';
  throw new EagletError(
    'EAGLET_UNKNOWN_TARGET',
    `${modelDir}: no target plugin handles architecture ${architecture ?? '(config.json names none)'}`,
    { hint: `known architectures: ${known}; add a plugin for it or name one with target (--target)` },
  );
}
