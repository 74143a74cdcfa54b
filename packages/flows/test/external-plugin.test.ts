import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchConfig } from '@eaglet/core';
import { tinyLlamaModel } from '@eaglet/fixtures';
import { exampleLlamaPlugin } from 'eaglet-plugin-example-llama';
import { describe, expect, it } from 'vitest';
import {
  bench,
  buildVocab,
  createEaglet,
  describeTarget,
  prepareData,
  train,
  validateData,
} from '../src/index.js';

// Tiny models on a shared CPU: one intra-op thread per engine process is many times faster.
process.env.OMP_NUM_THREADS ??= '1';

// The programmatic path another repo takes: import eaglet's packages, register its own plugin,
// run the same flows the CLI runs.
describe('an external plugin through the programmatic API', () => {
  const model = () => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-llama-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        architectures: ['LlamaForCausalLM'],
        num_hidden_layers: 32,
        hidden_size: 4096,
        vocab_size: 128256,
        eos_token_id: [128001, 128009],
      }),
    );
    // No weights needed to inspect: the sharded index names the tensors.
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { 'model.embed_tokens.weight': 'model-00001-of-00004.safetensors' } }),
    );
    return dir;
  };

  it('registers as an object and drives describeTarget and validateData', async () => {
    const { registry } = await createEaglet({ cwd: tmpdir(), plugins: [exampleLlamaPlugin()] });
    const d = await describeTarget(registry, { target: 'example-llama', model: model() });
    expect(d.info.auxLayerIds).toEqual([2, 16, 29]); // core's rule: vLLM's default for 32 layers
    expect(d.info.eosTokenIds).toEqual([128001, 128009]);
    expect(d.info.embeddingKey).toBe('model.embed_tokens.weight');
    expect(d.draft.draft_vocab_size).toBe(8000);
    expect(d.draft.eagle_aux_hidden_state_layer_ids).toEqual([2, 16, 29]);
    // Without a target id, the plugin that claims the checkpoint's architecture is chosen.
    expect((await describeTarget(registry, { model: model() })).target).toBe('example-llama');

    const file = join(mkdtempSync(join(tmpdir(), 'eaglet-pr-')), 'd.jsonl');
    writeFileSync(file, '{"id":"1","prompt":"2+2?","response":"4"}\n');
    const report = await validateData(registry, { files: [file] });
    expect(report.ok).toBe(true);
    expect(report.files[0]!.format).toBe('prompt-response');
  });

  it('refuses a checkpoint no plugin claims, naming the known architectures', async () => {
    const { registry } = await createEaglet({ cwd: tmpdir(), plugins: [exampleLlamaPlugin()] });
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-gpt-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['GPT2LMHeadModel'] }));
    await expect(describeTarget(registry, { model: dir })).rejects.toMatchObject({
      message: expect.stringMatching(/no target plugin handles architecture GPT2LMHeadModel/),
      hint: expect.stringMatching(/LlamaForCausalLM \(example-llama\)/),
    });
  });

  it('registers by package name, like the config file does', async () => {
    const { registry } = await createEaglet({
      cwd: import.meta.dirname,
      plugins: ['eaglet-plugin-example-llama'],
    });
    expect(registry.plugins().map((p) => `${p.name}@${p.version}`)).toContain(
      'eaglet-plugin-example-llama@1.2.3',
    );
    expect(registry.ownerOf('target', 'example-llama')).toBe('eaglet-plugin-example-llama');
  });

  it('refuses a plugin whose ids clash with a built-in', async () => {
    const clash = {
      name: 'clash',
      version: '0',
      formats: [{ ...exampleLlamaPlugin().formats[0]!, name: 'sharegpt' }],
    };
    await expect(createEaglet({ cwd: tmpdir(), plugins: [clash] })).rejects.toThrow(
      /data format "sharegpt" from plugin "clash" is already registered by "eaglet:formats"/,
    );
  });
});

// The second target: everything about it (aux layers by core's rule, draft defaults, chat
// format, Python adapter) lives in its own folder; the same flows train with it and generate
// through the embedded backend.
describe('the example Llama target trains and generates end to end (tiny random Llama, real engine)', () => {
  it('prepares, trains a few CPU steps, and its Eagle3 greedy output equals the baseline on the torch backend', async () => {
    const { registry } = await createEaglet({ cwd: tmpdir(), plugins: [exampleLlamaPlugin()] });
    const model = tinyLlamaModel();
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-llama-e2e-'));
    const data = join(dir, 'data.jsonl');
    const words = ['draft', 'target', 'token', 'accept', 'verify', 'cache', 'layer', 'audio'];
    writeFileSync(
      data,
      Array.from({ length: 12 }, (_, i) =>
        JSON.stringify({
          id: `q${i}`,
          prompt: `say ${words[i % 8]} ${i}`,
          response: `${words[(i * 3) % 8]} and ${words[(i + 5) % 8]}`,
        }),
      ).join('\n'),
    );
    const prepared = await prepareData(registry, { model, data: [data], out: join(dir, 'prepared') });
    expect(prepared.manifest).toMatchObject({ target: 'example-llama', chatTemplate: 'example-llama-chat' });
    const vocab = await buildVocab({
      data: [prepared.out],
      out: join(dir, 'vocab.safetensors'),
      draftVocabSize: 64,
    });

    const trained = await train(registry, {
      fields: {
        targetModel: model,
        trainData: [prepared.out],
        vocab: vocab.out,
        outputDir: join(dir, 'train'),
        device: 'cpu',
        precision: 'fp32',
        ttt: { steps: 2 },
        batching: { maxTokens: 512, maxRecords: 4 },
        maxSteps: 3,
        plot: false,
      },
    });
    expect(trained).toMatchObject({ stopped: false, steps: 3 });
    expect(trained.config.target).toMatchObject({
      id: 'example-llama',
      adapter: 'eaglet_example_llama',
      auxLayerIds: [2, 4, 5],
    });
    expect(trained.config.draftConfig).toMatchObject({
      hidden_size: 64,
      num_attention_heads: 8,
      rope_theta: 500000,
      draft_vocab_size: 64,
    });
    const draft = trained.draft?.vllm;
    expect(draft && existsSync(join(draft, 'model.safetensors'))).toBe(true);

    const outputFile = join(dir, 'bench', 'report.json');
    const { report } = await bench(
      registry,
      BenchConfig.parse({
        backend: 'torch',
        targetModel: model,
        draftModel: draft!,
        testDataPath: data,
        outputFile,
        numPrompts: 3,
        outputLen: 12,
        stopAtEos: false,
        numSpecTokens: 2,
        temperature: 0,
        device: 'cpu',
        backendOptions: { cpuThreads: 1 },
      }),
    );
    expect(report.outputsMatch).toEqual({ compared: 3, identical: 3 });
    expect(report.target).toBe('example-llama');
    // 12 tokens each, every round: the comparison is not of empty outputs.
    expect(report.baseline?.outputTokens).toBe(36 * report.config.rounds);
    expect(report.eagle3?.spec?.numDraftTokens).toBe(2 * (report.eagle3?.spec?.numDrafts ?? 0));
    expect(existsSync(outputFile)).toBe(true);
  }, 600_000);
});
