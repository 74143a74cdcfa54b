import { describe, expect, it } from 'vitest';
import { replicaDevices, vllmServeArgs } from '../src/index.js';

describe('vllm serve command lines', () => {
  const options = {
    target: 'qwen2-audio',
    targetModel: '/models/Qwen2-Audio-7B-Instruct',
    draftModel: '/drafts/eagle3',
    numSpecTokens: 4,
    host: '127.0.0.1',
    port: 6000,
    tp: 2,
    maxModelLen: 16384,
    allowedLocalMediaPath: '/data',
    apiKey: 'k',
  };

  it('one replica per GPU group on consecutive ports, Eagle3 through --speculative-config', () => {
    const args = vllmServeArgs(options, 3);
    expect(args.slice(0, 4)).toEqual([
      '-m',
      'vllm.entrypoints.cli.main',
      'serve',
      '/models/Qwen2-Audio-7B-Instruct',
    ]);
    const flag = (name: string) => args[args.indexOf(name) + 1];
    expect(flag('--port')).toBe('6003');
    expect(flag('--tensor-parallel-size')).toBe('2');
    expect(flag('--served-model-name')).toBe('Qwen2-Audio-7B-Instruct');
    expect(flag('--allowed-local-media-path')).toBe('/data');
    expect(flag('--api-key')).toBe('k');
    expect(flag('--chat-template-content-format')).toBe('string');
    expect(JSON.parse(flag('--speculative-config')!)).toEqual({
      method: 'eagle3',
      model: '/drafts/eagle3',
      num_speculative_tokens: 4,
    });
    expect(replicaDevices(3, 2)).toBe('6,7');
    expect(replicaDevices(0, 1)).toBe('0');
  });

  it('runs the OpenAI server module where the CPU build cannot run the vllm CLI', () => {
    const args = vllmServeArgs({ ...options, draftModel: undefined }, 0, 'api_server');
    expect(args.slice(0, 4)).toEqual([
      '-m',
      'vllm.entrypoints.openai.api_server',
      '--model',
      '/models/Qwen2-Audio-7B-Instruct',
    ]);
    expect(args).not.toContain('--speculative-config');
  });
});
