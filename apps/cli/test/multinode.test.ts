// Multi-node training as a user runs it: the same `eaglet train` command on every "node", here two
// processes of one CPU rank each meeting over gloo at a rendezvous on 127.0.0.1.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolvePython } from '@eaglet/engine';
import { makeSpeechDataset, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, type CliResult, eaglet } from './helpers.js';

const env = { OMP_NUM_THREADS: '1' };
let dir: string;
let config: string;

/** A TCP port nothing listens on right now. */
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/** Starts `eaglet train ...` in its own process group (so a test can kill the whole node). */
function node(args: string[]): { child: ChildProcess; result: Promise<CliResult>; stderr(): string } {
  const child = spawn(process.execPath, [BIN, 'train', '--config', config, ...args], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const result = new Promise<CliResult>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, result, stderr: () => stderr };
}

/**
 * Resolves true once a node's terminal output (metric lines, logEvery 1) shows its second
 * training step, false if it exits before.
 */
function secondStep(run: ReturnType<typeof node>): Promise<boolean> {
  return Promise.race([
    new Promise<boolean>((resolve) => {
      const watch = () => {
        if (/\[train step ([2-9]|\d\d+)\]/.test(run.stderr())) {
          run.child.stderr!.off('data', watch);
          resolve(true);
        }
      };
      run.child.stderr!.on('data', watch);
    }),
    run.result.then(() => false),
  ]);
}

