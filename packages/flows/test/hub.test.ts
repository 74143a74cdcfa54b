// Models and datasets named by Hugging Face Hub id, offline: a Hub cache laid out as huggingface_hub
// lays it out (refs/<branch> naming a commit, snapshots/<commit>/files) in a temporary HF_HOME with
// HF_HUB_OFFLINE=1. The flows fetch through the engine's `hub` command and record the commits.
import { cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PreparedManifest, TrainConfig } from '@eaglet/core';
import { makeSpeechDataset, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildVocab,
  createEaglet,
  describeTarget,
  type Eaglet,
  prepareData,
  resolveTrainConfig,
  validateData,
} from '../src/index.js';
import { localModels } from '../src/serve/backend-choice.js';

const COMMIT = 'c0ffee'.padEnd(40, '0');
const dir = mkdtempSync(join(tmpdir(), 'eaglet-flows-hub-'));
const home = join(dir, 'hf');
const saved = { HF_HOME: process.env.HF_HOME, HF_HUB_OFFLINE: process.env.HF_HUB_OFFLINE };
let eaglet: Eaglet;

/** Copies `folder` into the Hub cache as repository `repo` at COMMIT, with `main` pointing at it. */
function cache(repo: string, type: 'model' | 'dataset', folder: string): string {
  const root = join(home, 'hub', `${type}s--${repo.replace('/', '--')}`);
  const snapshot = join(root, 'snapshots', COMMIT);
  cpSync(folder, snapshot, { recursive: true });
  mkdirSync(join(root, 'refs'), { recursive: true });
  writeFileSync(join(root, 'refs', 'main'), COMMIT);
  return snapshot;
}

let modelSnapshot: string;
beforeAll(async () => {
  process.env.HF_HOME = home;
  process.env.HF_HUB_OFFLINE = '1';
  modelSnapshot = cache('org/tiny-qwen2-audio', 'model', tinyQwen2AudioModel());
  cache('org/speech', 'dataset', makeSpeechDataset(join(dir, 'speech')).dir);
  eaglet = await createEaglet({ cwd: dir });
}, 300_000);

afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('Hub ids as inputs of the flows (offline cache)', () => {
  it('prepare reads a Hub model and a Hub dataset and records both commits in the manifest', async () => {
    const out = join(dir, 'prepared');
    const r = await prepareData(eaglet.registry, {
      model: 'org/tiny-qwen2-audio',
      data: ['hf://datasets/org/speech@main'],
      out,
    });
    expect(r.manifest.counts).toMatchObject({ written: 5, rejected: 0 });
    expect(r.manifest.model).toBe(modelSnapshot);
    expect(r.manifest.sources).toEqual({
      model: { repo: 'org/tiny-qwen2-audio', repoType: 'model', revision: COMMIT, path: modelSnapshot },
      data: [
        expect.objectContaining({
          repo: 'org/speech',
          repoType: 'dataset',
          requested: 'main',
          revision: COMMIT,
        }),
      ],
    });
    expect(PreparedManifest.parse(r.manifest).sources?.data).toHaveLength(1);

    const report = await validateData(eaglet.registry, { files: ['org/speech'] });
    expect(report.ok).toBe(true);
    expect(report.totals.records).toBe(5);
  });

  it('train, bench and target info resolve a Hub model and keep its commit', async () => {
    const vocab = await buildVocab({
      data: [join(dir, 'prepared')],
      out: join(dir, 'vocab.safetensors'),
      draftVocabSize: 512,
    });
    const { config } = await resolveTrainConfig(
      eaglet.registry,
      TrainConfig.parse({
        targetModel: 'org/tiny-qwen2-audio',
        trainData: [join(dir, 'prepared')],
        vocab: vocab.out,
        outputDir: join(dir, 'out'),
      }),
    );
    expect(config.target.model).toBe(modelSnapshot);
    expect(config.target.source).toMatchObject({ repo: 'org/tiny-qwen2-audio', revision: COMMIT });

    const { local, sources } = await localModels(
      { targetModel: 'org/tiny-qwen2-audio@main', draftModel: dir },
      {},
    );
    expect(local).toEqual({ targetModel: modelSnapshot, draftModel: dir });
    expect(Object.keys(sources)).toEqual(['targetModel']);

    const d = await describeTarget(eaglet.registry, { model: 'org/tiny-qwen2-audio' });
    expect(d).toMatchObject({ target: 'qwen2-audio', model: modelSnapshot, source: { revision: COMMIT } });
  });

  it('an id that is not cached, offline, is one clear error and leaves no output folder', async () => {
    const out = join(dir, 'never');
    await expect(
      prepareData(eaglet.registry, { model: 'org/not-cached', data: ['org/speech'], out }),
    ).rejects.toMatchObject({
      code: 'EAGLET_HUB_OFFLINE',
      message: expect.stringContaining('org/not-cached'),
    });
    expect(existsSync(out)).toBe(false);
    const report = await validateData(eaglet.registry, { files: ['org/not-cached-data'] });
    expect(report.problems[0]?.reason).toMatch(
      /org\/not-cached-data is not in the local Hub cache.*HF_HUB_OFFLINE/,
    );
  });
});
