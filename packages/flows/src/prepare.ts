import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { type AudioDecoder, ffmpegDecoder, type Segment, SileroVad, segmentAtPauses } from '@eaglet/audio';
import {
  type AudioPart,
  audioParts,
  type ChatTemplateSession,
  type ContentPart,
  type Conversation,
  conversationIssues,
  type DataFormat,
  EagletError,
  isEagletError,
  type JsonlLine,
  type PluginRegistry,
  PREPARED_FILES,
  PREPARED_SCHEMA_VERSION,
  PrepareConfig,
  type PrepareConfigInput,
  PreparedManifest,
  packageVersion,
  readJsonFile,
  readJsonl,
  resolveTarget,
  shardFileName,
  type TargetModel,
} from '@eaglet/core';
import { type AudioAccess, refusedAudio } from './audio-access.js';
import { lengthHistogramSvg } from './histogram-svg.js';
import { claimOutputFolder } from './output-folder.js';
import { type PreparedRow, ShardWriter } from './prepared-io.js';
import { throttledProgress } from './progress.js';
import type { FlowContext } from './validate.js';
import { detectFormat } from './validate.js';

const EAGLET_VERSION = packageVersion(import.meta.url);
/** The record-length histogram as a picture, beside manifest.json. */
export const PREPARED_PLOT = 'lengths.svg';

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

/** A rejected record as written to rejects.jsonl. */
export interface RejectLine {
  file: string;
  line: number;
  id?: string;
  /** json | format | field | conversation | audio | long-audio | template | length */
  kind: string;
  code?: string;
  reason: string;
  raw: string;
}

type AudioAction = PreparedManifest['audioActions'][number];
type Outcome =
  | { ok: true; row: PreparedRow; actions: AudioAction[]; truncated: boolean; audioSeconds: number }
  | { ok: false; reject: RejectLine };

/** What an interrupted run leaves in progress.json: everything needed to continue identically. */
interface Progress {
  fingerprint: string;
  /** Records (non-blank input lines, over all files in order) fully handled and committed. */
  nextRecord: number;
  rejectsBytes: number;
  shards: PreparedManifest['shards'];
  counts: PreparedManifest['counts'];
  stats: Omit<PreparedManifest['stats'], 'lengthHistogram'> & { histogram: number[] };
  audioActions: AudioAction[];
}

/** Upper bin edges (tokens) of the length histogram: powers of two up to maxLength. */
function histogramEdges(maxLength: number): number[] {
  const edges: number[] = [];
  for (let e = 64; e < maxLength; e *= 2) edges.push(e);
  edges.push(maxLength);
  return edges;
}

/** sha256 of a file, and its non-blank lines (the records readJsonl yields). */
async function scanInput(file: string): Promise<{ sha256: string; records: number }> {
  const hash = createHash('sha256');
  const stream = createReadStream(file);
  stream.on('data', (c) => hash.update(c));
  let records = 0;
  for await (const line of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }))
    if (line.trim() !== '') records++;
  return { sha256: hash.digest('hex'), records };
}

/** The format of a file: fixed, or detected from its first record that some format recognises. */
async function fileFormat(
  registry: PluginRegistry,
  file: string,
  name: string,
): Promise<DataFormat | undefined> {
  if (name !== 'auto') return registry.format(name);
  for await (const rec of readJsonl(file)) {
    if (!rec.ok) continue;
    const f = detectFormat(registry, rec.value);
    if (f) return f;
  }
  return undefined;
}

const atomicWrite = (path: string, text: string) => {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  writeSync(fd, text);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
};

/**
 * `eaglet data prepare`: jsonl conversations -> Arrow shards + manifest.json + rejects.jsonl.
 *
 * Every input record ends up either in a shard row or in rejects.jsonl (with its reason and raw
 * line). Audio is decoded by ffmpeg in a pool sized to the cores; records are processed
 * concurrently but written in input order, so the output is deterministic. Progress is committed
 * at every shard boundary (shard renamed into place, rejects synced, then progress.json): a run
 * killed at any moment and started again with the same inputs and settings continues from the
 * last commit and produces byte-identical files, with nothing lost or duplicated. The output
 * folder is locked for the run: a second prepare into it is refused while this one runs.
 */
export async function prepareData(
  registry: PluginRegistry,
  input: PrepareConfigInput,
  ctx: FlowContext = {},
): Promise<PrepareResult> {
  const config = PrepareConfig.parse(input);
  const output = claimOutputFolder(resolve(config.out), 'eaglet data prepare');
  try {
    return await prepareInto(registry, config, ctx);
  } finally {
    output.release();
  }
}

