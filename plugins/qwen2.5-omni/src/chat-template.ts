import { checkpointChatTemplate } from '@eaglet/chat-template';
import type { ChatTemplate } from '@eaglet/core';
import { QWEN25_OMNI_PLACEHOLDER, qwen25OmniTokenCount } from './audio-tokens.js';

export const QWEN25_OMNI_TEMPLATE_ID = 'qwen2.5-omni';

/**
 * Qwen2.5-Omni's chat template: the model folder's own (ChatML, its default system prompt,
 * `<|audio_bos|><|AUDIO|><|audio_eos|>` per clip), rendered by @eaglet/chat-template, with
 * `<|AUDIO|>` expanded to the processor's count and the assistant replies masked.
 */
export const qwen25OmniChatTemplate: ChatTemplate = checkpointChatTemplate({
  id: QWEN25_OMNI_TEMPLATE_ID,
  description: "Qwen2.5-Omni's own chat template from the model folder (ChatML, audio parts), token-exact",
  audio: { placeholder: QWEN25_OMNI_PLACEHOLDER, tokenCount: qwen25OmniTokenCount },
});
