import { EagletError, type PluginRegistry } from '@eaglet/core';
import { type CreateEagletOptions, createEaglet } from '@eaglet/flows';
import { createServer, type EagletServer } from './app.js';
import type { ServerOptionsInput } from './options.js';

/**
 * What `eaglet serve` calls: builds the server on a plugin registry (the command's own, or one
 * createEaglet loads) and starts listening. Resolves with the server and its URL.
 */
export async function startServer(
  options: ServerOptionsInput,
  eaglet: CreateEagletOptions & { registry?: PluginRegistry } = {},
): Promise<{ server: EagletServer; url: string }> {
  const registry = eaglet.registry ?? (await createEaglet(eaglet)).registry;
  const server = await createServer(options, { registry });
  try {
    return { server, url: await server.listen() };
  } catch (e) {
    await server.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new EagletError(
        'EAGLET_SERVER_PORT',
        `port ${options.port} on ${options.host ?? '127.0.0.1'} is in use`,
        {
          hint: 'pick another with --port (0 picks a free one)',
        },
      );
    if (code === 'EADDRNOTAVAIL')
      throw new EagletError('EAGLET_SERVER_HOST', `${options.host} is not an address of this machine`);
    throw e;
  }
}
