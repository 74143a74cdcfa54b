import { z } from 'zod';

/**
 * The OpenAI chat-completions wire format, as far as eaglet speaks it: what the embedded server
 * accepts and what the regeneration client sends to any OpenAI-compatible server (vLLM, eaglet's
 * own). Audio travels as `input_audio` (base64 + format) or `audio_url` (http(s), data: or file://,
 * as vLLM accepts). Unknown request fields are ignored, as OpenAI-compatible servers do.
 */
export const OpenAITextPart = z.object({ type: z.literal('text'), text: z.string() });
export const OpenAIInputAudioPart = z.object({
  type: z.literal('input_audio'),
  input_audio: z.object({
    data: z.string().min(1, 'input_audio.data is empty'),
    format: z.string().min(1, 'input_audio.format is empty'),
  }),
});
export const OpenAIAudioUrlPart = z.object({
  type: z.literal('audio_url'),
  audio_url: z.object({ url: z.string().min(1, 'audio_url.url is empty') }),
});
export const OpenAIContentPart = z.discriminatedUnion('type', [
  OpenAITextPart,
  OpenAIInputAudioPart,
  OpenAIAudioUrlPart,
]);
export type OpenAIContentPart = z.infer<typeof OpenAIContentPart>;

export const OpenAIMessage = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(OpenAIContentPart)]).nullable(),
});
export type OpenAIMessage = z.infer<typeof OpenAIMessage>;

export const OpenAIChatRequest = z.object({
  model: z.string().optional(),
  messages: z.array(OpenAIMessage).min(1, 'messages is empty'),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  n: z.literal(1, 'only n = 1 is supported').nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
});
export type OpenAIChatRequest = z.infer<typeof OpenAIChatRequest>;

export const OpenAIUsage = z.object({
  prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
  total_tokens: z.number().int().nonnegative(),
});

export const OpenAIChatResponse = z.object({
  id: z.string(),
  object: z.literal('chat.completion'),
  created: z.number().int(),
  model: z.string(),
  choices: z
    .array(
      z.object({
        index: z.number().int(),
        message: z.object({ role: z.literal('assistant'), content: z.string().nullable() }),
        finish_reason: z.string().nullable(),
      }),
    )
    .min(1),
  usage: OpenAIUsage.optional(),
});
export type OpenAIChatResponse = z.infer<typeof OpenAIChatResponse>;

export const OpenAIModelList = z.object({
  object: z.literal('list'),
  data: z.array(z.object({ id: z.string(), object: z.literal('model') })),
});
