import { describe, expect, it } from 'vitest';
import { openaiConversations, sharegpt, ultrachat } from '../src/index.js';

const ctx = { file: '/data/set/train.jsonl', line: 7, baseDir: '/data/set' };

describe('openai-conversations (seed format)', () => {
  const seed = {
    id: 5910,
    conversations: [
      {
        role: 'user',
        content: [
          { type: 'audio', audio: './audios/1580-141083-0008.flac' },
          { type: 'text', text: 'Detect the language and recognize the speech: <|en|>' },
        ],
      },
      { role: 'assistant', content: [{ type: 'text', text: 'THE PROOF WAS IN THREE LONG SLIPS' }] },
    ],
  };

  it('parses the seed example, resolving the audio path against the jsonl folder', () => {
    const r = openaiConversations.parse(seed, ctx);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.conversation.id).toBe('5910');
    expect(r.conversation.source).toEqual({ file: ctx.file, line: 7 });
    expect(r.conversation.messages[0]!.content[0]).toEqual({
      type: 'audio',
      audio: '/data/set/audios/1580-141083-0008.flac',
    });
  });

  it('round-trips through serialize with relative paths', () => {
    const r = openaiConversations.parse(seed, ctx);
    if (!r.ok) throw new Error('parse failed');
    expect(openaiConversations.serialize(r.conversation, { baseDir: '/data/set' })).toEqual({
      ...seed,
      id: '5910',
    });
  });

  it('accepts string content and OpenAI input_audio / audio_url parts', () => {
    const r = openaiConversations.parse(
      {
        id: 'x',
        conversations: [
          { role: 'system', content: 'Be brief.' },
          {
            role: 'user',
            content: [
              { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
              { type: 'audio_url', audio_url: { url: 'clips/a.wav' } },
            ],
          },
        ],
      },
      ctx,
    );
    expect(r.ok && r.conversation.messages.map((m) => m.content)).toEqual([
      [{ type: 'text', text: 'Be brief.' }],
      [
        { type: 'audio', audio: 'data:audio/wav;base64,UklGRg==' },
        { type: 'audio', audio: '/data/set/clips/a.wav' },
      ],
    ]);
  });

  it('detects only its own shape', () => {
    expect(openaiConversations.detect(seed)).toBe(true);
    expect(openaiConversations.detect({ conversations: [{ from: 'human', value: 'x' }] })).toBe(false);
    expect(openaiConversations.detect(null)).toBe(false);
  });
});

describe('sharegpt', () => {
  it('turns <audio> markers into audio parts in order and keeps the system prompt first', () => {
    const r = sharegpt.parse(
      {
        system: 'S',
        audios: ['a.wav', '/abs/b.wav'],
        conversations: [
          { from: 'human', value: '<audio>first<audio>' },
          { from: 'gpt', value: 'answer' },
        ],
      },
      ctx,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.conversation.id).toBe('train.jsonl:7');
    expect(r.conversation.messages).toEqual([
      { role: 'system', content: [{ type: 'text', text: 'S' }] },
      {
        role: 'user',
        content: [
          { type: 'audio', audio: '/data/set/a.wav' },
          { type: 'text', text: 'first' },
          { type: 'audio', audio: '/abs/b.wav' },
        ],
      },
      { role: 'assistant', content: [{ type: 'text', text: 'answer' }] },
    ]);
  });

  it('reports a marker/file count mismatch', () => {
    const r = sharegpt.parse(
      { id: 'q', audios: ['a.wav'], conversations: [{ from: 'human', value: '<audio><audio>' }] },
      ctx,
    );
    expect(r).toEqual({
      ok: false,
      id: 'q',
      issues: [{ path: 'audios', reason: '2 <audio> markers but 1 audio files' }],
    });
  });

  it('names an unknown speaker', () => {
    const r = sharegpt.parse({ conversations: [{ from: 'bot', value: 'x' }] }, ctx);
    expect(!r.ok && r.issues[0]).toMatchObject({
      path: 'conversations[0].from',
      reason: expect.stringMatching(/unknown speaker/),
    });
  });

  it('serializes back with markers', () => {
    const r = sharegpt.parse(
      {
        id: 'z',
        audios: ['a.wav'],
        conversations: [
          { from: 'human', value: 'hi <audio>' },
          { from: 'gpt', value: 'yo' },
        ],
      },
      ctx,
    );
    if (!r.ok) throw new Error('parse failed');
    expect(sharegpt.serialize(r.conversation, { baseDir: '/data/set' })).toEqual({
      id: 'z',
      conversations: [
        { from: 'human', value: 'hi <audio>' },
        { from: 'gpt', value: 'yo' },
      ],
      audios: ['./a.wav'],
    });
  });
});

describe('ultrachat', () => {
  const rec = {
    prompt_id: 'abc',
    prompt: 'hi',
    messages: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
    ],
  };
  it('takes the id from prompt_id and round-trips', () => {
    const r = ultrachat.parse(rec, ctx);
    if (!r.ok) throw new Error('parse failed');
    expect(r.conversation.id).toBe('abc');
    expect(ultrachat.serialize(r.conversation, { baseDir: '/' })).toEqual(rec);
  });
  it('requires prompt_id', () => {
    const r = ultrachat.parse({ messages: rec.messages }, ctx);
    expect(!r.ok && r.issues).toEqual([
      { path: 'prompt_id', reason: 'prompt_id must be a non-empty string or a number' },
    ]);
  });
});
