import { z } from 'zod';
import { PathString, Seed } from './common.js';

/**
 * `eaglet data regenerate`: answer the user turns again with the target model through
 * OpenAI-compatible endpoints. Fields marked `seed:` are the user's original script's parameters.
 */
export const RegenerateConfig = z.strictObject({
  /** seed: DATA_NAME_OR_PATH. Input jsonl files (local; hubs are not reached). */
  data: z.array(PathString).min(1),
  /** seed: OUTPUT_DIR. */
  outputDir: PathString,
  /** seed: DATA_FORMAT (sharegpt | ultrachat | openai-conversations | auto). Output keeps the input's format. */
  format: z.string().default('auto'),
  /** seed: DATA_SHARD_SIZE. Records per output shard `data_{start}-{end}.jsonl`. */
  shardSize: z.number().int().positive().default(50000),
  /** seed: BASE_PORT. Endpoints are http://host:basePort+i/v1 for i < numEndpoints, unless `endpoints` is set. */
  basePort: z.number().int().min(1).max(65535).default(6000),
  numEndpoints: z.number().int().positive().default(1),
  host: z.string().default('127.0.0.1'),
  /** Explicit endpoint base URLs (…/v1); overrides basePort/numEndpoints. */
  endpoints: z.array(z.url()).default([]),
  /** Served model name; default: ask the endpoint's /v1/models. */
  model: z.string().optional(),
  /** Requests in flight across all endpoints. */
  concurrency: z.number().int().positive().default(256),
  maxTokens: z.number().int().positive().default(2048),
  temperature: z.number().min(0).default(0),
  topP: z.number().gt(0).max(1).default(1),
  /** How audio travels to the endpoint. */
  audioMode: z.enum(['input_audio', 'audio_url']).default('input_audio'),
  retries: z.number().int().nonnegative().default(4),
  requestTimeoutSeconds: z.number().positive().default(600),
  seed: Seed,
});
export type RegenerateConfig = z.infer<typeof RegenerateConfig>;
