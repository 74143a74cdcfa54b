import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegenerateConfig } from '@eaglet/core';
import { makeSpeechDataset, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { createEaglet, describeTarget, regenerate } from '@eaglet/flows';
import { findVllmPython, SupervisedReplica } from '@eaglet/vllm-backend';
import { describe, expect, it } from 'vitest';
import { BIN, eaglet } from './helpers.js';
import { startServer, stopServer } from './serve-helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('vllm backend: the parts that run without vLLM', () => {
  it('supervises a real OpenAI server process: healthy, restarted after a crash, stopped cleanly', async () => {
    // The closest real thing to a `vllm serve` replica here: eaglet's own OpenAI server process.
    const model = tinyQwen2AudioModel();
    const port = 7100 + Math.floor(Math.random() * 400);
    const events: string[] = [];
    const replica = new SupervisedReplica(
      {
        index: 0,
        command: process.execPath,
        args: [
          BIN,
          'backend',
          'serve',
          '--target-model',
          model,
          '--port',
          String(port),
          '--device',
          'cpu',
          '--cpu-threads',
          '1',
        ],
        env: { ...process.env },
        url: `http://127.0.0.1:${port}/v1`,
        logFile: join(mkdtempSync(join(tmpdir(), 'eaglet-sup-')), 'replica-0.log'),
      },
      { restartOnCrash: true, onEvent: (m) => events.push(m) },
    );
    replica.start();
    await replica.waitHealthy(240);
    const firstPid = replica.pid;
    replica.crash();
    await new Promise((r) => setTimeout(r, 500));
    expect(await replica.healthy()).toBe(false);
    await replica.waitHealthy(240);
    expect(replica.restarts).toBe(1);
    expect(replica.pid).not.toBe(firstPid);
    expect(events[0]).toMatch(/replica 0 exited \(SIGKILL\)/);
    await replica.stop();
    expect(replica.running).toBe(false);
    expect(await replica.healthy()).toBe(false);
    expect(readFileSync(replica.spec.logFile, 'utf8')).toMatch(/replica 0: http:\/\/127\.0\.0\.1/);
  }, 600_000);
});

const vllmPython = findVllmPython();

/** A work folder with a tiny model and draft vLLM's CPU attention accepts (head_dim 64) and real speech. */
async function vllmCpuFixture(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // The draft reads the layers the target's plugin declares for the tiny model's depth.
  const { info } = await describeTarget((await createEaglet({ cwd: dir })).registry, {
    model: tinyQwen2AudioModel(),
  });
  execFileSync(process.execPath, [
    join(ROOT, 'tools', 'python.mjs'),
    join(ROOT, 'plugins', 'vllm-backend', 'test', 'fixtures', 'make_vllm_cpu_model.py'),
    tinyQwen2AudioModel(),
    join(dir, 'fixture'),
    info.auxLayerIds.join(','),
  ]);
  const data = makeSpeechDataset(join(dir, 'speech'));
  return { dir, model: join(dir, 'fixture', 'model'), draft: join(dir, 'fixture', 'draft'), data };
}

describe.skipIf(!vllmPython)(
  `vllm backend on a real vLLM (${vllmPython ?? 'no vLLM found: set EAGLET_VLLM_PYTHON or put vllm on PATH'})`,
  () => {
    it('benchmarks baseline vs Eagle3 through vLLM on CPU with the Qwen2-Audio Eagle3 plugin', async () => {
      const { dir, model, draft, data } = await vllmCpuFixture('eaglet-vllm-');
      const out = join(dir, 'out', 'report.json');
      const r = await eaglet(
        [
          'bench',
          '--backend',
          'vllm',
          '--target-model',
          model,
          '--draft-model',
          draft,
          '--test-data-path',
          data.jsonl,
          '--output-file',
          out,
          '--num-prompts',
          '2',
          '--output-len',
          '12',
          '--num-spec-tokens',
          '2',
          '--max-model-len', // the tiny model's max_position_embeddings is 8192; vLLM refuses more
          '2048',
          '--backend-option',
          'enforceEager=true',
          '--backend-option',
          'engineArgs.dtype="float32"',
          '--json',
        ],
        { timeoutMs: 1_500_000, env: { EAGLET_VLLM_PYTHON: vllmPython!, VLLM_CPU_KVCACHE_SPACE: '1' } },
      );
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
      const report = JSON.parse(readFileSync(out, 'utf8'));
      expect(report.backend).toBe('vllm');
      expect(report.eagle3.spec.numDrafts).toBeGreaterThan(0);
      expect(report.eagle3.spec.numDraftTokens).toBe(2 * report.eagle3.spec.numDrafts);
      expect(report.outputsMatch).toEqual({ compared: 2, identical: 2 }); // greedy: Eagle3 == baseline in vLLM too
      // Both engines stay loaded and the rounds alternate between them, each with its own counters.
      expect(report.rounds.map((x: { order: string[] }) => x.order)).toEqual([
        ['baseline', 'eagle3'],
        ['eagle3', 'baseline'],
        ['baseline', 'eagle3'],
      ]);
      for (const round of report.rounds) {
        expect(round.speedup).toBeGreaterThan(0);
        expect(round.eagle3.meanAcceptanceLength).toBeGreaterThanOrEqual(1);
      }
      expect(report.eagle3.requests).toHaveLength(2 * 3);
      expect(typeof report.trustworthy).toBe('boolean');
      expect(existsSync(out.replace('.json', '.md'))).toBe(true);
    }, 1_600_000);

    it('serves through `vllm serve` (eaglet backend serve --backend vllm) and regenerates real speech through it', async () => {
      const { dir, model, draft, data } = await vllmCpuFixture('eaglet-vllm-serve-');
      process.env.EAGLET_VLLM_PYTHON = vllmPython!;
      process.env.VLLM_CPU_KVCACHE_SPACE = '1';
      const port = 7600 + Math.floor(Math.random() * 300);
      const server = await startServer(
        [
          '--backend',
          'vllm',
          '--target-model',
          model,
          '--draft-model',
          draft,
          '--port',
          String(port),
          '--max-model-len',
          '2048',
          '--log-dir',
          join(dir, 'logs'),
          '--arg=--enforce-eager',
          '--arg=--dtype=float32',
        ],
        1_200_000,
      );
      try {
        const { registry } = await createEaglet({ cwd: dir });
        const report = await regenerate(
          registry,
          RegenerateConfig.parse({
            data: [data.jsonl],
            outputDir: join(dir, 'regen'),
            basePort: port,
            maxTokens: 8,
            concurrency: 2,
          }),
        );
        expect(report).toMatchObject({ total: 5, written: 5, rejected: 0, model: 'model' });
      } finally {
        await stopServer(server);
      }
    }, 1_500_000);
  },
);

