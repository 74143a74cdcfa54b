import type { Backend } from '../interfaces/backend.js';
import type { ChatTemplate } from '../interfaces/chat-template.js';
import type { DataFormat } from '../interfaces/data-format.js';
import type { TargetModel } from '../interfaces/target-model.js';

/**
 * A plugin: a plain object from a factory function, listing the implementations it contributes.
 * A plugin package exports one registration function (`RegisterFunction`), `register(registry)`, that calls
 * `registry.use(myPlugin())`; which packages load is configuration (`eaglet.config.json`).
 */
export interface EagletPlugin {
  /** Unique name, conventionally `eaglet:<thing>` for built-ins and the npm package name otherwise. */
  name: string;
  /** Version shown by `eaglet plugins` (usually the package.json version). */
  version: string;
  /** Target model families. */
  targets?: TargetModel[];
  /** Chat templates. */
  templates?: ChatTemplate[];
  /** jsonl data formats. */
  formats?: DataFormat[];
  /** Serving/benchmark backends. */
  backends?: Backend[];
}

/** Identity helper that gives plugin factories a checked type. */
export const definePlugin = (plugin: EagletPlugin): EagletPlugin => plugin;
