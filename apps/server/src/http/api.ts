import { resolve } from 'node:path';
import { z } from 'zod';
import type { JobManager } from '../jobs/manager.js';
import { PathGuard, PathRefused } from '../paths.js';
import {
  ArtifactList,
  ArtifactParams,
  ArtifactQuery,
  DirectoryListing,
  EventPage,
  EventsQuery,
  FINISHED,
  FilesQuery,
  JobList,
  JobListQuery,
  JobParams,
  type JobRecord,
  KindList,
  ServerInfo,
  type StoredEvent,
  StreamQuery,
} from '../schemas.js';
import { HttpError, notFound } from './errors.js';
import { kindOfPath, listDirectory, sendFile } from './files.js';
import { renderLog } from './logs.js';
import { type AnyRoute, defineRoute } from './route.js';
import { COOKIE, tokenMatches } from './security.js';
import { openSse } from './sse.js';

export interface ApiContext {
  manager: JobManager;
  guard: PathGuard;
  token: string | undefined;
  bodyLimit: number;
  version: string;
  /** The job request body as the OpenAPI document shows it (one branch per kind). */
  createJobDoc: z.ZodType;
  /** The job record as a response, with each kind's config and result documented. */
  jobDoc: z.ZodType;
}

const SessionBody = z.strictObject({ token: z.string().max(1024) });

