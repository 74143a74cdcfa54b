import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EagletError } from '../errors.js';
import type { PluginRegistry, RegisterFunction } from './registry.js';

/**
 * Resolves a plugin specifier the way Node would from `fromDir`: a relative/absolute path, or a
 * package name found in node_modules (ESM-only packages included, whose `exports` lack `require`).
 */
export function resolvePluginModule(spec: string, fromDir: string): string {
  if (spec.startsWith('.') || isAbsolute(spec)) {
    const path = resolve(fromDir, spec);
    if (!existsSync(path)) {
      throw new EagletError('EAGLET_PLUGIN_NOT_FOUND', `plugin file ${path} does not exist`, {
        hint: `check the path in the plugin list (relative paths resolve against ${fromDir})`,
      });
    }
    return path;
  }
  const require = createRequire(join(fromDir, 'noop.js'));
  try {
    return require.resolve(spec);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED' && code !== 'MODULE_NOT_FOUND') throw e;
    const fromPackage = resolveEsmEntry(spec, fromDir);
    if (fromPackage) return fromPackage;
    throw new EagletError('EAGLET_PLUGIN_NOT_FOUND', `plugin package "${spec}" is not installed`, {
      hint: `install it where eaglet runs (npm install ${spec}) or remove it from the plugin list`,
      cause: e,
    });
  }
}

/** Finds node_modules/<spec>/package.json above `fromDir` and reads its ESM entry point. */
function resolveEsmEntry(spec: string, fromDir: string): string | undefined {
  for (let dir = resolve(fromDir); ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', spec);
    const pkgJson = join(pkgDir, 'package.json');
    if (existsSync(pkgJson)) {
      const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as {
        exports?: unknown;
        module?: string;
        main?: string;
      };
      const entry = pickExport(pkg.exports) ?? pkg.module ?? pkg.main ?? 'index.js';
      return join(pkgDir, entry);
    }
    if (dirname(dir) === dir) return undefined;
  }
}

function pickExport(exports: unknown): string | undefined {
  if (typeof exports === 'string') return exports;
  if (!exports || typeof exports !== 'object') return undefined;
  const root = (exports as Record<string, unknown>)['.'] ?? exports;
  if (typeof root === 'string') return root;
  if (root && typeof root === 'object') {
    const conds = root as Record<string, unknown>;
    for (const key of ['import', 'node', 'default']) {
      const v = conds[key];
      if (typeof v === 'string') return v;
      const nested = pickExport(v);
      if (nested) return nested;
    }
  }
  return undefined;
}

/**
 * Loads plugin modules by specifier and calls each one's exported `register(registry)`.
 * Errors are coded: not found, no register function, or register threw.
 */
export async function loadPlugins(
  registry: PluginRegistry,
  specs: readonly string[],
  fromDir: string,
): Promise<void> {
  for (const spec of specs) {
    const path = resolvePluginModule(spec, fromDir);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
    } catch (e) {
      throw new EagletError(
        'EAGLET_PLUGIN_BROKEN',
        `plugin "${spec}" failed to load: ${(e as Error).message}`,
        {
          hint: `the module at ${path} threw while importing; fix or rebuild it`,
          cause: e,
        },
      );
    }
    const register = (mod.register ?? (mod.default as Record<string, unknown> | undefined)?.register) as
      | RegisterFunction
      | undefined;
    if (typeof register !== 'function') {
      throw new EagletError('EAGLET_PLUGIN_INVALID', `plugin "${spec}" exports no register() function`, {
        hint: 'a plugin module must `export function register(registry) { registry.use(myPlugin()) }`',
      });
    }
    try {
      await registry.loadingFrom(spec, () => register(registry));
    } catch (e) {
      if (e instanceof EagletError) throw e;
      throw new EagletError(
        'EAGLET_PLUGIN_BROKEN',
        `plugin "${spec}" failed in register(): ${(e as Error).message}`,
        {
          hint: `see the plugin's own documentation; loaded from ${path}`,
          cause: e,
        },
      );
    }
  }
}
