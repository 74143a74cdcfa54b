import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHubRef } from '@eaglet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localSource } from '../src/index.js';

const COMMIT = 'a'.repeat(40);
const dir = mkdtempSync(join(tmpdir(), 'eaglet-hub-'));
const saved = { HF_HOME: process.env.HF_HOME, HF_HUB_OFFLINE: process.env.HF_HUB_OFFLINE };

/** A repository as huggingface_hub's cache lays it out (refs/<branch> -> snapshots/<commit>/). */
function cached(repo: string, type: 'model' | 'dataset', files: Record<string, string>): string {
  const folder = join(dir, 'hf', 'hub', `${type}s--${repo.replace('/', '--')}`);
  const snapshot = join(folder, 'snapshots', COMMIT);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(snapshot, name, '..'), { recursive: true });
    writeFileSync(join(snapshot, name), text);
  }
  mkdirSync(join(folder, 'refs'), { recursive: true });
  writeFileSync(join(folder, 'refs', 'main'), COMMIT);
  return snapshot;
}

beforeAll(() => {
  process.env.HF_HOME = join(dir, 'hf');
  process.env.HF_HUB_OFFLINE = '1';
});
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe("Hub ids as model and dataset inputs (offline, the library's own cache layout)", () => {
  it('parses org/name, @revision and hf:// spellings, and nothing else', () => {
    expect(parseHubRef('Qwen/Qwen2-Audio-7B-Instruct', 'model')).toEqual({
      repo: 'Qwen/Qwen2-Audio-7B-Instruct',
      repoType: 'model',
    });
    expect(parseHubRef('org/name@v1.0', 'model')).toEqual({
      repo: 'org/name',
      revision: 'v1.0',
      repoType: 'model',
    });
    expect(parseHubRef('hf://datasets/org/speech@main', 'model')).toEqual({
      repo: 'org/speech',
      revision: 'main',
      repoType: 'dataset',
    });
    for (const no of ['./models/x', '/abs/path', 'one-part', 'a/b/c', 'org/name@', 'data.jsonl'])
      expect(parseHubRef(no, 'model')).toBeUndefined();
  });

  it('resolves a cached model to its snapshot and commit; a local path of the same spelling wins', async () => {
    const snapshot = cached('org/tiny', 'model', { 'config.json': '{}' });
    const r = await localSource('org/tiny', 'model');
    expect(r).toEqual({
      path: snapshot,
      hub: { repo: 'org/tiny', repoType: 'model', revision: COMMIT, path: snapshot },
    });
    const local = join(dir, 'here');
    mkdirSync(join(local, 'org', 'tiny'), { recursive: true });
    const cwd = process.cwd();
    process.chdir(local);
    try {
      expect(await localSource('org/tiny', 'model')).toEqual({ path: join(local, 'org', 'tiny') });
    } finally {
      process.chdir(cwd);
    }
  });

  it('resolves a dataset repo; offline with no cache and a non-id are clear errors', async () => {
    const snapshot = cached('org/speech', 'dataset', { 'train.jsonl': '{}\n' });
    expect((await localSource('org/speech', 'dataset')).path).toBe(snapshot);
    await expect(localSource('org/missing@main', 'model')).rejects.toMatchObject({
      code: 'EAGLET_HUB_OFFLINE',
      message: expect.stringContaining('org/missing@main is not in the local Hub cache'),
    });
    await expect(localSource('no-such-file.jsonl', 'dataset', { field: 'data[0]' })).rejects.toMatchObject({
      code: 'EAGLET_INPUT_MISSING',
      message: 'data[0]: no-such-file.jsonl is neither an existing path nor a Hugging Face Hub id',
    });
  });
});
