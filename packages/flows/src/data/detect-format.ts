import type { DataFormat, PluginRegistry } from '@eaglet/core';

/** Picks the format of a parsed record: the first registered format that recognises it. */
export function detectFormat(registry: PluginRegistry, value: unknown): DataFormat | undefined {
  return registry.formats().find((f) => f.detect(value));
}
