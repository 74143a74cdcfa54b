import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  EagletError,
  listModels,
  type PluginRegistry,
  type RegenerateConfig,
  type RegenerateConfigInput,
  RegenerateConfig as RegenerateConfigSchema,
  readJsonFile,
  readJsonl,
} from '@eaglet/core';
import type { FlowContext } from '../../context.js';
import { Limiter } from '../../util/limit.js';
import { claimOutputFolder } from '../../util/output-folder.js';
import { throttledProgress } from '../../util/progress.js';
import { dataFiles } from '../sources.js';
import { type AnswerDeps, answerRecord, backoff, type Outcome } from './answer.js';
import { EndpointPool } from './endpoints.js';
import { readInputRecord } from './input-record.js';
import { completeLines, type OutputSet, outputSets, shardFiles, shardName } from './regenerate-output.js';

export type { RegenerateReject } from './answer.js';
export { temperatureFor } from './temperature.js';

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

const MANIFEST = 'regenerate.json';
const REJECTS = 'rejects.jsonl';

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
  const { files } = await dataFiles(config.data, ctx, 'data');
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
  const answering: AnswerDeps = {
    config,
    pool,
    signal: abort.signal,
    // Audio is checked here (allowed, readable, complete) before it is sent: an endpoint that
    // decodes it differently must not answer a truncated clip or read what a playlist names.
    audio: registry.service('audioDecoder')(),
    auth,
    report,
    log,
  };
  const inFlight = new Set<Promise<void>>();

  try {
    let index = -1;
    outer: for (const file of files) {
      let format = fixed;
      for await (const rec of readJsonl(file)) {
        index++;
        if (index < committedBefore) continue;
        if (abort.signal.aborted || fatal) break outer;
        const item = readInputRecord(registry, rec, { file, index, format }, ctx.audioAccess);
        format ??= item.format;
        const releaseWindow = await window.acquire();
        const task = limiter
          .run(() => answerRecord(answering, item, setOf(item.index).dir))
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
      await pool.sleep(backoff(config, attempt));
    }
    throw new EagletError(
      'EAGLET_ENDPOINTS_DOWN',
      `no endpoint answered /v1/models (${endpoints.join(', ')}): ${(last as Error)?.message}`,
      {
        hint: 'start the servers first (`eaglet backend serve ...` or `vllm serve ... --port BASE_PORT+i`), or pass --model',
      },
    );
  }
}
