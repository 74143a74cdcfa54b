import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { SileroVad } from '@eaglet/audio';
import {
  EagletError,
  type HubSource,
  type PluginRegistry,
  PREPARED_SCHEMA_VERSION,
  PrepareConfig,
  type PrepareConfigInput,
  PreparedManifest,
  readJsonl,
  resolveTarget,
} from '@eaglet/core';
import type { FlowContext } from '../../context.js';
import { claimOutputFolder } from '../../util/output-folder.js';
import { throttledProgress } from '../../util/progress.js';
import { EAGLET_VERSION } from '../../version.js';
import { dataFiles, type LocalSource, modelSource } from '../sources.js';
import { type Outcome, RecordWorker } from './record-worker.js';
import { openOutput } from './resume.js';
import { scanInputs } from './scan.js';

export type { RejectLine } from './record-worker.js';

/** What `eaglet data prepare` returns. */
export interface PrepareResult {
  out: string;
  manifest: PreparedManifest;
  /** The run found the folder already complete for these inputs and settings. */
  alreadyDone: boolean;
  /** Records skipped because an interrupted run had committed them (0 for a fresh run). */
  resumedAt: number;
  seconds: number;
}

/** Audio files one decoder process takes at a time. */
const DECODE_BATCH = 16;

/**
 * `eaglet data prepare`: jsonl conversations -> Arrow shards + manifest.json + rejects.jsonl.
 *
 * Every input record ends up either in a shard row or in rejects.jsonl (with its reason and raw
 * line). Each input file is read twice: once to scan it (hash, record count, format) and once to
 * do the work. Audio is decoded by the registered decoder in a pool sized to the cores; records
 * are processed concurrently but written in input order, so the output is deterministic. Progress
 * is committed at every shard boundary (resume.ts): a run killed at any moment and started again
 * with the same inputs and settings continues from the last commit and produces byte-identical
 * files, with nothing lost or duplicated. The output folder is locked for the run: a second
 * prepare into it is refused while this one runs.
 */
export async function prepareData(
  registry: PluginRegistry,
  input: PrepareConfigInput,
  ctx: FlowContext = {},
): Promise<PrepareResult> {
  const config = PrepareConfig.parse(input);
  // Inputs first (Hub ids fetched into the Hub cache): a missing one leaves no output folder behind.
  const model = await modelSource(config.model, ctx, 'model');
  const data = await dataFiles(config.data, ctx, 'data');
  const output = claimOutputFolder(resolve(config.out), 'eaglet data prepare');
  try {
    return await prepareInto(registry, config, { model, data }, ctx);
  } finally {
    output.release();
  }
}

