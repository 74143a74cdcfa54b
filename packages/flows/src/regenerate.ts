import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ffmpegDecoder } from '@eaglet/audio';
import {
  audioParts,
  type Conversation,
  chatCompletion,
  type DataFormat,
  EagletError,
  listModels,
  type Message,
  OpenAIRequestError,
  type PluginRegistry,
  type RegenerateConfig,
  type RegenerateConfigInput,
  RegenerateConfig as RegenerateConfigSchema,
  readJsonFile,
  readJsonl,
  type TemperaturePolicy,
  toOpenAIMessages,
} from '@eaglet/core';
import { refusedAudio } from './audio-access.js';
import { EndpointPool } from './endpoints.js';
import { Limiter } from './limit.js';
import { claimOutputFolder } from './output-folder.js';
import { throttledProgress } from './progress.js';
import {
  completeLines,
  type OutputSet,
  outputSets,
  relativeAudioRefs,
  relativeTo,
  shardFiles,
  shardName,
} from './regenerate-output.js';
import { detectFormat, type FlowContext } from './validate.js';

/** What `eaglet data regenerate` did. */
export interface RegenerateReport {
  outputDir: string;
  model: string;
  endpoints: string[];
  /** Input records (every non-blank line of every input file). */
  total: number;
  /** Records already done by an earlier run (resume). */
  resumed: number;
  /** Records answered this run. */
  written: number;
  /** Records sent to rejects.jsonl this run. */
  rejected: number;
  /** Requests retried after a transport error, 429 or 5xx. */
  retries: number;
  /** Output shards, in input order (each input's set in turn). */
  shards: string[];
  rejectsFile: string;
  promptTokens: number;
  completionTokens: number;
  seconds: number;
  /** True when stopped on request; run again to continue. */
  stopped: boolean;
}

/** One line of rejects.jsonl. */
export interface RegenerateReject {
  index: number;
  file: string;
  line: number;
  id?: string;
  reason: string;
}

const MANIFEST = 'regenerate.json';
const REJECTS = 'rejects.jsonl';
/** The longest pause between retries after a 429 or 5xx. */
const MAX_BACKOFF_MS = 30_000;

