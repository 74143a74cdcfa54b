import { checkpointChatTemplate } from '@eaglet/chat-template';
import type { ChatTemplate } from '@eaglet/core';
import { QWEN2_AUDIO_PLACEHOLDER, qwen2AudioTokenCount } from './audio-tokens.js';

export const QWEN2_AUDIO_TEMPLATE_ID = 'qwen2-audio';

/**
 * Qwen2's pre-tokenizer split regex (after NFC, before byte-level): a model folder with only the
 * slow tokenizer files (vocab.json, merges.txt) is assembled with it.
 */
export const QWEN2_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * Qwen2-Audio's chat template: the model folder's own (ChatML, a default system prompt,
 * `Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>\n` per clip), rendered by @eaglet/chat-template
 * token-exact against the processor, with `<|AUDIO|>` expanded to the processor's count and a
 * loss mask over each assistant reply and its closing `<|im_end|>\n`.
 */
export const qwen2AudioChatTemplate: ChatTemplate = checkpointChatTemplate({
  id: QWEN2_AUDIO_TEMPLATE_ID,
  description:
    "Qwen2-Audio's own chat template from the model folder (ChatML, 'Audio N:' parts), token-exact",
  audio: { placeholder: QWEN2_AUDIO_PLACEHOLDER, tokenCount: qwen2AudioTokenCount },
  tokenizer: { slowFilesSplitRegex: QWEN2_SPLIT_REGEX },
});
