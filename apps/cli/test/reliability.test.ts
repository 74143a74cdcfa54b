import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSpeechDataset, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { eaglet } from './helpers.js';

/**
 * The command line's side of issue 13's defects, run as a user runs it (the built binary): every
 * error keeps its code, message and hint, on a terminal and under --json; an output folder that
 * cannot be one fails at once; a training folder holding a run needs --resume or --overwrite.
 */
const tmp = () => mkdtempSync(join(tmpdir(), 'eaglet-cli-rel-'));
const env = { OMP_NUM_THREADS: '1' }; // tiny models on a shared CPU

let model: string;
let data: string;
beforeAll(() => {
  model = tinyQwen2AudioModel();
  data = makeSpeechDataset(join(tmp(), 'data')).jsonl;
}, 300_000);

/** The one error object of a --json run. */
const jsonError = (stdout: string) =>
  JSON.parse(stdout).error as { code: string; message: string; hint?: string };

describe('errors keep their message (defects 4 and 5)', () => {
  it('a corrupt config.json in the model folder is named, with a hint, on a terminal and under --json', async () => {
    const broken = join(tmp(), 'model');
    cpSync(model, broken, { recursive: true });
    writeFileSync(join(broken, 'config.json'), '{"architectures": ["Qwen2AudioForConditionalGeneration"],,}');
    const args = ['data', 'prepare', '--model', broken, '--data', data, '--out', join(tmp(), 'out')];
    const human = await eaglet(args);
    expect(human.code).toBe(1);
    expect(human.stderr).toMatch(
      /^error \[EAGLET_FILE_INVALID\]: \S+\/model\/config\.json is not valid JSON: .*position/m,
    );
    expect(human.stderr).toMatch(/hint: repair or replace the model's config\.json/);
    const json = await eaglet([...args, '--json']);
    expect(json.code).toBe(1);
    expect(jsonError(json.stdout)).toEqual({
      code: 'EAGLET_FILE_INVALID',
      message: expect.stringContaining(join(broken, 'config.json')),
      hint: expect.any(String),
    });
  });

  it('an --out that cannot be a folder fails at once, naming it: a file in the way, no permission, /proc', async () => {
    const cases: Array<[string, RegExp]> = [
      ['/etc/passwd/out', /cannot use \/etc\/passwd\/out as a folder: \/etc\/passwd is a file/],
      [
        '/sys/eaglet-out',
        /cannot write the output folder \/sys\/eaglet-out: \/sys is not writable \(EPERM\)/,
      ],
      [
        '/proc/eaglet-out/x',
        /cannot write the output folder \/proc\/eaglet-out\/x: \/proc does not take new folders/,
      ],
    ];
    for (const [out, message] of cases) {
      const args = ['data', 'prepare', '--model', model, '--data', data, '--out', out];
      const started = Date.now();
      const human = await eaglet(args, { timeoutMs: 30_000 }); // under /proc it used to spin forever
      expect(Date.now() - started, out).toBeLessThan(30_000);
      expect(human.code, out).toBe(1);
      expect(human.stderr).toMatch(/^error \[EAGLET_OUTPUT_INVALID\]: /m);
      expect(human.stderr).toMatch(message);
      expect(human.stderr).toMatch(/hint: /);
      const json = await eaglet([...args, '--json'], { timeoutMs: 30_000 });
      expect(json.code, out).toBe(1);
      expect(jsonError(json.stdout)).toEqual({
        code: 'EAGLET_OUTPUT_INVALID',
        message: expect.stringMatching(message),
        hint: expect.any(String),
      });
    }
  });

  it('a usage error under --json is the same kind of error object (exit code 2)', async () => {
    const r = await eaglet(['data', 'prepare', '--model', model, '--json']);
    expect(r.code).toBe(2);
    expect(jsonError(r.stdout)).toEqual({
      code: 'EAGLET_USAGE',
      message: expect.stringMatching(/Missing required flag/),
      hint: expect.stringMatching(/eaglet data prepare --help/),
    });
  });
});

describe('eaglet train into a folder that holds a run (defect 2)', () => {
  it('is refused naming --resume and --overwrite; --overwrite starts again; both at once is a usage error', async () => {
    const dir = tmp();
    const prepared = join(dir, 'prepared');
    const vocab = join(dir, 'vocab.safetensors');
    for (const args of [
      ['data', 'prepare', '--model', model, '--data', data, '--out', prepared, '--json'],
      ['data', 'vocab', '--data', prepared, '--out', vocab, '--draft-vocab-size', '1024', '--json'],
    ]) {
      const r = await eaglet(args, { env, timeoutMs: 300_000 });
      expect(r.code, r.stderr).toBe(0);
    }
    const config = join(dir, 'train.json');
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
        maxSteps: 1,
        logEvery: 1,
        plot: false,
      }),
    );
    const first = await eaglet(['train', '--config', config], { env, timeoutMs: 300_000 });
    expect(first.code, first.stderr).toBe(0);

    const again = await eaglet(['train', '--config', config], { env, timeoutMs: 300_000 });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /error \[EAGLET_OUTPUT_EXISTS\]: outputDir \S+out holds an earlier training run/,
    );
    expect(again.stderr).toMatch(/hint: pass --resume .* or --overwrite/);

    const both = await eaglet(['train', '--config', config, '--resume', '--overwrite', '--json'], { env });
    expect(both.code).toBe(2);
    expect(jsonError(both.stdout).code).toBe('EAGLET_USAGE');

    const over = await eaglet(['train', '--config', config, '--overwrite', 'seed=3'], {
      env,
      timeoutMs: 300_000,
    });
    expect(over.code, over.stderr).toBe(0);
    const steps = readFileSync(join(dir, 'out', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(steps.map((l) => JSON.parse(l).step)).toEqual([1]); // the second run's alone
  }, 600_000);
});
