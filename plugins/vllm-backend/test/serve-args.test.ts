import { ServeConfig } from '@eaglet/core';
import { describe, expect, it } from 'vitest';
import { replicaDevices, VllmBackendOptions, vllmServeArgs } from '../src/index.js';

describe('vllm serve command lines', () => {
  const serve = (input: Partial<ServeConfig> = {}, backendOptions: Partial<VllmBackendOptions> = {}) => ({
    ...ServeConfig.parse({
      targetModel: '/models/Qwen2-Audio-7B-Instruct',
      draftModel: '/drafts/eagle3',
      numSpecTokens: 4,
      tp: 2,
      allowedLocalMediaPath: '/data',
      apiKey: 'k',
      ...input,
    }),
    backend: 'vllm',
    target: 'qwen2-audio',
    backendOptions: VllmBackendOptions.parse(backendOptions),
  });
  const flagOf = (args: string[]) => (name: string) => args[args.indexOf(name) + 1];

  it('one replica per GPU group on consecutive ports, Eagle3 through --speculative-config', () => {
    const args = vllmServeArgs(serve(), 3);
    expect(args.slice(0, 4)).toEqual([
      '-m',
      'vllm.entrypoints.cli.main',
      'serve',
      '/models/Qwen2-Audio-7B-Instruct',
    ]);
    const flag = flagOf(args);
    expect(flag('--port')).toBe('6003');
    expect(flag('--tensor-parallel-size')).toBe('2');
    expect(flag('--served-model-name')).toBe('Qwen2-Audio-7B-Instruct');
    expect(flag('--allowed-local-media-path')).toBe('/data');
    expect(flag('--api-key')).toBe('k');
    expect(flag('--chat-template-content-format')).toBe('string');
    expect(flag('--max-model-len')).toBe('16384');
    expect(JSON.parse(flag('--limit-mm-per-prompt')!)).toEqual({ audio: 1 });
    expect(JSON.parse(flag('--speculative-config')!)).toEqual({
      method: 'eagle3',
      model: '/drafts/eagle3',
      num_speculative_tokens: 4,
    });
    // vLLM's own defaults stay vLLM's: nothing is passed for what the options leave unset.
    for (const f of ['--dtype', '--gpu-memory-utilization', '--enforce-eager']) expect(args).not.toContain(f);
    expect(replicaDevices(3, 2)).toBe('6,7');
    expect(replicaDevices(0, 1)).toBe('0');
  });

  it("applies the backend's own options: memory, eager mode, audio per prompt, speculative keys, extra args", () => {
    const args = vllmServeArgs(
      serve(
        { dtype: 'bf16' },
        {
          gpuMemoryUtilization: 0.8,
          enforceEager: true,
          maxAudiosPerPrompt: 3,
          speculativeConfig: { draft_tensor_parallel_size: 1 },
          extraArgs: ['--seed=7'],
        },
      ),
      0,
    );
    const flag = flagOf(args);
    expect(flag('--dtype')).toBe('bfloat16');
    expect(flag('--gpu-memory-utilization')).toBe('0.8');
    expect(args).toContain('--enforce-eager');
    expect(JSON.parse(flag('--limit-mm-per-prompt')!)).toEqual({ audio: 3 });
    expect(JSON.parse(flag('--speculative-config')!)).toMatchObject({
      method: 'eagle3',
      num_speculative_tokens: 4,
      draft_tensor_parallel_size: 1,
    });
    expect(args.at(-1)).toBe('--seed=7');
  });

  it('refuses options that are not its own, naming backendOptions.<field>', () => {
    const r = VllmBackendOptions.safeParse({ gpuMemoryUtilization: 2, cpuThreads: 1 });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.') || i.code)).toEqual(
      expect.arrayContaining(['gpuMemoryUtilization', 'unrecognized_keys']),
    );
  });

  it('runs the OpenAI server module where the CPU build cannot run the vllm CLI', () => {
    const args = vllmServeArgs(serve({ draftModel: undefined }), 0, 'api_server');
    expect(args.slice(0, 4)).toEqual([
      '-m',
      'vllm.entrypoints.openai.api_server',
      '--model',
      '/models/Qwen2-Audio-7B-Instruct',
    ]);
    expect(args).not.toContain('--speculative-config');
  });
});
