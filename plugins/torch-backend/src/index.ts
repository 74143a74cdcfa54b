import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import {
  addCounters,
  type Backend,
  type BackendContext,
  type BenchMode,
  type BenchPass,
  type BenchRequest,
  type BenchSession,
  type ChatRequest,
  type ChatResult,
  chatOverOpenAI,
  definePlugin,
  EagletError,
  type EagletPlugin,
  emptyCounters,
  engineTarget,
  type PluginRegistry,
  packageVersion,
  type ReplicaStatus,
  type ResolvedBenchConfig,
  type ServeOptions,
  type ServerHandle,
} from '@eaglet/core';
import { engineEnv, resolvePython, type WorkerReadyInfo } from '@eaglet/engine';
import { EmbeddedReplica, type PreparedPrompt } from './embedded.js';
import { OpenAIServer } from './openai-server.js';
import { TorchBackendOptions } from './options.js';

export { type Completion, EmbeddedReplica, type PreparedPrompt, type SamplingParams } from './embedded.js';
export { OpenAIServer, type OpenAIServerOptions } from './openai-server.js';
export { TorchBackendOptions } from './options.js';

/** Which decode path the worker runs, for logs and the bench report. */
export function decodePathText(info: WorkerReadyInfo | undefined): string {
  if (info?.decodePath === 'graphs') {
    const kernels = info.decodeKernels ? `, ${info.decodeKernels} decode kernels` : '';
    return `CUDA graphs (captured in ${(info.captureSeconds ?? 0).toFixed(1)} s${kernels})`;
  }
  return 'eager';
}

async function startReplicas(
  options: ServeOptions<TorchBackendOptions>,
  ctx: BackendContext,
): Promise<{ replicas: EmbeddedReplica[]; servers: OpenAIServer[] }> {
  if (options.tp > 1) {
    throw new EagletError(
      'EAGLET_BACKEND_UNSUPPORTED',
      'the embedded torch backend runs on one device: tensor parallelism needs the vllm backend',
      {
        hint: 'use --backend vllm, or replicas instead of tp',
      },
    );
  }
  const session = await ctx.template.load(options.targetModel);
  const info = await ctx.target.inspect(options.targetModel);
  const logDir = options.logDir ?? mkdtempSync(join(tmpdir(), 'eaglet-serve-'));
  const model = options.servedModelName ?? basename(resolve(options.targetModel));
  const replicas: EmbeddedReplica[] = [];
  const servers: OpenAIServer[] = [];
  try {
    for (let i = 0; i < options.replicas; i++) {
      const replica = new EmbeddedReplica(
        ctx.target,
        session,
        {
          target: engineTarget(ctx.target, info, options.targetModel),
          ...(options.draftModel ? { draftModel: options.draftModel } : {}),
          numSpecTokens: options.numSpecTokens,
          device: options.device,
          dtype: options.dtype,
          maxModelLen: options.maxModelLen,
          cpuThreads: options.backendOptions.cpuThreads,
        },
        {
          decoder: ctx.audioDecoder(),
          logFile: join(logDir, `replica-${i}.log`),
          restartOnCrash: options.restartOnCrash,
          onEvent: (message) =>
            ctx.events({ type: 'log', level: 'warn', message: `replica ${i}: ${message}` }),
        },
      );
      replicas.push(replica);
      await replica.start();
      const server = new OpenAIServer({
        replica,
        model,
        host: options.host,
        port: options.port + i,
        ...(options.allowedLocalMediaPath ? { allowedLocalMediaPath: options.allowedLocalMediaPath } : {}),
        ...(options.apiKey ? { apiKey: options.apiKey } : {}),
      });
      servers.push(server);
      const url = await server.listen();
      ctx.events({
        type: 'log',
        level: 'info',
        message: `replica ${i}: ${url} (${replica.info?.device}, ${decodePathText(replica.info)}, log ${replica.logFile})`,
      });
    }
  } catch (e) {
    await Promise.all(servers.map((s) => s.close()));
    await Promise.all(replicas.map((r) => r.stop()));
    throw e;
  }
  return { replicas, servers };
}

/**
 * Runs `prompts` through one replica in order and returns what the engine measured: one pass of
 * the benchmark (`speculative`: Eagle3). `maxTokens` caps the new tokens (the warm-up's).
 */
async function measure(
  replica: EmbeddedReplica,
  prompts: Array<{ id: string; prepared: PreparedPrompt }>,
  config: ResolvedBenchConfig<TorchBackendOptions>,
  mode: BenchMode,
  ctx: BackendContext,
  maxTokens = config.outputLen,
): Promise<BenchPass> {
  const speculative = mode === 'eagle3';
  const requests: BenchRequest[] = [];
  const outputs: Array<{ id: string; ids: number[] }> = [];
  let counters = emptyCounters(config.numSpecTokens);
  for (const [i, p] of prompts.entries()) {
    if (ctx.signal.aborted) throw new EagletError('EAGLET_CANCELLED', 'benchmark cancelled');
    const params = {
      maxTokens,
      temperature: config.temperature,
      topP: config.topP,
      seed: config.seed + i,
      speculative,
      stopAtEos: config.stopAtEos,
    };
    const out = await replica.complete(p.prepared, params, { signal: ctx.signal });
    const r = out.result;
    requests.push({
      id: p.id,
      promptTokens: r.promptTokens,
      outputTokens: r.outputIds.length,
      // Latency and TTFT are the engine's own measurements; the flow times the pass around them.
      latency: r.seconds,
      ttft: r.ttftSeconds,
      finishReason: r.finishReason,
    });
    outputs.push({ id: p.id, ids: r.outputIds });
    if (r.spec) counters = addCounters(counters, r.spec);
    ctx.events({
      type: 'progress',
      task: `bench ${mode}`,
      done: i + 1,
      total: prompts.length,
      unit: 'prompt',
    });
  }
  return { requests, outputs, ...(speculative ? { counters } : {}) };
}

