import { type Conversation, type DataFormat, type Message, zodIssues } from '@eaglet/core';
import { z } from 'zod';
import { dataUri, relativeAudioRef, resolveAudioRef } from './audio-ref.js';
import { stringOrParts } from './content.js';

/**
 * The seed's format (OpenAI chat messages under `conversations`):
 * {"id": 5910, "conversations": [{"role": "user", "content": [{"type": "audio", "audio": "./a.flac"},
 *   {"type": "text", "text": "..."}]}, {"role": "assistant", "content": [{"type": "text", "text": "..."}]}]}
 * Content may also be a plain string, and audio may come as OpenAI `input_audio` or `audio_url` parts.
 */
const Part = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('text'), text: z.string() }),
    z.object({ type: z.literal('audio'), audio: z.string().min(1, 'audio path is empty') }),
    z.object({
      type: z.literal('input_audio'),
      input_audio: z.object({ data: z.string().min(1), format: z.string().min(1) }),
    }),
    z.object({ type: z.literal('audio_url'), audio_url: z.object({ url: z.string().min(1) }) }),
  ],
  {
    error: (iss) =>
      iss.code === 'invalid_union'
        ? 'unknown part type: expected text, audio, input_audio or audio_url'
        : undefined,
  },
);
type Part = z.infer<typeof Part>;

const RawMessage = z.object({
  role: z.enum(['system', 'user', 'assistant']),
  content: stringOrParts(Part),
});

const RawRecord = z.object({
  id: z.union([z.string().min(1), z.number()], { error: 'id must be a non-empty string or a number' }),
  conversations: z.array(RawMessage).min(1, 'conversations is empty'),
});

export const recordId = (value: unknown, ...keys: string[]): string | undefined => {
  if (!value || typeof value !== 'object') return undefined;
  for (const key of keys) {
    const id = (value as Record<string, unknown>)[key];
    if ((typeof id === 'string' && id) || typeof id === 'number') return String(id);
  }
  return undefined;
};

function toCanonicalPart(part: Part, baseDir: string): Message['content'][number] {
  switch (part.type) {
    case 'text':
      return { type: 'text', text: part.text };
    case 'audio':
      return { type: 'audio', audio: resolveAudioRef(part.audio, baseDir) };
    case 'input_audio':
      return { type: 'audio', audio: dataUri(part.input_audio.data, part.input_audio.format) };
    case 'audio_url':
      return { type: 'audio', audio: resolveAudioRef(part.audio_url.url, baseDir) };
  }
}

export const openaiConversations: DataFormat = {
  name: 'openai-conversations',
  description: 'OpenAI chat messages under "conversations" with text/audio parts (the seed format)',
  messagesField: 'conversations',
  detect(value) {
    const conv = (value as { conversations?: unknown[] } | null)?.conversations;
    return Array.isArray(conv) && typeof (conv[0] as { role?: unknown } | undefined)?.role === 'string';
  },
  parse(value, ctx) {
    const parsed = RawRecord.safeParse(value);
    const id = recordId(value, 'id');
    if (!parsed.success) return { ok: false, issues: zodIssues(parsed.error), ...(id ? { id } : {}) };
    const conversation: Conversation = {
      id: String(parsed.data.id),
      source: { file: ctx.file, line: ctx.line },
      messages: parsed.data.conversations.map((m) => ({
        role: m.role,
        content:
          typeof m.content === 'string'
            ? [{ type: 'text', text: m.content }]
            : m.content.map((p) => toCanonicalPart(p, ctx.baseDir)),
      })),
    };
    return { ok: true, conversation };
  },
  serialize(conversation, ctx) {
    return {
      id: conversation.id,
      conversations: conversation.messages.map((m) => ({
        role: m.role,
        content: m.content.map((p) =>
          p.type === 'text'
            ? { type: 'text', text: p.text }
            : { type: 'audio', audio: relativeAudioRef(p.audio, ctx.baseDir) },
        ),
      })),
    };
  },
};
