import { z } from 'zod';
import { PathOrHubId, PathString } from './common.js';

/** What to do with a recording longer than the target's audio window (its `audio.maxSeconds`). */
export const LongAudioPolicy = z.enum(['reject', 'truncate', 'segment']);
export type LongAudioPolicy = z.infer<typeof LongAudioPolicy>;

/** What to do with a record whose rendered token count exceeds `maxLength`. */
export const MaxLengthPolicy = z.enum(['reject', 'truncate']);
export type MaxLengthPolicy = z.infer<typeof MaxLengthPolicy>;

/** `eaglet data prepare`: jsonl conversations -> Arrow IPC shards the engine trains on. */
export const PrepareConfig = z.strictObject({
  /** Target plugin id; absent: the plugin whose architectures claim the model's config.json. */
  target: z.string().min(1).optional(),
  /** Local folder of the target model (tokenizer files and config.json are read from it). */
  model: PathOrHubId,
  /** Input jsonl files. */
  data: z.array(PathOrHubId).min(1, 'give at least one input file'),
  /** Input format name, or `auto` to detect per file. */
  format: z.string().default('auto'),
  /** Output folder for shards, manifest.json and rejects.jsonl. */
  out: PathString,
  /** Chat template id; defaults to the target's own (seed: CHAT_TEMPLATE_TYPE). */
  chatTemplate: z.string().optional(),
  /** Maximum tokens per record (seed: MODEL_MAX_LENGTH). */
  maxLength: z.number().int().positive().default(4096),
  maxLengthPolicy: MaxLengthPolicy.default('reject'),
  longAudioPolicy: LongAudioPolicy.default('segment'),
  /** Records per Arrow shard. */
  shardSize: z.number().int().positive().default(1000),
  /** Parallel audio decodes; 0 means one per core. */
  concurrency: z.number().int().nonnegative().default(0),
  /** `segment`: a VAD frame whose speech probability is below this is a pause. */
  pauseThreshold: z.number().gt(0).lt(1).default(0.35),
  /** Start again from scratch even if `out` holds an earlier or unfinished run. */
  overwrite: z.boolean().default(false),
});
export type PrepareConfig = z.infer<typeof PrepareConfig>;
export type PrepareConfigInput = z.input<typeof PrepareConfig>;
