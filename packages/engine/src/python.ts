import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EagletError } from '@eaglet/core';

/** Folder holding the `eaglet_engine` package (shipped inside @eaglet/engine). */
export const ENGINE_PYTHON_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'python');

/** eaglet's own state folder: the Python environment, caches. `EAGLET_HOME` overrides. */
export function eagletHome(): string {
  return process.env.EAGLET_HOME ?? join(homedir(), '.cache', 'eaglet');
}

/** The default engine environment made by `tools/bootstrap.mjs` (`eaglet setup`). */
export function defaultVenv(): string {
  return join(eagletHome(), 'venv');
}

/**
 * The Python interpreter of the engine's environment: `EAGLET_PYTHON`, else the configured one,
 * else the environment bootstrap made. Never a bare system python: its packages are unknown.
 */
export function resolvePython(configured?: string): string {
  const candidates = [process.env.EAGLET_PYTHON, configured, join(defaultVenv(), 'bin', 'python')].filter(
    (c): c is string => !!c,
  );
  for (const c of candidates) if (existsSync(c)) return c;
  throw new EagletError(
    'EAGLET_PYTHON_MISSING',
    `no Python environment for the engine (looked for ${candidates.join(', ')})`,
    {
      hint: 'run `npm run bootstrap` (or `node tools/bootstrap.mjs`) to create it, or set EAGLET_PYTHON',
    },
  );
}

/** PYTHONPATH for engine processes: the engine package plus any plugin-provided adapter folders. */
export function pythonPath(extra: readonly string[] = []): string {
  return [ENGINE_PYTHON_DIR, ...extra, process.env.PYTHONPATH].filter(Boolean).join(':');
}
