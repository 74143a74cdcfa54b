// The engine's Python environment: made by `eaglet setup` (an installed CLI) and by
// `tools/bootstrap.mjs` (a repository checkout) through this one module. Node built-ins only:
// the bootstrap imports it before node_modules exists.
//
// The environment lives in $EAGLET_HOME (default ~/.cache/eaglet) as `venv-<hash>`, the hash
// covering the engine's declared dependencies (python/pyproject.toml), the Python version and the
// torch build; `venv` links to the current one. A folder is used only once its `.eaglet-complete`
// marker exists, so an interrupted set-up is rebuilt, never half-used. EAGLET_PYTHON points the
// engine at an environment of your own instead (nothing is created then).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The engine package's Python folder (eaglet_engine and pyproject.toml). */
export const ENGINE_PYTHON_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'python');

/** Where torch comes from, by `torch` choice. `pypi` wheels bring CUDA on Linux x86-64. */
export const TORCH_INDEXES = {
  pypi: undefined,
  cpu: 'https://download.pytorch.org/whl/cpu',
};

export class SetupError extends Error {
  /** @param {string} code @param {string} message @param {string} hint */
  constructor(code, message, hint) {
    super(message);
    this.code = code;
    this.hint = hint;
  }
}

export function eagletHome() {
  return process.env.EAGLET_HOME ?? join(homedir(), '.cache', 'eaglet');
}

/**
 * The engine's declared requirements from pyproject.toml: `dependencies` plus the named extras.
 * Reads the subset of TOML the file uses (string arrays under [project] and
 * [project.optional-dependencies]); a test checks the result against Python's tomllib.
 */
export function engineRequirements(
  extras = ['test', 'plot'],
  pyproject = join(ENGINE_PYTHON_DIR, 'pyproject.toml'),
) {
  const text = readFileSync(pyproject, 'utf8');
  let section = '';
  /** @type {Record<string, Record<string, string[]>>} */
  const arrays = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/#.*$/, '').trim();
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const start = /^([\w-]+)\s*=\s*\[(.*)$/.exec(line);
    if (!start) continue;
    let body = start[2];
    while (!body.includes(']') && i + 1 < lines.length) body += lines[++i].replace(/#.*$/, '');
    const values = [...body.slice(0, body.lastIndexOf(']')).matchAll(/"([^"]*)"|'([^']*)'/g)].map(
      (m) => m[1] ?? m[2],
    );
    arrays[section] = { ...arrays[section], [start[1]]: values };
  }
  const requiresPython = /^requires-python\s*=\s*"([^"]+)"/m.exec(text)?.[1] ?? '>=3.10';
  const deps = [
    ...(arrays.project?.dependencies ?? []),
    ...extras.flatMap((e) => arrays['project.optional-dependencies']?.[e] ?? []),
  ];
  return { deps, requiresPython, minPython: requiresPython.replace(/^>=\s*/, '') };
}

