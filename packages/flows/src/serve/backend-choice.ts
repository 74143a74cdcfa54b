import {
  type Backend,
  type BackendOptions,
  EagletError,
  type FieldIssue,
  formatPath,
  type HubSource,
  type PluginRegistry,
  type ResolvedConfig,
  resolveTarget,
  type TargetModel,
  zodIssues,
} from '@eaglet/core';
import type { FlowContext } from '../context.js';
import { modelSource } from '../data/sources.js';

/**
 * The backend a config names, or the registry's default when it names none: the first backend
 * registered. eaglet's built-ins register the embedded torch backend first, so it is the default
 * wherever no plugin list puts another backend ahead of it.
 */
export function resolveBackend(registry: PluginRegistry, id: string | undefined): Backend {
  if (id) return registry.backend(id);
  const first = registry.backends()[0];
  if (!first)
    throw new EagletError('EAGLET_UNKNOWN_BACKEND', 'no backend is registered', {
      hint: 'add a plugin that provides one to eaglet.config.json',
    });
  return first;
}

/** The option names a backend takes (its schema's fields). */
export function backendOptionNames(backend: Backend): string[] {
  const schema = backend.optionsSchema as { shape?: Record<string, unknown> } | undefined;
  return Object.keys(schema?.shape ?? {});
}

/** Problems of `backendOptions` under the backend's own schema, each at `backendOptions.<field>`. */
export function backendOptionIssues(backend: Backend, options: BackendOptions): FieldIssue[] {
  if (!backend.optionsSchema) {
    return Object.keys(options).map((key) => ({
      path: `backendOptions.${key}`,
      reason: `backend ${backend.id} takes no backend options`,
    }));
  }
  const parsed = backend.optionsSchema.safeParse(options);
  if (parsed.success) return [];
  const issues = zodIssues(parsed.error, 'backendOptions');
  const known = backendOptionNames(backend).join(', ');
  return parsed.error.issues.flatMap((issue, i) =>
    // An unknown key is named by itself, not by the object that holds it.
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({
          path: formatPath([...issue.path, key], 'backendOptions'),
          reason: `backend ${backend.id} has no such option (it takes: ${known})`,
        }))
      : [{ path: issues[i]!.path, reason: `${issues[i]!.reason} (backend ${backend.id})` }],
  );
}

/** `backendOptions` parsed by the backend's schema (its defaults filled in); throws naming each bad field. */
export function parseBackendOptions(backend: Backend, options: BackendOptions): BackendOptions {
  const issues = backendOptionIssues(backend, options);
  if (issues.length) {
    throw new EagletError(
      'EAGLET_CONFIG_INVALID',
      `invalid options for backend ${backend.id}:\n${issues.map((i) => `  ${i.path}: ${i.reason}`).join('\n')}`,
      { hint: `backend ${backend.id} takes: ${backendOptionNames(backend).join(', ') || 'no options'}` },
    );
  }
  return (backend.optionsSchema?.parse(options) ?? {}) as BackendOptions;
}

/**
 * A bench or serve config as its backend receives it: the backend chosen (`resolveBackend`), its
 * options parsed by that backend's schema, the models on this machine (`localModels`: Hub ids
 * fetched, their commits in `sources`), the target chosen (named, or by the checkpoint's
 * architecture). The cheap checks come first: a bad option stops before anything is fetched.
 */
export async function choosePlugins<C extends PluginChoice>(
  registry: PluginRegistry,
  config: C,
  ctx: FlowContext = {},
): Promise<{
  backend: Backend;
  target: TargetModel;
  config: ResolvedConfig<C, BackendOptions>;
  sources: Record<string, HubSource>;
}> {
  const backend = resolveBackend(registry, config.backend);
  const backendOptions = parseBackendOptions(backend, config.backendOptions);
  const { local, sources } = await localModels(config, ctx);
  const target = resolveTarget(registry, local.target, local.targetModel);
  const resolved = { ...local, backend: backend.id, target: target.id, backendOptions };
  return { backend, target, config: resolved as ResolvedConfig<C, BackendOptions>, sources };
}

/** The fields of a config that name its plugins. */
interface PluginChoice {
  backend?: string | undefined;
  target?: string | undefined;
  targetModel: string;
  backendOptions: BackendOptions;
}

/**
 * A bench or serve config with its models on this machine: `targetModel` and `draftModel` named
 * by Hub ids become the snapshot folders they resolve to; `sources` records their commits.
 */
export async function localModels<C extends { targetModel: string; draftModel?: string | undefined }>(
  config: C,
  ctx: FlowContext,
): Promise<{ local: C; sources: Record<string, HubSource> }> {
  const sources: Record<string, HubSource> = {};
  const local = { ...config };
  for (const field of ['targetModel', 'draftModel'] as const) {
    const value = config[field];
    if (value === undefined) continue;
    const source = await modelSource(value, ctx, field);
    (local as Record<string, unknown>)[field] = source.path;
    if (source.hub) sources[field] = source.hub;
  }
  return { local, sources };
}
