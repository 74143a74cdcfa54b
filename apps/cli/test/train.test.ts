import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSpeechDataset, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { eaglet } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'eaglet-cli-train-'));
// Tiny models on a shared CPU: one intra-op thread per engine process is many times faster.
const env = { OMP_NUM_THREADS: '1' };

let config: string;
let outputDir: string;
beforeAll(async () => {
  const model = tinyQwen2AudioModel();
  const dir = tmp();
  const ds = makeSpeechDataset(join(dir, 'data'));
  const prepared = join(dir, 'prepared');
  const vocab = join(dir, 'vocab.safetensors');
  for (const args of [
    ['data', 'prepare', '--model', model, '--data', ds.jsonl, '--out', prepared, '--json'],
    ['data', 'vocab', '--data', prepared, '--out', vocab, '--draft-vocab-size', '1024', '--json'],
  ]) {
    const r = await eaglet(args, { env, timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`${args.join(' ')} failed:\n${r.stderr}`);
  }
  outputDir = join(dir, 'out');
  config = join(dir, 'train.json');
  // Relative paths resolve against the config file's folder, as in the original script's settings.
  writeFileSync(
    config,
    JSON.stringify({
      targetModel: model,
      trainData: ['prepared'],
      evalData: ['prepared'],
      vocab: 'vocab.safetensors',
      outputDir: 'out',
      device: 'cpu',
      precision: 'fp32',
      ttt: { steps: 3 },
      epochs: 1,
      logEvery: 1,
    }),
  );
}, 600_000);

describe('eaglet train / eaglet export (built binary, real engine)', () => {
  it('trains with KEY=VALUE overrides, shows progress and metrics, writes the draft; export rewrites it', async () => {
    const r = await eaglet(['train', '--config', config, 'maxSteps=2', 'optimizer.lr=0.001'], {
      env,
      timeoutMs: 600_000,
    });
    expect(r.code, r.stderr).toBe(0);
    // Non-TTY progress lines: step, loss, acc_0..acc_2, tokens/s, ETA; then the metrics lines.
    expect(r.stderr).toMatch(
      /train: 2\/2 step \(100\.0%\).*loss [\d.]+ acc [\d.]+ [\d.]+ [\d.]+ \| [\d,]+ tok\/s \| ETA/,
    );
    expect(r.stderr).toMatch(
      /\[train step 2\] loss=[\d.]+ ploss_0=[\d.]+ .*acc_0=[\d.]+ acc_1=[\d.]+ acc_2=/,
    );
    expect(r.stderr).toMatch(/\[eval step 2\] .*acc_0=/);
    expect(r.stdout).toContain('trained 2 steps');
    expect(r.stdout).toMatch(/draft \(vllm\): .*out[/\\]draft/);
    const saved = JSON.parse(readFileSync(join(outputDir, 'train-config.json'), 'utf8'));
    expect(saved).toMatchObject({
      maxSteps: 2,
      optimizer: { lr: 0.001 },
      target: { id: 'qwen2-audio', adapter: 'eaglet_qwen2_audio', auxLayerIds: [2, 4, 5] },
    });
    expect(existsSync(join(outputDir, 'draft', 'model.safetensors'))).toBe(true);
    expect(existsSync(join(outputDir, 'curves.png'))).toBe(true);

    const x = await eaglet(['export', '--checkpoint', outputDir, '--out', join(outputDir, 'x'), '--json'], {
      env,
    });
    expect(x.code, x.stderr).toBe(0);
    const result = JSON.parse(x.stdout);
    expect(result).toMatchObject({ step: 2, drafts: { vllm: join(outputDir, 'x') } });
    expect(readFileSync(join(outputDir, 'x', 'model.safetensors'))).toEqual(
      readFileSync(join(outputDir, 'draft', 'model.safetensors')),
    );
  }, 600_000);

  it('names every invalid field of a bad config and refuses unknown keys, before any engine starts', async () => {
    const bad = join(tmp(), 'bad.json');
    writeFileSync(bad, JSON.stringify({ targetModel: '/m', ttt: { steps: 0 }, bogus: true }));
    const r = await eaglet(['train', '--config', bad, '--json']);
    expect(r.code).toBe(1);
    const error = JSON.parse(r.stdout).error;
    expect(error.code).toBe('EAGLET_CONFIG_INVALID');
    for (const field of ['ttt.steps', 'trainData', 'vocab', 'outputDir', 'bogus'])
      expect(error.message).toContain(field);
  });
});
