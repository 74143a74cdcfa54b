import { type AudioDecoder, ffmpegDecoder } from '@eaglet/audio';
import {
  type ChatTemplateSession,
  EagletError,
  type GenerateResult,
  GenerationEngineConfig,
  type GenerationEngineConfigInput,
  type Message,
  type TargetModel,
} from '@eaglet/core';
import { EngineWorker, type WorkerReadyInfo } from '@eaglet/engine';

/** Sampling parameters of one request. */
export interface SamplingParams {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  /** Use the draft (when the replica has one). Default: whenever a draft is loaded. */
  speculative?: boolean;
  /** Stop at the target's end-of-turn ids (default true). */
  stopAtEos?: boolean;
}

/** A prompt ready for the engine: token ids and PCM, rendered and decoded once. */
export interface PreparedPrompt {
  inputIds: number[];
  /** float32 little-endian PCM per audio part, base64. */
  audio: Array<{ pcm: string }>;
}

export interface Completion {
  text: string;
  outputIds: number[];
  finishReason: 'stop' | 'length' | 'cancelled';
  promptTokens: number;
  result: GenerateResult;
}

/**
 * One embedded replica: a generation worker (the Python engine) plus what TS does around it:
 * decoding audio to 16 kHz PCM, rendering the chat template, and turning ids back into text.
 */
export class EmbeddedReplica {
  private worker: EngineWorker | undefined;
  private starting: Promise<EngineWorker> | undefined;
  restarts = 0;
  private closed = false;
  private readonly decoder: AudioDecoder = ffmpegDecoder();
  /** The worker's config with the schema's defaults applied (the one place they live). */
  private readonly engineConfig: GenerationEngineConfig;

  constructor(
    readonly target: TargetModel,
    readonly session: ChatTemplateSession,
    engineConfig: GenerationEngineConfigInput,
    private readonly options: {
      logFile?: string;
      restartOnCrash?: boolean;
      onEvent?: (message: string) => void;
    } = {},
  ) {
    this.engineConfig = GenerationEngineConfig.parse(engineConfig);
  }

  get info(): WorkerReadyInfo | undefined {
    return this.worker?.info;
  }

  get alive(): boolean {
    return !!this.worker?.alive;
  }

  get pid(): number | undefined {
    return this.worker?.pid;
  }

  get logFile(): string | undefined {
    return this.worker?.logFile ?? this.options.logFile;
  }

  get maxModelLen(): number {
    return this.engineConfig.maxModelLen;
  }

  /** Starts the worker (loads the model). A crashed worker is restarted when `restartOnCrash`. */
  async start(): Promise<WorkerReadyInfo> {
    this.starting ??= EngineWorker.start({
      config: this.engineConfig,
      ...(this.target.enginePath ? { pythonPath: [this.target.enginePath] } : {}),
      ...(this.options.logFile ? { logFile: this.options.logFile } : {}),
      onExit: ({ code, signal, stderrTail }) => {
        this.worker = undefined;
        this.starting = undefined;
        if (this.closed) return;
        this.options.onEvent?.(
          `generation worker exited (${signal ?? `code ${code}`}); last log lines:\n${stderrTail.split('\n').slice(-5).join('\n')}`,
        );
        if (this.options.restartOnCrash ?? true) {
          this.restarts++;
          this.start().catch((e) => this.options.onEvent?.(`restart failed: ${(e as Error).message}`));
        }
      },
    }).then((w) => {
      this.worker = w;
      return w;
    });
    try {
      return (await this.starting).info;
    } catch (e) {
      this.starting = undefined;
      throw e;
    }
  }

