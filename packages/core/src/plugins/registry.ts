import 'reflect-metadata';
import { type DependencyContainer, container as rootContainer } from 'tsyringe';
import { EagletError } from '../errors.js';
import { CONTRACTS, type Impl, type Kind } from './contracts.js';
import type { EagletPlugin } from './plugin.js';

export { CONTRACTS, type Contract, type Impl, type Kind, TOKENS } from './contracts.js';

/** The one function a plugin package exports: `register(registry)` calls `registry.use(plugin)`. */
export type RegisterFunction = (registry: PluginRegistry) => void | Promise<void>;

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

const KINDS = Object.keys(CONTRACTS) as Kind[];

/**
 * The composition root's view of the tsyringe container: plugins register their implementations
 * under each contract's injection token (`use`), and flows and apps resolve them from the container
 * (`list` is `resolveAll`; `get` finds one by id). A test swaps an implementation by registering
 * another under the same token in a child container (`scoped`).
 *
 * The registry adds only what the container does not know: which plugin contributed what (so a
 * duplicate id is refused with both names) and errors that list the known ids.
 */
export class PluginRegistry {
  private readonly owners: Map<string, string>; // `${kind}:${id}` -> plugin name
  private readonly loaded: PluginInfo[];
  private loadingModule: string | undefined;

  constructor(
    readonly container: DependencyContainer = rootContainer.createChildContainer(),
    parent?: PluginRegistry,
  ) {
    this.owners = new Map(parent?.owners);
    this.loaded = [...(parent?.loaded ?? [])];
  }

  /**
   * A registry over a child container: it resolves everything this one has, and a registration
   * made in it (`scoped.container.register(TOKENS.Backend, {useValue: other})`) replaces this
   * registry's implementations of that contract for code given the child, leaving this one as is.
   */
  scoped(): PluginRegistry {
    return new PluginRegistry(this.container.createChildContainer(), this);
  }

  /** Registers every implementation of a plugin. Duplicate plugin names or ids are refused. */
  use(plugin: EagletPlugin, module: string | undefined = this.loadingModule): void {
    if (!plugin || typeof plugin.name !== 'string' || !plugin.name) {
      throw new EagletError('EAGLET_PLUGIN_INVALID', `plugin${module ? ` from ${module}` : ''} has no name`, {
        hint: 'a plugin object needs at least { name, version }',
      });
    }
    if (this.loaded.some((p) => p.name === plugin.name)) {
      throw new EagletError('EAGLET_PLUGIN_DUPLICATE', `plugin "${plugin.name}" is registered twice`, {
        hint: `remove one of them from the plugin list; loaded: ${this.loaded.map((p) => p.name).join(', ')}`,
      });
    }
    // Check everything before registering anything, so a refused plugin leaves no partial state.
    const ids = Object.fromEntries(KINDS.map((kind) => [kind, this.contributed(plugin, kind)])) as Record<
      Kind,
      string[]
    >;
    for (const kind of KINDS) {
      ids[kind].forEach((id, i) => {
        const owner = this.owners.get(`${kind}:${id}`);
        if (owner || ids[kind].indexOf(id) !== i) {
          const { label } = CONTRACTS[kind];
          throw new EagletError(
            'EAGLET_PLUGIN_DUPLICATE',
            `${label} "${id}" from plugin "${plugin.name}" is already registered by "${owner ?? plugin.name}"`,
            { hint: `ids must be unique; known ${label}s: ${this.ids(kind).join(', ') || '(none)'}` },
          );
        }
      });
    }
    for (const kind of KINDS) {
      const { token, field } = CONTRACTS[kind];
      const values = plugin[field] ?? [];
      // A child container with no registration of its own resolves its parent's; keep those when
      // adding here, so `use` in a scope adds to what the parent has.
      if (values.length && !this.container.isRegistered(token, false))
        for (const inherited of this.list(kind)) this.container.register(token, { useValue: inherited });
      for (const value of values) this.container.register(token, { useValue: value });
      for (const id of ids[kind]) this.owners.set(`${kind}:${id}`, plugin.name);
    }
    this.loaded.push({
      name: plugin.name,
      version: plugin.version,
      ...(module ? { module } : {}),
      targets: ids.target,
      templates: ids.template,
      formats: ids.format,
      backends: ids.backend,
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

  /** Every registered implementation of a kind, in registration order (the container's resolveAll). */
  list<K extends Kind>(kind: K): Impl<K>[] {
    const token = CONTRACTS[kind].token;
    return this.container.isRegistered(token, true) ? this.container.resolveAll<Impl<K>>(token) : [];
  }

  /** Ids of every registered implementation of a kind. */
  ids(kind: Kind): string[] {
    return this.list(kind).map((value) => idOf(kind, value));
  }

  /** The plugin that registered an implementation. */
  ownerOf(kind: Kind, id: string): string | undefined {
    return this.owners.get(`${kind}:${id}`);
  }

  /** The implementation of a kind with this id; an error listing the known ids when there is none. */
  get<K extends Kind>(kind: K, id: string): Impl<K> {
    const found = this.list(kind).find((value) => idOf(kind, value) === id);
    if (found) return found;
    const { label, code } = CONTRACTS[kind];
    const known = this.ids(kind);
    throw new EagletError(`EAGLET_UNKNOWN_${code}`, `unknown ${label} "${id}"`, {
      hint: known.length
        ? `known ${label}s: ${known.join(', ')}`
        : `no ${label} is registered; add a plugin that provides one to eaglet.config.json`,
    });
  }

  targets = () => this.list('target');
  templates = () => this.list('template');
  formats = () => this.list('format');
  backends = () => this.list('backend');

  target = (id: string) => this.get('target', id);
  template = (id: string) => this.get('template', id);
  format = (name: string) => this.get('format', name);
  backend = (id: string) => this.get('backend', id);

  private contributed(plugin: EagletPlugin, kind: Kind): string[] {
    return (plugin[CONTRACTS[kind].field] ?? []).map((value) => idOf(kind, value));
  }
}

/**
 * The id of an implementation. TypeScript cannot correlate a generic kind with its contract's
 * `id` function, so this is the one place that widens it.
 */
function idOf(kind: Kind, value: unknown): string {
  return (CONTRACTS[kind].id as (v: unknown) => string)(value);
}
