import { z } from 'zod';

/**
 * The canonical conversation: what every DataFormat parses into and every ChatTemplate renders.
 * Audio is referenced, not embedded: an absolute file path, an http(s) URL, or a data: URI.
 */
export const TextPart = z.strictObject({
  type: z.literal('text'),
  text: z.string(),
});

export const AudioPart = z.strictObject({
  type: z.literal('audio'),
  /** Absolute path, http(s) URL or `data:audio/...;base64,` URI. Relative paths are resolved by the format. */
  audio: z.string().min(1, 'audio reference is empty'),
  /** Optional clip window in seconds (set by long-audio segmentation). */
  start: z.number().nonnegative().optional(),
  end: z.number().positive().optional(),
});

export const ContentPart = z.discriminatedUnion('type', [TextPart, AudioPart]);

export const Role = z.enum(['system', 'user', 'assistant']);

export const Message = z.strictObject({
  role: Role,
  content: z.array(ContentPart),
});

export const SourceRef = z.strictObject({
  /** The input file the record came from. */
  file: z.string(),
  /** 1-based line number in that file. */
  line: z.number().int().positive(),
});

export const Conversation = z.strictObject({
  id: z.string().min(1),
  messages: z.array(Message).min(1, 'a conversation needs at least one message'),
  source: SourceRef,
});

export type TextPart = z.infer<typeof TextPart>;
export type AudioPart = z.infer<typeof AudioPart>;
export type ContentPart = z.infer<typeof ContentPart>;
export type Role = z.infer<typeof Role>;
export type Message = z.infer<typeof Message>;
export type SourceRef = z.infer<typeof SourceRef>;
export type Conversation = z.infer<typeof Conversation>;

/** All audio parts of a conversation in reading order (the order the template numbers them). */
export function audioParts(conv: Pick<Conversation, 'messages'>): AudioPart[] {
  return conv.messages.flatMap((m) => m.content.filter((p): p is AudioPart => p.type === 'audio'));
}
