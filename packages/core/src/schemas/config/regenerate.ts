import { z } from 'zod';
import { PathOrHubId, PathString, Seed } from './common.js';

/**
 * How each request's sampling temperature is chosen. `fixed` uses one value; `uniform` draws from
 * [min, max] and `choice` picks from a list, per record, from a hash of the seed and the record's
 * position, so a resumed run gives every record the temperature it would have had.
 */
export const TemperaturePolicy = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('fixed'), value: z.number().min(0) }),
  z.strictObject({ kind: z.literal('uniform'), min: z.number().min(0), max: z.number().min(0) }),
  z.strictObject({ kind: z.literal('choice'), values: z.array(z.number().min(0)).min(1) }),
]);
export type TemperaturePolicy = z.infer<typeof TemperaturePolicy>;

/**
 * `eaglet data regenerate`: answer the user turns again with the target model through
 * OpenAI-compatible endpoints. Fields marked `seed:` are the user's original script's parameters.
 */
export const RegenerateConfig = z.strictObject({
  /** seed: DATA_NAME_OR_PATH. Input jsonl files, folders of them, or Hub dataset ids. */
  data: z.array(PathOrHubId).min(1),
  /** seed: OUTPUT_DIR. */
  outputDir: PathString,
  /** seed: DATA_FORMAT (sharegpt | ultrachat | openai-conversations | auto). Output keeps the input's format. */
  format: z.string().default('auto'),
  /**
   * seed: DATA_SHARD_SIZE. Input records per output shard `data_{start}-{end}.jsonl` (end
   * exclusive). Each input file has its own shards: in the output folder for one input, in a
   * sub-folder named after the file (`train/`, `dev/`) for several.
   */
  shardSize: z.number().int().positive().default(50000),
  /** seed: BASE_PORT. Endpoints are http://host:basePort+i/v1 for i < numEndpoints, unless `endpoints` is set. */
  basePort: z.number().int().min(1).max(65535).default(6000),
  /** Servers started as in the seed's run_vllm_server.sh: one per GPU on consecutive ports. */
  numEndpoints: z.number().int().positive().default(1),
  host: z.string().default('127.0.0.1'),
  /** Explicit endpoint base URLs (…/v1); overrides basePort/numEndpoints. */
  endpoints: z.array(z.url()).default([]),
  /** Bearer token sent to the endpoints (vLLM's --api-key). */
  apiKey: z.string().optional(),
  /** Served model name; default: ask the endpoint's /v1/models. */
  model: z.string().optional(),
  /** Requests in flight across all endpoints (the reference uses 256 threads). */
  concurrency: z.number().int().positive().default(256),
  /** Longest answer per assistant turn (the reference's max_tokens). */
  maxTokens: z.number().int().positive().default(2048),
  /** A number (fixed) or a policy (see TemperaturePolicy). */
  temperature: z.union([z.number().min(0), TemperaturePolicy]).default(0),
  topP: z.number().gt(0).max(1).default(1),
  /**
   * How audio travels: `input_audio` (base64 in the request; works with any server) or
   * `audio_url` (local files as file:// URLs, which the server must be allowed to read, e.g.
   * vLLM's --allowed-local-media-path; http(s) and data: references as they are).
   */
  audioMode: z.enum(['input_audio', 'audio_url']).default('input_audio'),
  /**
   * `all`: every assistant turn is answered again, in order, each seeing the regenerated earlier
   * turns; `last`: only the final assistant turn (earlier turns are kept as they are).
   */
  turns: z.enum(['all', 'last']).default('all'),
  /** Keep the system prompt of the input when the record has one (else the server's template default). */
  keepSystem: z.boolean().default(true),
  /**
   * How long a failing request keeps being retried (connection errors, timeouts, 429, 5xx) before
   * the run stops (a rerun continues it). An endpoint that stops answering is waited for on its
   * `/health`, so a server restart within this budget costs no record.
   */
  retryMinutes: z.number().positive().default(10),
  /** At most this many retries per request, when set (default: as many as retryMinutes allows). */
  retries: z.number().int().nonnegative().optional(),
  /** First backoff delay after a 429 or 5xx; doubles each retry (with jitter), up to 30 s. */
  backoffSeconds: z.number().positive().default(1),
  requestTimeoutSeconds: z.number().positive().default(600),
  /** Answers cut by maxTokens (finish_reason `length`) go to the rejects file instead of the output. */
  rejectTruncated: z.boolean().default(false),
  /** Continue a previous run in outputDir (the default); false refuses a non-empty outputDir. */
  resume: z.boolean().default(true),
  seed: Seed,
});
export type RegenerateConfig = z.infer<typeof RegenerateConfig>;
export type RegenerateConfigInput = z.input<typeof RegenerateConfig>;
