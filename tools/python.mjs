#!/usr/bin/env node
// Runs the engine's Python (the environment bootstrap made, or $EAGLET_PYTHON) with the engine
// package on PYTHONPATH: `node tools/python.mjs -m pytest ...`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const home = process.env.EAGLET_HOME ?? join(homedir(), '.cache', 'eaglet');
const python = process.env.EAGLET_PYTHON ?? join(home, 'venv', 'bin', 'python');
if (!existsSync(python)) {
  console.error(`no engine Python at ${python}: run \`npm run bootstrap\` first`);
  process.exit(1);
}
const pythonPath = [join(root, 'packages/engine/python'), process.env.PYTHONPATH].filter(Boolean).join(':');
const r = spawnSync(python, process.argv.slice(2), {
  stdio: 'inherit',
  env: { ...process.env, PYTHONPATH: pythonPath },
});
process.exit(r.status ?? 1);