export const torchBackend = (): Backend<TorchBackendOptions> => ({
  id: 'torch',
  description:
    'embedded PyTorch engine (CPU or one GPU): target alone or Eagle3 speculative decoding, OpenAI-compatible server',
  capabilities: { speculative: true, audio: true, multiGpu: false },
  optionsSchema: TorchBackendOptions,

  async available() {
    try {
      resolvePython();
      const env = await engineEnv();
      return {
        ok: true,
        version: `torch ${env.packages.torch ?? '?'}, transformers ${env.packages.transformers ?? '?'}`,
      };
    } catch (e) {
      return {
        ok: false,
        reason: (e as Error).message,
        hint: 'run `npm run bootstrap` to create the engine environment',
      };
    }
  },

  async serve(options, ctx): Promise<ServerHandle> {
    const { replicas, servers } = await startReplicas(options, ctx);
    const urls = servers.map((s) => s.url);
    const model = options.servedModelName ?? basename(resolve(options.targetModel));
    let next = 0;
    let stopped = false;
    return {
      urls,
      model,
      async health(): Promise<ReplicaStatus[]> {
        return Promise.all(
          replicas.map(async (r, i) => {
            let healthy = false;
            let reason: string | undefined;
            try {
              const res = await fetch(`${urls[i]!.replace(/\/v1$/, '')}/health`, {
                signal: AbortSignal.timeout(5000),
              });
              healthy = res.ok;
              if (!healthy) reason = `HTTP ${res.status}`;
            } catch (e) {
              reason = (e as Error).message;
            }
            return {
              url: urls[i]!,
              healthy,
              restarts: r.restarts,
              ...(r.pid ? { pid: r.pid } : {}),
              ...(r.logFile ? { logFile: r.logFile } : {}),
              ...(reason ? { reason } : {}),
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
        await Promise.all(servers.map((s) => s.close()));
        await Promise.all(replicas.map((r) => r.stop()));
      },
    };
  },

  async openBench(config, prompts, ctx): Promise<BenchSession> {
    if (config.tp > 1 || config.maxNumSeqs > 1) {
      ctx.events({
        type: 'log',
        level: 'warn',
        message: `the embedded backend decodes one sequence on one device: tp ${config.tp} and max_num_seqs ${config.maxNumSeqs} are not applied (use --backend vllm)`,
      });
    }
    if (config.useEagle && !config.draftModel)
      throw new EagletError('EAGLET_CONFIG_INVALID', 'bench with useEagle needs draftModel', {
        hint: 'pass --draft-model DIR or --no-use-eagle',
      });
    const session = await ctx.template.load(config.targetModel);
    const info = await ctx.target.inspect(config.targetModel);
    // One replica holds the target and the draft: a request decodes with or without the draft,
    // so the modes alternate on the same loaded weights.
    const replica = new EmbeddedReplica(
      ctx.target,
      session,
      {
        target: engineTarget(ctx.target, info, config.targetModel),
        ...(config.useEagle && config.draftModel ? { draftModel: config.draftModel } : {}),
        numSpecTokens: config.numSpecTokens,
        device: config.device,
        dtype: config.dtype,
        maxModelLen: config.maxModelLen,
        seed: config.seed,
        cpuThreads: config.backendOptions.cpuThreads,
      },
      { decoder: ctx.audioDecoder(), restartOnCrash: false },
    );
    ctx.events({ type: 'log', level: 'info', message: 'loading the target (and draft) in the engine' });
    const ready = await replica.start();
    const prepared: Array<{ id: string; prepared: PreparedPrompt }> = [];
    try {
      for (const p of prompts)
        prepared.push({ id: p.id, prepared: await replica.prepare(p.messages, ctx.signal) });
    } catch (e) {
      await replica.stop();
      throw e;
    }
    return {
      device: ready.device,
      engineVersions: { ...ready.versions, dtype: ready.dtype, decodePath: decodePathText(ready) },
      pass: (mode, limit) =>
        limit
          ? measure(replica, prepared.slice(0, limit.prompts), config, mode, ctx, limit.maxTokens)
          : measure(replica, prepared, config, mode, ctx),
      close: () => replica.stop(),
    };
  },
});

/** The embedded backend as a plugin. */
export const torchBackendPlugin = (): EagletPlugin =>
  definePlugin({
    name: 'eaglet:torch-backend',
    version: packageVersion(import.meta.url),
    backends: [torchBackend()],
  });

export function register(registry: PluginRegistry): void {
  registry.use(torchBackendPlugin());
}
