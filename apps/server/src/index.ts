/**
 * @eaglet/server: eaglet's HTTP app. A job API over the same @eaglet/flows functions the CLI
 * calls, live progress over Server-Sent Events, an OpenAPI document generated from the zod
 * schemas, and a dashboard page. `eaglet serve` starts it.
 */
export { createServer, type EagletServer, parseServerOptions, serverOpenApi } from './app.js';
export { BUILTIN_JOB_KINDS, ValidateJobConfig } from './jobs/builtin-kinds.js';
export { defineJobKind, type JobContext, type JobKind, JobKindRegistry } from './jobs/kind.js';
export { type JobChange, type JobLimits, JobManager } from './jobs/manager.js';
export { ServerOptions, type ServerOptionsInput } from './options.js';
export { isInside, PathGuard, PathRefused } from './paths.js';
export * from './schemas.js';
export { startServer } from './start.js';