async function prepareInto(
  registry: PluginRegistry,
  config: PrepareConfig,
  ctx: FlowContext,
): Promise<PrepareResult> {
  const started = Date.now();
  const out = resolve(config.out);
  const model = resolve(config.model);
  const files = config.data.map((f) => resolve(f));
  const target = resolveTarget(registry, config.target, model);
  const templateId = config.chatTemplate ?? target.chatTemplate;
  const info = await target.inspect(model);
  const session = await registry.template(templateId).load(model);
  const log = (message: string) => ctx.events?.({ type: 'log', level: 'info', message });

  // --- inputs -----------------------------------------------------------------------------------
  const inputs: PreparedManifest['inputs'] = [];
  const formats: DataFormat[] = [];
  for (const file of files) {
    if (!existsSync(file))
      throw new EagletError('EAGLET_INPUT_MISSING', `input file not found: ${file}`, {
        hint: 'check --data',
      });
    const scan = await scanInput(file);
    const format = await fileFormat(registry, file, config.format);
    if (!format && scan.records > 0) {
      throw new EagletError(
        'EAGLET_FORMAT_UNKNOWN',
        `no known data format recognises the records of ${file}`,
        {
          hint: `pass --format (known: ${registry.ids('format').join(', ')}); \`eaglet data validate\` lists what is wrong`,
        },
      );
    }
    formats.push(format ?? registry.formats()[0]!);
    inputs.push({ file, sha256: scan.sha256, format: format?.name ?? 'none', records: scan.records });
  }
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

  // --- the output folder: fresh, resumed or already done -----------------------------------------
  const manifestPath = join(out, PREPARED_FILES.manifest);
  const progressPath = join(out, PREPARED_FILES.progress);
  const rejectsPath = join(out, PREPARED_FILES.rejects);
  if (config.overwrite) {
    for (const f of readdirSync(out))
      if (
        /^shard-\d+\.arrow(\.tmp)?$/.test(f) ||
        f.startsWith(PREPARED_PLOT) ||
        Object.values(PREPARED_FILES).some((p) => f.startsWith(p))
      )
        rmSync(join(out, f), { force: true });
  }
  if (existsSync(manifestPath)) {
    const done = PreparedManifest.safeParse(readJsonFile(manifestPath, 'it (or pass --overwrite)'));
    if (done.success && done.data.fingerprint === fingerprint) {
      log(`${out} is already prepared from these inputs and settings`);
      return { out, manifest: done.data, alreadyDone: true, resumedAt: totalRecords, seconds: 0 };
    }
    throw new EagletError(
      'EAGLET_PREPARE_EXISTS',
      `${out} already holds prepared data from other inputs or settings`,
      {
        hint: 'choose another --out, or pass --overwrite to replace it',
      },
    );
  }
  let progress: Progress | undefined;
  if (existsSync(progressPath)) {
    const p = readJsonFile(progressPath, 'it (or pass --overwrite)') as Progress;
    if (p.fingerprint !== fingerprint) {
      throw new EagletError(
        'EAGLET_PREPARE_EXISTS',
        `${out} holds an unfinished run with other inputs or settings`,
        {
          hint: 'rerun with the same inputs and settings to resume it, or pass --overwrite to start again',
        },
      );
    }
    progress = p;
  }
  const edges = histogramEdges(config.maxLength);
  const state: Progress = progress ?? {
    fingerprint,
    nextRecord: 0,
    rejectsBytes: 0,
    shards: [],
    counts: { records: 0, written: 0, rejected: 0, truncated: 0 },
    stats: { tokens: 0, lossTokens: 0, audioSeconds: 0, audioClips: 0, histogram: edges.map(() => 0) },
    audioActions: [],
  };
  const resumedAt = state.nextRecord;
  // Drop whatever an interrupted run wrote after its last commit.
  for (const f of readdirSync(out)) {
    const m = /^shard-(\d+)\.arrow(\.tmp)?$/.exec(f);
    if (m && (m[2] || Number(m[1]) >= state.shards.length)) rmSync(join(out, f), { force: true });
  }
  const rejectsFd = openSync(rejectsPath, existsSync(rejectsPath) ? 'r+' : 'w');
  ftruncateSync(rejectsFd, state.rejectsBytes);
  let rejectsBytes = state.rejectsBytes;
  if (resumedAt > 0) log(`resuming ${out} after ${resumedAt} of ${totalRecords} records`);

  // --- workers ----------------------------------------------------------------------------------
  const processes = config.concurrency > 0 ? config.concurrency : availableParallelism();
  const batchSize = 16;
  const pool = ffmpegDecoder({ processes, batchSize });
  const spec = target.audio;
  let vad: Promise<SileroVad> | undefined;
  const warn = (message: string) => ctx.events?.({ type: 'log', level: 'warn', message });
  const work = new RecordWorker({
    config,
    target,
    session,
    pool,
    vad: () => (vad ??= SileroVad.load()),
    log,
    warn,
    ...(ctx.audioAccess ? { audioAccess: ctx.audioAccess } : {}),
  });
  // Enough records in flight to fill every ffmpeg batch, and no more (memory stays bounded).
  const maxInFlight = processes * batchSize * 2;
  const emit = throttledProgress(ctx.events, 'prepare', 'record', 200);
  let shard: ShardWriter | undefined;

  const commit = () => {
    fsyncSync(rejectsFd);
    state.rejectsBytes = rejectsBytes;
    atomicWrite(progressPath, JSON.stringify(state));
  };
  const consume = async (outcome: Outcome, index: number) => {
    // A stop request ends the run here; the last commit is the safe point it resumes from.
    if (ctx.signal?.aborted) throw stopped();
    state.counts.records++;
    if (!outcome.ok) {
      const text = `${JSON.stringify(outcome.reject)}\n`;
      rejectsBytes += writeSync(rejectsFd, text, rejectsBytes); // at the committed end, after a resume too
      state.counts.rejected++;
    } else {
      const { row } = outcome;
      shard ??= new ShardWriter(join(out, shardFileName(state.shards.length)));
      shard.add(row);
      state.counts.written++;
      if (outcome.truncated) state.counts.truncated++;
      state.stats.tokens += row.inputIds.length;
      state.stats.lossTokens += row.lossMask.reduce((n, v) => n + v, 0);
      state.stats.audioSeconds += outcome.audioSeconds;
      state.stats.audioClips += row.audio.length;
      const bin = edges.findIndex((e) => row.inputIds.length <= e);
      state.stats.histogram[bin < 0 ? edges.length - 1 : bin]!++;
      state.audioActions.push(...outcome.actions);
      if (shard.records === config.shardSize) {
        const closed = await shard.close();
        state.shards.push({ file: shardFileName(state.shards.length), ...closed });
        shard = undefined;
        state.nextRecord = index + 1;
        commit();
      }
    }
    emit(
      index + 1,
      totalRecords,
      `${state.counts.written} written, ${state.counts.rejected} rejected, ${state.stats.audioSeconds.toFixed(0)} s audio`,
    );
  };

  const stopped = () =>
    new EagletError(
      'EAGLET_CANCELLED',
      `prepare stopped; ${state.nextRecord} of ${totalRecords} records are committed in ${out}`,
      { hint: 'run the same command again to resume from there' },
    );

  // --- the pipeline: concurrent work, in-order results -------------------------------------------
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
    if (shard) {
      const closed = await shard.close();
      state.shards.push({ file: shardFileName(state.shards.length), ...closed });
      shard = undefined;
    }
    state.nextRecord = index;
    commit();
  } catch (e) {
    shard?.abort();
    await Promise.allSettled(pending.map((p) => p.outcome));
    throw ctx.signal?.aborted ? stopped() : e;
  } finally {
    closeSync(rejectsFd);
    if (vad) await (await vad).release();
  }

  const manifest = PreparedManifest.parse({
    schemaVersion: PREPARED_SCHEMA_VERSION,
    fingerprint,
    target: target.id,
    model,
    chatTemplate: templateId,
    vocabSize: info.vocabSize,
    tokenizerHash: session.tokenizer.hash,
    maxLength: config.maxLength,
    maxLengthPolicy: config.maxLengthPolicy,
    longAudioPolicy: config.longAudioPolicy,
    sampleRate: spec?.sampleRate ?? 16000,
    inputs,
    shards: state.shards,
    counts: state.counts,
    stats: {
      tokens: state.stats.tokens,
      lossTokens: state.stats.lossTokens,
      audioSeconds: state.stats.audioSeconds,
      audioClips: state.stats.audioClips,
      lengthHistogram: { edges, counts: state.stats.histogram },
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
  const plot = join(out, PREPARED_PLOT);
  atomicWrite(
    plot,
    lengthHistogramSvg(
      edges,
      state.stats.histogram,
      `${manifest.counts.written} records, ${manifest.stats.tokens} tokens`,
    ),
  );
  atomicWrite(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  rmSync(progressPath, { force: true });
  ctx.events?.({ type: 'artifact', kind: 'manifest', path: manifestPath });
  ctx.events?.({ type: 'artifact', kind: 'rejects', path: rejectsPath });
  ctx.events?.({ type: 'artifact', kind: 'plot', path: plot, description: 'record-length histogram' });
  return { out, manifest, alreadyDone: false, resumedAt, seconds: (Date.now() - started) / 1000 };
}

interface WorkerDeps {
  config: PrepareConfig;
  target: TargetModel;
  session: ChatTemplateSession;
  pool: AudioDecoder;
  vad: () => Promise<SileroVad>;
  log: (message: string) => void;
  warn: (message: string) => void;
  audioAccess?: AudioAccess;
}

/** Turns one input line into a shard row or a reject. Never throws for a bad record. */
class RecordWorker {
  constructor(private readonly d: WorkerDeps) {}

  async run(
    rec: JsonlLine,
    file: string,
    baseDir: string,
    format: DataFormat,
    signal?: AbortSignal,
  ): Promise<Outcome> {
    const reject = (kind: string, reason: string, extra: { id?: string; code?: string } = {}): Outcome => ({
      ok: false,
      reject: {
        file,
        line: rec.line,
        ...(extra.id ? { id: extra.id } : {}),
        kind,
        ...(extra.code ? { code: extra.code } : {}),
        reason,
        raw: rec.raw,
      },
    });
    if (!rec.ok) return reject('json', rec.error);
    if (!rec.value || typeof rec.value !== 'object' || Array.isArray(rec.value))
      return reject(
        'json',
        `a record must be a JSON object, got ${Array.isArray(rec.value) ? 'an array' : typeof rec.value}`,
      );
    const parsed = format.parse(rec.value, { file, line: rec.line, baseDir });
    if (!parsed.ok)
      return reject(
        'field',
        parsed.issues.map((i) => (i.path ? `${i.path}: ${i.reason}` : i.reason)).join('; '),
        parsed.id ? { id: parsed.id } : {},
      );
    const conv = parsed.conversation;
    const refused = refusedAudio(conv, format.messagesField, this.d.audioAccess);
    if (refused.length)
      return reject('audio', refused.map((i) => `${i.path}: ${i.reason}`).join('; '), { id: conv.id });
    const issues = conversationIssues(conv, { requireAssistant: true });
    if (issues.length)
      return reject(
        'conversation',
        issues.map((i) => `${i.path.replace(/^messages/, format.messagesField)}: ${i.reason}`).join('; '),
        { id: conv.id },
      );
    try {
      return await this.prepare(conv, signal);
    } catch (e) {
      if (!isEagletError(e)) throw e;
      if (e.code === 'EAGLET_CANCELLED') throw e;
      const kind = e.code.startsWith('EAGLET_AUDIO')
        ? 'audio'
        : e.code === 'EAGLET_LONG_AUDIO'
          ? 'long-audio'
          : e.code === 'EAGLET_TOO_LONG'
            ? 'length'
            : 'template';
      return reject(kind, e.message, { id: conv.id, code: e.code });
    }
  }

  private async prepare(conv: Conversation, signal?: AbortSignal): Promise<Outcome> {
    const { config, target, session } = this.d;
    const spec = target.audio;
    const parts = audioParts(conv);
    if (parts.length && !spec)
      throw new EagletError(
        'EAGLET_TEMPLATE_INPUT',
        `target ${target.id} takes no audio, the record has ${parts.length} audio parts`,
      );
    const rate = spec?.sampleRate ?? 16000;
    const maxSamples = Math.round((spec?.maxSeconds ?? 30) * rate);
    const decoded = await Promise.all(
      parts.map(async (part, k) => {
        const audio = await this.d.pool.decode(part.audio, {
          sampleRate: rate,
          ...(signal ? { signal } : {}),
        });
        let pcm = audio.pcm;
        if (part.start !== undefined || part.end !== undefined) {
          pcm = pcm.subarray(
            Math.round((part.start ?? 0) * rate),
            part.end === undefined ? undefined : Math.round(part.end * rate),
          );
          if (pcm.length === 0)
            throw new EagletError(
              'EAGLET_AUDIO_EMPTY',
              `audio part ${k + 1}: the clip window [${part.start}, ${part.end}] s is empty`,
            );
        }
        return pcm;
      }),
    );
    // Long-audio policy, per part.
    const actions: AudioAction[] = [];
    const clipsPerPart: Float32Array[][] = [];
    for (const [k, pcm] of decoded.entries()) {
      const seconds = pcm.length / rate;
      if (pcm.length <= maxSamples) {
        clipsPerPart.push([pcm]);
        continue;
      }
      const where = { id: conv.id, file: conv.source.file, line: conv.source.line, part: k, seconds };
      if (config.longAudioPolicy === 'reject') {
        throw new EagletError(
          'EAGLET_LONG_AUDIO',
          `audio part ${k + 1} (${parts[k]!.audio}) is ${seconds.toFixed(2)} s, longer than the ${maxSamples / rate} s the encoder sees (long-audio policy: reject)`,
        );
      }
      if (config.longAudioPolicy === 'truncate') {
        clipsPerPart.push([pcm.subarray(0, maxSamples)]);
        actions.push({ ...where, action: 'truncated' });
        continue;
      }
      const vad = await this.d.vad();
      const probs = await vad.probabilities(pcm);
      const { segments, hardCuts } = segmentAtPauses(pcm.length, probs, {
        maxSamples,
        pauseThreshold: config.pauseThreshold,
      });
      clipsPerPart.push(segments.map((s: Segment) => pcm.subarray(s.start, s.end)));
      actions.push({
        ...where,
        action: 'segmented',
        segments: segments.map((s) => [s.start / rate, s.end / rate]),
        hardCuts,
      });
      if (hardCuts > 0) {
        this.d.warn(
          `${conv.source.file}:${conv.source.line}: audio part ${k + 1} has no pause in ${hardCuts} window(s); cut at ${maxSamples / rate} s there`,
        );
      }
    }
    // A segmented part becomes consecutive audio parts of the same message.
    let k = 0;
    const messages = conv.messages.map((m) => ({
      ...m,
      content: m.content.flatMap((p): ContentPart[] => {
        if (p.type !== 'audio') return [p];
        const clips = clipsPerPart[k++]!;
        return clips.map((): AudioPart => ({ type: 'audio', audio: p.audio }));
      }),
    }));
    const clips = clipsPerPart.flat();
    const rendered = session.render(
      { ...conv, messages },
      clips.map((c) => ({ samples: c.length })),
    );
    let inputIds = rendered.inputIds;
    let lossMask = rendered.lossMask;
    let truncated = false;
    if (inputIds.length > config.maxLength) {
      if (config.maxLengthPolicy === 'reject') {
        throw new EagletError(
          'EAGLET_TOO_LONG',
          `${inputIds.length} tokens, more than maxLength ${config.maxLength} (policy: reject)`,
        );
      }
      const audioId = this.audioTokenId();
      const cut = config.maxLength;
      if (audioId !== undefined && inputIds[cut - 1] === audioId && inputIds[cut] === audioId) {
        throw new EagletError(
          'EAGLET_TOO_LONG',
          `${inputIds.length} tokens; cutting at maxLength ${config.maxLength} would split an audio clip's placeholders`,
        );
      }
      inputIds = inputIds.slice(0, config.maxLength);
      lossMask = lossMask.slice(0, config.maxLength);
      truncated = true;
    }
    if (!lossMask.includes(1))
      throw new EagletError(
        'EAGLET_TOO_LONG',
        `no assistant token within maxLength ${config.maxLength}: nothing to train on`,
      );
    // Keep only clips whose placeholders survived truncation.
    let audioTokenCounts = rendered.audioTokenCounts;
    let keptClips = clips;
    if (truncated) {
      const audioId = this.audioTokenId()!;
      let placeholders = inputIds.reduce((n, id) => n + (id === audioId ? 1 : 0), 0);
      const keep: number[] = [];
      for (const c of audioTokenCounts) {
        if (placeholders >= c) {
          keep.push(c);
          placeholders -= c;
        } else break;
      }
      audioTokenCounts = keep;
      keptClips = clips.slice(0, keep.length);
    }
    return {
      ok: true,
      row: {
        id: conv.id,
        sourceFile: conv.source.file,
        sourceLine: conv.source.line,
        inputIds,
        lossMask,
        audio: keptClips.map((c) => Float32Array.from(c)),
        audioTokenCounts,
      },
      actions,
      truncated,
      audioSeconds: keptClips.reduce((n, c) => n + c.length / rate, 0),
    };
  }

  private audioTokenId(): number | undefined {
    return this.d.target.audio && this.d.session.tokenizer.tokenId(this.d.target.audio.placeholder);
  }
}
