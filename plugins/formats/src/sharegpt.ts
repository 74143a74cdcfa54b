import { basename } from 'node:path';
import {
  type ContentPart,
  type Conversation,
  type DataFormat,
  type FieldIssue,
  type Role,
  zodIssues,
} from '@eaglet/core';
import { z } from 'zod';
import { relativeAudioRef, resolveAudioRef } from './audio-ref.js';
import { recordId } from './openai-conversations.js';

/**
 * ShareGPT: {"id": "...", "conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}]}.
 * Audio follows the common multimodal extension: an `audios` list whose files replace the `<audio>`
 * markers in the values, in order. Records without an id get `<file name>:<line>`.
 */
const FROM_TO_ROLE: Record<string, Role> = {
  system: 'system',
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
};
const AUDIO_MARKER = '<audio>';

const RawRecord = z.object({
  id: z.union([z.string().min(1), z.number()]).optional(),
  system: z.string().optional(),
  audios: z.array(z.string().min(1, 'audio path is empty')).optional(),
  conversations: z
    .array(
      z.object({
        from: z.string().refine((f) => f in FROM_TO_ROLE, {
          error: `unknown speaker: expected one of ${Object.keys(FROM_TO_ROLE).join(', ')}`,
        }),
        value: z.string(),
      }),
    )
    .min(1, 'conversations is empty'),
});

function splitAudio(value: string, audios: string[], next: { i: number }): ContentPart[] {
  const parts: ContentPart[] = [];
  value.split(AUDIO_MARKER).forEach((text, k) => {
    if (k > 0) parts.push({ type: 'audio', audio: audios[next.i++] ?? '' });
    if (text.trim() !== '' || (k === 0 && !value.includes(AUDIO_MARKER))) parts.push({ type: 'text', text });
  });
  return parts;
}

export const sharegpt: DataFormat = {
  name: 'sharegpt',
  description: 'ShareGPT {from, value} turns; audio as an `audios` list replacing <audio> markers',
  messagesField: 'conversations',
  detect(value) {
    const conv = (value as { conversations?: unknown[] } | null)?.conversations;
    return Array.isArray(conv) && typeof (conv[0] as { from?: unknown } | undefined)?.from === 'string';
  },
  parse(value, ctx) {
    const parsed = RawRecord.safeParse(value);
    const id = recordId(value, 'id') ?? `${basename(ctx.file)}:${ctx.line}`;
    if (!parsed.success) return { ok: false, issues: zodIssues(parsed.error), id };
    const rec = parsed.data;
    const audios = (rec.audios ?? []).map((a) => resolveAudioRef(a, ctx.baseDir));
    const markers = rec.conversations.reduce((n, t) => n + t.value.split(AUDIO_MARKER).length - 1, 0);
    const issues: FieldIssue[] = [];
    if (markers > 0 && markers !== audios.length) {
      issues.push({
        path: 'audios',
        reason: `${markers} ${AUDIO_MARKER} markers but ${audios.length} audio files`,
      });
    }
    if (issues.length) return { ok: false, issues, id };
    const next = { i: 0 };
    const messages = rec.conversations.map((t) => ({
      role: FROM_TO_ROLE[t.from]!,
      content: splitAudio(t.value, audios, next),
    }));
    if (markers === 0 && audios.length > 0) {
      // No markers: the audio belongs at the start of the first user turn.
      const user = messages.find((m) => m.role === 'user');
      user?.content.unshift(...audios.map((audio): ContentPart => ({ type: 'audio', audio })));
    }
    if (rec.system !== undefined)
      messages.unshift({ role: 'system', content: [{ type: 'text', text: rec.system }] });
    const conversation: Conversation = { id, source: { file: ctx.file, line: ctx.line }, messages };
    return { ok: true, conversation };
  },
  serialize(conversation, ctx) {
    const audios: string[] = [];
    const toFrom = { system: 'system', user: 'human', assistant: 'gpt' } as const;
    const conversations = conversation.messages.map((m) => ({
      from: toFrom[m.role],
      value: m.content
        .map((p) => {
          if (p.type === 'text') return p.text;
          audios.push(relativeAudioRef(p.audio, ctx.baseDir));
          return AUDIO_MARKER;
        })
        .join(''),
    }));
    return { id: conversation.id, conversations, ...(audios.length ? { audios } : {}) };
  },
};
