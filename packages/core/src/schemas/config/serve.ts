import { z } from 'zod';
import {
  BackendOptions,
  Device,
  Dtype,
  MaxModelLen,
  NumSpecTokens,
  PathOrHubId,
  PathString,
} from './common.js';

/**
 * `eaglet backend serve`: a backend's OpenAI-compatible server(s) for a target (and an Eagle3
 * draft). The settings every backend understands; the chosen backend's own go in `backendOptions`.
 */
export const ServeConfig = z.strictObject({
  /** Backend plugin id. Absent: the registry's default backend, the first one registered (the embedded torch backend among eaglet's built-ins). */
  backend: z.string().min(1).optional(),
  /** Target plugin id. Absent: the target whose `architectures` claim the checkpoint's config.json. */
  target: z.string().min(1).optional(),
  /** Local folder of the target model. */
  targetModel: PathOrHubId,
  /** Eagle3 draft folder; absent serves the target alone. */
  draftModel: PathOrHubId.optional(),
  /** Draft chain length when a draft is served. */
  numSpecTokens: NumSpecTokens,
  /** Address to bind (anything but loopback should set apiKey). */
  host: z.string().min(1).default('127.0.0.1'),
  /** First port (seed: BASE_PORT); replica i listens on port + i. 0: any free port (one replica). */
  port: z.number().int().min(0).max(65535).default(6000),
  /** Independent server processes (one per GPU for data parallel). */
  replicas: z.number().int().positive().default(1),
  /** Tensor-parallel size per replica. */
  tp: z.number().int().positive().default(1),
  /** Name clients send as `model` and /v1/models lists. Absent: the target folder's name. */
  servedModelName: z.string().min(1).optional(),
  device: Device.default('auto'),
  dtype: Dtype.default('auto'),
  /** Longest prompt + output in tokens. */
  maxModelLen: MaxModelLen,
  /** Folder whose files `audio_url` parts may name as file:// URLs (vLLM's --allowed-local-media-path). */
  allowedLocalMediaPath: PathString.optional(),
  /** Bearer token clients must send (none: open, which is why the default host is 127.0.0.1). */
  apiKey: z.string().min(1).optional(),
  /** Folder for each replica's log file (`replica-<i>.log`). Absent: a temporary folder. */
  logDir: PathString.optional(),
  /** Restart a replica whose process exits unexpectedly. */
  restartOnCrash: z.boolean().default(true),
  /** Seconds to wait for a replica to answer health checks. */
  startupTimeoutSeconds: z.number().positive().default(1800),
  /** The chosen backend's own settings, validated by its schema (see BackendOptions). */
  backendOptions: BackendOptions,
});
export type ServeConfig = z.infer<typeof ServeConfig>;
export type ServeConfigInput = z.input<typeof ServeConfig>;
