import { definePlugin, type EagletPlugin, type PluginRegistry, packageVersion } from '@eaglet/core';
import { hfChatTemplate } from './chat-template.js';
import { hfChatTarget } from './target.js';

export { ARCHITECTURES } from './architectures.js';
export { HF_CHAT_TEMPLATE_ID, hfChatTemplate } from './chat-template.js';
export { HF_CHAT_TARGET_ID, hfChatTarget } from './target.js';

/** The Hugging Face chat LLM target plugin: its TargetModel and its chat template. */
export const hfChatPlugin = (): EagletPlugin =>
  definePlugin({
    name: 'eaglet:hf-chat',
    version: packageVersion(import.meta.url),
    targets: [hfChatTarget],
    templates: [hfChatTemplate],
  });

export function register(registry: PluginRegistry): void {
  registry.use(hfChatPlugin());
}