async function prepareInto(
  registry: PluginRegistry,
  config: PrepareConfig,
  sources: { model: LocalSource; data: { files: string[]; hub: HubSource[] } },
  ctx: FlowContext,
): Promise<PrepareResult> {
  const started = Date.now();
  const out = resolve(config.out);
  const modelSrc = sources.model;
  const model = modelSrc.path;
  const { files, hub: dataHub } = sources.data;
  const target = resolveTarget(registry, config.target, model);
  const templateId = config.chatTemplate ?? target.chatTemplate;
  const info = await target.inspect(model);
  const session = await registry.template(templateId).load(model);
  const log = (message: string) => ctx.events?.({ type: 'log', level: 'info', message });

  const { inputs, formats } = await scanInputs(registry, files, config.format);
  const totalRecords = inputs.reduce((n, i) => n + i.records, 0);
  const fingerprint = createHash('sha256')
    .update(
      JSON.stringify({
        v: EAGLET_VERSION,
        schema: PREPARED_SCHEMA_VERSION,
        inputs: inputs.map((i) => [i.file, i.sha256, i.format]),
        target: target.id,
        templateId,
        tokenizer: session.tokenizer.hash,
        maxLength: config.maxLength,
        maxLengthPolicy: config.maxLengthPolicy,
        longAudioPolicy: config.longAudioPolicy,
        pauseThreshold: config.pauseThreshold,
        shardSize: config.shardSize,
      }),
    )
    .digest('hex');

  const opened = openOutput(out, fingerprint, config);
  if ('done' in opened) {
    log(`${out} is already prepared from these inputs and settings`);
    return { out, manifest: opened.done, alreadyDone: true, resumedAt: totalRecords, seconds: 0 };
  }
  const { output } = opened;
  const { state, resumedAt } = output;
  if (resumedAt > 0) log(`resuming ${out} after ${resumedAt} of ${totalRecords} records`);

  const processes = config.concurrency > 0 ? config.concurrency : availableParallelism();
  let vad: Promise<SileroVad> | undefined;
  const work = new RecordWorker({
    config,
    target,
    session,
    decoder: registry.service('audioDecoder')({ processes, batchSize: DECODE_BATCH }),
    vad: () => (vad ??= SileroVad.load()),
    warn: (message) => ctx.events?.({ type: 'log', level: 'warn', message }),
    ...(ctx.audioAccess ? { audioAccess: ctx.audioAccess } : {}),
  });
  const emit = throttledProgress(ctx.events, 'prepare', 'record', 200);
  const stopped = () =>
    new EagletError(
      'EAGLET_CANCELLED',
      `prepare stopped; ${state.nextRecord} of ${totalRecords} records are committed in ${out}`,
      { hint: 'run the same command again to resume from there' },
    );
  const consume = async (outcome: Outcome, index: number) => {
    // A stop request ends the run here; the last commit is the safe point it resumes from.
    if (ctx.signal?.aborted) throw stopped();
    await output.add(outcome, index, config.shardSize);
    emit(
      index + 1,
      totalRecords,
      `${state.counts.written} written, ${state.counts.rejected} rejected, ${state.stats.audioSeconds.toFixed(0)} s audio`,
    );
  };

  // The work pass: concurrent work, in-order results. Enough records in flight to fill every
  // decoder batch, and no more (memory stays bounded).
  const maxInFlight = processes * DECODE_BATCH * 2;
  const pending: Array<{ index: number; outcome: Promise<Outcome> }> = [];
  let index = 0;
  try {
    for (const [k, file] of files.entries()) {
      const baseDir = dirname(file);
      for await (const rec of readJsonl(file)) {
        const i = index++;
        if (i < resumedAt) continue;
        if (ctx.signal?.aborted) throw stopped();
        const outcome = work.run(rec, file, baseDir, formats[k]!, ctx.signal);
        // Awaited in order below; a later record may fail (e.g. cancelled) while an earlier one is
        // awaited, which must not count as an unhandled rejection.
        outcome.catch(() => {});
        pending.push({ index: i, outcome });
        while (pending.length >= maxInFlight) {
          const next = pending.shift()!;
          await consume(await next.outcome, next.index);
        }
      }
    }
    while (pending.length) {
      const next = pending.shift()!;
      await consume(await next.outcome, next.index);
    }
    await output.finish(index);
  } catch (e) {
    output.abort();
    await Promise.allSettled(pending.map((p) => p.outcome));
    throw ctx.signal?.aborted ? stopped() : e;
  } finally {
    output.close();
    if (vad) await (await vad).release();
  }

  const manifest = PreparedManifest.parse({
    schemaVersion: PREPARED_SCHEMA_VERSION,
    fingerprint,
    target: target.id,
    model,
    ...(modelSrc.hub || dataHub.length
      ? { sources: { ...(modelSrc.hub ? { model: modelSrc.hub } : {}), data: dataHub } }
      : {}),
    chatTemplate: templateId,
    vocabSize: info.vocabSize,
    tokenizerHash: session.tokenizer.hash,
    maxLength: config.maxLength,
    maxLengthPolicy: config.maxLengthPolicy,
    longAudioPolicy: config.longAudioPolicy,
    sampleRate: target.audio?.sampleRate ?? 16000,
    inputs,
    shards: state.shards,
    counts: state.counts,
    stats: {
      tokens: state.stats.tokens,
      lossTokens: state.stats.lossTokens,
      audioSeconds: state.stats.audioSeconds,
      audioClips: state.stats.audioClips,
      lengthHistogram: { edges: output.edges, counts: state.stats.histogram },
    },
    audioActions: state.audioActions,
    createdWith: `eaglet ${EAGLET_VERSION}`,
  });
  if (manifest.counts.records !== totalRecords) {
    throw new EagletError(
      'EAGLET_INTERNAL',
      `accounted for ${manifest.counts.records} of ${totalRecords} records; refusing to write a manifest`,
    );
  }
  const written = output.complete(manifest);
  ctx.events?.({ type: 'artifact', kind: 'manifest', path: written.manifest });
  ctx.events?.({ type: 'artifact', kind: 'rejects', path: written.rejects });
  ctx.events?.({
    type: 'artifact',
    kind: 'plot',
    path: written.plot,
    description: 'record-length histogram',
  });
  return { out, manifest, alreadyDone: false, resumedAt, seconds: (Date.now() - started) / 1000 };
}