  /** Renders messages and decodes their audio, once per prompt. */
  async prepare(messages: Message[], signal?: AbortSignal): Promise<PreparedPrompt> {
    const rate = this.target.audio?.sampleRate ?? 16000;
    const clips: Float32Array[] = [];
    for (const m of messages) {
      for (const p of m.content) {
        if (p.type !== 'audio') continue;
        if (!this.target.audio)
          throw new EagletError('EAGLET_BAD_REQUEST', `target ${this.target.id} takes no audio`);
        const decoded = await this.decoder.decode(p.audio, {
          sampleRate: rate,
          ...(signal ? { signal } : {}),
        });
        let pcm = decoded.pcm;
        if (p.start !== undefined || p.end !== undefined) {
          pcm = pcm.subarray(
            Math.round((p.start ?? 0) * rate),
            p.end === undefined ? undefined : Math.round(p.end * rate),
          );
        }
        const max = Math.round(this.target.audio.maxSeconds * rate);
        if (pcm.length > max) {
          throw new EagletError(
            'EAGLET_AUDIO_TOO_LONG',
            `audio ${p.audio.startsWith('data:') ? '(inline)' : p.audio} is ${(pcm.length / rate).toFixed(1)} s; ${this.target.id} hears at most ${this.target.audio.maxSeconds} s`,
            { hint: 'cut it into segments (eaglet data prepare --long-audio segment does) and send each' },
          );
        }
        clips.push(pcm);
      }
    }
    const rendered = this.session.renderPrompt(
      messages,
      clips.map((c) => ({ samples: c.length })),
    );
    return {
      inputIds: Array.from(rendered.inputIds),
      audio: clips.map((c) => ({
        pcm: Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('base64'),
      })),
    };
  }

  /** Generates for a prepared prompt; `onText` receives text deltas as tokens arrive. */
  async complete(
    prompt: PreparedPrompt,
    params: SamplingParams,
    options: { onText?: (delta: string) => void; signal?: AbortSignal } = {},
  ): Promise<Completion> {
    // Checked before anything else: the worker's caches and CUDA graphs are sized for maxModelLen
    // at start-up, so a longer prompt is refused, never re-captured for.
    const room = this.maxModelLen - prompt.inputIds.length;
    if (room < 1) {
      throw new EagletError(
        'EAGLET_PROMPT_TOO_LONG',
        `the prompt has ${prompt.inputIds.length} tokens; this server decodes at most ${this.maxModelLen} tokens of prompt and output (maxModelLen)`,
        { hint: 'shorten the prompt, or restart the server with a larger --max-model-len' },
      );
    }
    const worker = this.worker ?? (this.starting ? await this.starting : undefined);
    if (!worker?.alive)
      throw new EagletError('EAGLET_WORKER_GONE', 'the generation worker is not running (restarting)');
    const maxTokens = Math.min(params.maxTokens ?? room, room);
    const speculative = params.speculative ?? worker.info.speculative;
    const ids: number[] = [];
    let sent = '';
    const onTokens = options.onText
      ? (chunk: number[]) => {
          ids.push(...chunk);
          const text = this.session.tokenizer.decode(ids, { skipSpecialTokens: true });
          // Hold back a partial UTF-8 character until its remaining bytes arrive.
          if (text.endsWith('\uFFFD') || text.length <= sent.length) return;
          options.onText?.(text.slice(sent.length));
          sent = text;
        }
      : undefined;
    const result = await worker.generate(
      {
        inputIds: prompt.inputIds,
        audio: prompt.audio,
        maxTokens,
        temperature: params.temperature ?? 1,
        topP: params.topP ?? 1,
        ...(params.seed === undefined ? {} : { seed: params.seed }),
        stopTokenIds: params.stopAtEos === false ? [] : [...this.session.tokenizer.eosTokenIds],
        speculative,
      },
      { ...(onTokens ? { onTokens } : {}), ...(options.signal ? { signal: options.signal } : {}) },
    );
    const text = this.session.tokenizer.decode(result.outputIds, { skipSpecialTokens: true });
    if (options.onText && text.length > sent.length) options.onText(text.slice(sent.length));
    return {
      text,
      outputIds: result.outputIds,
      finishReason: result.finishReason,
      promptTokens: result.promptTokens,
      result,
    };
  }

  async stop(): Promise<void> {
    this.closed = true;
    const w = this.worker ?? (await this.starting?.catch(() => undefined));
    await w?.stop();
  }

  /** Kills the worker process (tests simulate a crash with this). */
  kill(): void {
    this.worker?.kill('SIGKILL');
  }
}
