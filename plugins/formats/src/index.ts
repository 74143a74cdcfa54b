import { definePlugin, type EagletPlugin, type PluginRegistry, packageVersion } from '@eaglet/core';
import { openaiConversations } from './openai-conversations.js';
import { sharegpt } from './sharegpt.js';
import { ultrachat } from './ultrachat.js';

export { dataUri, relativeAudioRef, resolveAudioRef } from './audio-ref.js';
export { openaiConversations, sharegpt, ultrachat };

/** The built-in data formats. */
export const formatsPlugin = (): EagletPlugin =>
  definePlugin({
    name: 'eaglet:formats',
    version: packageVersion(import.meta.url),
    formats: [openaiConversations, sharegpt, ultrachat],
  });

export function register(registry: PluginRegistry): void {
  registry.use(formatsPlugin());
}
