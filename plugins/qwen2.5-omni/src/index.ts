import { definePlugin, type EagletPlugin, type PluginRegistry, packageVersion } from '@eaglet/core';
import { qwen25OmniChatTemplate } from './chat-template.js';
import { qwen25OmniTarget } from './target.js';

export {
  QWEN25_OMNI_HOP_LENGTH,
  QWEN25_OMNI_MAX_SECONDS,
  QWEN25_OMNI_PLACEHOLDER,
  QWEN25_OMNI_SAMPLE_RATE,
  qwen25OmniTokenCount,
} from './audio-tokens.js';
export { QWEN25_OMNI_TEMPLATE_ID, qwen25OmniChatTemplate } from './chat-template.js';
export { QWEN25_OMNI_TARGET_ID, qwen25OmniTarget } from './target.js';

/** The Qwen2.5-Omni target plugin: its TargetModel and its chat template. */
export const qwen25OmniPlugin = (): EagletPlugin =>
  definePlugin({
    name: 'eaglet:qwen2.5-omni',
    version: packageVersion(import.meta.url),
    targets: [qwen25OmniTarget],
    templates: [qwen25OmniChatTemplate],
  });

export function register(registry: PluginRegistry): void {
  registry.use(qwen25OmniPlugin());
}
