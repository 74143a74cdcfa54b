import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  type ArtifactEvent,
  type CheckpointEvent,
  EagletEvent,
  type EventSink,
  type PluginRegistry,
  type ProgressEvent,
  toEagletError,
} from '@eaglet/core';
import { HttpError, notFound } from '../http/errors.js';
import { type PathGuard, PathRefused } from '../paths.js';
import { FINISHED, type JobError, type JobRecord, type JobStatus, type StoredEvent } from '../schemas.js';
import type { JobKindRegistry } from './kind.js';
import { checkJobRequest } from './request.js';
import type { JobStore } from './store.js';

export interface JobLimits {
  /** `heavy` jobs running at once (they share the compute engine, GPUs and cores). */
  heavyJobs: number;
  /** `light` jobs running at once. */
  lightJobs: number;
  /** Jobs waiting in the queue; beyond it POST /api/jobs answers 429. */
  queuedJobs: number;
}

/** What subscribers (SSE streams) hear: a job record changed, or a job stored an event. */
export type JobChange = { type: 'job'; job: JobRecord } | { type: 'event'; id: string; event: StoredEvent };

interface Running {
  controller: AbortController;
  /** Why it was aborted: a user's cancel, or the server shutting down. */
  reason?: 'cancel' | 'shutdown';
  done: Promise<void>;
}

/** Progress events are stored and streamed at most this often per task (the latest always wins). */
const PROGRESS_INTERVAL_MS = 250;
/** A running job's record is rewritten at most this often for progress alone. */
const SAVE_INTERVAL_MS = 2000;

const now = () => new Date().toISOString();
const newId = () =>
  `j-${Date.now().toString(36)}-${BigInt(`0x${randomBytes(5).toString('hex')}`)
    .toString(36)
    .padStart(6, '0')
    .slice(-6)}`;

/**
 * Creates, queues, runs, cancels and remembers jobs. Each job runs its kind's flow function with an
 * event sink and an AbortSignal, exactly as a CLI command does; everything it reports is written to
 * the JobStore and passed to subscribers. At start, jobs a previous server left queued or running
 * are marked `interrupted`.
 */
export class JobManager {
  private readonly jobs = new Map<string, JobRecord>();
  private readonly queue: string[] = [];
  private readonly running = new Map<string, Running>();
  private readonly listeners = new Set<(change: JobChange) => void>();
  private readonly progressStoredAt = new Map<string, number>();
  private readonly pendingProgress = new Map<string, Map<string, ProgressEvent>>();
  private readonly saveTimers = new Map<string, NodeJS.Timeout>();
  private accepting = true;

  constructor(
    private readonly store: JobStore,
    readonly kinds: JobKindRegistry,
    private readonly registry: PluginRegistry,
    private readonly guard: PathGuard,
    readonly limits: JobLimits,
    private readonly policy: { remoteAudio: boolean; hub: boolean } = { remoteAudio: false, hub: false },
  ) {}

  /** Audio named inside a job's data: local files must lie in the roots, like config paths. */
  private readonly audioAccess = (ref: string): void => {
    if (/^https?:/i.test(ref)) {
      if (!this.policy.remoteAudio)
        throw new PathRefused(
          `${ref}: this server does not fetch remote audio (start it with --remote-audio)`,
        );
      return;
    }
    this.guard.check(ref.startsWith('file:') ? fileURLToPath(ref) : ref);
  };

  /** Loads the jobs on disk; marks those left queued or running as interrupted. Returns their ids. */
  init(onProblem: (id: string, reason: string) => void = () => {}): string[] {
    const interrupted: string[] = [];
    for (const job of this.store.loadAll(onProblem)) {
      this.jobs.set(job.id, job);
      if (!FINISHED.has(job.status)) {
        this.replay(job);
        const started = job.status !== 'queued';
        const message = started
          ? 'the server stopped while this job was running'
          : 'the server stopped before this job started';
        this.emit(job, { type: 'log', level: 'error', message: `interrupted: ${message}` });
        this.finish(job, 'interrupted', {
          error: {
            code: 'EAGLET_SERVER_INTERRUPTED',
            message,
            hint: 'start it again (POST /api/jobs/{id}/retry); a retried training job resumes from its last checkpoint',
          },
        });
        interrupted.push(job.id);
      }
    }
    return interrupted;
  }

