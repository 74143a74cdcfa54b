import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EagletError, PluginRegistry, packageVersion, ValidationReport, zodIssues } from '@eaglet/core';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { registerDashboard } from './dashboard.js';
import { apiRoutes } from './http/api.js';
import { HttpError } from './http/errors.js';
import { openApiDocument } from './http/openapi.js';
import { type AnyRoute, defineRoute, registerRoutes } from './http/route.js';
import { checkBinding, guardRequest } from './http/security.js';
import { BUILTIN_JOB_KINDS } from './jobs/builtin-kinds.js';
import { type JobKind, JobKindRegistry } from './jobs/kind.js';
import { JobManager } from './jobs/manager.js';
import { JobStore } from './jobs/store.js';
import { StateLock } from './lock.js';
import {
  type ServerOptions,
  type ServerOptionsInput,
  ServerOptions as ServerOptionsSchema,
} from './options.js';
import { PathGuard } from './paths.js';
import * as S from './schemas.js';

export interface EagletServer {
  app: FastifyInstance;
  manager: JobManager;
  options: ServerOptions;
  /** Where job records live. */
  stateDir: string;
  /** Jobs found queued or running at start (a previous server died) and marked interrupted. */
  interrupted: string[];
  /** Every route the server answers (method and URL pattern), as registered. */
  routes: Array<{ method: string; url: string }>;
  /** The OpenAPI document of this server's API. */
  openapi: Record<string, unknown>;
  /** Starts listening; resolves with the base URL (`http://127.0.0.1:8765`). */
  listen(): Promise<string>;
  /** Stops jobs (marked interrupted after the grace period), closes connections, releases the state folder. */
  close(): Promise<void>;
}

const VERSION = packageVersion(import.meta.url);

/** Parses server options, with one error that lists every bad field. */
export function parseServerOptions(input: ServerOptionsInput): ServerOptions {
  const r = ServerOptionsSchema.safeParse(input);
  if (!r.success) {
    const lines = zodIssues(r.error).map((i) => `  ${i.path || '(root)'}: ${i.reason}`);
    throw new EagletError('EAGLET_SERVER_CONFIG', `invalid server options:\n${lines.join('\n')}`);
  }
  return r.data;
}

/**
 * Builds eaglet's HTTP app: the job API over the flows, Server-Sent Events, the OpenAPI document
 * and the dashboard. Refuses to expose itself beyond loopback without a token.
 */
