import { z } from 'zod';

/** How a server is set up (`eaglet serve` flags map onto these). */
export const ServerOptions = z.strictObject({
  /** Address to listen on. Anything beyond loopback (127.0.0.0/8, ::1) requires `token`. */
  host: z.string().min(1).default('127.0.0.1'),
  /** Port; 0 picks a free one. */
  port: z.number().int().min(0).max(65535).default(8765),
  /** Bearer token for the API (at least 16 characters). */
  token: z.string().optional(),
  /** Folders requests may name (job config paths, file listings, artifacts); relative paths resolve against the first. */
  roots: z.array(z.string().min(1)).min(1),
  /**
   * Whether jobs may read audio from http(s) URLs named inside their data (the server fetches
   * them). Local audio files named inside the data are always confined to `roots`.
   */
  remoteAudio: z.boolean().default(false),
  /**
   * Whether job configs may name models and datasets by Hugging Face Hub id (the server downloads
   * them into its Hub cache, HF_HOME). Off: only paths inside `roots`.
   */
  hub: z.boolean().default(false),
  /** Where job records and events live (default `<first root>/.eaglet/server`); jobs may not name paths in it. */
  stateDir: z.string().min(1).optional(),
  /** Largest request body in bytes (413 beyond). */
  bodyLimit: z
    .number()
    .int()
    .positive()
    .default(256 * 1024),
  /** Heavy jobs (compute engine, GPUs, every core) running at once. */
  heavyJobs: z.number().int().positive().default(1),
  /** Light jobs (validation) running at once. */
  lightJobs: z.number().int().positive().default(4),
  /** Jobs waiting in the queue before POST /api/jobs answers 429. */
  queuedJobs: z.number().int().positive().default(100),
  /** Seconds a shutdown waits for running jobs to stop at a safe point. */
  shutdownGraceSeconds: z.number().nonnegative().default(30),
});
export type ServerOptions = z.infer<typeof ServerOptions>;
export type ServerOptionsInput = z.input<typeof ServerOptions>;
