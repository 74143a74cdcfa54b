import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { EagletError, PREPARED_FILES, PreparedManifest, readJsonFile, shardFileName } from '@eaglet/core';
import { lengthHistogramSvg } from '../../util/histogram-svg.js';
import { ShardWriter } from '../prepared-io.js';
import type { AudioAction, Outcome } from './record-worker.js';

/** The record-length histogram as a picture, beside manifest.json. */
const PREPARED_PLOT = 'lengths.svg';

/** What an interrupted run leaves in progress.json: everything needed to continue identically. */
export interface Progress {
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
export function histogramEdges(maxLength: number): number[] {
  const edges: number[] = [];
  for (let e = 64; e < maxLength; e *= 2) edges.push(e);
  edges.push(maxLength);
  return edges;
}

const atomicWrite = (path: string, text: string) => {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  writeSync(fd, text);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
};

const SHARD = /^shard-(\d+)\.arrow(\.tmp)?$/;

/**
 * The output folder of a prepare run, as the run with this `fingerprint` (inputs and settings)
 * finds it: already complete (`done`: its manifest), or a `ResumableOutput` that continues from
 * the last commit (from nothing in a fresh folder). `overwrite` first deletes what a prepare run
 * writes. A folder holding another run's results or unfinished work is refused.
 */
export function openOutput(
  out: string,
  fingerprint: string,
  options: { overwrite: boolean; maxLength: number },
): { done: PreparedManifest } | { output: ResumableOutput } {
  const manifestPath = join(out, PREPARED_FILES.manifest);
  const progressPath = join(out, PREPARED_FILES.progress);
  if (options.overwrite) {
    for (const f of readdirSync(out))
      if (
        SHARD.test(f) ||
        f.startsWith(PREPARED_PLOT) ||
        Object.values(PREPARED_FILES).some((p) => f.startsWith(p))
      )
        rmSync(join(out, f), { force: true });
  }
  if (existsSync(manifestPath)) {
    const done = PreparedManifest.safeParse(readJsonFile(manifestPath, 'it (or pass --overwrite)'));
    if (done.success && done.data.fingerprint === fingerprint) return { done: done.data };
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
  const edges = histogramEdges(options.maxLength);
  const state: Progress = progress ?? {
    fingerprint,
    nextRecord: 0,
    rejectsBytes: 0,
    shards: [],
    counts: { records: 0, written: 0, rejected: 0, truncated: 0 },
    stats: { tokens: 0, lossTokens: 0, audioSeconds: 0, audioClips: 0, histogram: edges.map(() => 0) },
    audioActions: [],
  };
  return { output: new ResumableOutput(out, state, edges) };
}

/**
 * Where a run's outcomes go, in input order: rows into Arrow shards, rejects into rejects.jsonl,
 * counts and statistics into the state. Progress is committed at every shard boundary (shard
 * renamed into place, rejects synced, then progress.json), so a run killed at any moment and
 * started again continues from the last commit and writes byte-identical files.
 */
export class ResumableOutput {
  /** Records an earlier run committed (0 for a fresh run). */
  readonly resumedAt: number;
  private readonly rejectsFd: number;
  private rejectsBytes: number;
  private shard: ShardWriter | undefined;

  constructor(
    readonly dir: string,
    readonly state: Progress,
    readonly edges: number[],
  ) {
    this.resumedAt = state.nextRecord;
    // Drop whatever an interrupted run wrote after its last commit.
    for (const f of readdirSync(dir)) {
      const m = SHARD.exec(f);
      if (m && (m[2] || Number(m[1]) >= state.shards.length)) rmSync(join(dir, f), { force: true });
    }
    const rejectsPath = join(dir, PREPARED_FILES.rejects);
    this.rejectsFd = openSync(rejectsPath, existsSync(rejectsPath) ? 'r+' : 'w');
    ftruncateSync(this.rejectsFd, state.rejectsBytes);
    this.rejectsBytes = state.rejectsBytes;
  }

  /** Records the outcome of input record `index`; commits when it completes a shard. */
  async add(outcome: Outcome, index: number, shardSize: number): Promise<void> {
    const { state } = this;
    state.counts.records++;
    if (!outcome.ok) {
      const text = `${JSON.stringify(outcome.reject)}\n`;
      // At the committed end, after a resume too.
      this.rejectsBytes += writeSync(this.rejectsFd, text, this.rejectsBytes);
      state.counts.rejected++;
      return;
    }
    const { row } = outcome;
    this.shard ??= new ShardWriter(join(this.dir, shardFileName(state.shards.length)));
    this.shard.add(row);
    state.counts.written++;
    if (outcome.truncated) state.counts.truncated++;
    state.stats.tokens += row.inputIds.length;
    state.stats.lossTokens += row.lossMask.reduce((n, v) => n + v, 0);
    state.stats.audioSeconds += outcome.audioSeconds;
    state.stats.audioClips += row.audio.length;
    const bin = this.edges.findIndex((e) => row.inputIds.length <= e);
    state.stats.histogram[bin < 0 ? this.edges.length - 1 : bin]!++;
    state.audioActions.push(...outcome.actions);
    if (this.shard.records === shardSize) {
      await this.closeShard();
      state.nextRecord = index + 1;
      this.commit();
    }
  }

  /** Closes the last shard and commits every one of the `records` input records. */
  async finish(records: number): Promise<void> {
    if (this.shard) await this.closeShard();
    this.state.nextRecord = records;
    this.commit();
  }

  /** Drops the shard being written (the next run writes it again from the last commit). */
  abort(): void {
    this.shard?.abort();
  }

  close(): void {
    closeSync(this.rejectsFd);
  }

  /** Writes the histogram plot and the manifest, which marks the folder complete, and drops progress.json. */
  complete(manifest: PreparedManifest): { manifest: string; rejects: string; plot: string } {
    const plot = join(this.dir, PREPARED_PLOT);
    const manifestPath = join(this.dir, PREPARED_FILES.manifest);
    atomicWrite(
      plot,
      lengthHistogramSvg(
        this.edges,
        this.state.stats.histogram,
        `${manifest.counts.written} records, ${manifest.stats.tokens} tokens`,
      ),
    );
    atomicWrite(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    rmSync(join(this.dir, PREPARED_FILES.progress), { force: true });
    return { manifest: manifestPath, rejects: join(this.dir, PREPARED_FILES.rejects), plot };
  }

  private async closeShard(): Promise<void> {
    const closed = await this.shard!.close();
    this.state.shards.push({ file: shardFileName(this.state.shards.length), ...closed });
    this.shard = undefined;
  }

  private commit(): void {
    fsyncSync(this.rejectsFd);
    this.state.rejectsBytes = this.rejectsBytes;
    atomicWrite(join(this.dir, PREPARED_FILES.progress), JSON.stringify(this.state));
  }
}
