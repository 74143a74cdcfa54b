import { checkpointChatTemplate } from '@eaglet/chat-template';
import type { ChatTemplate } from '@eaglet/core';

export const HF_CHAT_TEMPLATE_ID = 'hf-chat';

/** The checkpoint's own chat template, whatever the family (rendered by @eaglet/chat-template). */
export const hfChatTemplate: ChatTemplate = checkpointChatTemplate({
  id: HF_CHAT_TEMPLATE_ID,
  description:
    "The model folder's own chat template (chat_template.jinja or tokenizer_config.json), token-exact against transformers",
});
