import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  BenchConfig,
  type EagletError,
  loadConfigFile,
  loadRunConfig,
  RegenerateConfig,
  SEED_PARAMETERS,
  TrainConfig,
} from '../src/index.js';

describe('loadConfigFile', () => {
  it('finds eaglet.config.json upwards and validates it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'eaglet-cfg-'));
    writeFileSync(join(root, 'eaglet.config.json'), JSON.stringify({ plugins: ['./x.mjs'] }));
    const sub = join(root, 'a');
    (await import('node:fs')).mkdirSync(sub);
    const loaded = await loadConfigFile(sub);
    expect(loaded.path).toBe(join(root, 'eaglet.config.json'));
    expect(loaded.config).toEqual({ plugins: ['./x.mjs'], builtins: true });
  });

  it('reads the package.json "eaglet" field', async () => {
    const root = mkdtempSync(join(tmpdir(), 'eaglet-cfg-'));
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'x', eaglet: { builtins: false } }));
    expect((await loadConfigFile(root)).config.builtins).toBe(false);
  });

  it('rejects unknown fields naming them', async () => {
    const root = mkdtempSync(join(tmpdir(), 'eaglet-cfg-'));
    writeFileSync(join(root, 'eaglet.config.json'), JSON.stringify({ plugin: ['typo'] }));
    await expect(loadConfigFile(root)).rejects.toThrow(/Unrecognized key.*plugin/);
  });
});

describe('loadRunConfig', () => {
  it('resolves file paths against the config file and cli paths against cwd, applies overrides', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-run-'));
    mkdirSync(join(dir, 'models', 'tiny'), { recursive: true });
    writeFileSync(
      join(dir, 'train.json'),
      JSON.stringify({
        targetModel: 'models/tiny',
        trainData: ['data/a'],
        vocab: 'vocab.safetensors',
        outputDir: 'out',
      }),
    );
    const cfg = loadRunConfig(TrainConfig, {
      file: 'train.json',
      cwd: dir,
      overrides: ['ttt.steps=3', 'optimizer.lr=0.001', 'schedule.kind=cosine'],
      fields: { outputDir: '/abs/out', evalData: undefined },
    });
    expect(cfg.targetModel).toBe(join(dir, 'models/tiny'));
    expect(cfg.trainData).toEqual([join(dir, 'data/a')]);
    expect(cfg.outputDir).toBe('/abs/out');
    expect(cfg.ttt).toEqual({ steps: 3, lossDecay: 0.8, attention: 'flash' });
    expect(cfg.optimizer.lr).toBe(0.001);
    expect(cfg.optimizer.gradClip).toBe(1.0);
    expect(cfg.schedule.kind).toBe('cosine');
    expect(cfg.epochs).toBe(20);
  });

  it('keeps a model named by Hub id when no path of that spelling exists; a path that exists wins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-run-'));
    const base = { trainData: ['data/a'], vocab: 'v.safetensors', outputDir: 'out' };
    for (const id of ['Qwen/Qwen2-Audio-7B-Instruct', 'org/name@v1', 'hf://org/name'])
      expect(loadRunConfig(TrainConfig, { fields: { ...base, targetModel: id }, cwd: dir }).targetModel).toBe(
        id,
      );
    mkdirSync(join(dir, 'org', 'name'), { recursive: true });
    expect(
      loadRunConfig(TrainConfig, { fields: { ...base, targetModel: 'org/name' }, cwd: dir }).targetModel,
    ).toBe(join(dir, 'org', 'name'));
    // Plain paths are never taken for Hub ids.
    expect(
      loadRunConfig(TrainConfig, { fields: { ...base, targetModel: 'one-folder' }, cwd: dir }).targetModel,
    ).toBe(join(dir, 'one-folder'));
  });

  it('lists every invalid field', () => {
    const err = (() => {
      try {
        loadRunConfig(TrainConfig, { cwd: '/', fields: { targetModel: '', ttt: { steps: 0 }, bogus: 1 } });
      } catch (e) {
        return e as EagletError;
      }
    })();
    expect(err?.code).toBe('EAGLET_CONFIG_INVALID');
    for (const field of ['targetModel', 'ttt.steps', 'trainData', 'vocab', 'outputDir', 'bogus']) {
      expect(err?.message).toContain(field);
    }
  });
});

describe('seed parameters', () => {
  const schemas: Record<string, z.ZodObject> = {
    train: TrainConfig,
    bench: BenchConfig,
    regenerate: RegenerateConfig,
  };
  it.each(SEED_PARAMETERS.map((p) => [p.name, p] as const))(
    '%s has a home with the document default',
    (_n, p) => {
      const [schemaName, field] = p.home.split('.') as [string, string];
      const schema = schemas[schemaName];
      expect(schema, `schema ${schemaName}`).toBeDefined();
      expect(Object.keys(schema!.shape)).toContain(field);
      if (p.default !== undefined) {
        const parsed = schema!.shape[field]!.safeParse(undefined);
        expect(parsed.success && parsed.data).toBe(p.default);
      }
    },
  );
});
