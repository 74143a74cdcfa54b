import 'reflect-metadata';
import { type DependencyContainer, container as rootContainer } from 'tsyringe';
import { EagletError } from '../errors.js';
import type { Backend } from '../interfaces/backend.js';
import type { ChatTemplate } from '../interfaces/chat-template.js';
import type { DataFormat } from '../interfaces/data-format.js';
import type { TargetModel } from '../interfaces/target-model.js';
import type { EagletPlugin } from './plugin.js';

/** Injection tokens: one per contract. Implementations are registered under these in the container. */
export const TOKENS = {
  TargetModel: Symbol.for('eaglet.TargetModel'),
  ChatTemplate: Symbol.for('eaglet.ChatTemplate'),
  DataFormat: Symbol.for('eaglet.DataFormat'),
  Backend: Symbol.for('eaglet.Backend'),
} as const;

export type Kind = 'target' | 'template' | 'format' | 'backend';

const KIND_LABEL: Record<Kind, string> = {
  target: 'target model',
  template: 'chat template',
  format: 'data format',
  backend: 'backend',
};

interface KindSpec<T> {
  token: symbol;
  key: (value: T) => string;
}

const SPECS = {
  target: { token: TOKENS.TargetModel, key: (t: TargetModel) => t.id },
  template: { token: TOKENS.ChatTemplate, key: (t: ChatTemplate) => t.id },
  format: { token: TOKENS.DataFormat, key: (f: DataFormat) => f.name },
  backend: { token: TOKENS.Backend, key: (b: Backend) => b.id },
} satisfies Record<Kind, KindSpec<never>>;

/** What `eaglet plugins` lists for one loaded plugin. */
export interface PluginInfo {
  name: string;
  version: string;
  /** Module specifier it was loaded from; absent for plugins passed in as objects. */
  module?: string;
  targets: string[];
  templates: string[];
  formats: string[];
  backends: string[];
}

/**
 * The plugin registry: a tsyringe child container holding every registered implementation, plus
 * the bookkeeping that makes duplicates and lookups fail with useful messages.
 */
export class PluginRegistry {
  readonly container: DependencyContainer;
  private readonly owners = new Map<string, string>(); // `${kind}:${id}` -> plugin name
  private readonly loaded: PluginInfo[] = [];
  private loadingModule: string | undefined;

  constructor(container: DependencyContainer = rootContainer.createChildContainer()) {
    this.container = container;
  }

  /** Registers every implementation of a plugin. Duplicate plugin names or ids are refused. */
  use(plugin: EagletPlugin, module: string | undefined = this.loadingModule): void {
    if (!plugin || typeof plugin.name !== 'string' || !plugin.name) {
      throw new EagletError('EAGLET_PLUGIN_INVALID', `plugin${module ? ` from ${module}` : ''} has no name`, {
        hint: 'a plugin object needs at least { name, version }',
      });
    }
    const existing = this.loaded.find((p) => p.name === plugin.name);
    if (existing) {
      throw new EagletError('EAGLET_PLUGIN_DUPLICATE', `plugin "${plugin.name}" is registered twice`, {
        hint: `remove one of them from the plugin list; loaded: ${this.loaded.map((p) => p.name).join(', ')}`,
      });
    }
    const groups = {
      target: plugin.targets,
      template: plugin.templates,
      format: plugin.formats,
      backend: plugin.backends,
    };
    // Check everything before registering anything, so a refused plugin leaves no partial state.
    const seen = new Set<string>();
    for (const [kind, values] of Object.entries(groups) as [Kind, unknown[] | undefined][]) {
      for (const value of values ?? []) {
        const id = (SPECS[kind].key as (v: unknown) => string)(value);
        const owner = this.owners.get(`${kind}:${id}`);
        if (owner || seen.has(`${kind}:${id}`)) {
          throw new EagletError(
            'EAGLET_PLUGIN_DUPLICATE',
            `${KIND_LABEL[kind]} "${id}" from plugin "${plugin.name}" is already registered by "${owner ?? plugin.name}"`,
            {
              hint: `ids must be unique; known ${KIND_LABEL[kind]}s: ${this.ids(kind).join(', ') || '(none)'}`,
            },
          );
        }
        seen.add(`${kind}:${id}`);
      }
    }
    for (const [kind, values] of Object.entries(groups) as [Kind, unknown[] | undefined][]) {
      for (const value of values ?? []) {
        const id = (SPECS[kind].key as (v: unknown) => string)(value);
        this.container.register(SPECS[kind].token, { useValue: value });
        this.owners.set(`${kind}:${id}`, plugin.name);
      }
    }
    this.loaded.push({
      name: plugin.name,
      version: plugin.version,
      ...(module ? { module } : {}),
      targets: (plugin.targets ?? []).map((t) => t.id),
      templates: (plugin.templates ?? []).map((t) => t.id),
      formats: (plugin.formats ?? []).map((f) => f.name),
      backends: (plugin.backends ?? []).map((b) => b.id),
    });
  }

  /** Runs a module's register() so that plugins it registers are listed with that module. */
  async loadingFrom(module: string, register: () => void | Promise<void>): Promise<void> {
    this.loadingModule = module;
    try {
      await register();
    } finally {
      this.loadingModule = undefined;
    }
  }

  plugins(): readonly PluginInfo[] {
    return this.loaded;
  }

  private all<T>(kind: Kind): T[] {
    const token = SPECS[kind].token;
    return this.container.isRegistered(token, true) ? this.container.resolveAll<T>(token) : [];
  }

  /** Ids of every registered implementation of a kind. */
  ids(kind: Kind): string[] {
    return this.all<never>(kind).map((v) => (SPECS[kind].key as (v: unknown) => string)(v));
  }

  /** The plugin that registered an implementation. */
  ownerOf(kind: Kind, id: string): string | undefined {
    return this.owners.get(`${kind}:${id}`);
  }

  private get<T>(kind: Kind, id: string): T {
    const found = this.all<T>(kind).find((v) => (SPECS[kind].key as (v: unknown) => string)(v) === id);
    if (!found) {
      const known = this.ids(kind);
      throw new EagletError(`EAGLET_UNKNOWN_${kind.toUpperCase()}`, `unknown ${KIND_LABEL[kind]} "${id}"`, {
        hint: known.length
          ? `known ${KIND_LABEL[kind]}s: ${known.join(', ')}`
          : `no ${KIND_LABEL[kind]} is registered; add a plugin that provides one to eaglet.config.json`,
      });
    }
    return found;
  }

  targets = (): TargetModel[] => this.all('target');
  templates = (): ChatTemplate[] => this.all('template');
  formats = (): DataFormat[] => this.all('format');
  backends = (): Backend[] => this.all('backend');

  target = (id: string): TargetModel => this.get('target', id);
  template = (id: string): ChatTemplate => this.get('template', id);
  format = (name: string): DataFormat => this.get('format', name);
  backend = (id: string): Backend => this.get('backend', id);
}
