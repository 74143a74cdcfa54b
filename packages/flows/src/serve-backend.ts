import {
  EagletError,
  type PluginRegistry,
  ServeConfig,
  type ServeConfigInput,
  type ServerHandle,
} from '@eaglet/core';
import { choosePlugins } from './backend-choice.js';
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
  const { backend, target, config } = choosePlugins(registry, ServeConfig.parse(input));
  const status = await backend.available();
  if (!status.ok)
    throw new EagletError(
      'EAGLET_BACKEND_UNAVAILABLE',
      `backend ${backend.id} cannot run here: ${status.reason}`,
      { hint: status.hint },
    );
  return backend.serve(config, {
    events: ctx.events ?? (() => {}),
    signal: ctx.signal ?? new AbortController().signal,
    target,
    template: registry.template(target.chatTemplate),
  });
}
