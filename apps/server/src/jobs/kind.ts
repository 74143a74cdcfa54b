import { EagletError, type EventSink, type FieldIssue, type PluginRegistry } from '@eaglet/core';
import type { AudioAccess } from '@eaglet/flows';
import type { z } from 'zod';

/** What a job kind's `run` receives: the same inputs a CLI command hands its flow. */
export interface JobContext<C> {
  registry: PluginRegistry;
  /** The validated config (defaults filled in, every path absolute and checked against the roots). */
  config: C;
  /** Where the flow sends its events; the server stores, streams and summarises them. */
  events: EventSink;
  /** Aborted on cancel or server shutdown; the flow stops at its next safe point. */
  signal: AbortSignal;
  /** The job's own folder (logs and files the flow needs a home for; never a config path). */
  dir: string;
  /** The server's audio policy for files named inside the job's data (roots, remote URLs): pass it to the flow. */
  audioAccess: AudioAccess;
}

/**
 * One kind of job the server runs (validate, prepare, vocab, train, regenerate, bench): the zod
 * schema of its config and the @eaglet/flows function that does the work, exactly the function
 * the CLI command calls. Adding a flow to the server is adding one of these to
 * `builtin-kinds.ts`; nothing else in the server names a flow.
 */
export interface JobKind<S extends z.ZodType = z.ZodType> {
  /** The `kind` of POST /api/jobs, e.g. `train`. */
  readonly kind: string;
  /** Short title for the dashboard, e.g. `Train a draft`. */
  readonly title: string;
  /** One or two sentences: what the job does and what it writes. */
  readonly description: string;
  /** The config schema (usually core's run-config schema for the flow). Its PathString fields are confined to the roots. */
  readonly config: S;
  /** The schema of the flow's result, for the OpenAPI document (e.g. core's ValidationReport). */
  readonly result?: z.ZodType;
  /** `heavy` jobs (the compute engine, GPUs, every core) run one at a time; `light` jobs run beside them. */
  readonly resource: 'heavy' | 'light';
  /** A starting config for the dashboard's form; relative paths resolve against `base` (the first root). */
  example?(base: string): NoInfer<z.input<S>>;
  /**
   * Paths inside the parts of a config whose schema a plugin contributes (a backend's
   * `backendOptions`), confined to the roots like the PathString fields of `config` itself.
   */
  pluginPathFields?(
    config: NoInfer<z.infer<S>>,
    registry: PluginRegistry,
  ): Array<{ path: ReadonlyArray<string | number>; value: string }>;
  /**
   * The config a retry (POST /api/jobs/{id}/retry) runs with, when it differs from the original's:
   * a training job continues from its last checkpoint rather than starting over.
   */
  retryConfig?(config: NoInfer<z.infer<S>>): NoInfer<z.infer<S>>;
  /** Checks that need the plugins (format names, target ids); each issue is answered with a 400 naming `config.<path>`. */
  check?(config: NoInfer<z.infer<S>>, registry: PluginRegistry): FieldIssue[];
  /** Runs the flow; resolves with its result (stored with the job), rejects with an EagletError. */
  run(ctx: JobContext<NoInfer<z.infer<S>>>): Promise<unknown>;
}

/** Keeps the config type of a kind literal (`defineJobKind({ config: TrainConfig, run({config}) {...} })`). */
export const defineJobKind = <S extends z.ZodType>(kind: JobKind<S>): JobKind<S> => kind;

/** The kinds a server offers. Duplicates are refused; unknown lookups list the known kinds. */
export class JobKindRegistry {
  private readonly kinds = new Map<string, JobKind>();

  constructor(kinds: ReadonlyArray<JobKind> = []) {
    for (const k of kinds) this.add(k);
  }

  add(kind: JobKind): this {
    if (!/^[a-z][a-z0-9-]{0,39}$/.test(kind.kind))
      throw new EagletError('EAGLET_SERVER_KIND', `job kind "${kind.kind}" is not a lower-case name`);
    if (this.kinds.has(kind.kind)) {
      throw new EagletError('EAGLET_SERVER_KIND', `job kind "${kind.kind}" is registered twice`, {
        hint: `known kinds: ${this.names().join(', ')}`,
      });
    }
    this.kinds.set(kind.kind, kind);
    return this;
  }

  get(name: string): JobKind | undefined {
    return this.kinds.get(name);
  }

  names(): string[] {
    return [...this.kinds.keys()];
  }

  list(): JobKind[] {
    return [...this.kinds.values()];
  }
}
