// Draft quality, guarded: a bounded training run on the trained demo target (the Qwen2-Audio
// plugin's quickstart model, cached) must leave a draft that predicts the target far better than
// a bigram table built from the same data. The floors sit well below what the run reaches and
// above the baseline, so the test does not flake on float noise yet fails on a broken objective:
// with the loss mask zeroed or the target's hidden states dropped it fails (run it with
// EAGLET_QUALITY_VARIANT set, as tools/bench/quality/controls/sitecustomize.py says).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PluginRegistry } from '@eaglet/core';
import { trainedQwen2AudioModel } from '@eaglet/fixtures';
import { qwen2AudioTarget } from '@eaglet/qwen2-audio';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildVocab, createEaglet, prepareData, type TrainResult, train } from '../src/index.js';

// One intra-op thread: deterministic, and many times faster for a model this size on a shared CPU.
process.env.OMP_NUM_THREADS ??= '1';

/** The budget: the quickstart's draft settings (the plugin's demo) on the builder's 40 training clips. */
const STEPS = 200;
/**
 * Floors for the final eval on the held-out split, measured at 200 steps, seed 0, one thread
 * (docs/perf/quality.md "The regression test"): acc 0.888 / 0.864 / 0.838, bigram 0.677 with the
 * alignment that trains the prompt's last row (0.861 / 0.834 / 0.830, bigram 0.706 before it), the
 * same to the last digit on every run here. acc_0 must beat the bigram table by 0.08 (it does by
 * 0.211; without the target's hidden states it reaches 0.675, under the table); every acc_i must
 * stay above its floor (a zeroed loss mask leaves them at 0).
 */
const ACC_0_OVER_BIGRAM = 0.08;
const ACC_FLOORS = [0.78, 0.72, 0.72];

let registry: PluginRegistry;
let result: TrainResult;
beforeAll(async () => {
  registry = (await createEaglet({ cwd: mkdtempSync(join(tmpdir(), 'eaglet-quality-')) })).registry;
  const model = trainedQwen2AudioModel();
  const summary = JSON.parse(readFileSync(join(model, 'demo-summary.json'), 'utf8'));
  const dir = mkdtempSync(join(tmpdir(), 'eaglet-quality-'));
  const prepare = (data: string, out: string) =>
    prepareData(registry, { model, data: [join(model, data)], out: join(dir, out), shardSize: 64 });
  const prepared = await prepare(summary.datasets.train[0], 'prepared');
  const heldOut = await prepare(summary.datasets.heldOut, 'held-out');
  const vocab = await buildVocab({
    data: [prepared.out],
    out: join(dir, 'vocab.safetensors'),
    draftVocabSize: qwen2AudioTarget.demo!.draftVocabSize!,
  });
  result = await train(registry, {
    fields: {
      ...qwen2AudioTarget.demo!.train,
      targetModel: model,
      trainData: [prepared.out],
      evalData: [heldOut.out],
      vocab: vocab.out,
      outputDir: join(dir, 'train'),
      maxSteps: STEPS,
      epochs: 1000,
      evalEvery: 0, // the final eval only
      logEvery: 20,
      device: 'cpu',
      plot: false,
      seed: 0,
    },
  });
}, 900_000); // the demo target's first build takes a few minutes (cached afterwards)

describe('draft quality on the trained demo target (bounded budget, held-out split)', () => {
  it('beats the bigram table at acc_0 and keeps the later TTT steps right', () => {
    const ev = result.eval!;
    const accs = ACC_FLOORS.map((_, i) => ev[`acc_${i}`]!);
    const report = `acc ${accs.map((a) => a.toFixed(3)).join(' / ')}, bigram ${ev.bigram_acc?.toFixed(3)}`;
    console.log(`draft quality: ${report}`); // the measured values, for the floors' margins in docs/perf/quality.md
    expect(ev.bigram_acc, report).toBeGreaterThan(0.3); // the baseline is a real one, not an empty table
    expect(accs[0]! - ev.bigram_acc!, report).toBeGreaterThan(ACC_0_OVER_BIGRAM);
    for (const [i, floor] of ACC_FLOORS.entries())
      expect(accs[i]!, `acc_${i}: ${report}`).toBeGreaterThan(floor);
  });
});