/** Every API route, declared once; the OpenAPI document is generated from this table. */
export function apiRoutes(ctx: ApiContext): AnyRoute[] {
  const { manager, guard } = ctx;
  const summary = (job: JobRecord): JobRecord => {
    const { result: _result, ...rest } = job;
    return rest;
  };

  return [
    defineRoute({
      method: 'GET',
      url: '/api',
      operationId: 'getServer',
      summary: 'What this server is: version, roots, job kinds, limits',
      tag: 'server',
      response: { status: 200, description: 'server info', schema: ServerInfo },
      handler: () => ({
        name: 'eaglet' as const,
        version: ctx.version,
        roots: [...guard.roots],
        kinds: manager.kinds.names(),
        auth: ctx.token !== undefined,
        limits: { bodyBytes: ctx.bodyLimit, queuedJobs: manager.limits.queuedJobs },
      }),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/session',
      operationId: 'createSession',
      summary: 'Trade the token for an HttpOnly cookie (for the dashboard and EventSource)',
      tag: 'server',
      public: true,
      body: SessionBody,
      response: { status: 204, description: 'cookie set' },
      handler: ({ body, reply }) => {
        if (ctx.token === undefined) return undefined;
        if (!tokenMatches(body.token, ctx.token))
          throw new HttpError(401, 'EAGLET_UNAUTHORIZED', 'wrong token', {
            issues: [{ in: 'body', path: 'token', reason: 'does not match the server token' }],
          });
        reply.header(
          'set-cookie',
          `${COOKIE}=${encodeURIComponent(body.token)}; Path=/; HttpOnly; SameSite=Strict`,
        );
        return undefined;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/kinds',
      operationId: 'listKinds',
      summary: 'Job kinds this server runs, with the JSON Schema of each config',
      tag: 'jobs',
      response: { status: 200, description: 'job kinds', schema: KindList },
      handler: () => ({
        kinds: manager.kinds.list().map((k) => ({
          kind: k.kind,
          title: k.title,
          description: k.description,
          resource: k.resource,
          configSchema: z.toJSONSchema(k.config, { io: 'input', unrepresentable: 'any' }),
          ...(k.example ? { example: k.example(guard.base) } : {}),
        })),
      }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/jobs',
      operationId: 'listJobs',
      summary: 'Jobs, newest first (records without their result)',
      tag: 'jobs',
      query: JobListQuery,
      response: { status: 200, description: 'jobs', schema: JobList },
      handler: ({ query }) => {
        if (query.kind !== undefined && !manager.kinds.get(query.kind)) {
          const reason = `unknown job kind "${query.kind}" (known: ${manager.kinds.names().join(', ')})`;
          throw new HttpError(400, 'EAGLET_BAD_REQUEST', `invalid query: kind: ${reason}`, {
            issues: [{ in: 'query', path: 'kind', reason }],
          });
        }
        return { jobs: manager.list(query).map(summary) };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/jobs',
      operationId: 'createJob',
      summary: 'Start a job',
      description:
        "Validates `config` against the kind's schema, checks every path against the roots, and queues the job. Heavy jobs run one at a time; light jobs beside them.",
      tag: 'jobs',
      bodyDoc: ctx.createJobDoc,
      response: { status: 201, description: 'the queued job', schema: ctx.jobDoc },
      errors: [413, 415, 429, 503],
      handler: ({ request }) => manager.create(request.body),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/jobs/:id',
      operationId: 'getJob',
      summary: 'One job, with its result',
      tag: 'jobs',
      params: JobParams,
      response: { status: 200, description: 'the job', schema: ctx.jobDoc },
      errors: [404],
      handler: ({ params }) => manager.get(params.id),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/api/jobs/:id',
      operationId: 'deleteJob',
      summary: 'Forget a finished job (its folder in the state dir; files it wrote elsewhere stay)',
      tag: 'jobs',
      params: JobParams,
      response: { status: 204, description: 'deleted' },
      errors: [404, 409],
      handler: ({ params }) => {
        manager.remove(params.id);
        return undefined;
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/jobs/:id/cancel',
      operationId: 'cancelJob',
      summary: 'Cancel a job: a queued one at once, a running one at its next safe point',
      tag: 'jobs',
      params: JobParams,
      response: { status: 202, description: 'cancelled or cancelling', schema: ctx.jobDoc },
      errors: [404, 409],
      handler: ({ params }) => manager.cancel(params.id),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/jobs/:id/retry',
      operationId: 'retryJob',
      summary: 'Start a new job with the same kind and config as a finished one',
      tag: 'jobs',
      params: JobParams,
      response: { status: 201, description: 'the new job', schema: ctx.jobDoc },
      errors: [404, 409, 429],
      handler: ({ params }) => manager.retry(params.id),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/jobs/:id/events',
      operationId: 'listJobEvents',
      summary: "A job's stored events (progress, metrics, logs, artifacts, ...), in order",
      tag: 'jobs',
      params: JobParams,
      query: EventsQuery,
      response: { status: 200, description: 'events', schema: EventPage },
      errors: [404],
      handler: ({ params, query }) => {
        const job = manager.get(params.id);
        return { events: manager.events(params.id, query), last: job.events };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/jobs/:id/stream',
      operationId: 'streamJob',
      summary: 'Live job events over Server-Sent Events',
      description:
        'Messages: `event: job` with the record (first, and on each change); unnamed messages with a StoredEvent (`id` = seq, so EventSource resumes with Last-Event-ID); `event: end` once the job has finished, then the stream closes.',
      tag: 'jobs',
      params: JobParams,
      query: StreamQuery,
      response: { status: 200, description: 'event stream', mediaType: 'text/event-stream' },
      errors: [404],
      handler: ({ params, query, request, reply }) => {
        const job = manager.get(params.id);
        const header = request.headers['last-event-id'];
        let after = query.after ?? 0;
        if (query.after === undefined && typeof header === 'string' && header !== '') {
          if (!/^\d{1,15}$/.test(header))
            throw new HttpError(
              400,
              'EAGLET_BAD_REQUEST',
              'invalid header: last-event-id: expected a number',
              {
                issues: [{ in: 'header', path: 'last-event-id', reason: 'expected a non-negative integer' }],
              },
            );
          after = Number(header);
        }
        const sse = openSse(reply);
        let last = after;
        const sendEvent = (e: StoredEvent) => {
          if (e.seq <= last) return;
          last = e.seq;
          sse.send({ id: e.seq, data: e });
        };
        sse.send({ event: 'job', data: job });
        for (const e of manager.events(job.id, { after })) sendEvent(e);
        if (FINISHED.has(job.status)) {
          sse.send({ event: 'end', data: { status: job.status } });
          sse.close();
          return;
        }
        const unsubscribe = manager.subscribe((change) => {
          if (change.type === 'event' && change.id === job.id) sendEvent(change.event);
          else if (change.type === 'job' && change.job.id === job.id) {
            sse.send({ event: 'job', data: change.job });
            if (FINISHED.has(change.job.status)) {
              sse.send({ event: 'end', data: { status: change.job.status } });
              sse.close();
            }
          }
        });
        void sse.closed.then(unsubscribe);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/stream',
      operationId: 'streamJobs',
      summary: 'Job changes over Server-Sent Events (`event: job`, a record without its result)',
      tag: 'jobs',
      response: { status: 200, description: 'event stream', mediaType: 'text/event-stream' },
      handler: ({ reply }) => {
        const sse = openSse(reply);
        const unsubscribe = manager.subscribe((change) => {
          if (change.type === 'job') sse.send({ event: 'job', data: summary(change.job) });
        });
        void sse.closed.then(unsubscribe);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/jobs/:id/logs',
      operationId: 'getJobLogs',
      summary: "A job's log as text: messages, metrics, checkpoints, artifacts, the outcome",
      tag: 'jobs',
      params: JobParams,
      response: { status: 200, description: 'log text', mediaType: 'text/plain' },
      errors: [404],
      handler: ({ params, reply }) => {
        const job = manager.get(params.id);
        reply.type('text/plain; charset=utf-8');
        return renderLog(job, manager.events(job.id, {}));
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/jobs/:id/artifacts',
      operationId: 'listJobArtifacts',
      summary: 'Files and folders a job made (what its artifact and checkpoint events announced)',
      tag: 'artifacts',
      params: JobParams,
      response: { status: 200, description: 'artifacts', schema: ArtifactList },
      errors: [404],
      handler: ({ params }) => {
        const job = manager.get(params.id);
        return {
          artifacts: job.artifacts.map((a, index) => {
            const type = kindOfPath(a.path);
            return {
              ...a,
              index,
              exists: type !== 'missing',
              type,
              url: `/api/jobs/${job.id}/artifacts/${index}`,
            };
          }),
        };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/jobs/:id/artifacts/:index',
      operationId: 'getJobArtifact',
      summary: 'Download an artifact; a folder artifact answers with its listing, or `?file=` inside it',
      tag: 'artifacts',
      params: ArtifactParams,
      query: ArtifactQuery,
      response: {
        status: 200,
        description: "the file's bytes, or a DirectoryListing (JSON) for a folder",
        mediaType: 'application/octet-stream',
      },
      errors: [404],
      handler: ({ params, query, reply }) => {
        const job = manager.get(params.id);
        const jobDir = manager.jobDir(job.id);
        const inJobDir = (p: string) => {
          try {
            return PathGuard.within(jobDir, p) && p;
          } catch {
            return undefined;
          }
        };
        const artifact = job.artifacts[params.index];
        if (!artifact)
          throw notFound(`job ${job.id} has no artifact ${params.index} (it has ${job.artifacts.length})`);
        // An artifact is served only from inside the roots: a flow cannot make the server a file server for the whole disk.
        let path: string;
        try {
          path = inJobDir(artifact.path) ?? guard.check(artifact.path);
        } catch (e) {
          if (!(e instanceof PathRefused)) throw e;
          throw new HttpError(403, 'EAGLET_PATH_REFUSED', `artifact ${params.index}: ${e.message}`);
        }
        const type = kindOfPath(path);
        if (type === 'missing') throw notFound(`artifact ${params.index} (${path}) no longer exists`);
        if (type === 'directory') {
          if (query.file === undefined) return reply.type('application/json').send(listDirectory(path));
          const inner = resolve(path, query.file);
          try {
            PathGuard.within(path, inner);
          } catch (e) {
            if (!(e instanceof PathRefused)) throw e;
            throw new HttpError(400, 'EAGLET_PATH_REFUSED', `invalid query: file: ${e.message}`, {
              issues: [{ in: 'query', path: 'file', reason: 'leads outside the artifact folder' }],
            });
          }
          const innerType = kindOfPath(inner);
          if (innerType === 'missing') throw notFound(`no file ${query.file} in artifact ${params.index}`);
          if (innerType === 'directory') return reply.type('application/json').send(listDirectory(inner));
          return sendFile(reply, inner);
        }
        if (query.file !== undefined)
          throw new HttpError(
            400,
            'EAGLET_BAD_REQUEST',
            'invalid query: file: this artifact is a file, not a folder',
            {
              issues: [{ in: 'query', path: 'file', reason: 'only folder artifacts take file' }],
            },
          );
        return sendFile(reply, path);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/files',
      operationId: 'listFiles',
      summary: 'List a folder inside the roots (to pick datasets and models)',
      tag: 'files',
      query: FilesQuery,
      response: { status: 200, description: "the folder's entries", schema: DirectoryListing },
      errors: [404],
      handler: ({ query }) => {
        let path: string;
        try {
          path = guard.check(query.path ?? guard.base);
        } catch (e) {
          if (!(e instanceof PathRefused)) throw e;
          throw new HttpError(403, 'EAGLET_PATH_REFUSED', `invalid query: path: ${e.message}`, {
            issues: [{ in: 'query', path: 'path', reason: e.message }],
          });
        }
        const type = kindOfPath(path);
        if (type === 'missing') throw notFound(`${path} does not exist`);
        if (type !== 'directory')
          throw new HttpError(400, 'EAGLET_BAD_REQUEST', `invalid query: path: ${path} is not a folder`, {
            issues: [{ in: 'query', path: 'path', reason: 'not a folder' }],
          });
        return listDirectory(path);
      },
    }),
  ];
}
