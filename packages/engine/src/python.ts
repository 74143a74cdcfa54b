import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EagletError } from '@eaglet/core';
import { ENGINE_PYTHON_DIR, eagletHome } from '../setup/python-env.mjs';

/** Folder holding the `eaglet_engine` package (shipped inside @eaglet/engine), and eaglet's state
 * folder (the Python environment, caches; `EAGLET_HOME` overrides). */
export { ENGINE_PYTHON_DIR, eagletHome } from '../setup/python-env.mjs';

/** The default engine environment made by `eaglet setup` (and `tools/bootstrap.mjs`). */
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
      hint: 'run `eaglet setup` to create it (in a checkout: `npm run bootstrap`), or set EAGLET_PYTHON',
    },
  );
}

/** PYTHONPATH for engine processes: the engine package plus any plugin-provided adapter folders. */
export function pythonPath(extra: readonly string[] = []): string {
  return [ENGINE_PYTHON_DIR, ...extra, process.env.PYTHONPATH].filter(Boolean).join(':');
}

/**
 * The environment of an engine process: `base` plus the engine's PYTHONPATH, unbuffered output,
 * and this process's pid, which the engine watches so that it exits when eaglet itself is killed
 * (it runs in its own process group and would otherwise live on, orphaned).
 */
export function engineProcessEnv(
  base: NodeJS.ProcessEnv,
  extraPythonPath?: readonly string[],
): NodeJS.ProcessEnv {
  return {
    ...base,
    PYTHONPATH: pythonPath(extraPythonPath),
    PYTHONUNBUFFERED: '1',
    EAGLET_PARENT_PID: String(process.pid),
  };
}
