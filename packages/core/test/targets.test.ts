import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkAuxLayerIds,
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
