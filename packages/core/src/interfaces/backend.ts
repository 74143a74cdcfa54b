import type { z } from 'zod';
import type { BenchConfig } from '../schemas/config/bench.js';
import type { BackendOptions } from '../schemas/config/common.js';
import type { ServeConfig } from '../schemas/config/serve.js';
import type { Message } from '../schemas/conversation.js';
import type { EventSink } from '../schemas/events.js';
import type { BenchMode, BenchRequest, SpecDecodeCounters } from '../schemas/report.js';
import type { AudioDecoderFactory } from './audio-decoder.js';
import type { ChatTemplate } from './chat-template.js';
import type { TargetModel } from './target-model.js';

export interface BackendCapabilities {
  /** Eagle3 speculative decoding. */
  speculative: boolean;
  /** Audio input parts. */
  audio: boolean;
  /** More than one GPU (replicas or tensor parallel). */
  multiGpu: boolean;
}

/**
 * A config as a backend receives it: `backend` and `target` resolved to the plugins the flow chose,
 * and `backendOptions` parsed by the backend's own `optionsSchema` (its defaults filled in).
 */
export type ResolvedConfig<C extends { backendOptions: unknown }, Options> = Omit<
  C,
  'backend' | 'target' | 'backendOptions'
> & {
  /** Id of the backend running it. */
  backend: string;
  /** Id of the target plugin. */
  target: string;
  backendOptions: Options;
};

/** Where a backend's OpenAI-compatible server should run and what it serves (see ServeConfig). */
export type ServeOptions<Options = BackendOptions> = ResolvedConfig<ServeConfig, Options>;

/** What a backend benchmarks (see BenchConfig). */
export type ResolvedBenchConfig<Options = BackendOptions> = ResolvedConfig<BenchConfig, Options>;

/** The state of one replica, as `health()` reports it. */
export interface ReplicaStatus {
  /** Base URL of its OpenAI API (`http://127.0.0.1:6000/v1`). */
  url: string;
  /** Whether it answered its health check just now. */
  healthy: boolean;
  /** Times it was restarted after a crash. */
  restarts: number;
  pid?: number;
  logFile?: string;
  /** Why it is unhealthy, where known. */
  reason?: string;
}

/** A chat request in eaglet's canonical messages (audio as paths, URLs or data: URIs). */
export interface ChatRequest {
  messages: Message[];
  maxTokens: number;
  temperature?: number;
  topP?: number;
  seed?: number;
}

export interface ChatResult {
  text: string;
  /** `stop` (end of turn) or `length` (maxTokens reached). */
  finishReason: string;
  promptTokens: number;
  completionTokens: number;
}

/** A running server: one or more replicas behind OpenAI-compatible URLs. */
export interface ServerHandle {
  /** Base URLs of the OpenAI API, one per replica (`http://127.0.0.1:6000/v1`). */
  readonly urls: readonly string[];
  /** The served model name. */
  readonly model: string;
  /** Asks every replica's health endpoint. */
  health(): Promise<ReplicaStatus[]>;
  /** One chat completion through the OpenAI API (replicas in turn). */
  chat(request: ChatRequest, options?: { signal?: AbortSignal }): Promise<ChatResult>;
  /** Stops every replica; resolves when all processes have exited. Safe to call twice. */
  stop(): Promise<void>;
}

/** One benchmark prompt: canonical messages up to (and including) the user turn to answer. */
export interface BenchPrompt {
  id: string;
  messages: Message[];
}

/** One pass of one mode over the prompts, as the backend measured it. */
export interface BenchPass {
  /** One per prompt, in prompt order (latency and TTFT as the backend measures them). */
  requests: BenchRequest[];
  /** Output token ids per prompt, in prompt order (the temperature-0 comparison). */
  outputs: Array<{ id: string; ids: number[] }>;
  /** Eagle3: the speculative-decoding counters of this pass alone. */
  counters?: SpecDecodeCounters;
}

/**
 * A loaded benchmark: the target (and draft) ready to decode the prompts in each mode the config
 * asks for. The bench flow drives it (a warm-up, then rounds of one pass per mode in alternating
 * order) and times each pass around `pass`, so every backend is measured by the same clock.
 */
export interface BenchSession {
  /** Where it runs, for the report (`cpu`, `cuda:0`, `vllm 0.11.0`). */
  readonly device: string;
  /** Versions and settings of what ran (torch, transformers, vLLM, dtype, decode path). */
  readonly engineVersions: Record<string, string>;
  /**
   * Runs the prompts once in `mode`, in order (batched as the config's maxNumSeqs allows), and
   * returns what it measured. `limit` (the warm-up) runs only the first `limit.prompts` prompts
   * with at most `limit.maxTokens` new tokens each.
   */
  pass(mode: BenchMode, limit?: { prompts: number; maxTokens: number }): Promise<BenchPass>;
  /** Frees what it loaded (processes, memory). Safe to call twice. */
  close(): Promise<void>;
}

/** What a backend gets from the flow that calls it: resolved plugins and services, events and a stop signal. */
export interface BackendContext {
  events: EventSink;
  signal: AbortSignal;
  /** The target plugin the flow chose (named by the config, or found by the checkpoint's architecture). */
  target: TargetModel;
  /** The target's chat template (backends that template in TS use it; vLLM uses the model's own). */
  template: ChatTemplate;
  /** Makes the audio decoders a backend that decodes in TS uses (the one the composition root registered). */
  audioDecoder: AudioDecoderFactory;
}

/**
 * A serving engine (the embedded PyTorch engine, vLLM, ...). Backends differ in how they run the
 * model; they agree on the OpenAI API they serve and on what a benchmark pass measures, from which
 * the bench flow builds one report with core's `buildBenchReport` (one definition of each figure).
 */
export interface Backend<Options = BackendOptions> {
  /** Id used on the command line (`--backend vllm`). Unique across plugins. */
  readonly id: string;
  /**
   * The settings only this backend understands (`backendOptions` of bench and serve configs,
   * `--backend-option key=value` on the command line). Absent: the backend takes none.
   */
  readonly optionsSchema?: z.ZodType<Options>;
  /** One line shown by `eaglet plugins`. */
  readonly description: string;
  readonly capabilities: BackendCapabilities;
  /** Whether the backend can run here, and if not, why and how to fix it (for `eaglet doctor`). */
  available(): Promise<{ ok: true; version: string } | { ok: false; reason: string; hint: string }>;
  /** Starts OpenAI-compatible server(s) and resolves once every replica answers health checks. */
  serve(options: ServeOptions<Options>, ctx: BackendContext): Promise<ServerHandle>;
  /**
   * Loads what the benchmark of `prompts` needs for the modes `config` asks for (the baseline,
   * Eagle3, or both: both stay loaded, so the flow can alternate them round by round). The flow
   * runs the passes, closes the session and builds the report.
   */
  openBench(
    config: ResolvedBenchConfig<Options>,
    prompts: BenchPrompt[],
    ctx: BackendContext,
  ): Promise<BenchSession>;
}