export async function createServer(
  input: ServerOptionsInput,
  context: { registry: PluginRegistry; kinds?: ReadonlyArray<JobKind> },
): Promise<EagletServer> {
  const options = parseServerOptions(input);
  checkBinding(options.host, options.token);
  const roots = options.roots.map((r) => resolve(r));
  const stateDir = resolve(options.stateDir ?? join(roots[0]!, '.eaglet', 'server'));
  const guard = new PathGuard(roots, [stateDir]); // checks that the roots exist
  mkdirSync(stateDir, { recursive: true });
  const lock = StateLock.acquire(stateDir);

  try {
    const kinds = new JobKindRegistry(context.kinds ?? BUILTIN_JOB_KINDS);
    const manager = new JobManager(
      new JobStore(stateDir),
      kinds,
      context.registry,
      guard,
      {
        heavyJobs: options.heavyJobs,
        lightJobs: options.lightJobs,
        queuedJobs: options.queuedJobs,
      },
      { remoteAudio: options.remoteAudio, hub: options.hub },
    );
    const interrupted = manager.init((id, reason) =>
      process.emitWarning(`job ${id} in ${stateDir} cannot be read: ${reason}`),
    );

    const app = Fastify({
      logger: false,
      bodyLimit: options.bodyLimit,
      onProtoPoisoning: 'error',
      onConstructorPoisoning: 'error',
      forceCloseConnections: true,
      return503OnClosing: true,
      routerOptions: { maxParamLength: 200 },
    });
    const registered: Array<{ method: string; url: string }> = [];
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) registered.push({ method, url: route.url });
    });
    // JSON only: a plain HTML form (text/plain, urlencoded, multipart) cannot reach a handler.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
      try {
        done(null, parseJsonBody(body as string));
      } catch (e) {
        done(e as Error, undefined);
      }
    });

    app.addHook('onRequest', async (request) => {
      const isPublic = (request.routeOptions.config as { public?: boolean } | undefined)?.public === true;
      guardRequest(request, { token: options.token, isPublic });
    });
    // Synchronous on purpose: a handler that sends a file stream itself has its headers on the wire
    // before it returns, so Fastify never sees a half-sent reply (an async hook here opened a race
    // in which the reply was sent twice).
    app.addHook('onSend', (_request, reply, payload, done) => {
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
      reply.header('x-frame-options', 'DENY');
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
      done(null, payload);
    });
    app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
      const http =
        error instanceof HttpError ? error : fromFastifyError(error, `${request.method} ${request.url}`);
      if (http.options.headers) for (const [k, v] of Object.entries(http.options.headers)) reply.header(k, v);
      return reply.code(http.status).type('application/json').send(http.body());
    });
    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?')[0];
      const e = new HttpError(404, 'EAGLET_NOT_FOUND', `no route ${request.method} ${path}`, {
        hint: 'GET /api/openapi.json describes every route',
      });
      return reply.code(404).send(e.body());
    });

    const named = componentNames(kinds.list());
    const createJobDoc = createJobSchema(kinds.list());
    const jobDoc = jobSchema(kinds.list());
    named.set(createJobDoc, 'CreateJobRequest');
    named.set(jobDoc, 'Job');
    const routes: AnyRoute[] = apiRoutes({
      manager,
      guard,
      token: options.token,
      bodyLimit: options.bodyLimit,
      version: VERSION,
      createJobDoc,
      jobDoc,
    });
    routes.push(
      defineRoute({
        method: 'GET',
        url: '/api/openapi.json',
        operationId: 'getOpenApi',
        summary: 'This OpenAPI document',
        tag: 'server',
        public: true,
        response: { status: 200, description: 'the OpenAPI 3.1 document', mediaType: 'application/json' },
        handler: () => openapi,
      }),
    );
    registerRoutes(app, routes);
    const openapi: Record<string, unknown> = openApiDocument(
      routes,
      {
        title: 'eaglet HTTP API',
        version: VERSION,
        description:
          'Jobs (validate, prepare, vocab, train, regenerate, bench) over the same flows as the `eaglet` CLI, live progress over Server-Sent Events, logs and artifacts. Start it with `eaglet serve`.',
      },
      named,
    );
    registerDashboard(app);

    let listening = false;
    return {
      app,
      manager,
      options,
      stateDir,
      interrupted,
      routes: registered,
      openapi,
      async listen() {
        await app.listen({ host: options.host, port: options.port });
        listening = true;
        const address = app.server.address();
        const port = typeof address === 'object' && address ? address.port : options.port;
        const host = options.host.includes(':') ? `[${options.host}]` : options.host;
        return `http://${host}:${port}`;
      },
      async close() {
        try {
          await manager.shutdown(options.shutdownGraceSeconds * 1000);
          if (listening) await app.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/**
 * Request bodies: JSON.parse with its position in the message, and no `__proto__` or
 * `constructor.prototype` keys (prototype poisoning, refused like Fastify's default parser does).
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '')
    throw new HttpError(
      400,
      'EAGLET_BAD_REQUEST',
      'invalid body: content-type is JSON but the body is empty',
      {
        issues: [{ in: 'body', path: '', reason: 'empty' }],
      },
    );
  try {
    return JSON.parse(text, (key, value: unknown) => {
      if (key === '__proto__') throw new SyntaxError('forbidden key "__proto__"');
      if (key === 'constructor' && value && typeof value === 'object' && Object.hasOwn(value, 'prototype'))
        throw new SyntaxError('forbidden key "constructor.prototype"');
      return value;
    });
  } catch (e) {
    const reason = `not valid JSON: ${(e as Error).message}`;
    throw new HttpError(400, 'EAGLET_BAD_JSON', `invalid body: ${reason}`, {
      issues: [{ in: 'body', path: '', reason }],
    });
  }
}

/**
 * The OpenAPI document a server with these job kinds serves at /api/openapi.json (what
 * `scripts/gen-openapi.mjs` writes to docs/openapi.json). Built by a real server in a scratch folder.
 */
export async function serverOpenApi(
  kinds: ReadonlyArray<JobKind> = BUILTIN_JOB_KINDS,
): Promise<Record<string, unknown>> {
  const scratch = mkdtempSync(join(tmpdir(), 'eaglet-openapi-'));
  try {
    const server = await createServer(
      { roots: [scratch], port: 0 },
      { registry: new PluginRegistry(), kinds },
    );
    await server.close();
    return server.openapi;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Fastify's own errors (body parsing, size, media type) as the API's errors; anything else is a 500. */
function fromFastifyError(error: FastifyError, where: string): HttpError {
  const status = error.statusCode ?? 500;
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError(
        413,
        'EAGLET_BODY_TOO_LARGE',
        `request body is larger than the limit: ${error.message}`,
        {
          issues: [{ in: 'body', path: '', reason: 'too large' }],
        },
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpError(
        415,
        'EAGLET_UNSUPPORTED_MEDIA_TYPE',
        'the body must be JSON (content-type: application/json)',
        {
          issues: [{ in: 'header', path: 'content-type', reason: 'expected application/json' }],
        },
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new HttpError(
        400,
        'EAGLET_BAD_REQUEST',
        'invalid body: content-type is JSON but the body is empty',
        {
          issues: [{ in: 'body', path: '', reason: 'empty' }],
        },
      );
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpError(
        400,
        'EAGLET_BAD_REQUEST',
        'invalid header: content-length does not match the body',
        {
          issues: [{ in: 'header', path: 'content-length', reason: 'does not match the body' }],
        },
      );
  }
  if (status >= 400 && status < 500) {
    const json = error instanceof SyntaxError || /JSON/i.test(error.message);
    return new HttpError(
      status,
      json ? 'EAGLET_BAD_JSON' : 'EAGLET_BAD_REQUEST',
      json ? `invalid body: not valid JSON: ${error.message}` : error.message,
      json ? { issues: [{ in: 'body', path: '', reason: `not valid JSON: ${error.message}` }] } : {},
    );
  }
  process.emitWarning(`eaglet server: internal error in ${where}: ${error.stack ?? error.message}`);
  return new HttpError(500, 'EAGLET_INTERNAL', `internal error: ${error.message}`);
}

const pascal = (s: string) => s.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());

/** Component names for the OpenAPI document: the API's shapes plus each kind's config and result. */
function componentNames(kinds: readonly JobKind[]): Map<z.ZodType, string> {
  const named = new Map<z.ZodType, string>([
    [S.JobRecord, 'JobSummary'],
    [S.StoredEvent, 'StoredEvent'],
    [S.ApiError, 'ApiError'],
    [S.ServerInfo, 'ServerInfo'],
    [S.KindList, 'KindList'],
    [S.JobList, 'JobList'],
    [S.EventPage, 'EventPage'],
    [S.ArtifactList, 'ArtifactList'],
    [S.DirectoryListing, 'DirectoryListing'],
    [ValidationReport, 'ValidationReport'],
  ]);
  for (const k of kinds) {
    if (!named.has(k.config)) named.set(k.config, `${pascal(k.kind)}JobConfig`);
    if (k.result && !named.has(k.result)) named.set(k.result, `${pascal(k.kind)}Result`);
  }
  return named;
}

/** POST /api/jobs as documented: one branch per kind (the handler validates in two steps for clearer errors). */
function createJobSchema(kinds: readonly JobKind[]): z.ZodType {
  const branches = kinds.map((k) =>
    z.strictObject({ kind: z.literal(k.kind), name: z.string().max(200).optional(), config: k.config }),
  );
  return branches.length === 1
    ? branches[0]!
    : z.discriminatedUnion('kind', branches as [(typeof branches)[0], ...typeof branches]);
}

/** A job record with its result documented as one of the kinds' results. */
function jobSchema(kinds: readonly JobKind[]): z.ZodType {
  const results = kinds.map((k) => k.result ?? z.unknown());
  const result = results.length === 1 ? results[0]! : z.union(results as [z.ZodType, ...z.ZodType[]]);
  return S.JobRecord.extend({ result: result.optional() });
}
