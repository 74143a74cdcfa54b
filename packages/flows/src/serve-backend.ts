import {
  EagletError,
  type PluginRegistry,
  ServeConfig,
  type ServeConfigInput,
  type ServerHandle,
} from '@eaglet/core';
import { parseBackendOptions, resolveBackend } from './backend-choice.js';
import { resolveTarget } from './resolve-target.js';
import type { FlowContext } from './validate.js';

/**
 * `eaglet backend serve`: starts a backend's OpenAI-compatible server(s) and resolves once every
 * replica answers; the caller stops them with `handle.stop()`.
 */
export async function serveBackend(
  registry: PluginRegistry,
  input: ServeConfigInput,
  ctx: FlowContext = {},
): Promise<ServerHandle> {
  const config = ServeConfig.parse(input);
  const backend = resolveBackend(registry, config.backend);
  const backendOptions = parseBackendOptions(backend, config.backendOptions);
  const status = await backend.available();
  if (!status.ok)
    throw new EagletError(
      'EAGLET_BACKEND_UNAVAILABLE',
      `backend ${backend.id} cannot run here: ${status.reason}`,
      { hint: status.hint },
    );
  const target = resolveTarget(registry, config.target, config.targetModel);
  return backend.serve(
    { ...config, backend: backend.id, target: target.id, backendOptions },
    {
      events: ctx.events ?? (() => {}),
      signal: ctx.signal ?? new AbortController().signal,
      target,
      template: registry.template(target.chatTemplate),
    },
  );
}
