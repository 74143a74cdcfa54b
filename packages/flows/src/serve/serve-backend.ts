import {
  EagletError,
  type PluginRegistry,
  ServeConfig,
  type ServeConfigInput,
  type ServerHandle,
} from '@eaglet/core';
import type { FlowContext } from '../context.js';
import { choosePlugins } from './backend-choice.js';

/**
 * `eaglet backend serve`: starts a backend's OpenAI-compatible server(s) and resolves once every
 * replica answers; the caller stops them with `handle.stop()`.
 */
export async function serveBackend(
  registry: PluginRegistry,
  input: ServeConfigInput,
  ctx: FlowContext = {},
): Promise<ServerHandle> {
  const { backend, target, config } = await choosePlugins(registry, ServeConfig.parse(input), ctx);
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
    audioDecoder: registry.service('audioDecoder'),
  });
}
