import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelTokenizer } from '@eaglet/chat-template';
import type { Conversation } from '@eaglet/core';
import { tinyQwen2AudioModel } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  QWEN2_AUDIO_TEMPLATE_ID,
  QWEN2_SPLIT_REGEX,
  qwen2AudioChatTemplate,
  qwen2AudioTarget,
  qwen2AudioTokenCount,
} from '../src/index.js';

// transformers' test_processor_qwen2_audio.py, tokenized with Qwen/Qwen2-Audio-7B-Instruct.
const REAL_IDS_PREFIX = [
  151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198, 14755, 220, 16, 25, 220,
  151647,
];
const REAL_IDS_AFTER_AUDIO = [151648, 198, 3838, 594, 429, 5112, 30, 151645, 198, 151644, 77091, 198];

const conv = (messages: Conversation['messages']): Conversation => ({
  id: 'x',
  messages,
  source: { file: '/data.jsonl', line: 1 },
});

let model: string;
beforeAll(() => {
  model = tinyQwen2AudioModel();
});

describe('qwen2AudioTokenCount (the processor formula)', () => {
  it('gives 750 tokens for 30 s and caps longer clips at the 30 s window', () => {
    expect(qwen2AudioTokenCount(480000)).toBe(750);
    expect(qwen2AudioTokenCount(720000)).toBe(750);
    expect(qwen2AudioTokenCount(16000)).toBe(25);
    expect(qwen2AudioTokenCount(320)).toBe(0); // too short: the template refuses it
    expect(qwen2AudioTokenCount(321)).toBe(1);
    // transformers' test expects 101 tokens for glass-breaking-151256.mp3 (about 4.03 s)
    expect(qwen2AudioTokenCount(64480)).toBe(101);
  });
});

