// Offline training as a user runs it: `eaglet data capture` over prepared data, then `eaglet train`
// with the capture folder as trainData (the engine's own tests hold offline against online).
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CAPTURE_SCHEMA_VERSION } from '@eaglet/core';
import { makeSpeechDataset, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { eaglet } from './helpers.js';

const env = { OMP_NUM_THREADS: '1' };
let dir: string;
let model: string;

beforeAll(async () => {
  model = tinyQwen2AudioModel();
  dir = mkdtempSync(join(tmpdir(), 'eaglet-cli-capture-'));
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
}, 600_000);

describe('eaglet data capture, then eaglet train offline', () => {
  it('captures, says so when run again, and trains from the capture without the target', async () => {
    const args = [
      'data',
      'capture',
      '--model',
      model,
      '--data',
      join(dir, 'prepared'),
      '--out',
      join(dir, 'captured'),
    ];
    const cpu = ['--device', 'cpu', '--precision', 'fp32', '--shard-tokens', '2048'];
    const first = await eaglet([...args, ...cpu], { env, timeoutMs: 300_000 });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/captured: \d+ records, \d+ tokens \(\d+ loss rows\) in \d+ shards/);
    expect(first.stdout).toMatch(/aux layers 2, 4, 5 of /);
    const again = await eaglet([...args, ...cpu, '--json'], { env, timeoutMs: 300_000 });
    expect(again.code, again.stderr).toBe(0);
    const result = JSON.parse(again.stdout);
    expect(result).toMatchObject({ alreadyDone: true, shardsWritten: 0 });
    expect(result.manifest).toMatchObject({
      schemaVersion: CAPTURE_SCHEMA_VERSION,
      dtype: 'bfloat16',
      target: { id: 'qwen2-audio', model, auxLayerIds: [2, 4, 5] },
      data: [{ folder: join(dir, 'prepared') }],
    });
    // Per token: three aux states of the tiny target's 64-wide hidden state in bf16, plus the final
    // state on the loss rows and the shards' headers.
    expect(result.manifest.bytesPerToken).toBeGreaterThan(3 * 64 * 2);
    const shards = result.manifest.shards.map((s: { file: string }) => s.file);
    expect(readdirSync(join(dir, 'captured')).sort()).toEqual(
      ['capture.json', 'target-head.safetensors', ...shards].sort(),
    );

    const config = join(dir, 'train.json');
    writeFileSync(
      config,
      JSON.stringify({
        targetModel: model,
        trainData: ['captured'],
        evalData: ['captured'],
        vocab: 'vocab.safetensors',
        outputDir: 'out',
        device: 'cpu',
        precision: 'fp32',
        ttt: { steps: 2 },
        batching: { maxRecords: 1, maxTokens: 4096 },
        epochs: 100,
        maxSteps: 3,
        logEvery: 1,
        plot: false,
      }),
    );
    const trained = await eaglet(['train', '--config', config, '--json'], { env, timeoutMs: 300_000 });
    expect(trained.code, trained.stderr).toBe(0);
    expect(JSON.parse(trained.stdout)).toMatchObject({
      steps: 3,
      stopped: false,
      draft: { vllm: join(dir, 'out', 'draft') },
    });
    expect(readFileSync(join(dir, 'out', 'engine.log'), 'utf8')).not.toMatch(/Loading weights/);

    // The draft tapping other layers than the capture holds: refused, both named.
    const other = await eaglet(
      [
        'train',
        '--config',
        config,
        '--output',
        join(dir, 'other'),
        '--json',
        'draftConfig.eagle_aux_hidden_state_layer_ids=[1,4,5]',
      ],
      { env, timeoutMs: 300_000 },
    );
    expect(other.code).toBe(1);
    expect(JSON.parse(other.stdout).error).toMatchObject({
      code: 'EAGLET_CAPTURE_MISMATCH',
      message: expect.stringMatching(
        /was made with another target than this run's .*auxLayerIds: \[2, 4, 5\] vs \[1, 4, 5\]/,
      ),
    });
  }, 900_000);
});