/** Whether the vLLM environment can import vLLM's vision-language code (which the Omni thinker needs). */
const vllmHasTorchvision =
  !!vllmPython && spawnSync(vllmPython, ['-c', 'import torchvision'], { encoding: 'utf8' }).status === 0;

// A draft eaglet trains and exports for each new target plugin, served by vLLM unchanged (the
// hf-chat demo is a Llama 3, which vLLM supports natively; Qwen2.5-Omni's thinker through the
// plugin's vLLM plugin): the same prompts on vLLM and on the embedded backend give the same greedy
// outputs and the same accepted draft tokens at every position.
describe.skipIf(!vllmPython)('new target plugins on a real vLLM (CPU build)', () => {
  it.each([
    { target: 'hf-chat', prompts: 8, needsTorchvision: false },
    { target: 'qwen2.5-omni', prompts: 4, needsTorchvision: true },
  ])(
    '$target: the quickstart draft loads in vLLM and accepts exactly what the embedded backend accepts',
    async ({ target, prompts, needsTorchvision }) => {
      if (needsTorchvision && !vllmHasTorchvision) {
        console.warn(`skipped: ${vllmPython} cannot import torchvision; run tools/vllm-cpu-env.sh again`);
        return;
      }
      const dir = mkdtempSync(join(tmpdir(), `eaglet-vllm-${target}-`));
      const qs = await eaglet(
        ['quickstart', '--target', target, '--dir', join(dir, 'qs'), '--train-steps', '40', '--json'],
        { env: { OMP_NUM_THREADS: '1' }, timeoutMs: 900_000 },
      );
      expect(qs.code, qs.stderr.slice(-3000)).toBe(0);
      const { model, draft, dataset } = JSON.parse(qs.stdout);
      const bench = (backend: string, extra: string[], env: Record<string, string>) =>
        eaglet(
          [
            'bench',
            '--backend',
            backend,
            '--target-model',
            model,
            '--draft-model',
            draft,
            '--test-data-path',
            dataset,
            '--output-file',
            join(dir, backend, 'report.json'),
            '--num-prompts',
            String(prompts),
            '--output-len',
            '24',
            '--num-spec-tokens',
            '2',
            ...extra,
            '--json',
          ],
          { env, timeoutMs: 1_200_000 },
        );
      const vllm = await bench(
        'vllm',
        [
          '--max-model-len',
          '4096',
          '--backend-option',
          'enforceEager=true',
          '--backend-option',
          'engineArgs.dtype="float32"',
        ],
        { EAGLET_VLLM_PYTHON: vllmPython!, VLLM_CPU_KVCACHE_SPACE: '1' },
      );
      expect(vllm.code, vllm.stderr.slice(-3000)).toBe(0);
      const torch = await bench('torch', ['--device', 'cpu'], { OMP_NUM_THREADS: '1' });
      expect(torch.code, torch.stderr.slice(-3000)).toBe(0);
      const [v, t] = ['vllm', 'torch'].map((b) =>
        JSON.parse(readFileSync(join(dir, b, 'report.json'), 'utf8')),
      );
      expect(v.outputsMatch).toEqual({ compared: prompts, identical: prompts });
      expect(v.eagle3.spec.numDrafts).toBeGreaterThan(0);
      expect(v.eagle3.spec.numAcceptedTokens).toBeGreaterThan(0);
      expect(v.eagle3.spec.acceptedPerPosition).toEqual(t.eagle3.spec.acceptedPerPosition);
      expect(v.eagle3.spec.numDrafts).toBe(t.eagle3.spec.numDrafts);
    },
    2_400_000,
  );
});