/** mulberry32 over (seed, index): a per-record number in [0, 1) that a resumed run reproduces. */
function unitHash(seed: number, index: number): number {
  let t = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** The sampling temperature of record `index` under a policy. */
export function temperatureFor(policy: number | TemperaturePolicy, seed: number, index: number): number {
  if (typeof policy === 'number') return policy;
  const u = unitHash(seed, index);
  switch (policy.kind) {
    case 'fixed':
      return policy.value;
    case 'uniform':
      return policy.min + (policy.max - policy.min) * u;
    case 'choice':
      return policy.values[Math.floor(u * policy.values.length)]!;
  }
}

type Outcome = { kind: 'ok'; record: unknown } | { kind: 'reject'; reject: RegenerateReject };

interface InputRecord {
  index: number;
  file: string;
  line: number;
  format?: DataFormat;
  conversation?: Conversation;
  /** Audio the input named by relative path (kept relative in the output). */
  relativeAudio?: Set<string>;
  problem?: string;
  id?: string;
}

/**
 * `eaglet data regenerate`: answers the user turns of every record again with the target model
 * through OpenAI-compatible endpoints (round-robin, `concurrency` requests in flight), in order
 * for multi-turn records (each turn sees the regenerated earlier turns), and writes the records in
 * their input format to shards `data_{start}-{end}.jsonl`, in input order, one output set per
 * input file (regenerate-output.ts), audio paths relative where the input's were.
 *
 * Nothing is lost or duplicated: each input record is committed exactly once, in input order,
 * either as an output line or as a line of rejects.jsonl (with its reason); a run that stops
 * (Ctrl-C, endpoints down past the retry budget, a killed process) leaves a committed prefix, and
 * the next run with the same output folder continues after it; the folder is locked while a run
 * writes it. Transport errors, 429 and 5xx are retried on the next endpoint for `retryMinutes`
 * (an endpoint that stops answering is waited for on its /health); a 4xx rejects the record, as
 * does audio that is refused, unreadable or truncated (checked here, before it is sent).
 */
export async function regenerate(
  registry: PluginRegistry,
  input: RegenerateConfigInput,
  ctx: FlowContext = {},
): Promise<RegenerateReport> {
  const config = RegenerateConfigSchema.parse(input);
  const output = claimOutputFolder(resolve(config.outputDir), 'eaglet data regenerate');
  try {
    return await regenerateInto(registry, config, ctx);
  } finally {
    output.release();
  }
}

async function regenerateInto(
  registry: PluginRegistry,
  config: RegenerateConfig,
  ctx: FlowContext,
): Promise<RegenerateReport> {
  const started = performance.now();
  const outputDir = resolve(config.outputDir);
  const endpoints = config.endpoints.length
    ? config.endpoints.map((u) => u.replace(/\/$/, ''))
    : Array.from(
        { length: config.numEndpoints },
        (_, i) => `http://${config.host}:${config.basePort + i}/v1`,
      );
  const files = config.data.map((f) => resolve(f));
  const fixed = config.format !== 'auto' ? registry.format(config.format) : undefined;
  const auth = config.apiKey ? { apiKey: config.apiKey } : {};
  const log = (level: 'info' | 'warn', message: string) => ctx.events?.({ type: 'log', level, message });

  // Count records first: shard names carry each input's total, and progress needs it.
  const counts: number[] = [];
  for (const f of files) {
    if (!existsSync(f)) throw new EagletError('EAGLET_INPUT_MISSING', `input file ${f} does not exist`);
    let n = 0;
    for await (const _ of readJsonl(f)) n++;
    counts.push(n);
  }
  const total = counts.reduce((a, b) => a + b, 0);
  const sets = outputSets(outputDir, files, counts);
  const setOf = (index: number): OutputSet => sets.findLast((s) => s.offset <= index)!;

  // Resume: the committed prefix is every output line plus every reject, in input order.
  const manifestPath = join(outputDir, MANIFEST);
  const identity = {
    data: files,
    shardSize: config.shardSize,
    total,
    ...(sets.length > 1 ? { sets: sets.map((s) => s.dir) } : {}),
  };
  if (existsSync(manifestPath)) {
    const prev = readJsonFile(manifestPath, 'it, or choose a new output folder') as {
      identity?: typeof identity;
    };
    if (JSON.stringify(prev.identity) !== JSON.stringify(identity)) {
      throw new EagletError(
        'EAGLET_RESUME_MISMATCH',
        `${outputDir} holds a run over other inputs or another shard size (${JSON.stringify(prev.identity)})`,
        { hint: 'use a new output folder, or the same data and shardSize as that run' },
      );
    }
    if (!config.resume)
      throw new EagletError('EAGLET_OUTPUT_EXISTS', `${outputDir} holds an earlier run and resume is off`);
  }
  const rejectsFile = join(outputDir, REJECTS);
  const written = sets.flatMap(shardFiles).reduce((n, f) => n + completeLines(f).length, 0);
  const rejectedBefore = completeLines(rejectsFile).length;
  const committedBefore = written + rejectedBefore;
  if (committedBefore > total)
    throw new EagletError(
      'EAGLET_RESUME_MISMATCH',
      `${outputDir} holds ${committedBefore} records for ${total} inputs`,
    );
  writeFileSync(manifestPath, `${JSON.stringify({ identity, config, endpoints }, null, 2)}\n`);
  for (const set of sets) mkdirSync(set.dir, { recursive: true }); // inside the output folder, which exists
  if (committedBefore) log('info', `resuming: ${committedBefore} of ${total} records already done`);

  const report: RegenerateReport = {
    outputDir,
    model: config.model ?? '',
    endpoints,
    total,
    resumed: committedBefore,
    written: 0,
    rejected: 0,
    retries: 0,
    shards: [],
    rejectsFile,
    promptTokens: 0,
    completionTokens: 0,
    seconds: 0,
    stopped: false,
  };
  if (committedBefore === total) return finish();

  const abort = new AbortController();
  const pool = new EndpointPool(endpoints, { signal: abort.signal, ...auth });
  report.model = config.model ?? (await firstModel());

  // The ordered writer: outcomes arrive in any order and are committed in input order.
  let next = committedBefore;
  const pending = new Map<number, Outcome>();
  const commit = () => {
    for (let o = pending.get(next); o; o = pending.get(next)) {
      pending.delete(next);
      if (o.kind === 'ok') {
        const set = setOf(next);
        const name = shardName(next - set.offset, config.shardSize, set.records);
        appendFileSync(join(set.dir, name), `${JSON.stringify(o.record)}\n`);
        report.written++;
      } else {
        appendFileSync(rejectsFile, `${JSON.stringify(o.reject)}\n`);
        report.rejected++;
      }
      next++;
    }
    progress(next, total);
  };
  const progress = throttledProgress(ctx.events, 'regenerate', 'record', 250);

  const limiter = new Limiter(config.concurrency);
  const window = new Limiter(config.concurrency * 4); // records started but not committed
  let fatal: EagletError | undefined;
  const stop = () => abort.abort();
  ctx.signal?.addEventListener('abort', stop, { once: true });
  // Audio is checked here (allowed, readable, complete) before it is sent: an endpoint that
  // decodes it differently must not answer a truncated clip or read what a playlist names.
  const audio = ffmpegDecoder();
  const inFlight = new Set<Promise<void>>();

  try {
    let index = -1;
    outer: for (const file of files) {
      let format = fixed;
      for await (const rec of readJsonl(file)) {
        index++;
        if (index < committedBefore) continue;
        if (abort.signal.aborted || fatal) break outer;
        const item: InputRecord = { index, file, line: rec.line };
        if (!rec.ok) item.problem = rec.error;
        else {
          format ??= detectFormat(registry, rec.value);
          if (!format)
            item.problem = `no known format recognises this record (known: ${registry.ids('format').join(', ')})`;
          else {
            const parsed = format.parse(rec.value, { file, line: rec.line, baseDir: dirname(file) });
            item.format = format;
            const refused = parsed.ok
              ? refusedAudio(parsed.conversation, format.messagesField, ctx.audioAccess)
              : [];
            if (parsed.ok && refused.length) {
              item.problem = refused.map((i) => `${i.path}: ${i.reason}`).join('; ');
              item.id = parsed.conversation.id;
            } else if (parsed.ok) {
              item.conversation = parsed.conversation;
              item.relativeAudio = relativeAudioRefs(
                format,
                rec.value,
                { file, line: rec.line },
                parsed.conversation,
              );
              item.id = parsed.conversation.id;
            } else {
              item.problem = parsed.issues.map((i) => `${i.path || '(record)'}: ${i.reason}`).join('; ');
              if (parsed.id) item.id = parsed.id;
            }
          }
        }
        const releaseWindow = await window.acquire();
        const task = limiter
          .run(() => processRecord(item))
          .then((outcome) => {
            pending.set(item.index, outcome);
            commit();
          })
          .catch((e) => {
            // Not committed: the next run retries this record.
            if (!abort.signal.aborted)
              fatal ??=
                e instanceof EagletError
                  ? e
                  : new EagletError('EAGLET_REGENERATE', (e as Error).message, { cause: e });
            abort.abort();
          })
          .finally(() => {
            releaseWindow();
            inFlight.delete(task);
          });
        inFlight.add(task);
      }
    }
    await Promise.all(inFlight);
  } finally {
    ctx.signal?.removeEventListener('abort', stop);
  }
  if (fatal) {
    throw new EagletError(
      fatal.code,
      `${fatal.message}\n${next} of ${total} records are done (${report.written} written, ${report.rejected} rejected this run)`,
      { hint: 'check the endpoints, then run the same command again: it continues where this run stopped' },
    );
  }
  report.stopped = next < total;
  return finish();

  function finish(): RegenerateReport {
    report.shards = sets.flatMap(shardFiles);
    report.seconds = (performance.now() - started) / 1000;
    ctx.events?.({
      type: 'progress',
      task: 'regenerate',
      done: report.resumed + report.written + report.rejected,
      total,
      unit: 'record',
    });
    for (const s of report.shards) ctx.events?.({ type: 'artifact', kind: 'shard', path: s });
    if (existsSync(rejectsFile)) ctx.events?.({ type: 'artifact', kind: 'rejects', path: rejectsFile });
    return report;
  }

  /** The served model, from the first endpoint that answers within a few tries (a run starts only against live servers). */
  async function firstModel(): Promise<string> {
    let last: unknown;
    for (let attempt = 0; attempt <= (config.retries ?? 4); attempt++) {
      for (const url of endpoints) {
        try {
          const models = await listModels(url, { ...auth, timeoutMs: 30_000 });
          if (models[0]) return models[0];
        } catch (e) {
          last = e;
        }
      }
      await pool.sleep(backoff(attempt));
    }
    throw new EagletError(
      'EAGLET_ENDPOINTS_DOWN',
      `no endpoint answered /v1/models (${endpoints.join(', ')}): ${(last as Error)?.message}`,
      {
        hint: 'start the servers first (`eaglet backend serve ...` or `vllm serve ... --port BASE_PORT+i`), or pass --model',
      },
    );
  }

  function backoff(attempt: number): number {
    return Math.min(MAX_BACKOFF_MS, config.backoffSeconds * 1000 * 2 ** attempt) * (0.5 + Math.random());
  }

  function reject(item: InputRecord, reason: string): Outcome {
    return {
      kind: 'reject',
      reject: {
        index: item.index,
        file: item.file,
        line: item.line,
        ...(item.id ? { id: item.id } : {}),
        reason,
      },
    };
  }

  async function processRecord(item: InputRecord): Promise<Outcome> {
    if (item.problem || !item.conversation || !item.format)
      return reject(item, item.problem ?? 'unreadable record');
    const conv = item.conversation;
    for (const part of audioParts(conv)) {
      if (/^https?:/i.test(part.audio)) continue; // the endpoint fetches it
      try {
        // No signal: a check takes a moment, and hundreds of them must not each listen for a stop.
        await audio.check(part.audio);
      } catch (e) {
        if (abort.signal.aborted) throw new EagletError('EAGLET_CANCELLED', 'stopped');
        return reject(item, (e as Error).message);
      }
    }
    const messages = conv.messages.filter((m) => config.keepSystem || m.role !== 'system');
    if (!messages.some((m) => m.role === 'user')) return reject(item, 'no user turn to answer');
    const lastAssistant = messages.map((m) => m.role).lastIndexOf('assistant');
    const out: Message[] = [];
    const temperature = temperatureFor(config.temperature, config.seed, item.index);
    const answer = async (): Promise<Outcome | undefined> => {
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
        if (abort.signal.aborted) throw new EagletError('EAGLET_CANCELLED', 'stopped');
        const url = pool.next();
        try {
          const res = await chatCompletion(url, body, {
            ...auth,
            signal: abort.signal,
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
          log('warn', `${e.message}; retrying record ${item.index} (attempt ${attempt + 2})`);
          if (e.status === 0 || e.status === 502 || e.status === 503 || e.status === 504) {
            // The server is not answering (restarting?): wait until one answers its /health, then
            // retry at once, spread over a second so the waiting requests do not all land together.
            pool.markDown(url);
            await pool.waitForUp(deadline);
            await pool.sleep(Math.random() * 1000);
          } else await pool.sleep(backoff(attempt)); // 408, 429, other 5xx: the server asks for a pause
        }
      }
    };
    for (const [i, m] of messages.entries()) {
      const regenerate = m.role === 'assistant' && (config.turns === 'all' || i === lastAssistant);
      if (!regenerate) {
        out.push(m);
        continue;
      }
      if (out.at(-1)?.role !== 'user')
        return reject(item, `messages[${i}]: an assistant turn that follows no user turn`);
      const failed = await answer();
      if (failed) return failed;
    }
    if (out.at(-1)?.role === 'user') {
      const failed = await answer();
      if (failed) return failed;
    }
    const dir = setOf(item.index).dir;
    const regenerated = relativeTo({ ...conv, messages: out }, item.relativeAudio ?? new Set(), dir);
    return { kind: 'ok', record: item.format.serialize(regenerated, { baseDir: dir }) };
  }
}
