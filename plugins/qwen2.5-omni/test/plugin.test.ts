import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { templateMessages } from '@eaglet/chat-template';
import type { Conversation, Message } from '@eaglet/core';
import { librivoxClips, longRecording, tinyQwen25OmniModel } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { qwen25OmniChatTemplate, qwen25OmniTarget, qwen25OmniTokenCount } from '../src/index.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const conv = (messages: Message[]): Conversation => ({
  id: 'x',
  messages,
  source: { file: '/d.jsonl', line: 1 },
});
/** Samples of a 16 kHz mono 16-bit WAV, from ffprobe (the file's own header). */
const samplesOf = (path: string) =>
  Number(
    execFileSync('ffprobe', [
      '-v',
      'error',
      '-select_streams',
      'a:0',
      '-show_entries',
      'stream=duration_ts',
      '-of',
      'csv=p=0',
      path,
    ])
      .toString()
      .trim(),
  );

let model: string;
beforeAll(() => {
  model = tinyQwen25OmniModel();
}, 600_000);

describe('qwen25OmniTokenCount (the processor formula, a 300 s window)', () => {
  it('gives 25 tokens a second, 7500 for 300 s, and caps longer clips at the window', () => {
    expect(qwen25OmniTokenCount(16000)).toBe(25);
    expect(qwen25OmniTokenCount(480000)).toBe(750); // 30 s: where Qwen2-Audio stops
    expect(qwen25OmniTokenCount(4_800_000)).toBe(7500);
    expect(qwen25OmniTokenCount(6_400_000)).toBe(7500);
    expect(qwen25OmniTokenCount(320)).toBe(0);
    expect(qwen25OmniTokenCount(321)).toBe(1);
  });
});

describe("qwen2.5-omni chat template and adapter against transformers' processor and thinker, on real speech", () => {
  it('ids, audio token counts and loss masks equal the processor; the adapter gives the thinker its own logits', async () => {
    const session = await qwen25OmniChatTemplate.load(model);
    const clips = librivoxClips();
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-omni-'));
    const long = join(dir, 'long.wav');
    const spliced = longRecording(clips, long, 45);
    const audio = (path: string) => ({ type: 'audio' as const, audio: path });
    const text = (t: string) => ({ type: 'text' as const, text: t });
    const conversations: Message[][] = [
      [
        { role: 'user', content: [audio(clips[0]!.path), text('Transcribe the speech.')] },
        { role: 'assistant', content: [text(clips[0]!.text)] },
      ],
      [
        { role: 'system', content: [text('You are a careful transcriber.')] },
        {
          role: 'user',
          content: [text('Two recordings follow.'), audio(clips[1]!.path), audio(clips[2]!.path)],
        },
        { role: 'assistant', content: [text(`${clips[1]!.text} / ${clips[2]!.text}`)] },
        { role: 'user', content: [text('And now without audio: say hello.')] },
        { role: 'assistant', content: [text('Hello!')] },
      ],
      // 45 s: past Qwen2-Audio's 30 s window, heard whole by Qwen2.5-Omni.
      [
        { role: 'user', content: [audio(long), text('Transcribe the speech.')] },
        { role: 'assistant', content: [text(spliced.text)] },
      ],
    ];
    const cases = conversations.map((messages) => {
      const paths = messages.flatMap((m) => m.content.flatMap((p) => (p.type === 'audio' ? [p.audio] : [])));
      const r = session.render(
        conv(messages),
        paths.map((p) => ({ samples: samplesOf(p) })),
      );
      return {
        messages: templateMessages(messages),
        clips: paths,
        ids: Array.from(r.inputIds),
        mask: Array.from(r.lossMask),
        counts: r.audioTokenCounts,
      };
    });
    expect(cases[2]!.counts[0]).toBeGreaterThan(750);
    const file = join(dir, 'cases.json');
    writeFileSync(file, JSON.stringify(cases));
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'tools/python.mjs'), join(import.meta.dirname, 'omni_parity.py'), model, file],
      { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } },
    );
    if (r.status !== 0) throw new Error(`omni_parity.py failed:\n${r.stdout}\n${r.stderr.slice(-3000)}`);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(summary.cases).toBe(3);
    expect(summary.counts).toEqual(cases.flatMap((c) => c.counts));
    expect(summary.max_logit_diff).toBeLessThan(1e-3);
  }, 600_000);

  it('masks each reply with its closing <|im_end|>\\n, after the default system prompt', async () => {
    const session = await qwen25OmniChatTemplate.load(model);
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
      ]),
      [{ samples: 16000 }],
    );
    const tok = session.tokenizer;
    expect(tok.decode(r.inputIds)).toBe(
      `<|im_start|>system\nYou are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory and visual inputs, as well as generating text and speech.<|im_end|>\n<|im_start|>user\n<|audio_bos|>${'<|AUDIO|>'.repeat(25)}<|audio_eos|>Hi<|im_end|>\n<|im_start|>assistant\nHello there<|im_end|>\n`,
    );
    expect(tok.decode(r.inputIds.filter((_, i) => r.lossMask[i] === 1))).toBe('Hello there<|im_end|>\n');
    expect(r.audioTokenCounts).toEqual([25]);
  });
});

