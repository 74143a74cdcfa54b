/**
 * @eaglet/core: eaglet's contracts. Interfaces (TargetModel, ChatTemplate, DataFormat, Backend),
 * the zod schemas that are the one source of truth for every shape that crosses a boundary, the
 * plugin registry, config loading, jsonl I/O and errors. Nothing here names a concrete model,
 * format or backend.
 */

export * from './aux-layers.js';
export * from './bench-markdown.js';
export * from './bench-report.js';
export * from './bench-stats.js';
export * from './checkpoint.js';
export * from './config-file.js';
export * from './conversation-rules.js';
export * from './draft-from-text-config.js';
export * from './errors.js';
export * from './interfaces/audio-decoder.js';
export * from './interfaces/backend.js';
export * from './interfaces/chat-template.js';
export * from './interfaces/data-format.js';
export * from './interfaces/target-model.js';
export * from './interfaces/tokenizer.js';
export * from './json-file.js';
export * from './json-schemas.js';
export * from './jsonl.js';
export * from './openai-client.js';
export * from './package-version.js';
export * from './plugins/loader.js';
export * from './plugins/plugin.js';
export * from './plugins/registry.js';
export * from './plugins/resolve-target.js';
export * from './run-config.js';
export * from './schemas/index.js';
export * from './seed-parameters.js';