/** `python -c` in a child process; undefined when it cannot run. */
function pythonOut(python, code) {
  const r = spawnSync(python, ['-c', code], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/**
 * A Python that can create the environment: `python` (EAGLET_BOOTSTRAP_PYTHON or python3), new
 * enough, with the venv module. Throws a SetupError naming what to install otherwise.
 */
export function findBasePython(
  python = process.env.EAGLET_BOOTSTRAP_PYTHON ?? 'python3',
  minPython = '3.10',
) {
  const out = pythonOut(python, 'import sys; print("%d.%d.%d" % sys.version_info[:3]); print(sys.version)');
  const [version, build] = out ? out.split('\n') : [];
  if (!version)
    throw new SetupError(
      'EAGLET_PYTHON_MISSING',
      `no Python found (tried \`${python}\`): eaglet's engine runs on Python ${minPython} or newer`,
      'install Python 3 (Debian/Ubuntu: apt-get install python3 python3-venv; macOS: brew install python), or set EAGLET_BOOTSTRAP_PYTHON to one',
    );
  const [maj, min] = version.split('.').map(Number);
  const [wantMaj, wantMin] = minPython.split('.').map(Number);
  if (maj < wantMaj || (maj === wantMaj && min < wantMin))
    throw new SetupError(
      'EAGLET_PYTHON_TOO_OLD',
      `${python} is Python ${version}; the engine needs ${minPython} or newer`,
      'install a newer Python and point EAGLET_BOOTSTRAP_PYTHON at it',
    );
  if (pythonOut(python, 'import venv, ensurepip') === undefined)
    throw new SetupError(
      'EAGLET_PYTHON_NO_VENV',
      `${python} (Python ${version}) cannot create virtual environments (no venv/ensurepip module)`,
      `install it (Debian/Ubuntu: apt-get install python${maj}.${min}-venv)`,
    );
  return { python, version, build };
}

/** True when an NVIDIA driver answers (`nvidia-smi`). */
export function hasNvidiaGpu() {
  return spawnSync('nvidia-smi', ['-L'], { stdio: 'ignore' }).status === 0;
}

/**
 * What set-up would do, without doing it: the environment folder, the pip arguments, the torch
 * index, and whether it is already complete.
 * @param {{home?: string, python?: string, torch?: 'auto'|'pypi'|'cpu', torchIndexUrl?: string, extras?: string[], pyproject?: string}} options
 */
export function planEngineEnv(options = {}) {
  const home = options.home ?? eagletHome();
  const { deps, minPython } = engineRequirements(options.extras, options.pyproject);
  const base = findBasePython(options.python, minPython);
  const choice = options.torch ?? 'auto';
  if (!['auto', 'pypi', 'cpu'].includes(choice))
    throw new SetupError(
      'EAGLET_CONFIG_INVALID',
      `unknown torch build "${choice}"`,
      'use auto, pypi or cpu (or --torch-index-url URL)',
    );
  // auto: PyPI's wheel, which carries CUDA on Linux x86-64 and runs on CPU too; `cpu` trades the
  // GPU support for a download a tenth of the size (PyTorch's own CPU index).
  const indexUrl = options.torchIndexUrl ?? TORCH_INDEXES[choice === 'cpu' ? 'cpu' : 'pypi'];
  // The key of environments made before the torch choice existed is kept for PyPI's torch.
  const key = `${JSON.stringify(deps)}${base.build}\n${indexUrl ? `\n${indexUrl}` : ''}`;
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 16);
  const venv = join(home, `venv-${hash}`);
  const torchDeps = deps.filter((d) => /^torch\b/.test(d));
  const steps = [
    // torch first and alone when it comes from another index, so every other package stays on PyPI.
    ...(indexUrl ? [{ what: 'torch', args: [...torchDeps, '--index-url', indexUrl] }] : []),
    { what: 'engine packages', args: indexUrl ? deps.filter((d) => !torchDeps.includes(d)) : deps },
  ];
  return {
    home,
    venv,
    link: join(home, 'venv'),
    python: join(venv, 'bin', 'python'),
    basePython: base,
    deps,
    torch: { choice, indexUrl: indexUrl ?? 'https://pypi.org/simple', gpu: hasNvidiaGpu() },
    steps,
    complete: existsSync(join(venv, '.eaglet-complete')),
  };
}

/**
 * Creates (or reuses) the engine's environment and points `venv` at it. Idempotent: a complete
 * environment is reused in well under a second. `onLine` receives pip's output lines (progress).
 * With EAGLET_PYTHON set, nothing is created: that interpreter is the engine's.
 * @param {Parameters<typeof planEngineEnv>[0] & {onLine?: (line: string) => void, force?: boolean}} options
 */
export async function ensureEngineEnv(options = {}) {
  if (process.env.EAGLET_PYTHON) return { python: process.env.EAGLET_PYTHON, created: false, external: true };
  const plan = planEngineEnv(options);
  const say = options.onLine ?? (() => {});
  if (!plan.complete || options.force) {
    mkdirSync(plan.home, { recursive: true });
    rmSync(plan.venv, { recursive: true, force: true });
    say(`creating ${plan.venv} with Python ${plan.basePython.version}`);
    await run(plan.basePython.python, ['-m', 'venv', plan.venv], say);
    const pip = [plan.python, '-m', 'pip', 'install', '--disable-pip-version-check', '--progress-bar', 'off'];
    for (const step of plan.steps) {
      say(
        `installing ${step.what}: ${step.args.filter((a) => !a.startsWith('-') && !a.startsWith('http')).join(' ')}`,
      );
      await run(pip[0], [...pip.slice(1), ...step.args], say);
    }
    writeFileSync(
      join(plan.venv, '.eaglet-complete'),
      `${JSON.stringify({ deps: plan.deps, torch: plan.torch }, null, 2)}\n`,
    );
  }
  // Point the stable name at this environment, atomically.
  const tmp = `${plan.link}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(plan.venv, tmp);
  renameSync(tmp, plan.link);
  return {
    python: plan.python,
    venv: plan.venv,
    created: !plan.complete || !!options.force,
    external: false,
    plan,
  };
}

/** Runs a command, passing each output line on; rejects with the tail of its output on failure. */
function run(cmd, args, onLine) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail = [];
    const feed = (chunk) => {
      for (const line of chunk.toString().split(/\r?\n/)) {
        if (!line.trim()) continue;
        onLine(line);
        tail.push(line);
        if (tail.length > 20) tail.shift();
      }
    };
    child.stdout.on('data', feed);
    child.stderr.on('data', feed);
    child.on('error', (e) =>
      reject(
        new SetupError(
          'EAGLET_SETUP_FAILED',
          `${cmd} could not start: ${e.message}`,
          'check the Python installation',
        ),
      ),
    );
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(
            new SetupError(
              'EAGLET_SETUP_FAILED',
              `${[cmd, ...args].join(' ')} failed (exit ${code}):\n${tail.join('\n')}`,
              'check the network access to PyPI (or your pip index settings) and the disk space in EAGLET_HOME, then run `eaglet setup` again',
            ),
          ),
    );
  });
}
