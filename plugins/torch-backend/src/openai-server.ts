import { randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  EagletError,
  formatPath,
  type Message,
  type OpenAIChatRequest,
  OpenAIChatRequest as OpenAIChatRequestSchema,
  type OpenAIMessage,
} from '@eaglet/core';
import type { EmbeddedReplica } from './embedded.js';

export interface OpenAIServerOptions {
  replica: EmbeddedReplica;
  /** The name clients send as `model` (also listed by /v1/models). */
  model: string;
  host: string;
  port: number;
  /** Folder whose files `audio_url` may name as file:// URLs; none: file:// is refused. */
  allowedLocalMediaPath?: string;
  /** Bearer token clients must send. */
  apiKey?: string;
  /** Largest request body (audio travels inline). */
  maxBodyBytes?: number;
  /** Largest audio fetched from an http(s) audio_url. */
  maxRemoteAudioBytes?: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly param?: string,
  ) {
    super(message);
  }
}

const STATUS_OF: Record<string, number> = {
  EAGLET_PROMPT_TOO_LONG: 400,
  EAGLET_BAD_REQUEST: 400,
  EAGLET_TEMPLATE_INPUT: 400,
  EAGLET_AUDIO_TOO_LONG: 400,
  EAGLET_AUDIO_MISSING: 400,
  EAGLET_AUDIO_EMPTY: 400,
  EAGLET_AUDIO_UNREADABLE: 400,
  EAGLET_AUDIO_REMOTE: 400,
  EAGLET_WORKER_GONE: 503,
  EAGLET_ENGINE_CRASHED: 503,
};

/**
 * An OpenAI-compatible HTTP server over one embedded replica: GET /health, GET /v1/models,
 * POST /v1/chat/completions (text, `input_audio` and `audio_url` parts; `stream: true` as
 * server-sent events). Requests queue in the replica's worker and run one at a time.
 */
export class OpenAIServer {
  private server: Server | undefined;
  private readonly created = Math.floor(Date.now() / 1000);
  private mediaRoot: string | undefined;

  constructor(private readonly options: OpenAIServerOptions) {
    if (options.allowedLocalMediaPath) this.mediaRoot = realpathSync(options.allowedLocalMediaPath);
  }

  get url(): string {
    const addr = this.server?.address() as AddressInfo | null;
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `http://${host}:${addr?.port ?? this.options.port}/v1`;
  }

