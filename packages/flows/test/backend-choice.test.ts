import { tmpdir } from 'node:os';
import { type Backend, definePlugin, PluginRegistry } from '@eaglet/core';
import { describe, expect, it } from 'vitest';
import {
  backendOptionIssues,
  bench,
  createEaglet,
  parseBackendOptions,
  resolveBackend,
} from '../src/index.js';

describe('choosing a backend and checking its own options', () => {
  it('defaults to the first backend registered: the embedded torch backend among the built-ins', async () => {
    const { registry } = await createEaglet({ cwd: tmpdir() });
    expect(resolveBackend(registry, undefined).id).toBe('torch');
    expect(resolveBackend(registry, 'vllm').id).toBe('vllm');
    expect(() => resolveBackend(registry, 'teleport')).toThrow(/unknown backend "teleport"/);
    expect(() => resolveBackend(new PluginRegistry(), undefined)).toThrow(/no backend is registered/);
  });

  it("fills in a backend's defaults and names each bad option with the backend", async () => {
    const { registry } = await createEaglet({ cwd: tmpdir() });
    const torch = registry.backend('torch');
    const vllm = registry.backend('vllm');
    expect(parseBackendOptions(torch, {})).toEqual({ cpuThreads: 0 });
    expect(parseBackendOptions(vllm, { gpuMemoryUtilization: 0.8 })).toMatchObject({
      gpuMemoryUtilization: 0.8,
      enforceEager: false,
      maxAudiosPerPrompt: 1,
      engineArgs: {},
      extraArgs: [],
    });
    expect(
      backendOptionIssues(vllm, { gpuMemoryUtilization: 2, speculativeConfig: [], cpuThreads: 1 }),
    ).toEqual([
      { path: 'backendOptions.gpuMemoryUtilization', reason: expect.stringMatching(/<=1 \(backend vllm\)$/) },
      {
        path: 'backendOptions.speculativeConfig',
        reason: expect.stringMatching(/expected record.*\(backend vllm\)$/),
      },
      {
        path: 'backendOptions.cpuThreads',
        reason: expect.stringMatching(/^backend vllm has no such option \(it takes: vllmPython, /),
      },
    ]);
    expect(() => parseBackendOptions(torch, { cpuThreads: 'many' })).toThrow(
      /invalid options for backend torch:\n {2}backendOptions\.cpuThreads: .*\(backend torch\)/,
    );
  });

  it('refuses options for a backend that takes none', () => {
    const bare: Backend = {
      ...({} as Backend),
      id: 'bare',
      description: 'takes no options',
    };
    expect(backendOptionIssues(bare, { speed: 2 })).toEqual([
      { path: 'backendOptions.speed', reason: 'backend bare takes no backend options' },
    ]);
    expect(parseBackendOptions(bare, {})).toEqual({});
    const registry = new PluginRegistry();
    registry.use(definePlugin({ name: 'bare', version: '0', backends: [bare] }));
    expect(resolveBackend(registry, undefined)).toBe(bare);
  });

  it('a bench with a bad backend option stops before anything runs, naming the field', async () => {
    const { registry } = await createEaglet({ cwd: tmpdir() });
    await expect(
      bench(registry, {
        targetModel: '/nowhere/model',
        draftModel: '/nowhere/draft',
        testDataPath: '/nowhere/test.jsonl',
        outputFile: '/nowhere/out.json',
        backendOptions: { gpuMemoryUtilization: 0.9 },
      }),
    ).rejects.toThrow(
      /backendOptions\.gpuMemoryUtilization: backend torch has no such option \(it takes: cpuThreads\)/,
    );
  });
});
