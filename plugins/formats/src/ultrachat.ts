import { type Conversation, type DataFormat, zodIssues } from '@eaglet/core';
import { z } from 'zod';
import { relativeAudioRef, resolveAudioRef } from './audio-ref.js';
import { stringOrParts } from './content.js';
import { recordId } from './openai-conversations.js';

/**
 * UltraChat: {"prompt_id": "...", "prompt": "...", "messages": [{"role": "user", "content": "..."}, ...]}.
 * The id is `prompt_id`. Content is a string; a list of OpenAI parts (text / audio) is accepted too.
 */
const Part = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('audio'), audio: z.string().min(1, 'audio path is empty') }),
]);

const RawRecord = z.object({
  prompt_id: z.union([z.string().min(1), z.number()], {
    error: 'prompt_id must be a non-empty string or a number',
  }),
  prompt: z.string().optional(),
  messages: z
    .array(
      z.object({
        role: z.enum(['system', 'user', 'assistant']),
        content: stringOrParts(Part),
      }),
    )
    .min(1, 'messages is empty'),
});

export const ultrachat: DataFormat = {
  name: 'ultrachat',
  description: 'UltraChat {prompt_id, messages[{role, content}]}',
  messagesField: 'messages',
  detect(value) {
    const v = value as { prompt_id?: unknown; messages?: unknown } | null;
    return !!v && v.prompt_id !== undefined && Array.isArray(v.messages);
  },
  parse(value, ctx) {
    const parsed = RawRecord.safeParse(value);
    const id = recordId(value, 'prompt_id');
    if (!parsed.success) return { ok: false, issues: zodIssues(parsed.error), ...(id ? { id } : {}) };
    const conversation: Conversation = {
      id: String(parsed.data.prompt_id),
      source: { file: ctx.file, line: ctx.line },
      messages: parsed.data.messages.map((m) => ({
        role: m.role,
        content:
          typeof m.content === 'string'
            ? [{ type: 'text', text: m.content }]
            : m.content.map((p) =>
                p.type === 'text' ? p : { type: 'audio', audio: resolveAudioRef(p.audio, ctx.baseDir) },
              ),
      })),
    };
    return { ok: true, conversation };
  },
  serialize(conversation, ctx) {
    const hasAudio = conversation.messages.some((m) => m.content.some((p) => p.type === 'audio'));
    const firstUser = conversation.messages.find((m) => m.role === 'user');
    return {
      prompt_id: conversation.id,
      prompt: firstUser?.content.map((p) => (p.type === 'text' ? p.text : '')).join('') ?? '',
      messages: conversation.messages.map((m) => ({
        role: m.role,
        content: hasAudio
          ? m.content.map((p) =>
              p.type === 'text' ? p : { type: 'audio', audio: relativeAudioRef(p.audio, ctx.baseDir) },
            )
          : m.content.map((p) => (p.type === 'text' ? p.text : '')).join(''),
      })),
    };
  },
};
