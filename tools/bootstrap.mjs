#!/usr/bin/env node
// Brings a checkout to a runnable state, idempotently and quickly when nothing changed:
//   1. Debian packages eaglet runs (ffmpeg; real speech and TTS for fixtures) when missing,
//   2. npm dependencies (npm ci) when package-lock.json changed,
//   3. the engine's Python environment under $EAGLET_HOME (default ~/.cache/eaglet), keyed by the
//      hash of the engine's declared dependencies, so it survives clean clones and is shared
//      (packages/engine/setup/python-env.mjs: the code `eaglet setup` runs too),
//   4. a TypeScript build of every package.
// Only node built-ins are used here: this runs before node_modules exists.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureEngineEnv, SetupError } from '../packages/engine/setup/python-env.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const say = (msg) => quiet || console.error(`[bootstrap] ${msg}`);
const sha = (text) => createHash('sha256').update(text).digest('hex').slice(0, 16);
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, {
    stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit',
    cwd: root,
    ...opts,
  });
  if (r.status !== 0) {
    console.error(`[bootstrap] failed: ${cmd} ${args.join(' ')}`);
    process.exit(r.status ?? 1);
  }
};

// 0. Node
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 11)) {
  console.error(`[bootstrap] eaglet needs Node >= 20.11 (this is ${process.versions.node})`);
  process.exit(1);
}

// 1. Debian packages
const DEBIAN = {
  ffmpeg: 'ffmpeg',
  ffprobe: 'ffmpeg',
  sox: 'sox',
  'espeak-ng': 'espeak-ng',
  chromium: 'chromium',
};
const missing = [
  ...new Set(
    Object.entries(DEBIAN)
      .filter(([bin]) => !has(bin))
      .map(([, pkg]) => pkg),
  ),
];
if (!existsSync('/usr/share/pocketsphinx/test/data/librivox')) missing.push('pocketsphinx-testdata');
if (missing.length) {
  const asRoot = process.getuid?.() === 0;
  const sudo = !asRoot && has('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  if (has('apt-get') && (asRoot || sudo)) {
    say(`installing Debian packages: ${missing.join(' ')}`);
    const pre = sudo ? ['sudo'] : [];
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    run(pre[0] ?? 'apt-get', [...(sudo ? ['apt-get'] : []), 'update', '-qq'], { env });
    run(pre[0] ?? 'apt-get', [...(sudo ? ['apt-get'] : []), 'install', '-y', '-qq', ...missing], { env });
  } else {
    console.error(
      `[bootstrap] missing system packages: ${missing.join(' ')}; install them (Debian: apt-get install ${missing.join(' ')})`,
    );
    process.exit(1);
  }
}

// 2. npm dependencies
const lock = join(root, 'package-lock.json');
const npmStamp = join(root, 'node_modules', '.eaglet-npm-stamp');
const lockHash = sha(readFileSync(lock, 'utf8'));
if (!existsSync(npmStamp) || readFileSync(npmStamp, 'utf8') !== lockHash) {
  say('installing npm dependencies (npm ci)');
  run('npm', ['ci', '--no-audit', '--no-fund'], {
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
  });
  writeFileSync(npmStamp, lockHash);
}

// 3. Python environment for the engine (the same code `eaglet setup` runs)
try {
  const { venv, created } = await ensureEngineEnv({ onLine: (line) => say(`  ${line}`) });
  if (created) say(`engine environment ready in ${venv}`);
} catch (e) {
  if (!(e instanceof SetupError)) throw e;
  console.error(`[bootstrap] ${e.message}\n  → ${e.hint}`);
  process.exit(1);
}

// 4. Build
say('building TypeScript packages');
run('npx', ['nx', 'run-many', '-t', 'build', '--outputStyle=static', ...(quiet ? ['--verbose=false'] : [])], {
  env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' },
});
say('ready');
