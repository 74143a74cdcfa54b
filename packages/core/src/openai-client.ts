import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EagletError } from './errors.js';
import type { ChatRequest, ChatResult } from './interfaces/backend.js';
import type { Message } from './schemas/conversation.js';
import {
  type OpenAIChatRequest,
  type OpenAIChatResponse,
  OpenAIChatResponse as OpenAIChatResponseSchema,
  type OpenAIContentPart,
  type OpenAIMessage,
  OpenAIModelList,
} from './schemas/openai.js';

/** How audio parts travel to an OpenAI-compatible server. */
export type AudioMode = 'input_audio' | 'audio_url';

const DATA_URI = /^data:audio\/([\w.+-]+);base64,(.*)$/s;

/**
 * Canonical messages -> OpenAI chat messages. `input_audio` embeds the file's bytes (base64, format
 * from the extension); `audio_url` sends local files as file:// URLs (the server must be allowed
 * to read them). http(s) references always go as `audio_url`; data: URIs as the mode asks.
 */
export async function toOpenAIMessages(
  messages: readonly Message[],
  audioMode: AudioMode,
): Promise<OpenAIMessage[]> {
  return Promise.all(
    messages.map(async (m) => {
      const parts: OpenAIContentPart[] = [];
      for (const p of m.content) {
        if (p.type === 'text') parts.push({ type: 'text', text: p.text });
        else {
          if (p.start !== undefined || p.end !== undefined) {
            throw new EagletError(
              'EAGLET_AUDIO_WINDOW',
              `audio ${p.audio} has a clip window (${p.start ?? 0}-${p.end ?? ''} s), which the OpenAI API cannot express`,
              { hint: 'regenerate from the original records (before long-audio segmentation)' },
            );
          }
          parts.push(await audioPart(p.audio, audioMode));
        }
      }
      // Text-only turns go as plain strings: every OpenAI-compatible server accepts those.
      const content = parts.every((x) => x.type === 'text') ? parts.map((x) => x.text).join('') : parts;
      return { role: m.role, content };
    }),
  );
}

async function audioPart(ref: string, mode: AudioMode): Promise<OpenAIContentPart> {
  if (/^https?:/i.test(ref)) return { type: 'audio_url', audio_url: { url: ref } };
  const data = DATA_URI.exec(ref);
  if (data) {
    return mode === 'audio_url'
      ? { type: 'audio_url', audio_url: { url: ref } }
      : { type: 'input_audio', input_audio: { data: data[2]!, format: data[1]! } };
  }
  if (mode === 'audio_url') return { type: 'audio_url', audio_url: { url: pathToFileURL(ref).href } };
  let bytes: Buffer;
  try {
    bytes = await readFile(ref);
  } catch (e) {
    throw new EagletError('EAGLET_AUDIO_MISSING', `cannot read audio ${ref}: ${(e as Error).message}`);
  }
  const format = extname(ref).slice(1).toLowerCase() || 'wav';
  return { type: 'input_audio', input_audio: { data: bytes.toString('base64'), format } };
}

/** An HTTP or transport failure talking to an OpenAI-compatible server. */
export class OpenAIRequestError extends EagletError {
  /** HTTP status; 0 for a transport failure (refused, reset, timeout). */
  readonly status: number;
  /** Worth retrying: transport failures, 408, 429 and 5xx. A 4xx is the request's own fault. */
  readonly retryable: boolean;

  constructor(url: string, status: number, message: string, cause?: unknown) {
    super(
      status === 0 ? 'EAGLET_ENDPOINT_UNREACHABLE' : 'EAGLET_ENDPOINT_HTTP',
      `${url}: ${status ? `HTTP ${status}: ` : ''}${message}`,
      cause === undefined ? {} : { cause },
    );
    this.status = status;
    this.retryable = status === 0 || status === 408 || status === 429 || status >= 500;
  }
}

export interface OpenAIRequestOptions {
  apiKey?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

async function request(url: string, init: RequestInit, options: OpenAIRequestOptions): Promise<unknown> {
  const signals = [options.signal, options.timeoutMs ? AbortSignal.timeout(options.timeoutMs) : undefined];
  const signal = AbortSignal.any(signals.filter((s): s is AbortSignal => !!s));
  let res: Response;
  try {
    res = await fetch(url, {
      ...init,
      signal,
      headers: {
        'content-type': 'application/json',
        ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
      },
    });
  } catch (e) {
    if (options.signal?.aborted) throw new EagletError('EAGLET_CANCELLED', 'request cancelled', { cause: e });
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new OpenAIRequestError(url, 0, cause?.code ?? cause?.message ?? (e as Error).message, e);
  }
  const text = await res.text().catch((e) => {
    throw new OpenAIRequestError(url, 0, `reading the response failed: ${(e as Error).message}`, e);
  });
  if (!res.ok) {
    let message = text.slice(0, 500);
    try {
      const body = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
      message =
        typeof body.error === 'string' ? body.error : (body.error?.message ?? body.message ?? message);
    } catch {
      // not JSON: keep the text
    }
    throw new OpenAIRequestError(url, res.status, message);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new OpenAIRequestError(url, res.status, `response is not JSON: ${text.slice(0, 200)}`);
  }
}

/** POST {baseUrl}/chat/completions; the response is validated. */
export async function chatCompletion(
  baseUrl: string,
  body: OpenAIChatRequest,
  options: OpenAIRequestOptions = {},
): Promise<OpenAIChatResponse> {
  const url = `${baseUrl.replace(/\/$/, '')}/chat/completions`;
  const json = await request(
    url,
    { method: 'POST', body: JSON.stringify({ ...body, stream: false }) },
    options,
  );
  const parsed = OpenAIChatResponseSchema.safeParse(json);
  if (!parsed.success)
    throw new OpenAIRequestError(url, 200, `not a chat completion: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/**
 * One canonical chat request through an OpenAI-compatible server (what every Backend's
 * `ServerHandle.chat` does once it has picked a replica URL).
 */
export async function chatOverOpenAI(
  baseUrl: string,
  model: string,
  request: ChatRequest,
  options: OpenAIRequestOptions = {},
): Promise<ChatResult> {
  const res = await chatCompletion(
    baseUrl,
    {
      model,
      messages: await toOpenAIMessages(request.messages, 'input_audio'),
      max_tokens: request.maxTokens,
      ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
      ...(request.topP === undefined ? {} : { top_p: request.topP }),
      ...(request.seed === undefined ? {} : { seed: request.seed }),
    },
    options,
  );
  const choice = res.choices[0]!;
  return {
    text: choice.message.content ?? '',
    finishReason: choice.finish_reason ?? 'stop',
    promptTokens: res.usage?.prompt_tokens ?? 0,
    completionTokens: res.usage?.completion_tokens ?? 0,
  };
}

/** GET {baseUrl}/models: the served model names. */
export async function listModels(baseUrl: string, options: OpenAIRequestOptions = {}): Promise<string[]> {
  const url = `${baseUrl.replace(/\/$/, '')}/models`;
  const parsed = OpenAIModelList.safeParse(await request(url, { method: 'GET' }, options));
  if (!parsed.success) throw new OpenAIRequestError(url, 200, 'not a model list');
  return parsed.data.data.map((m) => m.id);
}
