import type { BenchConfig } from '../schemas/config/bench.js';
import type { Message } from '../schemas/conversation.js';
import type { EventSink } from '../schemas/events.js';
import type { BenchRun, OutputComparison } from '../schemas/report.js';

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
  /** Target plugin id. */
  target: string;
  targetModel: string;
  /** Eagle3 draft folder; absent serves the target alone. */
  draftModel?: string;
  numSpecTokens?: number;
  host: string;
  /** First port; replica i listens on port + i. */
  port: number;
  /** Independent server processes (one per GPU for data parallel). */
  replicas?: number;
  /** Tensor-parallel size per replica. */
  tp?: number;
  /** Extra engine arguments passed through verbatim. */
  extraArgs?: string[];
}

/** A running server. */
export interface ServerHandle {
  /** Base URLs of the OpenAI API, one per replica (`http://127.0.0.1:6000/v1`). */
  readonly urls: readonly string[];
  health(): Promise<boolean>;
  /** Stops every replica; resolves when all processes have exited. */
  stop(): Promise<void>;
}

/** One benchmark prompt: the rendered conversation prefix plus its audio. */
export interface BenchPrompt {
  id: string;
  /** Canonical messages up to the user turn to answer. */
  messages: Message[];
}

export interface BenchResult {
  baseline?: BenchRun;
  eagle3?: BenchRun;
  outputsMatch?: OutputComparison;
  /** Versions of the engine's libraries and the device used, for the report. */
  device: string;
  engineVersions: Record<string, string>;
}

export interface BackendContext {
  events: EventSink;
  signal: AbortSignal;
}

/** A serving engine (the embedded PyTorch engine, vLLM, ...). */
export interface Backend {
  /** Id used on the command line (`--backend vllm`). Unique across plugins. */
  readonly id: string;
  /** One line shown by `eaglet plugins`. */
  readonly description: string;
  readonly capabilities: BackendCapabilities;
  /** Whether the backend can run here, and if not, why and how to fix it (for `eaglet doctor`). */
  available(): Promise<{ ok: true; version: string } | { ok: false; reason: string; hint: string }>;
  /** Starts OpenAI-compatible server(s) and resolves once they answer health checks. */
  serve(options: ServeOptions, ctx: BackendContext): Promise<ServerHandle>;
  /** Runs baseline and/or Eagle3 generation on the same prompts and measures them. */
  bench(config: BenchConfig, prompts: BenchPrompt[], ctx: BackendContext): Promise<BenchResult>;
}
