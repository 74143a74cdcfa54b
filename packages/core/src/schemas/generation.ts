import { z } from 'zod';
import { Device, PathString } from './config/common.js';
import { EngineTarget } from './engine-target.js';
import { SpecDecodeCounters } from './report.js';

/**
 * The embedded generation engine (`python -m eaglet_engine worker --config F`): a long-lived
 * process that loads the target (and optionally an Eagle3 draft) once, then answers generation
 * requests read as JSON lines on stdin. TS does templating and audio decoding; the engine gets
 * token ids and 16 kHz PCM and does the compute.
 */
export const GenerationEngineConfig = z.strictObject({
  /** The target, resolved from its plugin (the same block the train config carries). */
  target: EngineTarget,
  /**
   * Exported Eagle3 draft folder (config.json + model.safetensors, the layout vLLM loads). Its
   * config's `eagle_aux_hidden_state_layer_ids` name the layers it reads; the target block's
   * `auxLayerIds` are used for a draft that names none.
   */
  draftModel: PathString.optional(),
  /** Draft chain length N (tokens proposed per verification step). */
  numSpecTokens: z.number().int().positive().default(2),
  device: Device.default('auto'),
  dtype: z.enum(['auto', 'bf16', 'fp16', 'fp32']).default('auto'),
  /** Longest prompt + output, in tokens. */
  maxModelLen: z.number().int().positive().default(16384),
  seed: z.number().int().nonnegative().default(0),
  /** CPU threads for torch (0: torch's default). Tiny models decode faster on one thread. */
  cpuThreads: z.number().int().nonnegative().default(0),
  /** Decode the first request once after loading (kernels, allocator), before `ready`. */
  warmup: z.boolean().default(false),
});
export type GenerationEngineConfig = z.infer<typeof GenerationEngineConfig>;
export type GenerationEngineConfigInput = z.input<typeof GenerationEngineConfig>;

/** One generation request on the worker's stdin. */
export const GenerateRequest = z.strictObject({
  op: z.literal('generate'),
  id: z.string().min(1),
  /** Prompt token ids with every audio placeholder already expanded. */
  inputIds: z.array(z.number().int().nonnegative()).min(1),
  /** One entry per audio part, in reading order: float32 little-endian PCM at 16 kHz, base64. */
  audio: z.array(z.strictObject({ pcm: z.string() })).default([]),
  maxTokens: z.number().int().positive(),
  temperature: z.number().min(0).default(0),
  topP: z.number().gt(0).max(1).default(1),
  /** Per-request sampling seed; absent: the worker's generator continues. */
  seed: z.number().int().nonnegative().optional(),
  /** Generation ends after emitting one of these (the target's end-of-turn ids). */
  stopTokenIds: z.array(z.number().int().nonnegative()).default([]),
  /** Eagle3 speculative decoding (needs a draft); false decodes with the target alone. */
  speculative: z.boolean().default(false),
  /** Send `tokens` messages as tokens are produced. */
  stream: z.boolean().default(false),
});
export type GenerateRequest = z.infer<typeof GenerateRequest>;
export type GenerateRequestInput = z.input<typeof GenerateRequest>;

export const WorkerRequest = z.discriminatedUnion('op', [
  GenerateRequest,
  z.strictObject({ op: z.literal('cancel'), id: z.string().min(1) }),
  z.strictObject({ op: z.literal('shutdown') }),
]);
export type WorkerRequest = z.input<typeof WorkerRequest>;

export const GenerateResult = z.strictObject({
  outputIds: z.array(z.number().int()),
  finishReason: z.enum(['stop', 'length', 'cancelled']),
  promptTokens: z.number().int().nonnegative(),
  /** Seconds of prefill (target, plus draft when speculative), measured in the engine. */
  prefillSeconds: z.number().nonnegative(),
  /** Seconds from the request's start to its last token, measured in the engine. */
  seconds: z.number().nonnegative(),
  /** Seconds to the first output token. */
  ttftSeconds: z.number().nonnegative(),
  /** Target forward passes (prefill included). */
  targetSteps: z.number().int().nonnegative(),
  spec: SpecDecodeCounters.optional(),
});
export type GenerateResult = z.infer<typeof GenerateResult>;

/** What the worker writes on stdout: one JSON object per line. */
export const WorkerMessage = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('ready'),
    device: z.string(),
    dtype: z.string(),
    speculative: z.boolean(),
    numSpecTokens: z.number().int().nonnegative(),
    vocabSize: z.number().int().positive(),
    versions: z.record(z.string(), z.string()),
    /** How decoding runs: captured CUDA graphs over static caches (CUDA), or eager PyTorch. */
    decodePath: z.enum(['graphs', 'eager']).optional(),
    /** Seconds spent capturing the CUDA graphs at start-up. */
    captureSeconds: z.number().nonnegative().optional(),
    /** What decode and verification steps run on the graph path: the fused Triton kernels, or the compiled (or plain) PyTorch functions. */
    decodeKernels: z.enum(['fused', 'compiled', 'plain']).optional(),
  }),
  z.strictObject({ type: z.literal('tokens'), id: z.string(), ids: z.array(z.number().int()) }),
  z.strictObject({ type: z.literal('result'), id: z.string(), result: GenerateResult }),
  z.strictObject({
    type: z.literal('failed'),
    id: z.string(),
    code: z.string(),
    message: z.string(),
  }),
  z.strictObject({
    type: z.literal('log'),
    level: z.enum(['debug', 'info', 'warn', 'error']),
    message: z.string(),
  }),
  z.strictObject({
    type: z.literal('fatal'),
    code: z.string(),
    message: z.string(),
    hint: z.string().optional(),
    traceback: z.string().optional(),
  }),
]);
export type WorkerMessage = z.infer<typeof WorkerMessage>;