describe('qwen2.5-omni target', () => {
  it("inspects the tiny hub-layout checkpoint: aux layers, the hub's embedding key, audio token, what it reads", async () => {
    const info = await qwen25OmniTarget.inspect(model);
    expect(info).toMatchObject({
      architecture: 'Qwen2_5OmniModel',
      numLayers: 8,
      hiddenSize: 128,
      auxLayerIds: [2, 4, 5],
      embeddingKey: 'thinker.model.embed_tokens.weight',
    });
    const session = await qwen25OmniChatTemplate.load(model);
    expect(info.audioTokenId).toBe(session.tokenizer.tokenId('<|AUDIO|>'));
    expect(info.eosTokenIds).toEqual([
      session.tokenizer.tokenId('<|im_end|>'),
      session.tokenizer.tokenId('<|endoftext|>'),
    ]);
    expect(info.reads?.join('\n')).toMatch(/preprocessor_config\.json: .*300 s window/);
  });

  /** A config-only Qwen2.5-Omni-7B folder (the hub's thinker text config), no weights needed to inspect. */
  const sevenB = (preprocessor: object) => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-omni7b-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        architectures: ['Qwen2_5OmniModel'],
        thinker_config: {
          audio_token_index: 151646,
          text_config: {
            hidden_size: 3584,
            intermediate_size: 18944,
            num_attention_heads: 28,
            num_hidden_layers: 28,
            num_key_value_heads: 4,
            max_position_embeddings: 32768,
            rms_norm_eps: 1e-6,
            rope_theta: 1000000.0,
            vocab_size: 152064,
            eos_token_id: 151645,
          },
        },
      }),
    );
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({
        weight_map: { 'thinker.model.embed_tokens.weight': 'model-00001-of-00005.safetensors' },
      }),
    );
    writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(preprocessor));
    return dir;
  };
  const HUB_FE = { feature_size: 128, sampling_rate: 16000, hop_length: 160, chunk_length: 300 };

  it("gives the 7B vLLM's aux layers and a draft of its text model's shape", async () => {
    const info = await qwen25OmniTarget.inspect(sevenB(HUB_FE));
    expect(info.auxLayerIds).toEqual([2, 14, 25]);
    expect(info.audioTokenId).toBe(151646);
    expect(qwen25OmniTarget.draftDefaults(info)).toMatchObject({
      hidden_size: 3584,
      intermediate_size: 18944,
      num_attention_heads: 28,
      num_key_value_heads: 4,
      head_dim: 128,
      vocab_size: 152064,
      draft_vocab_size: 32000,
      rope_theta: 1000000,
      max_position_embeddings: 32768,
      rms_norm_eps: 1e-6,
    });
  });

  it('refuses a feature extractor the token counts would not match, naming file and field', async () => {
    await expect(qwen25OmniTarget.inspect(sevenB({ ...HUB_FE, chunk_length: 30 }))).rejects.toThrow(
      /preprocessor_config\.json: chunk_length is 30, not 300/,
    );
    const dir = sevenB(HUB_FE);
    for (const f of readdirSync(dir))
      if (f === 'preprocessor_config.json') copyFileSync(join(dir, f), join(dir, 'x'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ architectures: ['Qwen2AudioForConditionalGeneration'] }),
    );
    await expect(qwen25OmniTarget.inspect(dir)).rejects.toThrow(
      /config\.json: architecture is Qwen2AudioForConditionalGeneration/,
    );
  });
});
