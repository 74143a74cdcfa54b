import { ArtifactEvent, EagletEvent, ProgressEvent } from '@eaglet/core';
import { z } from 'zod';

/**
 * The HTTP API's own shapes (job records, stored events, errors, file listings). Flow configs,
 * events and reports come from @eaglet/core; these are what the server adds around them, and the
 * OpenAPI document is generated from them. Only the server (and its dashboard) uses them, so they
 * live here rather than in core.
 */

/** Job ids are made by the server: time-sortable, lower-case, safe in a path segment. */
export const JobId = z
  .string()
  .regex(/^j-[0-9a-z]{8,12}-[0-9a-z]{6}$/, 'not a job id (ids look like j-lx3k9a0b-4f2k1z)');
export type JobId = z.infer<typeof JobId>;

export const JobStatus = z.enum([
  'queued',
  'running',
  /** Cancel requested; the flow is stopping at its next safe point. */
  'cancelling',
  'succeeded',
  'failed',
  'cancelled',
  /** The server stopped (crash, kill, shutdown) while the job was queued or running. */
  'interrupted',
]);
export type JobStatus = z.infer<typeof JobStatus>;

export const FINISHED: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

export const JobError = z.strictObject({
  code: z.string(),
  message: z.string(),
  hint: z.string().optional(),
});
export type JobError = z.infer<typeof JobError>;

/** One job as stored in `<stateDir>/jobs/<id>/job.json` and returned by the API. */
export const JobRecord = z.strictObject({
  id: JobId,
  kind: z.string(),
  /** A label given at creation, shown on the dashboard. */
  name: z.string().optional(),
  /** The validated config the flow received (defaults filled in, paths absolute). */
  config: z.unknown(),
  status: JobStatus,
  createdAt: z.iso.datetime(),
  startedAt: z.iso.datetime().optional(),
  finishedAt: z.iso.datetime().optional(),
  /** The latest progress event of each task, by task name. */
  progress: z.record(z.string(), ProgressEvent),
  /** Files and folders the job announced (artifact and checkpoint events), in order; index = artifact id. */
  artifacts: z.array(ArtifactEvent),
  /** Number of events stored so far (event seq numbers run 1..events). */
  events: z.number().int().nonnegative(),
  /** The flow's result (each job kind documents its own; see GET /api/kinds). */
  result: z.unknown().optional(),
  error: JobError.optional(),
});
export type JobRecord = z.infer<typeof JobRecord>;

/** An event as the server stores and streams it: the flow's event plus a sequence number and time. */
export const StoredEvent = z.strictObject({
  seq: z.number().int().positive(),
  time: z.iso.datetime(),
  event: EagletEvent,
});
export type StoredEvent = z.infer<typeof StoredEvent>;

/** POST /api/jobs. `config` is checked against the kind's schema (GET /api/kinds lists them). */
export const CreateJobBody = z.strictObject({
  kind: z.string().min(1),
  name: z.string().max(200).optional(),
  config: z.unknown(),
});

export const JobList = z.strictObject({
  jobs: z.array(JobRecord),
});

export const JobListQuery = z.strictObject({
  kind: z.string().max(100).optional(),
  status: JobStatus.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});

export const JobParams = z.strictObject({ id: JobId });

export const EventsQuery = z.strictObject({
  /** Only events with seq greater than this. */
  after: z.coerce.number().int().nonnegative().default(0),
  limit: z.coerce.number().int().min(1).max(100_000).default(10_000),
  /** Only events of this type (e.g. `metrics` for the curves). */
  type: z.enum(['progress', 'metrics', 'checkpoint', 'log', 'artifact', 'error', 'done']).optional(),
});

export const EventPage = z.strictObject({
  events: z.array(StoredEvent),
  /** Highest seq in the job so far; pass it as `after` to continue. */
  last: z.number().int().nonnegative(),
});

export const StreamQuery = z.strictObject({
  /** Resume after this seq (EventSource sends Last-Event-ID itself on reconnect). */
  after: z.coerce.number().int().nonnegative().optional(),
});

export const ArtifactParams = z.strictObject({
  id: JobId,
  index: z.coerce.number().int().nonnegative().max(1_000_000),
});

export const ArtifactQuery = z.strictObject({
  /** For a folder artifact: a file inside it, relative to the folder. */
  file: z.string().min(1).max(4096).optional(),
});

export const FileEntry = z.strictObject({
  name: z.string(),
  type: z.enum(['file', 'directory', 'other']),
  size: z.number().int().nonnegative(),
});

export const DirectoryListing = z.strictObject({
  path: z.string(),
  entries: z.array(FileEntry),
});

export const FilesQuery = z.strictObject({
  /** A folder inside the configured roots; relative paths resolve against the first root. */
  path: z.string().min(1).max(4096).optional(),
});

export const ArtifactList = z.strictObject({
  artifacts: z.array(
    ArtifactEvent.extend({
      index: z.number().int().nonnegative(),
      exists: z.boolean(),
      type: z.enum(['file', 'directory', 'missing']),
      url: z.string(),
    }),
  ),
});

export const KindInfo = z.strictObject({
  kind: z.string(),
  title: z.string(),
  description: z.string(),
  /** `heavy`: runs one at a time (the compute engine, GPUs, every core); `light`: runs beside others. */
  resource: z.enum(['heavy', 'light']),
  /** JSON Schema of the config (the zod schema's input side). */
  configSchema: z.unknown(),
  /** A starting config for the dashboard's form. */
  example: z.unknown().optional(),
});

export const KindList = z.strictObject({ kinds: z.array(KindInfo) });

export const ServerInfo = z.strictObject({
  name: z.literal('eaglet'),
  version: z.string(),
  roots: z.array(z.string()),
  kinds: z.array(z.string()),
  auth: z.boolean(),
  limits: z.strictObject({ bodyBytes: z.number().int(), queuedJobs: z.number().int() }),
});

/** One problem with one field of a request: `in` says which part (body, query, params, header). */
export const RequestIssue = z.strictObject({
  in: z.enum(['body', 'query', 'params', 'header', 'path']),
  path: z.string(),
  reason: z.string(),
});
export type RequestIssue = z.infer<typeof RequestIssue>;

/** Every error response: a stable code, a message that names the field, and how to fix it. */
export const ApiError = z.strictObject({
  error: z.strictObject({
    code: z.string(),
    message: z.string(),
    hint: z.string().optional(),
    issues: z.array(RequestIssue).optional(),
  }),
});
export type ApiError = z.infer<typeof ApiError>;
