import { EagletError } from '@eaglet/core';
import { type CreateEagletOptions, createEaglet } from '@eaglet/flows';
import { createServer, type EagletServer } from './app.js';
import type { ServerOptionsInput } from './options.js';

/**
 * What `eaglet serve` calls: loads the plugins (createEaglet, as every command does), builds the
 * server and starts listening. Resolves with the server and its URL.
 */
export async function startServer(
  options: ServerOptionsInput,
  eaglet: CreateEagletOptions = {},
): Promise<{ server: EagletServer; url: string }> {
  const { registry } = await createEaglet(eaglet);
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