/** A process and all its descendants, whatever process group or session they are in. */
function processTree(pid: number): number[] {
  const ps = spawnSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' });
  const children = new Map<number, number[]>();
  for (const row of ps.stdout.trim().split('\n')) {
    const [p, parent] = row.trim().split(/\s+/).map(Number);
    children.set(parent!, [...(children.get(parent!) ?? []), p!]);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** SIGKILLs a process and all its descendants. */
function killTree(pid: number): void {
  for (const p of processTree(pid)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Largest absolute difference between the tensors of two safetensors files (the engine's Python). */
function maxDiff(a: string, b: string): number {
  const code = `import sys
from safetensors.torch import load_file
x, y = load_file(sys.argv[1]), load_file(sys.argv[2])
assert x.keys() == y.keys(), (sorted(x), sorted(y))
print(max(float((x[k].double() - y[k].double()).abs().max()) for k in x))`;
  const r = spawnSync(resolvePython(), ['-c', code, a, b], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return Number(r.stdout.trim());
}

beforeAll(async () => {
  const model = tinyQwen2AudioModel();
  dir = mkdtempSync(join(tmpdir(), 'eaglet-cli-multinode-'));
  const ds = makeSpeechDataset(join(dir, 'data'));
  for (const args of [
    ['data', 'prepare', '--model', model, '--data', ds.jsonl, '--out', join(dir, 'prepared'), '--json'],
    [
      'data',
      'vocab',
      '--data',
      join(dir, 'prepared'),
      '--out',
      join(dir, 'vocab.safetensors'),
      '--draft-vocab-size',
      '1024',
      '--json',
    ],
  ]) {
    const r = await eaglet(args, { env, timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`${args.join(' ')} failed:\n${r.stderr}`);
  }
  config = join(dir, 'train.json');
  writeFileSync(
    config,
    JSON.stringify({
      targetModel: model,
      trainData: ['prepared'],
      vocab: 'vocab.safetensors',
      outputDir: 'out',
      device: 'cpu',
      precision: 'fp32',
      compile: 'off',
      ttt: { steps: 2 },
      batching: { maxRecords: 1, maxTokens: 4096 },
      epochs: 100,
      maxSteps: 3,
      // A node that fails before the rendezvous leaves the other waiting this long, not 15 minutes.
      rdzvTimeoutSeconds: 120,
      logEvery: 1,
      plot: false,
    }),
  );
}, 600_000);

describe('eaglet train on several nodes (torchrun rendezvous, gloo on 127.0.0.1)', () => {
  it('two nodes of one rank each train to the weights of one process with two accumulation steps', async () => {
    const single = await eaglet(
      ['train', '--config', config, '--output', join(dir, 'single'), 'batching.gradAccumulation=2', '--json'],
      { env, timeoutMs: 600_000 },
    );
    expect(single.code, single.stderr).toBe(0);

    const endpoint = `127.0.0.1:${await freePort()}`;
    const shared = [
      '--output',
      join(dir, 'two-nodes'),
      '--nnodes',
      '2',
      '--rdzv-endpoint',
      endpoint,
      '--json',
    ];
    // The nodes share the output folder (one machine here; a shared filesystem on a cluster).
    // Node 1 starts first and is already waiting at the rendezvous when node 0 checks the folder,
    // which must find nothing of node 1's in it.
    const second = node([...shared, '--node-rank', '1']);
    while (processTree(second.child.pid!).length < 2 && second.child.exitCode === null)
      await new Promise((r) => setTimeout(r, 100));
    const first = node([...shared, '--node-rank', '0']);
    const [n0, n1] = await Promise.all([first.result, second.result]);
    expect(n0.code, n0.stdout).toBe(0);
    expect(n1.code, n1.stdout).toBe(0);
    // Both nodes report the run; rank 0 (node 0, static rendezvous) writes the checkpoints and the
    // export, once.
    expect(JSON.parse(n0.stdout)).toMatchObject({
      steps: 3,
      draft: { vllm: join(dir, 'two-nodes', 'draft') },
    });
    expect(JSON.parse(n1.stdout)).toMatchObject({ steps: 3, draft: {} });
    const diff = maxDiff(
      join(dir, 'single', 'draft', 'model.safetensors'),
      join(dir, 'two-nodes', 'draft', 'model.safetensors'),
    );
    expect(diff).toBeLessThan(1e-5);
  }, 900_000);

  it('a node that dies makes the other stop with a clear error instead of hanging', async () => {
    const endpoint = `127.0.0.1:${await freePort()}`;
    // Without --json: the terminal's metric lines on stderr (logEvery 1) tell when training runs.
    // A short collective timeout: should a dead peer's sockets not close, the survivor still
    // fails within the test's bound (the timeout path) rather than after the 30-minute default.
    const shared = [
      '--output',
      join(dir, 'dies'),
      '--nnodes',
      '2',
      '--rdzv-endpoint',
      endpoint,
      'maxSteps=200',
      'distTimeoutSeconds=60',
    ];
    const survivor = node([...shared, '--node-rank', '0']);
    const victim = node([...shared, '--node-rank', '1']);
    const both = () => `node 0 stderr:\n${survivor.stderr()}\nnode 1 stderr:\n${victim.stderr()}`;
    try {
      // Training runs once node 0 reports its second step; a node that exits before is a failure.
      const training = await Promise.race([secondStep(survivor), victim.result.then(() => false)]);
      expect(training, `a node ended before training ran\n${both()}`).toBe(true);
      // A machine going away: every process of node 1 (the CLI, torchrun, its worker, which
      // torchrun starts in a session of its own) dies at once.
      const killedAt = Date.now();
      killTree(victim.child.pid!);
      const r = await Promise.race([
        survivor.result,
        new Promise<undefined>((resolve) => setTimeout(resolve, 180_000)),
      ]);
      expect(r, `node 0 still runs 180 s after node 1 died\n${both()}`).toBeDefined();
      expect(Date.now() - killedAt).toBeLessThan(120_000);
      expect(r!.code, both()).not.toBe(0);
      expect(r!.stderr).toMatch(/error \[EAGLET_PEER_LOST\]: rank 0 lost contact with another rank/);
      expect(r!.stderr).toMatch(/restart every node with --resume/);
    } finally {
      killTree(survivor.child.pid!);
      killTree(victim.child.pid!);
    }
  }, 900_000);

  it('refuses a node rank out of range, and names the rendezvous when the nodes never meet', async () => {
    const outOfRange = await eaglet(
      [
        'train',
        '--config',
        config,
        '--nnodes',
        '2',
        '--node-rank',
        '2',
        '--rdzv-endpoint',
        '127.0.0.1:1',
        '--json',
      ],
      { env },
    );
    expect(outOfRange.code).toBe(1);
    expect(JSON.parse(outOfRange.stdout).error).toMatchObject({
      code: 'EAGLET_CONFIG_INVALID',
      message: expect.stringContaining('nodeRank 2 is out of range for nnodes 2'),
    });

    const endpoint = `127.0.0.1:${await freePort()}`; // nobody serves it: node 0 never starts
    const lonely = await eaglet(
      [
        'train',
        '--config',
        config,
        '--output',
        join(dir, 'lonely'),
        '--nnodes',
        '2',
        '--node-rank',
        '1',
        '--rdzv-endpoint',
        endpoint,
        'rdzvTimeoutSeconds=5',
        '--json',
      ],
      { env, timeoutMs: 120_000 },
    );
    expect(lonely.code).toBe(1);
    const error = JSON.parse(lonely.stdout).error;
    expect(error.code).toBe('EAGLET_RENDEZVOUS');
    expect(error.message).toContain(endpoint);

    // Node 0 alone: its store waits for the others in vain, and says so the same way.
    const alone = await eaglet(
      [
        'train',
        '--config',
        config,
        '--output',
        join(dir, 'alone'),
        '--nnodes',
        '2',
        '--node-rank',
        '0',
        '--rdzv-endpoint',
        `127.0.0.1:${await freePort()}`,
        'rdzvTimeoutSeconds=5',
        '--json',
      ],
      { env, timeoutMs: 120_000 },
    );
    expect(alone.code).toBe(1);
    expect(JSON.parse(alone.stdout).error.code).toBe('EAGLET_RENDEZVOUS');
  }, 300_000);
});

describe('a killed eaglet leaves no engine behind', () => {
  it('kill -9 of `eaglet train` alone (not its process group) ends the engine within seconds', async () => {
    const run = node(['--output', join(dir, 'orphan'), 'maxSteps=500']);
    let engine: number[] = [];
    try {
      const training = await secondStep(run);
      expect(training, run.stderr()).toBe(true);
      engine = processTree(run.child.pid!).slice(1);
      expect(engine.length, 'the engine runs as a child of eaglet').toBeGreaterThan(0);
      process.kill(run.child.pid!, 'SIGKILL'); // the engine has its own process group: not reached
      const deadline = Date.now() + 20_000;
      while (engine.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(engine.filter(alive), 'engine processes still alive 20 s after eaglet died').toEqual([]);
    } finally {
      for (const pid of [run.child.pid!, ...engine]) killTree(pid);
    }
  }, 300_000);
});
