import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  type Conversation,
  chatCompletion,
  type DataFormat,
  EagletError,
  listModels,
  type Message,
  OpenAIRequestError,
  type PluginRegistry,
  type RegenerateConfig,
  RegenerateConfig as RegenerateConfigSchema,
  readJsonl,
  type TemperaturePolicy,
  toOpenAIMessages,
} from '@eaglet/core';
import { refusedAudio } from './audio-access.js';
import { Limiter } from './limit.js';
import { throttledProgress } from './progress.js';
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

/** Output shard of input record `index`: `data_{start}-{end}.jsonl`, end exclusive (the seed's naming). */
export function shardName(index: number, shardSize: number, total: number): string {
  const start = Math.floor(index / shardSize) * shardSize;
  return `data_${start}-${Math.min(start + shardSize, total)}.jsonl`;
}

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

/** Lines of a jsonl file that are complete; a partial last line (a killed writer) is cut off. */
function completeLines(path: string): string[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const end = text.lastIndexOf('\n') + 1;
  if (end < Buffer.byteLength(text)) truncateSync(path, Buffer.byteLength(text.slice(0, end)));
  return text.slice(0, end).split('\n').filter(Boolean);
}

type Outcome = { kind: 'ok'; record: unknown } | { kind: 'reject'; reject: RegenerateReject };

interface InputRecord {
  index: number;
  file: string;
  line: number;
  format?: DataFormat;
  conversation?: Conversation;
  problem?: string;
  id?: string;
}

/**
 * `eaglet data regenerate`: answers the user turns of every record again with the target model
 * through OpenAI-compatible endpoints (round-robin, `concurrency` requests in flight), in order
 * for multi-turn records (each turn sees the regenerated earlier turns), and writes the records in
 * their input format to shards `data_{start}-{end}.jsonl`, in input order.
 *
 * Nothing is lost or duplicated: each input record is committed exactly once, in input order,
 * either as an output line or as a line of rejects.jsonl (with its reason); a run that stops
 * (Ctrl-C, endpoints down past the retries, a killed process) leaves a committed prefix, and the
 * next run with the same output folder continues after it. Transport errors, 429 and 5xx are
 * retried with exponential backoff on the next endpoint; a 4xx rejects the record.
 */
export async function regenerate(
  registry: PluginRegistry,
  input: RegenerateConfig,
  ctx: FlowContext = {},
): Promise<RegenerateReport> {
  const config = RegenerateConfigSchema.parse(input);
  const started = performance.now();
  const outputDir = resolve(config.outputDir);
  mkdirSync(outputDir, { recursive: true });
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

  // Count records first: shard names carry the total, and progress needs it.
  let total = 0;
  for (const f of files) {
    if (!existsSync(f)) throw new EagletError('EAGLET_INPUT_MISSING', `input file ${f} does not exist`);
    for await (const _ of readJsonl(f)) total++;
  }

  // Resume: the committed prefix is every output line plus every reject, in input order.
  const manifestPath = join(outputDir, MANIFEST);
  const identity = { data: files, shardSize: config.shardSize, total };
  if (existsSync(manifestPath)) {
    const prev = JSON.parse(readFileSync(manifestPath, 'utf8')) as { identity?: typeof identity };
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
  const shardFiles = readdirSync(outputDir).filter((f) => /^data_\d+-\d+\.jsonl$/.test(f));
  const written = shardFiles.reduce((n, f) => n + completeLines(join(outputDir, f)).length, 0);
  const rejectedBefore = completeLines(rejectsFile).length;
  const committedBefore = written + rejectedBefore;
  if (committedBefore > total)
    throw new EagletError(
      'EAGLET_RESUME_MISMATCH',
      `${outputDir} holds ${committedBefore} records for ${total} inputs`,
    );
  writeFileSync(manifestPath, `${JSON.stringify({ identity, config, endpoints }, null, 2)}\n`);
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

  report.model = config.model ?? (await firstModel());

  // The ordered writer: outcomes arrive in any order and are committed in input order.
  let next = committedBefore;
  const pending = new Map<number, Outcome>();
  const shards = new Set<string>(shardFiles);
  const commit = () => {
    for (let o = pending.get(next); o; o = pending.get(next)) {
      pending.delete(next);
      if (o.kind === 'ok') {
        const name = shardName(next, config.shardSize, total);
        shards.add(name);
        appendFileSync(join(outputDir, name), `${JSON.stringify(o.record)}\n`);
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
  let endpointTurn = 0;
  let fatal: EagletError | undefined;
  const abort = new AbortController();
  const stop = () => abort.abort();
  ctx.signal?.addEventListener('abort', stop, { once: true });
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
    report.shards = [...new Set([...readdirSync(outputDir).filter((f) => /^data_\d+-\d+\.jsonl$/.test(f))])]
      .sort((a, b) => Number(a.split(/[_-]/)[1]) - Number(b.split(/[_-]/)[1]))
      .map((f) => join(outputDir, f));
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

  async function firstModel(): Promise<string> {
    let last: unknown;
    for (let attempt = 0; attempt <= config.retries; attempt++) {
      for (const url of endpoints) {
        try {
          const models = await listModels(url, { ...auth, timeoutMs: 30_000 });
          if (models[0]) return models[0];
        } catch (e) {
          last = e;
        }
      }
      await sleep(backoff(attempt));
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
    return config.backoffSeconds * 1000 * 2 ** attempt * (0.5 + Math.random());
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
      for (let attempt = 0; ; attempt++) {
        if (abort.signal.aborted) throw new EagletError('EAGLET_CANCELLED', 'stopped');
        const url = endpoints[endpointTurn++ % endpoints.length]!;
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
          if (attempt >= config.retries) {
            throw new EagletError(
              'EAGLET_ENDPOINTS_DOWN',
              `record ${item.index} (${item.file}:${item.line}) failed ${attempt + 1} times: ${e.message}`,
            );
          }
          report.retries++;
          log(
            'warn',
            `${e.message}; retrying record ${item.index} (attempt ${attempt + 2} of ${config.retries + 1})`,
          );
          await sleep(backoff(attempt), abort.signal);
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
    const regenerated: Conversation = { ...conv, messages: out };
    return { kind: 'ok', record: item.format.serialize(regenerated, { baseDir: outputDir }) };
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
