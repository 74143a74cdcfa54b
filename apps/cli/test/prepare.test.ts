import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSpeechDataset, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, eaglet } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'eaglet-cli-prep-'));
const folderBytes = (dir: string) =>
  Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((f) => [f, readFileSync(join(dir, f)).toString('base64')]),
  );

let model: string;
let jsonl: string;
beforeAll(() => {
  model = tinyQwen2AudioModel();
  const ds = makeSpeechDataset(tmp(), { espeak: ['One two three.', 'Four five six seven eight.'] });
  // 28 records: the speech records repeated, plus two bad lines, so a run takes a few seconds.
  const lines = readFileSync(ds.jsonl, 'utf8').split('\n').filter(Boolean);
  const many: string[] = [];
  for (let k = 0; k < 4; k++)
    for (const l of lines) many.push(l.replace(/"id":(\d+)/, (_, id) => `"id":${Number(id) + 100 * k}`));
  many.splice(5, 0, '{"id": "broken"');
  many.splice(
    17,
    0,
    JSON.stringify({
      id: 'gone',
      conversations: [
        { role: 'user', content: [{ type: 'audio', audio: './audios/gone.wav' }] },
        { role: 'assistant', content: 'x' },
      ],
    }),
  );
  jsonl = join(ds.dir, 'many.jsonl');
  writeFileSync(jsonl, `${many.join('\n')}\n`);
});

const prepareArgs = (out: string) => [
  'data',
  'prepare',
  '--model',
  model,
  '--data',
  jsonl,
  '--out',
  out,
  '--shard-size',
  '2',
  '--concurrency',
  '1',
];

describe('eaglet data prepare / vocab (built binary)', () => {
  it('--json is quiet and machine-readable; pyarrow-readable shards; vocab with its hash', async () => {
    const out = tmp();
    const r = await eaglet([...prepareArgs(out), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const result = JSON.parse(r.stdout);
    expect(result.manifest.counts).toEqual({ records: 30, written: 28, rejected: 2, truncated: 0 });
    const v = await eaglet([
      'data',
      'vocab',
      '--data',
      out,
      '--out',
      join(out, '..', 'vocab.safetensors'),
      '--json',
    ]);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({
      draftVocabSize: 32000,
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    const text = await eaglet(['data', 'vocab', '--data', out, '--out', join(out, '..', 'v2.safetensors')]);
    expect(text.stdout).toMatch(/mapping hash [0-9a-f]{64}/);
  });

  it('kill -9 mid-run, run again: byte-identical output, no duplicates, nothing lost', async () => {
    const reference = tmp();
    expect((await eaglet([...prepareArgs(reference), '--json'])).code).toBe(0);

    const out = tmp();
    const child = spawn(process.execPath, [BIN, ...prepareArgs(out), '--json'], { stdio: 'ignore' });
    // Kill it hard once it has committed some shards but long before it is done.
    const killedAt = await new Promise<number>((resolve, reject) => {
      const timer = setInterval(() => {
        const progress = join(out, 'progress.json');
        if (existsSync(progress)) {
          const p = JSON.parse(readFileSync(progress, 'utf8'));
          if (p.shards.length >= 3) {
            clearInterval(timer);
            child.kill('SIGKILL');
            resolve(p.nextRecord);
          }
        }
      }, 10);
      child.on('exit', () => {
        clearInterval(timer);
        reject(new Error('prepare finished before it could be killed'));
      });
    });
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(join(out, 'manifest.json'))).toBe(false);
    expect(killedAt).toBeLessThan(30);

    const resumed = await eaglet([...prepareArgs(out), '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout).resumedAt).toBeGreaterThan(0);
    expect(folderBytes(out)).toEqual(folderBytes(reference));
  });

  it('Ctrl-C stops at a safe point with a hint; the rerun resumes to the same files', async () => {
    const reference = tmp();
    expect((await eaglet([...prepareArgs(reference), '--json'])).code).toBe(0);
    const out = tmp();
    const child = spawn(process.execPath, [BIN, ...prepareArgs(out)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setInterval(() => {
      if (existsSync(join(out, 'progress.json'))) {
        clearInterval(timer);
        child.kill('SIGINT');
      }
    }, 10);
    const code = await new Promise((r) => child.once('exit', r));
    clearInterval(timer);
    expect(code).toBe(1);
    expect(stderr).toMatch(/EAGLET_CANCELLED.*prepare stopped; \d+ of 30 records are committed/);
    expect(stderr).toMatch(/hint: run the same command again to resume/);
    expect((await eaglet([...prepareArgs(out), '--json'])).code).toBe(0);
    expect(folderBytes(out)).toEqual(folderBytes(reference));
  });

  it('names the problem when the model folder is wrong', async () => {
    const r = await eaglet(['data', 'prepare', '--model', tmp(), '--data', jsonl, '--out', tmp()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/EAGLET_TARGET_CONFIG.*no config\.json/);
  });
});