  /**
   * A record saved while its job ran can lag behind the events file (progress is saved every few
   * seconds, events at once): rebuild the event count, latest progress and artifacts from the events.
   */
  private replay(job: JobRecord): void {
    const stored = this.store.readEvents(job.id);
    if (stored.length === 0) return;
    job.events = Math.max(job.events, stored.at(-1)!.seq);
    job.artifacts = [];
    for (const { event } of stored) {
      if (event.type === 'progress') job.progress[event.task] = event;
      else if (event.type === 'artifact' || event.type === 'checkpoint')
        this.addArtifact(job, this.toArtifact(event));
    }
  }

  /** An artifact announced twice (same kind and path) is listed once. */
  private addArtifact(job: JobRecord, artifact: ArtifactEvent): void {
    if (!job.artifacts.some((a) => a.kind === artifact.kind && a.path === artifact.path))
      job.artifacts.push(artifact);
  }

  private toArtifact(event: ArtifactEvent | CheckpointEvent): ArtifactEvent {
    return event.type === 'artifact'
      ? { ...event, path: this.guard.resolve(event.path) }
      : {
          type: 'artifact',
          kind: 'checkpoint',
          path: this.guard.resolve(event.path),
          description: `checkpoint at step ${event.step}`,
        };
  }

  subscribe(listener: (change: JobChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(filter: { kind?: string; status?: JobStatus; limit: number }): JobRecord[] {
    return [...this.jobs.values()]
      .filter(
        (j) => (!filter.kind || j.kind === filter.kind) && (!filter.status || j.status === filter.status),
      )
      .sort((a, b) => (a.id < b.id ? 1 : -1))
      .slice(0, filter.limit);
  }

  get(id: string): JobRecord {
    const job = this.jobs.get(id);
    if (!job) throw notFound(`no job with id ${id}`, 'GET /api/jobs lists the jobs this server knows');
    return job;
  }

  events(id: string, query: { after?: number; limit?: number; type?: string }): StoredEvent[] {
    this.get(id);
    return this.store.readEvents(id, query);
  }

  /** Validates a POST /api/jobs body (kind, config, paths, plugin ids) and queues the job. */
  create(body: unknown): JobRecord {
    if (!this.accepting) throw new HttpError(503, 'EAGLET_SERVER_STOPPING', 'the server is shutting down');
    const { kind, name, config } = checkJobRequest(body, this.kinds, this.registry, this.guard, this.policy);
    if (this.queue.length >= this.limits.queuedJobs) {
      throw new HttpError(429, 'EAGLET_QUEUE_FULL', `${this.queue.length} jobs are already waiting`, {
        hint: 'wait for queued jobs to start, or cancel some',
      });
    }
    const job: JobRecord = {
      id: newId(),
      kind: kind.kind,
      ...(name ? { name } : {}),
      config,
      status: 'queued',
      createdAt: now(),
      progress: {},
      artifacts: [],
      events: 0,
    };
    this.jobs.set(job.id, job);
    this.store.create(job);
    this.queue.push(job.id);
    this.changed(job);
    this.schedule();
    return job;
  }

  /** A new job with the same kind and config as an earlier one (as its kind's `retryConfig` adjusts it). */
  retry(id: string): JobRecord {
    const old = this.get(id);
    if (!FINISHED.has(old.status))
      throw new HttpError(409, 'EAGLET_JOB_ACTIVE', `job ${id} is still ${old.status}`, {
        hint: 'cancel it first, or wait for it to finish',
      });
    const retryConfig = this.kinds.get(old.kind)?.retryConfig;
    const config = retryConfig ? retryConfig(old.config) : old.config;
    return this.create({ kind: old.kind, ...(old.name ? { name: old.name } : {}), config });
  }

  cancel(id: string): JobRecord {
    const job = this.get(id);
    if (job.status === 'queued') {
      this.queue.splice(this.queue.indexOf(id), 1);
      this.emit(job, { type: 'log', level: 'info', message: 'cancelled before it started' });
      this.finish(job, 'cancelled');
    } else if (job.status === 'running') {
      const run = this.running.get(id)!;
      run.reason = 'cancel';
      job.status = 'cancelling';
      this.emit(job, {
        type: 'log',
        level: 'info',
        message: 'cancel requested: stopping at the next safe point',
      });
      this.save(job);
      run.controller.abort();
    } else if (job.status !== 'cancelling') {
      throw new HttpError(409, 'EAGLET_JOB_FINISHED', `job ${id} has already finished (${job.status})`);
    }
    return job;
  }

  /** Forgets a finished job and deletes its folder (files it wrote elsewhere stay). */
  remove(id: string): void {
    const job = this.get(id);
    if (!FINISHED.has(job.status))
      throw new HttpError(409, 'EAGLET_JOB_ACTIVE', `job ${id} is ${job.status}`, {
        hint: 'cancel it first (POST /api/jobs/{id}/cancel)',
      });
    this.jobs.delete(id);
    this.store.remove(id);
  }

  /** Stops accepting jobs, stops running ones (as `interrupted`) and waits up to `graceMs` for them. */
  async shutdown(graceMs: number): Promise<void> {
    this.accepting = false;
    for (const id of this.queue.splice(0)) {
      const job = this.jobs.get(id)!;
      this.finish(job, 'interrupted', {
        error: { code: 'EAGLET_SERVER_INTERRUPTED', message: 'the server shut down before this job started' },
      });
    }
    for (const run of this.running.values()) {
      run.reason ??= 'shutdown';
      run.controller.abort();
    }
    const all = Promise.all([...this.running.values()].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    for (const id of this.running.keys()) {
      const job = this.jobs.get(id)!;
      this.finish(job, 'interrupted', {
        error: {
          code: 'EAGLET_SERVER_INTERRUPTED',
          message: `the server shut down and the job did not stop within ${Math.round(graceMs / 1000)} s`,
        },
      });
    }
    for (const t of this.saveTimers.values()) clearTimeout(t);
  }

  /** The job's own folder in the state dir. */
  jobDir(id: string): string {
    return this.store.jobDir(id);
  }

  queuedCount(): number {
    return this.queue.length;
  }

  // ---- running ----

  private schedule(): void {
    for (const id of [...this.queue]) {
      const job = this.jobs.get(id)!;
      const kind = this.kinds.get(job.kind);
      if (!kind) continue;
      const busy = [...this.running.keys()].filter(
        (r) => this.kinds.get(this.jobs.get(r)!.kind)?.resource === kind.resource,
      ).length;
      const max = kind.resource === 'heavy' ? this.limits.heavyJobs : this.limits.lightJobs;
      if (busy >= max) continue;
      this.queue.splice(this.queue.indexOf(id), 1);
      this.start(job);
    }
  }

  private start(job: JobRecord): void {
    const kind = this.kinds.get(job.kind)!;
    const controller = new AbortController();
    const run: Running = { controller, done: Promise.resolve() };
    this.running.set(job.id, run);
    job.status = 'running';
    job.startedAt = now();
    this.save(job);
    const sink: EventSink = (event) => this.onFlowEvent(job, event);
    run.done = (async () => {
      try {
        const result = await kind.run({
          registry: this.registry,
          config: job.config,
          events: sink,
          signal: controller.signal,
          dir: this.store.jobDir(job.id),
          audioAccess: this.audioAccess,
        });
        const json = result === undefined ? undefined : (JSON.parse(JSON.stringify(result)) as unknown);
        const status: JobStatus =
          run.reason === 'cancel' ? 'cancelled' : run.reason === 'shutdown' ? 'interrupted' : 'succeeded';
        this.finish(job, status, json === undefined ? {} : { result: json });
      } catch (e) {
        const err = toEagletError(e);
        const error: JobError = {
          code: err.code,
          message: err.message,
          ...(err.hint ? { hint: err.hint } : {}),
        };
        const status: JobStatus =
          run.reason === 'cancel' ? 'cancelled' : run.reason === 'shutdown' ? 'interrupted' : 'failed';
        if (status === 'failed')
          this.emit(job, { type: 'log', level: 'error', message: `${err.code}: ${err.message}` });
        this.finish(job, status, { error });
      } finally {
        this.running.delete(job.id);
        if (this.accepting) this.schedule();
      }
    })();
  }

  /** A flow's event: checked against the schema, summarised into the record, stored and streamed. */
  private onFlowEvent(job: JobRecord, raw: EagletEvent): void {
    if (FINISHED.has(job.status)) return; // a late event after shutdown gave up on the job
    const checked = EagletEvent.safeParse(raw);
    if (!checked.success) {
      this.emit(job, {
        type: 'log',
        level: 'warn',
        message: `the flow sent an invalid event (dropped): ${checked.error.issues[0]?.message}`,
      });
      return;
    }
    const event = checked.data;
    if (event.type === 'progress') {
      job.progress[event.task] = event;
      const key = `${job.id}\0${event.task}`;
      const last = this.progressStoredAt.get(key) ?? 0;
      const t = Date.now();
      const final = event.total !== undefined && event.done >= event.total;
      if (t - last < PROGRESS_INTERVAL_MS && !final) {
        const pending = this.pendingProgress.get(job.id) ?? new Map<string, ProgressEvent>();
        this.pendingProgress.set(job.id, pending);
        pending.set(event.task, event);
        this.saveSoon(job);
        return;
      }
      this.progressStoredAt.set(key, t);
      this.pendingProgress.get(job.id)?.delete(event.task);
      this.emit(job, event);
      this.saveSoon(job);
      return;
    }
    this.flushProgress(job);
    if (event.type === 'artifact' || event.type === 'checkpoint') {
      this.addArtifact(job, this.toArtifact(event));
      this.emit(job, event);
      this.save(job);
      return;
    }
    this.emit(job, event);
    this.saveSoon(job);
  }

  /** Stores the progress events held back by the throttle, so order and the final value survive. */
  private flushProgress(job: JobRecord): void {
    const pending = this.pendingProgress.get(job.id);
    if (!pending) return;
    this.pendingProgress.delete(job.id);
    for (const event of pending.values()) {
      this.progressStoredAt.set(`${job.id}\0${event.task}`, Date.now());
      this.emit(job, event);
    }
  }

  private emit(job: JobRecord, event: EagletEvent): void {
    const stored: StoredEvent = { seq: ++job.events, time: now(), event };
    this.store.appendEvent(job.id, stored);
    for (const l of this.listeners) l({ type: 'event', id: job.id, event: stored });
  }

  private finish(
    job: JobRecord,
    status: JobStatus,
    extra: { result?: unknown; error?: JobError } = {},
  ): void {
    this.flushProgress(job);
    for (const key of this.progressStoredAt.keys())
      if (key.startsWith(`${job.id}\0`)) this.progressStoredAt.delete(key);
    job.status = status;
    job.finishedAt = now();
    if (extra.result !== undefined) job.result = extra.result;
    if (extra.error) job.error = extra.error;
    this.save(job);
  }

  private saveSoon(job: JobRecord): void {
    if (this.saveTimers.has(job.id)) return;
    this.saveTimers.set(
      job.id,
      setTimeout(() => {
        this.saveTimers.delete(job.id);
        if (this.jobs.has(job.id)) this.save(job);
      }, SAVE_INTERVAL_MS).unref(),
    );
  }

  private save(job: JobRecord): void {
    const t = this.saveTimers.get(job.id);
    if (t) {
      clearTimeout(t);
      this.saveTimers.delete(job.id);
    }
    this.store.save(job);
    this.changed(job);
  }

  private changed(job: JobRecord): void {
    for (const l of this.listeners) l({ type: 'job', job });
  }
}
