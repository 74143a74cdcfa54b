import type { BenchConfig } from '../schemas/config/bench.js';
import type { Device } from '../schemas/config/common.js';
import type { Message } from '../schemas/conversation.js';
import type { EventSink } from '../schemas/events.js';
import type { BenchReport } from '../schemas/report.js';
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

/** Where a backend's OpenAI-compatible server should run and what it serves. */
export interface ServeOptions {
  /** Target plugin id; absent: the plugin whose architectures claim the model's config.json. */
  target?: string;
  /** Local folder of the target model. */
  targetModel: string;
  /** Eagle3 draft folder; absent serves the target alone. */
  draftModel?: string;
  /** Draft chain length when a draft is served. */
  numSpecTokens?: number;
  host: string;
  /** First port; replica i listens on port + i. */
  port: number;
  /** Independent server processes (one per GPU for data parallel). Default 1. */
  replicas?: number;
  /** Tensor-parallel size per replica. Default 1. */
  tp?: number;
  /** Name clients send as `model` and /v1/models lists. Default: the target folder's name. */
  servedModelName?: string;
  device?: Device;
  dtype?: 'auto' | 'bf16' | 'fp16' | 'fp32';
  /** Longest prompt + output in tokens. */
  maxModelLen?: number;
  /** CPU threads of an embedded engine (0: the library's default). */
  cpuThreads?: number;
  /** Folder whose files `audio_url` parts may name as file:// URLs (vLLM's --allowed-local-media-path). */
  allowedLocalMediaPath?: string;
  /** Bearer token clients must send (none: open, which is why the default host is 127.0.0.1). */
  apiKey?: string;
  /** Folder for each replica's log file (`replica-<i>.log`). Default: a temporary folder. */
  logDir?: string;
  /** Restart a replica whose process exits unexpectedly. Default true. */
  restartOnCrash?: boolean;
  /** Seconds to wait for a replica to answer health checks. */
  startupTimeoutSeconds?: number;
  /** Extra engine arguments passed through verbatim (e.g. vLLM flags). */
  extraArgs?: string[];
}

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

/** What a backend gets from the flow that calls it: resolved plugins, events and a stop signal. */
export interface BackendContext {
  events: EventSink;
  signal: AbortSignal;
  /** The target plugin named by the config. */
  target: TargetModel;
  /** The target's chat template (backends that template in TS use it; vLLM uses the model's own). */
  template: ChatTemplate;
}

/**
 * A serving engine (the embedded PyTorch engine, vLLM, ...). Backends differ in how they run the
 * model; they agree on the OpenAI API they serve and on the benchmark report they return, whose
 * metrics every backend computes with core's `buildBenchReport` (one definition of each figure).
 */
export interface Backend {
  /** Id used on the command line (`--backend vllm`). Unique across plugins. */
  readonly id: string;
  /** One line shown by `eaglet plugins`. */
  readonly description: string;
  readonly capabilities: BackendCapabilities;
  /** Whether the backend can run here, and if not, why and how to fix it (for `eaglet doctor`). */
  available(): Promise<{ ok: true; version: string } | { ok: false; reason: string; hint: string }>;
  /** Starts OpenAI-compatible server(s) and resolves once every replica answers health checks. */
  serve(options: ServeOptions, ctx: BackendContext): Promise<ServerHandle>;
  /**
   * Runs the baseline and/or Eagle3 on the same prompts (as `config` says) and measures them.
   * The report is built with `buildBenchReport`; the flow writes it (JSON, Markdown, plot).
   */
  bench(config: BenchConfig, prompts: BenchPrompt[], ctx: BackendContext): Promise<BenchReport>;
}
