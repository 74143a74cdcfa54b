import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkAuxLayerIds,
  draftFromTextConfig,
  eagle3DefaultAuxLayers,
  eosTokenIds,
  findTensorKey,
  modelArchitecture,
} from '../src/index.js';

describe('eagle3DefaultAuxLayers (vLLM: the states after 2, L//2 and L-3 layers)', () => {
  it('gives vLLM default aux layers and refuses depths without three distinct ones', () => {
    expect(eagle3DefaultAuxLayers(32)).toEqual([2, 16, 29]); // Qwen2-7B
    expect(eagle3DefaultAuxLayers(8)).toEqual([2, 4, 5]);
    expect(eagle3DefaultAuxLayers(7)).toEqual([2, 3, 4]);
    expect(() => eagle3DefaultAuxLayers(6)).toThrow(
      /6-layer target has no three distinct Eagle3 aux layers \(vLLM's default 2, 3, 3\)/,
    );
    expect(() => eagle3DefaultAuxLayers(4)).toThrow(/4-layer target/);
  });

  it('checks given aux layer ids against the depth', () => {
    expect(checkAuxLayerIds([0, 4, 8], 8, 'x')).toEqual([0, 4, 8]);
    expect(() => checkAuxLayerIds([2, 4, 9], 8, 'draftConfig.x')).toThrow(
      /draftConfig\.x: aux layer ids \[2, 4, 9\]/,
    );
    expect(() => checkAuxLayerIds([2, 2, 5], 8, 'x')).toThrow(/three distinct/);
  });
});

describe('checkpoint folder readers', () => {
  const folder = (files: Record<string, unknown>) => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-ckpt-'));
    for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), JSON.stringify(body));
    return dir;
  };

  it("reads every eos id of generation_config.json, else the model config's", () => {
    expect(eosTokenIds(folder({ 'generation_config.json': { eos_token_id: [7, 3, 7] } }), 9)).toEqual([7, 3]);
    expect(eosTokenIds(folder({ 'generation_config.json': { eos_token_id: 5 } }), [9])).toEqual([5]);
    expect(eosTokenIds(folder({}), [9, 10])).toEqual([9, 10]);
    expect(eosTokenIds(folder({}), undefined)).toEqual([]);
  });

  it('finds the first tensor key the checkpoint holds, and names the keys it looked for otherwise', () => {
    const dir = folder({ 'model.safetensors.index.json': { weight_map: { 'b.weight': 'x.safetensors' } } });
    expect(findTensorKey(dir, ['a.weight', 'b.weight'], 'embedding')).toBe('b.weight');
    expect(() => findTensorKey(dir, ['a.weight'], 'token embedding')).toThrow(
      /hold no token embedding \(looked for a\.weight\)/,
    );
    expect(() => findTensorKey(folder({}), ['a.weight'], 'embedding')).toThrow(/hold no embedding/);
  });

  it('reads the architecture and says what a model folder must hold', () => {
    expect(modelArchitecture(folder({ 'config.json': { architectures: ['LlamaForCausalLM'] } }))).toBe(
      'LlamaForCausalLM',
    );
    expect(modelArchitecture(folder({ 'config.json': {} }))).toBeUndefined();
    expect(() => modelArchitecture(folder({}))).toThrow(/no config\.json in/);
  });
});

describe('draftFromTextConfig (a draft that copies a Llama-style text config)', () => {
  const info = (textConfig: Record<string, unknown>) => ({
    architecture: 'LlamaForCausalLM',
    numLayers: 32,
    hiddenSize: 4096,
    vocabSize: 128256,
    auxLayerIds: [2, 16, 29] as [number, number, number],
    embeddingKey: 'model.embed_tokens.weight',
    eosTokenIds: [128009],
    bosTokenId: 128000,
    textConfig,
  });
  const defaults = { draftVocabSize: 32000, ropeTheta: 10000, maxPositionEmbeddings: 8192 };

  it("copies Llama 3.1 8B's attention shape, MLP width, rope theta (either layout) and eps", () => {
    const llama = {
      num_attention_heads: 32,
      num_key_value_heads: 8,
      intermediate_size: 14336,
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-5,
    };
    for (const rope of [
      { rope_theta: 500000 },
      { rope_parameters: { rope_type: 'default', rope_theta: 500000 } },
    ])
      expect(draftFromTextConfig(info({ ...llama, ...rope }), defaults)).toEqual({
        hidden_size: 4096,
        intermediate_size: 14336,
        num_attention_heads: 32,
        num_key_value_heads: 8,
        head_dim: 128,
        vocab_size: 128256,
        draft_vocab_size: 32000,
        rope_theta: 500000,
        max_position_embeddings: 131072,
        rms_norm_eps: 1e-5,
        bos_token_id: 128000,
        eos_token_id: 128009,
      });
  });

  it("falls back to the family's defaults where the config is silent", () => {
    expect(draftFromTextConfig(info({}), { ...defaults, ropeTheta: 1e6 })).toMatchObject({
      num_attention_heads: 32,
      num_key_value_heads: 32,
      head_dim: 128,
      intermediate_size: 16384,
      rope_theta: 1e6,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-6,
    });
  });
});
