import {
  type AudioDecoder,
  audioParts,
  chatCompletion,
  EagletError,
  type Message,
  OpenAIRequestError,
  type RegenerateConfig,
  toOpenAIMessages,
} from '@eaglet/core';
import type { EndpointPool } from './endpoints.js';
import type { InputRecord } from './input-record.js';
import { relativeTo } from './regenerate-output.js';
import { temperatureFor } from './temperature.js';

/** One line of rejects.jsonl. */
export interface RegenerateReject {
  index: number;
  file: string;
  line: number;
  id?: string;
  reason: string;
}

/** What becomes of one input record: its regenerated record (in its input format) or a reject. */
export type Outcome = { kind: 'ok'; record: unknown } | { kind: 'reject'; reject: RegenerateReject };

/** The longest pause between retries after a 429 or 5xx. */
const MAX_BACKOFF_MS = 30_000;

/** The pause before retry `attempt` after a 408, 429 or 5xx: exponential, jittered, capped. */
export function backoff(config: RegenerateConfig, attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, config.backoffSeconds * 1000 * 2 ** attempt) * (0.5 + Math.random());
}

export interface AnswerDeps {
  config: RegenerateConfig;
  pool: EndpointPool;
  /** Ends the run: requests and waits stop, the record is left uncommitted. */
  signal: AbortSignal;
  /** Checks the audio (allowed, readable, complete) before it is sent. */
  audio: AudioDecoder;
  auth: { apiKey?: string };
  /** The served model, and the run's counters this adds to. */
  report: { model: string; promptTokens: number; completionTokens: number; retries: number };
  log: (level: 'info' | 'warn', message: string) => void;
}

const reject = (item: InputRecord, reason: string): Outcome => ({
  kind: 'reject',
  reject: {
    index: item.index,
    file: item.file,
    line: item.line,
    ...(item.id ? { id: item.id } : {}),
    reason,
  },
});

const cancelled = () => new EagletError('EAGLET_CANCELLED', 'stopped');

/**
 * Answers the user turns of one record again, turn by turn (each turn sees the regenerated
 * earlier ones), and serializes it in its input format for the output folder `dir`. Resolves with
 * a reject for what is wrong with the record (its audio, a 4xx, an answer cut at max_tokens);
 * throws when the run must stop (cancelled, endpoints down past the retry budget).
 */
export async function answerRecord(d: AnswerDeps, item: InputRecord, dir: string): Promise<Outcome> {
  const { config } = d;
  if (item.problem || !item.conversation || !item.format)
    return reject(item, item.problem ?? 'unreadable record');
  const conv = item.conversation;
  for (const part of audioParts(conv)) {
    if (/^https?:/i.test(part.audio)) continue; // the endpoint fetches it
    try {
      // No signal: a check takes a moment, and hundreds of them must not each listen for a stop.
      await d.audio.check(part.audio);
    } catch (e) {
      if (d.signal.aborted) throw cancelled();
      return reject(item, (e as Error).message);
    }
  }
  const messages = conv.messages.filter((m) => config.keepSystem || m.role !== 'system');
  if (!messages.some((m) => m.role === 'user')) return reject(item, 'no user turn to answer');
  const lastAssistant = messages.map((m) => m.role).lastIndexOf('assistant');
  const out: Message[] = [];
  const temperature = temperatureFor(config.temperature, config.seed, item.index);
  for (const [i, m] of messages.entries()) {
    const regenerate = m.role === 'assistant' && (config.turns === 'all' || i === lastAssistant);
    if (!regenerate) {
      out.push(m);
      continue;
    }
    if (out.at(-1)?.role !== 'user')
      return reject(item, `messages[${i}]: an assistant turn that follows no user turn`);
    const failed = await answerTurn(d, item, out, temperature);
    if (failed) return failed;
  }
  if (out.at(-1)?.role === 'user') {
    const failed = await answerTurn(d, item, out, temperature);
    if (failed) return failed;
  }
  const regenerated = relativeTo({ ...conv, messages: out }, item.relativeAudio ?? new Set(), dir);
  return { kind: 'ok', record: item.format.serialize(regenerated, { baseDir: dir }) };
}

/**
 * Asks the endpoints for the next assistant turn of `out` and appends it. Transport errors, 429
 * and 5xx are retried on the next endpoint for `retryMinutes` (an endpoint that stops answering
 * is waited for on its /health); a 4xx or a cut answer (`rejectTruncated`) rejects the record.
 */
async function answerTurn(
  d: AnswerDeps,
  item: InputRecord,
  out: Message[],
  temperature: number,
): Promise<Outcome | undefined> {
  const { config, pool, report } = d;
  let openai: Awaited<ReturnType<typeof toOpenAIMessages>>;
  try {
    openai = await toOpenAIMessages(out, config.audioMode);
  } catch (e) {
    return reject(item, (e as Error).message);
  }
  const body = {
    model: report.model,
    messages: openai,
    max_tokens: config.maxTokens,
    temperature,
    top_p: config.topP,
    ...(temperature > 0 ? { seed: (config.seed + item.index) % 2 ** 31 } : {}),
  };
  let failingSince: number | undefined;
  for (let attempt = 0; ; attempt++) {
    if (d.signal.aborted) throw cancelled();
    const url = pool.next();
    try {
      const res = await chatCompletion(url, body, {
        ...d.auth,
        signal: d.signal,
        timeoutMs: config.requestTimeoutSeconds * 1000,
      });
      const choice = res.choices[0]!;
      report.promptTokens += res.usage?.prompt_tokens ?? 0;
      report.completionTokens += res.usage?.completion_tokens ?? 0;
      if (choice.finish_reason === 'length' && config.rejectTruncated)
        return reject(item, `answer cut at max_tokens ${config.maxTokens} (finish_reason length)`);
      out.push({ role: 'assistant', content: [{ type: 'text', text: choice.message.content ?? '' }] });
      return undefined;
    } catch (e) {
      if (!(e instanceof OpenAIRequestError)) throw e;
      if (!e.retryable) return reject(item, e.message);
      failingSince ??= Date.now();
      const deadline = failingSince + config.retryMinutes * 60_000;
      if (Date.now() >= deadline || (config.retries !== undefined && attempt >= config.retries)) {
        throw new EagletError(
          'EAGLET_ENDPOINTS_DOWN',
          `record ${item.index} (${item.file}:${item.line}) failed ${attempt + 1} times over ${((Date.now() - failingSince) / 1000).toFixed(0)} s: ${e.message}`,
        );
      }
      report.retries++;
      d.log('warn', `${e.message}; retrying record ${item.index} (attempt ${attempt + 2})`);
      if (e.status === 0 || e.status === 502 || e.status === 503 || e.status === 504) {
        // The server is not answering (restarting?): wait until one answers its /health, then
        // retry at once, spread over a second so the waiting requests do not all land together.
        pool.markDown(url);
        await pool.waitForUp(deadline);
        await pool.sleep(Math.random() * 1000);
      } else await pool.sleep(backoff(config, attempt)); // 408, 429, other 5xx: the server asks for a pause
    }
  }
}
