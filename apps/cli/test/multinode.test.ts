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
function node(args: string[]): { child: ChildProcess; result: Promise<CliResult> } {
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
  return { child, result };
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
    const nodes = [node([...shared, '--node-rank', '0']), node([...shared, '--node-rank', '1'])];
    const [n0, n1] = await Promise.all(nodes.map((n) => n.result));
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
    // Without --json: the terminal progress on stderr tells when training runs.
    const shared = [
      '--output',
      join(dir, 'dies'),
      '--nnodes',
      '2',
      '--rdzv-endpoint',
      endpoint,
      'maxSteps=200',
    ];
    const survivor = node([...shared, '--node-rank', '0']);
    const victim = node([...shared, '--node-rank', '1']);
    // Kill node 1 (its whole process group, as a machine going away) once training runs.
    await new Promise<void>((resolve) => {
      let seen = '';
      const watch = (d: Buffer) => {
        seen += d.toString();
        if (/train: [1-9]\d*\/200/.test(seen)) {
          survivor.child.stderr!.off('data', watch);
          resolve();
        }
      };
      survivor.child.stderr!.on('data', watch);
    });
    const killedAt = Date.now();
    process.kill(-victim.child.pid!, 'SIGKILL');
    const r = await survivor.result;
    expect(Date.now() - killedAt).toBeLessThan(120_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/error \[EAGLET_PEER_LOST\]: rank 0 lost contact with another rank/);
    expect(r.stderr).toMatch(/restart every node with --resume/);
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
  }, 300_000);
});
