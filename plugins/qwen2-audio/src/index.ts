import { definePlugin, type EagletPlugin, type PluginRegistry, packageVersion } from '@eaglet/core';
import { qwen2AudioChatTemplate } from './chat-template.js';
import { qwen2AudioTarget } from './target.js';

export {
  QWEN2_AUDIO_HOP_LENGTH,
  QWEN2_AUDIO_MAX_SECONDS,
  QWEN2_AUDIO_PLACEHOLDER,
  QWEN2_AUDIO_SAMPLE_RATE,
  qwen2AudioTokenCount,
} from './audio-tokens.js';
export { QWEN2_AUDIO_TEMPLATE_ID, QWEN2_SPLIT_REGEX, qwen2AudioChatTemplate } from './chat-template.js';
export { QWEN2_AUDIO_TARGET_ID, qwen2AudioTarget } from './target.js';

/** The Qwen2-Audio target plugin: its TargetModel and its chat template. */
export const qwen2AudioPlugin = (): EagletPlugin =>
  definePlugin({
    name: 'eaglet:qwen2-audio',
    version: packageVersion(import.meta.url),
    targets: [qwen2AudioTarget],
    templates: [qwen2AudioChatTemplate],
  });

export function register(registry: PluginRegistry): void {
  registry.use(qwen2AudioPlugin());
}
