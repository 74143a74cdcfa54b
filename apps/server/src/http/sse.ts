import type { FastifyReply } from 'fastify';

/** Above this many unsent bytes a slow client is dropped; it reconnects and resumes from Last-Event-ID. */
const MAX_BUFFERED = 8 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;

export interface SseStream {
  send(message: { event?: string; id?: number; data: unknown }): void;
  close(): void;
  /** Resolves when the client goes away or the stream is closed. */
  readonly closed: Promise<void>;
}

/** Takes over a reply as a Server-Sent Events stream (heartbeats, back-pressure, cleanup). */
export function openSse(reply: FastifyReply, extraHeaders: Record<string, string> = {}): SseStream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-content-type-options': 'nosniff',
    ...extraHeaders,
  });
  res.write('retry: 2000\n\n');
  let open = true;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const heartbeat = setInterval(() => open && res.write(': ping\n\n'), HEARTBEAT_MS).unref();
  const close = () => {
    if (!open) return;
    open = false;
    clearInterval(heartbeat);
    res.end();
    resolveClosed();
  };
  res.on('close', close);
  res.on('error', close);
  return {
    closed,
    close,
    send({ event, id, data }) {
      if (!open) return;
      if (res.writableLength > MAX_BUFFERED) {
        close();
        return;
      }
      let text = '';
      if (event) text += `event: ${event}\n`;
      if (id !== undefined) text += `id: ${id}\n`;
      text += `data: ${JSON.stringify(data)}\n\n`;
      res.write(text);
    },
  };
}
