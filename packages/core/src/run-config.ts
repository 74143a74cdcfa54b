import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { EagletError } from './errors.js';
import { PathOrHubId, PathString } from './schemas/config/common.js';
import { parseHubRef } from './schemas/hub.js';
import { zodIssues } from './schemas/issues.js';

/**
 * Loads a run configuration (train, bench, ...): a JSON file, then `key.path=value` overrides,
 * then command-line fields, validated by the flow's zod schema. Relative paths inside the file
 * resolve against the file's folder; paths from the command line resolve against the cwd.
 */
export function loadRunConfig<S extends z.ZodType>(
  schema: S,
  options: { file?: string; overrides?: readonly string[]; fields?: Record<string, unknown>; cwd: string },
): z.infer<S> {
  let fromFile: Record<string, unknown> = {};
  if (options.file) {
    const path = resolve(options.cwd, options.file);
    if (!existsSync(path))
      throw new EagletError('EAGLET_CONFIG_NOT_FOUND', `config file ${path} does not exist`);
    try {
      fromFile = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new EagletError('EAGLET_CONFIG_INVALID', `${path}: not valid JSON: ${(e as Error).message}`);
    }
    fromFile = resolvePaths(schema, fromFile, dirname(path)) as Record<string, unknown>;
  }
  const merged = structuredClone(fromFile);
  for (const o of options.overrides ?? []) applyOverride(merged, o);
  for (const [k, v] of Object.entries(options.fields ?? {})) if (v !== undefined) merged[k] = v;
  const withPaths = resolvePaths(schema, merged, options.cwd);
  const result = schema.safeParse(withPaths);
  if (!result.success) {
    const where = options.file ? ` (${options.file})` : '';
    const lines = zodIssues(result.error).map((i) => `  ${i.path || '(root)'}: ${i.reason}`);
    throw new EagletError('EAGLET_CONFIG_INVALID', `invalid configuration${where}:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** `a.b.c=value`: value parsed as JSON when it is JSON, else kept as a string. */
export function applyOverride(target: Record<string, unknown>, override: string): void {
  const eq = override.indexOf('=');
  if (eq <= 0) {
    throw new EagletError(
      'EAGLET_CONFIG_INVALID',
      `override "${override}" is not of the form key.path=value`,
    );
  }
  const keys = override.slice(0, eq).split('.');
  const text = override.slice(eq + 1);
  let value: unknown = text;
  try {
    value = JSON.parse(text);
  } catch {
    // a bare string
  }
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === undefined || next === null || typeof next !== 'object') node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
}

/**
 * Makes every PathString field of a value absolute against `base` (a new value; the input is
 * kept). A PathOrHubId field is resolved the same way unless it is a Hub id with no local path of
 * that spelling: then it stays an id for the flow to fetch.
 */
export function resolvePaths(schema: z.ZodType, value: unknown, base: string): unknown {
  const out = structuredClone(value);
  for (const field of pathFields(schema, out)) {
    const v = field.value;
    if (v === '' || isAbsolute(v) || /^[a-z]+:\/\//i.test(v)) continue;
    if (isHubSource(field, base)) continue;
    if (field.path.length === 0) return resolve(base, v);
    setAt(out, field.path, resolve(base, v));
  }
  return out;
}

/** A PathOrHubId field naming a Hub id rather than a path that exists under `base`. */
export function isHubSource(field: { value: string; source?: boolean }, base: string): boolean {
  return (
    field.source === true &&
    parseHubRef(field.value, 'model') !== undefined &&
    !existsSync(resolve(base, field.value))
  );
}

/** A path field found in a value: where it is, its value, and whether it may name a Hub id. */
export interface PathField {
  path: ReadonlyArray<string | number>;
  value: string;
  /** A PathOrHubId (a path or a Hub id), not a plain PathString. */
  source: boolean;
}

/**
 * Walks a value beside its zod schema and returns every PathString field with its field path
 * (`trainData[0]`, `draftConfig`): what the run-config loader resolves and the HTTP app confines.
 * A union of a path and an object (e.g. draftConfig) counts only when the value is a string.
 */
export function pathFields(
  schema: z.ZodType,
  value: unknown,
  at: ReadonlyArray<string | number> = [],
): PathField[] {
  const def = unwrap(schema);
  if (def === PathString || def === PathOrHubId)
    return typeof value === 'string' ? [{ path: at, value, source: def === PathOrHubId }] : [];
  if (def instanceof z.ZodObject && value && typeof value === 'object' && !Array.isArray(value)) {
    const shape = def.shape as Record<string, z.ZodType>;
    return Object.entries(shape).flatMap(([k, sub]) =>
      k in (value as object) ? pathFields(sub, (value as Record<string, unknown>)[k], [...at, k]) : [],
    );
  }
  if (def instanceof z.ZodArray && Array.isArray(value)) {
    return value.flatMap((v, i) => pathFields(def.element as z.ZodType, v, [...at, i]));
  }
  if (def instanceof z.ZodUnion) {
    for (const option of def.options as z.ZodType[]) {
      const inner = unwrap(option);
      if (typeof value === 'string' && (inner === PathString || inner === PathOrHubId))
        return [{ path: at, value, source: inner === PathOrHubId }];
      if (value && typeof value === 'object' && inner instanceof z.ZodObject)
        return pathFields(inner, value, at);
    }
  }
  return [];
}

/** Sets the value at a field path. */
export function setAt(target: unknown, path: ReadonlyArray<string | number>, value: unknown): void {
  let node = target as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path.at(-1)!] = value;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s: z.ZodType = schema;
  for (;;) {
    if (
      s instanceof z.ZodOptional ||
      s instanceof z.ZodNullable ||
      s instanceof z.ZodDefault ||
      s instanceof z.ZodPrefault
    ) {
      s = (s as unknown as { unwrap(): z.ZodType }).unwrap();
    } else return s;
  }
}