describe('qwen2-audio chat template on the real Qwen2 tokenizer', () => {
  it('reproduces the real model ids, with <|AUDIO|> expanded to the processor count', async () => {
    const session = await qwen2AudioChatTemplate.load(model);
    expect(session.templateId).toBe(QWEN2_AUDIO_TEMPLATE_ID);
    const samples = 64480;
    const r = session.renderPrompt(
      [
        { role: 'system', content: [{ type: 'text', text: 'You are a helpful assistant.' }] },
        {
          role: 'user',
          content: [
            { type: 'audio', audio: '/a.mp3' },
            { type: 'text', text: "What's that sound?" },
          ],
        },
      ],
      [{ samples }],
    );
    expect(Array.from(r.inputIds)).toEqual([
      ...REAL_IDS_PREFIX,
      ...Array(101).fill(151646),
      ...REAL_IDS_AFTER_AUDIO,
    ]);
    expect(r.audioTokenCounts).toEqual([101]);
  });

  it('adds the default system prompt, numbers audio across turns and masks replies with <|im_end|>\\n', async () => {
    const session = await qwen2AudioChatTemplate.load(model);
    const r = session.render(
      conv([
        {
          role: 'user',
          content: [
            { type: 'audio', audio: '/a.wav' },
            { type: 'text', text: 'Hi' },
          ],
        },
        { role: 'assistant', content: [{ type: 'text', text: 'Hello there' }] },
        { role: 'user', content: [{ type: 'audio', audio: '/b.wav' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Bye' }] },
      ]),
      [{ samples: 16000 }, { samples: 8000 }],
    );
    const tok = session.tokenizer;
    const text = tok.decode(r.inputIds);
    expect(text).toBe(
      `<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nAudio 1: <|audio_bos|>${'<|AUDIO|>'.repeat(25)}<|audio_eos|>\nHi<|im_end|>\n<|im_start|>assistant\nHello there<|im_end|>\n<|im_start|>user\nAudio 2: <|audio_bos|>${'<|AUDIO|>'.repeat(12)}<|audio_eos|>\n<|im_end|>\n<|im_start|>assistant\nBye<|im_end|>\n`,
    );
    expect(r.audioTokenCounts).toEqual([25, 12]);
    const trained = tok.decode(r.inputIds.filter((_, i) => r.lossMask[i] === 1));
    expect(trained).toBe('Hello there<|im_end|>\nBye<|im_end|>\n');
    expect(r.lossMask.length).toBe(r.inputIds.length);
  });

  it('refuses text holding special tokens and audio counts that do not match', async () => {
    const session = await qwen2AudioChatTemplate.load(model);
    const bad = conv([
      { role: 'user', content: [{ type: 'text', text: 'say <|im_end|> now' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'ok' }] },
    ]);
    expect(() => session.render(bad, [])).toThrow(/special token <\|im_end\|>/);
    const oneAudio = conv([
      { role: 'user', content: [{ type: 'audio', audio: '/a.wav' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'ok' }] },
    ]);
    expect(() => session.render(oneAudio, [])).toThrow(/no decoded audio/);
  });

  it('loads the same ids from the slow files (vocab.json + merges.txt) as from tokenizer.json', () => {
    const slow = mkdtempSync(join(tmpdir(), 'eaglet-slowtok-'));
    for (const f of ['vocab.json', 'merges.txt', 'tokenizer_config.json'])
      copyFileSync(join(model, f), join(slow, f));
    const a = loadModelTokenizer(model);
    const b = loadModelTokenizer(slow, { slowFilesSplitRegex: QWEN2_SPLIT_REGEX });
    const text = 'THE PROOF WAS IN THREE LONG SLIPS. Ünïcödé 你好 🎉\n\n  x<|im_end|>\n<|AUDIO|>';
    expect(b.encode(text)).toEqual(a.encode(text));
    expect(b.tokenId('<|audio_eos|>')).toBe(151648);
    expect(a.size).toBe(151649);
    expect(a.eosTokenIds).toContain(151645);
  });

  it("renders the folder's own template: a changed default system prompt is what the ids say", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-tpl-'));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(model, f), join(dir, f));
    const own = (await qwen2AudioChatTemplate.load(model)).renderPrompt(
      [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
      [],
    );
    const source = JSON.parse(readFileSync(join(model, 'tokenizer_config.json'), 'utf8')).chat_template;
    writeFileSync(
      join(dir, 'chat_template.jinja'),
      source.replace('You are a helpful assistant.', 'Be brief.'),
    );
    const session = await qwen2AudioChatTemplate.load(dir);
    const r = session.renderPrompt([{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }], []);
    expect(session.tokenizer.decode(r.inputIds)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(r.inputIds.length).toBeLessThan(own.inputIds.length);
  });

  it('refuses a folder without a chat template', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-notpl-'));
    copyFileSync(join(model, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    await expect(qwen2AudioChatTemplate.load(dir)).rejects.toMatchObject({
      code: 'EAGLET_TEMPLATE_MISSING',
    });
  });
});

describe('qwen2-audio target', () => {
  it('inspects the tiny model: aux layers, the embedding key its safetensors hold, eos ids, audio token id', async () => {
    const info = await qwen2AudioTarget.inspect(model);
    expect(info).toMatchObject({
      architecture: 'Qwen2AudioForConditionalGeneration',
      numLayers: 8,
      hiddenSize: 64,
      vocabSize: 156032,
      auxLayerIds: [2, 4, 5],
      embeddingKey: 'language_model.model.embed_tokens.weight',
      bosTokenId: 151643,
      eosTokenIds: [151645],
      audioTokenId: 151646,
    });
  });

  it('declares its audio placeholder and count formula', () => {
    expect(qwen2AudioTarget.audio).toMatchObject({
      sampleRate: 16000,
      maxSeconds: 30,
      placeholder: '<|AUDIO|>',
    });
    expect(qwen2AudioTarget.audio?.tokenCount(480000)).toBe(750);
  });

  /** A config-only 7B folder whose sharded index names the tensors (no weights needed to inspect). */
  const sevenB = (weights: string[], generation?: object) => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-7b-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        architectures: ['Qwen2AudioForConditionalGeneration'],
        audio_token_index: 151646,
        text_config: {
          num_hidden_layers: 32,
          hidden_size: 4096,
          intermediate_size: 11008,
          num_attention_heads: 32,
          vocab_size: 156032,
          bos_token_id: 151643,
          eos_token_id: 151645,
        },
      }),
    );
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({
        weight_map: Object.fromEntries(weights.map((w) => [w, 'model-00001-of-00005.safetensors'])),
      }),
    );
    if (generation) writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(generation));
    return dir;
  };

  it("gives vLLM's aux layers, every eos id of generation_config.json and REFERENCE.md's draft for the 7B shape", async () => {
    const dir = sevenB(['model.language_model.embed_tokens.weight'], { eos_token_id: [151645, 151643] });
    const info = await qwen2AudioTarget.inspect(dir);
    expect(info.auxLayerIds).toEqual([2, 16, 29]);
    expect(info.embeddingKey).toBe('model.language_model.embed_tokens.weight'); // the one it holds
    expect(info.eosTokenIds).toEqual([151645, 151643]);
    expect(qwen2AudioTarget.draftDefaults(info)).toMatchObject({
      hidden_size: 4096,
      intermediate_size: 11008,
      num_attention_heads: 32,
      num_key_value_heads: 4,
      head_dim: 128,
      vocab_size: 156032,
      draft_vocab_size: 32000,
      rope_theta: 10000,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-6,
    });
  });

  it('refuses a checkpoint that holds no embedding it knows, naming the keys looked for', async () => {
    await expect(qwen2AudioTarget.inspect(sevenB(['lm_head.weight']))).rejects.toThrow(
      /no token embedding \(looked for language_model\.model\.embed_tokens\.weight, model\.language_model\.embed_tokens\.weight\)/,
    );
  });

  it('names the file and the problem for a wrong architecture', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-arch-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'] }));
    await expect(qwen2AudioTarget.inspect(dir)).rejects.toThrow(
      /config\.json: architecture is LlamaForCausalLM/,
    );
  });
});
