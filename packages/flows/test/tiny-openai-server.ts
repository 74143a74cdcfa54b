import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A tiny real OpenAI-compatible HTTP server for regenerate tests that need an endpoint to go down
 * and come back on the same port (the embedded backend takes a minute to start on a shared CPU).
 * It answers each chat with `echo: <the last user text>` after `delayMs`, serves /v1/models and
 * /health, and logs every request it receives.
 */
export interface TinyOpenAIServer {
  url: string;
  /** Every request, in arrival order: `GET /health`, `POST /v1/chat/completions`... */
  log: string[];
  /** Stops listening and drops open connections (in-flight requests fail as on a crash). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function tinyOpenAIServer(options: { delayMs?: number } = {}): Promise<TinyOpenAIServer> {
  const log: string[] = [];
  const handler: Parameters<typeof createServer>[1] = (req, res) => {
    log.push(`${req.method} ${req.url}`);
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.url === '/health') return json(200, { status: 'ok' });
      if (req.url === '/v1/models')
        return json(200, { object: 'list', data: [{ id: 'tiny', object: 'model' }] });
      if (req.url !== '/v1/chat/completions' || req.method !== 'POST')
        return json(404, { error: 'not found' });
      const request = JSON.parse(body) as { messages: Array<{ role: string; content: unknown }> };
      const user = request.messages.filter((m) => m.role === 'user').at(-1)?.content;
      const text = typeof user === 'string' ? user : JSON.stringify(user).length.toString();
      setTimeout(
        () =>
          json(200, {
            id: 'c',
            object: 'chat.completion',
            created: 0,
            model: 'tiny',
            choices: [
              { index: 0, message: { role: 'assistant', content: `echo: ${text}` }, finish_reason: 'stop' },
            ],
            usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
          }),
        options.delayMs ?? 0,
      );
    });
  };
  let server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return {
    url: `http://127.0.0.1:${port}/v1`,
    log,
    down: stop,
    up: async () => {
      server = createServer(handler);
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    },
    close: stop,
  };
}
