import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveTarget } from '@eaglet/core';
import { exampleLlamaPlugin } from 'eaglet-plugin-example-llama';
import { describe, expect, it } from 'vitest';
import { createEaglet, describeTarget, quickstart } from '../src/index.js';

// Tiny models on a shared CPU: one intra-op thread per engine process is many times faster.
process.env.OMP_NUM_THREADS ??= '1';

/** A config-only checkpoint folder (no weights needed to pick a target). */
const checkpoint = (architecture: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'eaglet-arch-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: [architecture] }));
  return dir;
};

describe('the built-in targets claim their architectures', () => {
  it('a checkpoint no plugin claims gets one error listing every known architecture and how to write a plugin', async () => {
    const { registry } = await createEaglet({ cwd: tmpdir() });
    await expect(describeTarget(registry, { model: checkpoint('GPT2LMHeadModel') })).rejects.toMatchObject({
      code: 'EAGLET_UNKNOWN_TARGET',
      message: expect.stringMatching(/no target plugin handles architecture GPT2LMHeadModel/),
      hint: expect.stringMatching(
        /Qwen2AudioForConditionalGeneration \(qwen2-audio\).*Qwen2_5OmniModel.*\(qwen2\.5-omni\).*LlamaForCausalLM.*\(hf-chat\).*write a target plugin \(README, "Writing a plugin"/,
      ),
    });
  });

  it('a plugin for one family takes precedence over the generic hf-chat target', async () => {
    const builtins = (await createEaglet({ cwd: tmpdir() })).registry;
    const { registry } = await createEaglet({ cwd: tmpdir(), plugins: [exampleLlamaPlugin()] });
    const llama = checkpoint('LlamaForCausalLM');
    expect(resolveTarget(builtins, undefined, llama).id).toBe('hf-chat');
    expect(resolveTarget(registry, undefined, llama).id).toBe('example-llama');
    expect(resolveTarget(registry, undefined, checkpoint('Qwen3ForCausalLM')).id).toBe('hf-chat');
    expect(resolveTarget(registry, undefined, checkpoint('Qwen2_5OmniModel')).id).toBe('qwen2.5-omni');
  });
});

// `eaglet quickstart --target ID` for each new target: its demo model built offline, its demo data
// validated, prepared through the checkpoint's own chat template, answered again by the embedded
// server, a draft trained for a few CPU steps and exported, then Eagle3 against the baseline on the
// embedded backend: greedy outputs equal token for token.
describe.each([
  { target: 'hf-chat', records: 8, trainSteps: 120 },
  { target: 'qwen2.5-omni', records: 5, trainSteps: 60 },
])('quickstart --target $target (real engine, tiny demo model)', ({ target, records, trainSteps }) => {
  it('prepares, regenerates, trains, exports and benchmarks: Eagle3 output equals the baseline', async () => {
    const { registry } = await createEaglet({ cwd: tmpdir() });
    const dir = join(mkdtempSync(join(tmpdir(), `eaglet-qs-${target}-`)), 'qs');
    const r = await quickstart(registry, { dir, target, trainSteps });
    expect(r.target).toBe(target);
    expect(r.prepared.manifest).toMatchObject({ target, counts: { records, written: records, rejected: 0 } });
    expect(r.regenerated).toMatchObject({ total: records, written: records, rejected: 0 });
    expect(r.train).toMatchObject({ stopped: false, steps: trainSteps });
    expect(existsSync(join(r.draft, 'model.safetensors'))).toBe(true);
    const report = r.bench.report;
    expect(report.target).toBe(target);
    expect(report.outputsMatch?.identical).toBe(report.outputsMatch?.compared);
    expect(report.outputsMatch?.compared).toBeGreaterThan(0);
    expect(report.eagle3?.spec?.meanAcceptanceLength).toBeGreaterThan(1);
  }, 900_000);
});
