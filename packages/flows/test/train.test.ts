import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EagletEvent, type PluginRegistry, TrainConfig } from '@eaglet/core';
import { makeSpeechDataset, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildVocab,
  createEaglet,
  exportDraft,
  type PrepareResult,
  prepareData,
  resolveTrainConfig,
  train,
  type VocabResult,
} from '../src/index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'eaglet-train-'));
// Tiny models on a shared CPU: one intra-op thread per engine process is many times faster.
process.env.OMP_NUM_THREADS ??= '1';

let registry: PluginRegistry;
let model: string;
let prepared: PrepareResult;
let vocab: VocabResult;
let base: Record<string, unknown>;
beforeAll(async () => {
  registry = (await createEaglet({ cwd: tmp() })).registry;
  model = tinyQwen2AudioModel();
  const dir = tmp();
  const ds = makeSpeechDataset(join(dir, 'data'), {
    espeak: ['Speculative decoding makes language models faster.'],
  });
  prepared = await prepareData(registry, { model, data: [ds.jsonl], out: join(dir, 'prepared') });
  vocab = await buildVocab({
    data: [prepared.out],
    out: join(dir, 'vocab.safetensors'),
    draftVocabSize: 32000,
  });
  base = {
    targetModel: model,
    trainData: [prepared.out],
    evalData: [prepared.out],
    vocab: vocab.out,
    device: 'cpu',
    precision: 'fp32',
    ttt: { steps: 3 },
    batching: { maxTokens: 2048, maxRecords: 2 },
    optimizer: { lr: 2e-3 },
    logEvery: 2,
    plot: true,
  };
}, 600_000);

describe('train (real prepared data, the tiny Qwen2-Audio, the real engine)', () => {
  it('fills in what the target plugin knows and refuses inputs that do not fit', async () => {
    const config = TrainConfig.parse({ ...base, outputDir: tmp(), draftConfig: { intermediate_size: 96 } });
    const { config: resolved, pythonPath } = await resolveTrainConfig(registry, config);
    // The target, found by the checkpoint's architecture, as the engine receives it.
    expect(resolved.target).toEqual({
      id: 'qwen2-audio',
      adapter: 'eaglet_qwen2_audio',
      model: model,
      architecture: 'Qwen2AudioForConditionalGeneration',
      auxLayerIds: [2, 4, 5],
      audioTokenId: 151646,
    });
    expect(pythonPath[0]).toMatch(/plugins[/\\]qwen2-audio[/\\]python$/);
    expect(resolved.chatTemplate).toBe(prepared.manifest.chatTemplate);
    expect(resolved.draftConfig).toMatchObject({
      hidden_size: 64,
      intermediate_size: 96, // the config's field wins over the plugin's default
      draft_vocab_size: 32000, // the vocab mapping decides
      vocab_size: 156032,
      eagle_aux_hidden_state_layer_ids: [2, 4, 5],
    });
    await expect(
      resolveTrainConfig(registry, { ...config, draftConfig: { draft_vocab_size: 256 } }),
    ).rejects.toThrow(/draft_vocab_size is 256 but .* holds a mapping of 32000/);
    // Aux layers the user names go to both the draft and the target block; ids the target lacks are refused.
    const own = await resolveTrainConfig(registry, {
      ...config,
      draftConfig: { eagle_aux_hidden_state_layer_ids: [1, 3, 8] },
    });
    expect(own.config.target.auxLayerIds).toEqual([1, 3, 8]);
    expect(own.config.draftConfig.eagle_aux_hidden_state_layer_ids).toEqual([1, 3, 8]);
    await expect(
      resolveTrainConfig(registry, {
        ...config,
        draftConfig: { eagle_aux_hidden_state_layer_ids: [2, 4, 9] },
      }),
    ).rejects.toThrow(/aux layer ids \[2, 4, 9\] must be three distinct integers in 0\.\.8/);
    await expect(resolveTrainConfig(registry, { ...config, trainData: [tmp()] })).rejects.toThrow(
      /is not a prepared dataset/,
    );
    await expect(resolveTrainConfig(registry, { ...config, target: 'nope' })).rejects.toThrow(
      /unknown target model "nope"/,
    );
  });

  it('trains, stops on abort with a checkpoint, resumes, evaluates and exports', async () => {
    const outputDir = tmp();
    const file = join(tmp(), 'train.json');
    writeFileSync(file, JSON.stringify({ ...base, outputDir, maxSteps: 12, epochs: 100 }));

    const events: EagletEvent[] = [];
    const abort = new AbortController();
    const first = await train(
      registry,
      { file, overrides: ['saveEvery=0'] },
      {
        events: (e) => {
          events.push(e);
          if (e.type === 'progress' && e.task === 'train' && e.done >= 3) abort.abort();
        },
        signal: abort.signal,
      },
    );
    expect(first.stopped).toBe(true);
    expect(first.steps).toBeGreaterThanOrEqual(3);
    expect(first.draft).toBeUndefined();
    const checkpoint = events.find((e) => e.type === 'checkpoint');
    expect(checkpoint).toMatchObject({ step: first.steps });
    const progress = events.filter((e) => e.type === 'progress' && e.task === 'train');
    expect(progress.at(-1)).toMatchObject({ total: 12, unit: 'step' });
    expect((progress.at(-1) as { message: string }).message).toMatch(
      /loss [\d.]+ acc [\d.]+ [\d.]+ [\d.]+ \| [\d,]+ tok\/s \| ETA/,
    );

    const second = await train(registry, { file, resume: true }, { events: (e) => events.push(e) });
    expect(second).toMatchObject({ stopped: false, steps: 12, totalSteps: 12 });
    expect(Object.keys(second.eval ?? {})).toEqual(
      expect.arrayContaining(['acc_0', 'acc_1', 'acc_2', 'ploss_0', 'ploss_1', 'ploss_2']),
    );
    const rows = readFileSync(second.metrics, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { split: string; step: number; ploss_0: number });
    const trainRows = rows.filter((r) => r.split === 'train');
    expect(trainRows.map((r) => r.step)).toEqual([2, 4, 6, 8, 10, 12]);
    // Learning itself is shown by the engine's own tests; here every logged value must be sane.
    for (const r of trainRows) expect(Number.isFinite(r.ploss_0) && r.ploss_0 > 0).toBe(true);
    expect(second.plot && existsSync(second.plot)).toBe(true);
    const draft = second.draft?.vllm;
    expect(draft && existsSync(join(draft, 'model.safetensors'))).toBe(true);
    const config = JSON.parse(readFileSync(join(draft!, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ architectures: ['LlamaForCausalLMEagle3'], draft_vocab_size: 32000 });

    const exported = await exportDraft({
      checkpoint: outputDir,
      outputDir: join(outputDir, 'again'),
      formats: ['vllm', 'speculators'],
    });
    expect(exported.step).toBe(12);
    expect(readFileSync(join(exported.drafts.vllm!, 'model.safetensors'))).toEqual(
      readFileSync(join(draft!, 'model.safetensors')),
    );
    expect(JSON.parse(readFileSync(join(exported.drafts.speculators!, 'config.json'), 'utf8'))).toMatchObject(
      {
        speculators_model_type: 'eagle3',
      },
    );
  }, 600_000);
});
