import {
  EagletError,
  type PluginRegistry,
  resolveTarget,
  type ServeOptions,
  type ServerHandle,
} from '@eaglet/core';
import type { FlowContext } from './validate.js';

export interface ServeBackendOptions extends ServeOptions {
  /** Backend plugin id (`torch` is the embedded default). */
  backend: string;
}

/**
 * `eaglet backend serve`: starts a backend's OpenAI-compatible server(s) and resolves once every
 * replica answers; the caller stops them with `handle.stop()`.
 */
export async function serveBackend(
  registry: PluginRegistry,
  options: ServeBackendOptions,
  ctx: FlowContext = {},
): Promise<ServerHandle> {
  const backend = registry.backend(options.backend);
  const status = await backend.available();
  if (!status.ok)
    throw new EagletError(
      'EAGLET_BACKEND_UNAVAILABLE',
      `backend ${backend.id} cannot run here: ${status.reason}`,
      { hint: status.hint },
    );
  const target = resolveTarget(registry, options.target, options.targetModel);
  const { backend: _b, ...serveOptions } = options;
  return backend.serve(serveOptions, {
    events: ctx.events ?? (() => {}),
    signal: ctx.signal ?? new AbortController().signal,
    target,
    template: registry.template(target.chatTemplate),
  });
}