  async listen(): Promise<string> {
    const server = createServer((req, res) => {
      this.route(req, res).catch((e) => this.fail(res, e));
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new EagletError(
            'EAGLET_PORT_IN_USE',
            `cannot listen on ${this.options.host}:${this.options.port}: ${e.message}`,
            {
              hint:
                e.code === 'EADDRINUSE'
                  ? 'another server holds the port: stop it or pass another --port'
                  : undefined,
            },
          ),
        ),
      );
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    this.server = server;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health' && req.method === 'GET') {
      const ok = this.options.replica.alive;
      return this.json(res, ok ? 200 : 503, ok ? { status: 'ok' } : { status: 'worker down' });
    }
    if (this.options.apiKey && req.headers.authorization !== `Bearer ${this.options.apiKey}`) {
      throw new HttpError(
        401,
        'missing or wrong API key (send Authorization: Bearer KEY)',
        'authentication_error',
      );
    }
    if (path === '/v1/models' && req.method === 'GET') {
      return this.json(res, 200, {
        object: 'list',
        data: [{ id: this.options.model, object: 'model', created: this.created, owned_by: 'eaglet' }],
      });
    }
    if (path === '/v1/chat/completions') {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      return this.chat(req, res);
    }
    throw new HttpError(404, `no route ${req.method} ${path}`, 'not_found_error');
  }

  private async readBody(req: IncomingMessage): Promise<unknown> {
    const limit = this.options.maxBodyBytes ?? 128 * 2 ** 20;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limit) throw new HttpError(413, `request body exceeds ${limit} bytes`);
      chunks.push(chunk as Buffer);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      throw new HttpError(400, `body is not JSON: ${(e as Error).message}`);
    }
  }

  private async chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = OpenAIChatRequestSchema.safeParse(await this.readBody(req));
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const param = formatPath(issue.path);
      throw new HttpError(400, `${param || 'body'}: ${issue.message}`, 'invalid_request_error', param);
    }
    const body = parsed.data;
    if (body.model && body.model !== this.options.model) {
      throw new HttpError(
        404,
        `The model \`${body.model}\` does not exist (served: ${this.options.model})`,
        'not_found_error',
        'model',
      );
    }
    if (
      body.stop !== undefined &&
      body.stop !== null &&
      (typeof body.stop === 'string' ? body.stop : body.stop.length)
    ) {
      throw new HttpError(
        400,
        'stop strings are not supported by the embedded backend',
        'invalid_request_error',
        'stop',
      );
    }
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const messages = await this.canonical(body.messages, abort.signal);
    const replica = this.options.replica;
    const prompt = await replica.prepare(messages, abort.signal);
    const params = {
      ...((body.max_completion_tokens ?? body.max_tokens)
        ? { maxTokens: (body.max_completion_tokens ?? body.max_tokens)! }
        : {}),
      temperature: body.temperature ?? 1,
      topP: body.top_p ?? 1,
      ...(body.seed === undefined || body.seed === null ? {} : { seed: body.seed >>> 0 }),
    };
    const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
    const created = Math.floor(Date.now() / 1000);
    if (!body.stream) {
      const out = await replica.complete(prompt, params, { signal: abort.signal });
      return this.json(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model: this.options.model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: out.text },
            finish_reason: out.finishReason,
            logprobs: null,
          },
        ],
        usage: usage(out.promptTokens, out.outputIds.length),
      });
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
    const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: this.options.model,
      choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
    });
    send(chunk({ role: 'assistant', content: '' }, null));
    try {
      const out = await replica.complete(prompt, params, {
        signal: abort.signal,
        onText: (delta) => send(chunk({ content: delta }, null)),
      });
      send(chunk({}, out.finishReason));
      if (body.stream_options?.include_usage)
        send({ ...chunk({}, null), choices: [], usage: usage(out.promptTokens, out.outputIds.length) });
    } catch (e) {
      const err = toHttpError(e);
      send({ error: { message: err.message, type: err.type, code: err.status } });
    }
    res.end('data: [DONE]\n\n');
  }

  /** OpenAI messages -> canonical messages (audio as local paths or data: URIs). */
  private async canonical(messages: OpenAIMessage[], signal: AbortSignal): Promise<Message[]> {
    const out: Message[] = [];
    for (const [i, m] of messages.entries()) {
      const role = m.role === 'developer' ? 'system' : m.role;
      const content: Message['content'] = [];
      if (typeof m.content === 'string') content.push({ type: 'text', text: m.content });
      else if (m.content) {
        for (const [j, p] of m.content.entries()) {
          const where = `messages[${i}].content[${j}]`;
          if (p.type === 'text') content.push({ type: 'text', text: p.text });
          else if (p.type === 'input_audio') {
            if (!/^[\w.+-]+$/.test(p.input_audio.format))
              throw new HttpError(
                400,
                `${where}.input_audio.format is not a format name`,
                'invalid_request_error',
                where,
              );
            content.push({
              type: 'audio',
              audio: `data:audio/${p.input_audio.format};base64,${p.input_audio.data}`,
            });
          } else content.push({ type: 'audio', audio: await this.audioUrl(p.audio_url.url, where, signal) });
        }
      }
      if (role !== 'user' && content.some((p) => p.type === 'audio'))
        throw new HttpError(
          400,
          `messages[${i}]: audio is accepted in user turns only`,
          'invalid_request_error',
          `messages[${i}]`,
        );
      out.push({ role, content });
    }
    const last = out.at(-1);
    if (!last || last.role === 'assistant')
      throw new HttpError(
        400,
        'the last message must be a user (or system) turn to answer',
        'invalid_request_error',
        'messages',
      );
    return out;
  }

  private async audioUrl(url: string, where: string, signal: AbortSignal): Promise<string> {
    if (url.startsWith('data:')) {
      if (!/^data:audio\/[\w.+-]+;base64,/.test(url))
        throw new HttpError(
          400,
          `${where}.audio_url.url: only base64 data:audio/... URIs are accepted`,
          'invalid_request_error',
          where,
        );
      return url;
    }
    if (url.startsWith('file:')) {
      if (!this.mediaRoot) {
        throw new HttpError(
          400,
          `${where}: file:// audio URLs are refused (start the server with an allowed local media path)`,
          'invalid_request_error',
          where,
        );
      }
      let real: string;
      try {
        real = realpathSync(fileURLToPath(url));
      } catch {
        throw new HttpError(400, `${where}: audio file not found: ${url}`, 'invalid_request_error', where);
      }
      if (real !== this.mediaRoot && !real.startsWith(this.mediaRoot + sep))
        throw new HttpError(
          403,
          `${where}: ${url} is outside the allowed local media path`,
          'permission_error',
          where,
        );
      return real;
    }
    if (/^https?:/i.test(url)) {
      const limit = this.options.maxRemoteAudioBytes ?? 64 * 2 ** 20;
      let res: Response;
      try {
        res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(60_000)]) });
      } catch (e) {
        throw new HttpError(
          400,
          `${where}: fetching ${url} failed: ${(e as Error).message}`,
          'invalid_request_error',
          where,
        );
      }
      if (!res.ok)
        throw new HttpError(
          400,
          `${where}: fetching ${url} gave HTTP ${res.status}`,
          'invalid_request_error',
          where,
        );
      const bytes = Buffer.from(await res.arrayBuffer());
      if (bytes.length > limit) throw new HttpError(413, `${where}: ${url} exceeds ${limit} bytes`);
      const type = res.headers.get('content-type') ?? '';
      const format =
        /^audio\/([\w.+-]+)/.exec(type)?.[1] ?? (extname(new URL(url).pathname).slice(1) || 'wav');
      return `data:audio/${format};base64,${bytes.toString('base64')}`;
    }
    throw new HttpError(
      400,
      `${where}.audio_url.url: expected http(s)://, file:// or data:audio/...`,
      'invalid_request_error',
      where,
    );
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: ServerResponse, e: unknown): void {
    const err = toHttpError(e);
    if (res.headersSent) {
      res.end();
      return;
    }
    this.json(res, err.status, {
      error: { message: err.message, type: err.type, param: err.param ?? null, code: err.status },
    });
  }
}

const usage = (prompt: number, completion: number) => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
});

function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof EagletError) {
    if (e.code === 'EAGLET_CANCELLED') return new HttpError(499, e.message, 'cancelled');
    const status = STATUS_OF[e.code] ?? 500;
    return new HttpError(status, e.message, status < 500 ? 'invalid_request_error' : 'server_error');
  }
  return new HttpError(500, (e as Error)?.message ?? String(e), 'server_error');
}

export type { OpenAIChatRequest };
