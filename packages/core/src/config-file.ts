import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { EagletError } from './errors.js';
import { readJsonFile } from './json-file.js';
import { zodIssues } from './schemas/issues.js';

/**
 * The project configuration file: which plugins load, and where the engine's Python lives.
 * Looked up from the working folder upwards: `eaglet.config.json`, `eaglet.config.mjs`,
 * `eaglet.config.js`, or the `eaglet` field of a package.json.
 */
export const EagletConfigFile = z.strictObject({
  /** Plugin modules to load after the built-ins: package names or paths relative to the config file. */
  plugins: z.array(z.string().min(1)).default([]),
  /** Load eaglet's built-in plugins (the data formats, the built-in target plugins, the torch and vllm backends). */
  builtins: z.boolean().default(true),
  /** Python interpreter of the engine's environment (default: the one `eaglet setup` made). */
  python: z.string().optional(),
});
export type EagletConfigFile = z.infer<typeof EagletConfigFile>;

export interface LoadedConfigFile {
  config: EagletConfigFile;
  /** Where it came from, or undefined when no file was found (defaults apply). */
  path: string | undefined;
  /** Folder that relative paths in the file resolve against. */
  dir: string;
}

const CANDIDATES = ['eaglet.config.json', 'eaglet.config.mjs', 'eaglet.config.js'];

export async function loadConfigFile(cwd: string, explicitPath?: string): Promise<LoadedConfigFile> {
  if (explicitPath) return readConfig(resolve(cwd, explicitPath));
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    for (const name of CANDIDATES) {
      const path = join(dir, name);
      if (existsSync(path)) return readConfig(path);
    }
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      const json = readJsonFile(pkg, 'package.json') as { eaglet?: unknown };
      if (json.eaglet !== undefined) return { config: parse(json.eaglet, `${pkg}#eaglet`), path: pkg, dir };
    }
    if (dirname(dir) === dir)
      return { config: EagletConfigFile.parse({}), path: undefined, dir: resolve(cwd) };
  }
}

async function readConfig(path: string): Promise<LoadedConfigFile> {
  if (!existsSync(path)) {
    throw new EagletError('EAGLET_CONFIG_NOT_FOUND', `config file ${path} does not exist`);
  }
  let raw: unknown;
  if (path.endsWith('.json')) {
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new EagletError('EAGLET_CONFIG_INVALID', `${path}: not valid JSON: ${(e as Error).message}`);
    }
  } else {
    raw = ((await import(pathToFileURL(path).href)) as { default?: unknown }).default;
  }
  return { config: parse(raw, path), path, dir: dirname(path) };
}

function parse(raw: unknown, where: string): EagletConfigFile {
  const result = EagletConfigFile.safeParse(raw);
  if (!result.success) {
    const lines = zodIssues(result.error).map((i) => `  ${i.path || '(root)'}: ${i.reason}`);
    throw new EagletError(
      'EAGLET_CONFIG_INVALID',
      `${where} is not a valid eaglet config:\n${lines.join('\n')}`,
      {
        hint: 'known fields: plugins (string[]), builtins (boolean), python (string)',
      },
    );
  }
  return result.data;
}
