#!/usr/bin/env node
// Checks the layer rules in .dependency-cruiser.cjs (core imports no other eaglet package, plugins
// do not import each other, product code imports no test fixtures, no import cycles) over the
// product sources. Exit code 1 with each violation listed when a rule is broken.
//
// Usage: node tools/checks/boundaries.mjs [--cwd DIR]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Runs dependency-cruiser in `cwd` (a tree laid out like the repository) with the repo's rules. */
export function checkBoundaries(cwd = repo) {
  const cli = join(repo, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
  const roots = ['packages', 'plugins', 'apps'].filter((r) => existsSync(join(cwd, r)));
  const r = spawnSync(
    process.execPath,
    [cli, ...roots, '--config', join(repo, '.dependency-cruiser.cjs'), '--output-type', 'err'],
    { cwd, encoding: 'utf8' },
  );
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--cwd');
  const { ok, output } = checkBoundaries(at > 0 ? process.argv[at + 1] : repo);
  console.log(ok ? 'boundaries: every import follows the layer rules' : output);
  process.exit(ok ? 0 : 1);
}
