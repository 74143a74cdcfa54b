import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENGINE_PYTHON_DIR, engineRequirements, planEngine, setupEngine } from '../src/index.js';

/** A minimal wheel (no build step, no network): enough for pip to install offline. */
function dummyWheel(dir: string): string {
  const wheel = join(dir, 'eaglet_dummy-0.1-py3-none-any.whl');
  execFileSync('python3', [
    '-c',
    `import zipfile, sys
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("eaglet_dummy/__init__.py", "VALUE = 42\\n")
    z.writestr("eaglet_dummy-0.1.dist-info/METADATA", "Metadata-Version: 2.1\\nName: eaglet-dummy\\nVersion: 0.1\\n")
    z.writestr("eaglet_dummy-0.1.dist-info/WHEEL", "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
    z.writestr("eaglet_dummy-0.1.dist-info/RECORD", "")`,
    wheel,
  ]);
  return wheel;
}

describe('engine set-up (eaglet setup, tools/bootstrap.mjs)', () => {
  it("reads the engine's declared requirements as Python's tomllib does", () => {
    const ours = engineRequirements(['test', 'plot']);
    const python = JSON.parse(
      execFileSync(
        'python3',
        [
          '-c',
          `import json, sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["project"]
x = p.get("optional-dependencies", {})
print(json.dumps({"deps": p["dependencies"] + x.get("test", []) + x.get("plot", []), "requires": p["requires-python"]}))`,
          join(ENGINE_PYTHON_DIR, 'pyproject.toml'),
        ],
        { encoding: 'utf8' },
      ),
    );
    expect(ours.deps).toEqual(python.deps);
    expect(ours.requiresPython).toBe(python.requires);
    expect(ours.deps.some((d) => d.startsWith('torch'))).toBe(true);
  });

  it('creates an environment once, reuses it, rebuilds an interrupted one, and links `venv` to it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-setup-'));
    const home = join(dir, 'home');
    const pyproject = join(dir, 'pyproject.toml');
    writeFileSync(
      pyproject,
      `[project]\nname = "x"\nrequires-python = ">=3.10"\ndependencies = [\n  "eaglet-dummy @ file://${dummyWheel(dir)}",  # a comment\n]\n`,
    );
    const saved = process.env.EAGLET_PYTHON;
    delete process.env.EAGLET_PYTHON;
    try {
      const lines: string[] = [];
      const first = await setupEngine({ home, pyproject, extras: [], onLine: (l) => lines.push(l) });
      expect(first.created).toBe(true);
      expect(lines.some((l) => /Successfully installed eaglet-dummy/.test(l))).toBe(true);
      expect(
        execFileSync(first.python, ['-c', 'import eaglet_dummy; print(eaglet_dummy.VALUE)'], {
          encoding: 'utf8',
        }),
      ).toBe('42\n');
      expect(readlinkSync(join(home, 'venv'))).toBe(first.plan?.venv);

      const started = Date.now();
      const again = await setupEngine({ home, pyproject, extras: [] });
      expect(again.created).toBe(false);
      expect(Date.now() - started).toBeLessThan(3000);

      // Killed half-way: no completion marker, so the folder is not trusted and is rebuilt.
      rmSync(join(first.plan!.venv, '.eaglet-complete'));
      expect(planEngine({ home, pyproject, extras: [] }).complete).toBe(false);
      const rebuilt = await setupEngine({ home, pyproject, extras: [] });
      expect(rebuilt.created).toBe(true);
      expect(existsSync(join(first.plan!.venv, '.eaglet-complete'))).toBe(true);
    } finally {
      if (saved !== undefined) process.env.EAGLET_PYTHON = saved;
    }
  });

  it('names what to install when Python is missing, and keeps torch on its own index when asked', () => {
    expect(() => planEngine({ python: '/nonexistent/python3' })).toThrow(/no Python found/);
    try {
      planEngine({ python: '/nonexistent/python3' });
    } catch (e) {
      expect((e as { code: string }).code).toBe('EAGLET_PYTHON_MISSING');
      expect((e as { hint: string }).hint).toMatch(/apt-get install python3 python3-venv/);
    }
    const home = mkdtempSync(join(tmpdir(), 'eaglet-setup-plan-'));
    mkdirSync(home, { recursive: true });
    const cpu = planEngine({ home, torch: 'cpu' });
    expect(cpu.steps[0]).toEqual({
      what: 'torch',
      args: [expect.stringMatching(/^torch/), '--index-url', 'https://download.pytorch.org/whl/cpu'],
    });
    expect(cpu.steps[1]!.args.some((a) => a.startsWith('torch'))).toBe(false);
    expect(cpu.venv).not.toBe(planEngine({ home }).venv);
    expect(() => planEngine({ home, torch: 'rocm' as 'cpu' })).toThrow(/unknown torch build/);
  });
});
