import { spawnSync } from 'node:child_process';
import type { PluginRegistry } from '@eaglet/core';
import { type EngineEnv, engineEnv, engineRequirements, resolvePython } from '@eaglet/engine';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  detail: string;
  /** How to fix it, when not ok. */
  hint?: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: DoctorCheck[];
  engine?: EngineEnv;
}

/** Minimum versions of the engine's declared dependencies (its pyproject.toml, the one list). */
const required = (): Record<string, string> =>
  Object.fromEntries(
    engineRequirements([])
      .deps.map((d) => /^([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)/.exec(d))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => [m[1]!, m[2]!]),
  );

const atLeast = (have: string, want: string) => {
  const a = have.split(/[.+]/).map((x) => Number.parseInt(x, 10) || 0);
  const b = want.split('.').map(Number);
  for (let i = 0; i < b.length; i++) if ((a[i] ?? 0) !== b[i]) return (a[i] ?? 0) > b[i]!;
  return true;
};

function tool(name: string, args: string[]): string | undefined {
  const r = spawnSync(name, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0]?.trim() : undefined;
}

/** `eaglet doctor`: what eaglet needs, what is there, and how to get what is missing. */
export async function doctor(
  registry: PluginRegistry,
  options: { python?: string } = {},
): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const [major] = process.versions.node.split('.').map(Number);
  checks.push(
    major! >= 20
      ? { name: 'node', status: 'ok', detail: process.versions.node }
      : { name: 'node', status: 'fail', detail: process.versions.node, hint: 'install Node.js 20 or 22' },
  );
  for (const bin of ['ffmpeg', 'ffprobe']) {
    const v = tool(bin, ['-version']);
    checks.push(
      v
        ? { name: bin, status: 'ok', detail: v.replace(/ Copyright.*/, '') }
        : {
            name: bin,
            status: 'fail',
            detail: 'not found',
            hint: 'install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)',
          },
    );
  }

  let engine: EngineEnv | undefined;
  try {
    const python = resolvePython(options.python);
    engine = await engineEnv({ python });
    checks.push({ name: 'python', status: 'ok', detail: `${engine.python} (${engine.executable})` });
    for (const [pkg, min] of Object.entries(required())) {
      const have = engine.packages[pkg];
      if (!have)
        checks.push({
          name: pkg,
          status: 'fail',
          detail: 'not installed',
          hint: 'run `eaglet setup --force` to (re)create the engine environment',
        });
      else if (!atLeast(have, min))
        checks.push({
          name: pkg,
          status: 'fail',
          detail: `${have} < ${min}`,
          hint: `upgrade: pip install "${pkg}>=${min}"`,
        });
      else checks.push({ name: pkg, status: 'ok', detail: have });
    }
    checks.push(
      engine.cuda.available
        ? {
            name: 'cuda',
            status: 'ok',
            detail: `CUDA ${engine.cuda.version}; ${engine.gpus.map((g) => `${g.name} (${g.memoryGiB} GiB)`).join(', ')}`,
          }
        : {
            name: 'cuda',
            status: 'warn',
            detail:
              'no CUDA device: the engine runs on CPU (fine for the quickstart, too slow for real training)',
            hint: 'on a GPU machine, install the NVIDIA driver; the PyPI torch wheel brings CUDA itself',
          },
    );
  } catch (e) {
    checks.push({
      name: 'python',
      status: 'fail',
      detail: (e as Error).message,
      hint: 'run `eaglet setup` (in a checkout: `npm run bootstrap`)',
    });
  }

  for (const backend of registry.backends()) {
    const a = await backend.available();
    checks.push(
      a.ok
        ? { name: `backend:${backend.id}`, status: 'ok', detail: a.version }
        : { name: `backend:${backend.id}`, status: 'warn', detail: a.reason, hint: a.hint },
    );
  }
  return { ok: checks.every((c) => c.status !== 'fail'), checks, ...(engine ? { engine } : {}) };
}
