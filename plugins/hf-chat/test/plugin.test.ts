import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ARCHITECTURES, hfChatTarget } from '../src/index.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');

/** A config-only checkpoint folder whose sharded index names the tensors (no weights needed to inspect). */
const configOnly = (config: object, generation?: object) => {
  const dir = mkdtempSync(join(tmpdir(), 'eaglet-hfchat-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ weight_map: { 'model.embed_tokens.weight': 'model-00001-of-00004.safetensors' } }),
  );
  if (generation) writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(generation));
  return dir;
};

// Meta-Llama-3.1-8B-Instruct's config.json fields that eaglet reads.
const LLAMA_31_8B = {
  architectures: ['LlamaForCausalLM'],
  hidden_size: 4096,
  intermediate_size: 14336,
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  vocab_size: 128256,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
};

describe('hf-chat target: any decoder-only chat LLM transformers loads', () => {
  let families: Record<string, { layers: number }>;
  let folder: string;
  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'eaglet-families-'));
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'tools/python.mjs'), join(import.meta.dirname, 'families.py'), folder],
      { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } },
    );
    if (r.status !== 0) throw new Error(`families.py failed:\n${r.stderr.slice(-3000)}`);
    families = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  }, 600_000);

  it("its Python adapter gives transformers' own hidden states, logits and cached logits for every family it claims", () => {
    expect(Object.keys(families).sort()).toEqual(Object.keys(ARCHITECTURES).sort());
    for (const f of Object.values(families)) expect(f.layers).toBe(8);
  });

  it("inspects each family's checkpoint: vLLM's aux layers, the embedding key, a draft of the target's shape", async () => {
    for (const arch of Object.keys(ARCHITECTURES)) {
      const info = await hfChatTarget.inspect(join(folder, arch));
      expect(info, arch).toMatchObject({
        architecture: arch,
        numLayers: 8,
        hiddenSize: 64,
        vocabSize: 128,
        auxLayerIds: [2, 4, 5],
        embeddingKey: 'model.embed_tokens.weight',
      });
      expect(hfChatTarget.draftDefaults(info), arch).toMatchObject({
        hidden_size: 64,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        vocab_size: 128,
        draft_vocab_size: 128,
      });
      expect(info.notes?.[0], arch).toMatch(
        ARCHITECTURES[arch]!.vllmEagle3 ? /serves an Eagle3 draft .* natively/ : /no Eagle3 support/,
      );
    }
  });

  it("gives Llama 3.1 8B vLLM's aux layers, its eos ids and the published Eagle3 draft's shape", async () => {
    const dir = configOnly(LLAMA_31_8B, { eos_token_id: [128001, 128008, 128009] });
    const info = await hfChatTarget.inspect(dir);
    expect(info.auxLayerIds).toEqual([2, 16, 29]);
    expect(info.eosTokenIds).toEqual([128001, 128008, 128009]);
    expect(info.reads?.join('\n')).toMatch(/chat template: none found/);
    expect(hfChatTarget.draftDefaults(info)).toEqual({
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
      eos_token_id: 128001,
    });
    // transformers 5 writes rope_theta inside rope_parameters
    const { rope_theta: _, ...rest } = LLAMA_31_8B;
    const v5 = await hfChatTarget.inspect(
      configOnly({ ...rest, rope_parameters: { rope_theta: 500000.0, rope_type: 'default' } }),
    );
    expect(hfChatTarget.draftDefaults(v5).rope_theta).toBe(500000);
  });

  it('refuses what its engine path would compute wrongly or cannot tap, naming file and field', async () => {
    await expect(
      hfChatTarget.inspect(configOnly({ ...LLAMA_31_8B, final_logit_softcapping: 30.0 })),
    ).rejects.toThrow(/config\.json: final_logit_softcapping is 30/);
    await expect(
      hfChatTarget.inspect(configOnly({ ...LLAMA_31_8B, architectures: ['GPT2LMHeadModel'] })),
    ).rejects.toThrow(/config\.json: architecture is GPT2LMHeadModel, which hf-chat does not claim/);
    await expect(hfChatTarget.inspect(configOnly({ ...LLAMA_31_8B, num_hidden_layers: 4 }))).rejects.toThrow(
      /config\.json: a 4-layer target has no three distinct Eagle3 aux layers/,
    );
  });
});
