import { spawnSync } from 'node:child_process';
import fs, { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ffmpegDecoder } from '@eaglet/audio';
import {
  type AudioDecoderFactory,
  audioParts,
  type EagletEvent,
  type PluginRegistry,
  PREPARED_FILES,
  readJsonl,
} from '@eaglet/core';
import { tinyQwen2AudioModel } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildVocab,
  createEaglet,
  detectFormat,
  prepareData,
  type RejectLine,
  readShardBatches,
} from '../src/index.js';
import { prepareDataset } from './data-fixtures.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const python = (script: string, args: string[]) => {
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'tools/python.mjs'), join(import.meta.dirname, script), ...args],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`${script} failed:\n${r.stdout}\n${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
};
const tmp = () => mkdtempSync(join(tmpdir(), 'eaglet-prep-'));
const rejects = (dir: string): RejectLine[] =>
  readFileSync(join(dir, PREPARED_FILES.rejects), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
const folderBytes = (dir: string) =>
  Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((f) => [f, readFileSync(join(dir, f)).toString('base64')]),
  );

let model: string;
let data: ReturnType<typeof prepareDataset>;
let registry: PluginRegistry;
beforeAll(async () => {
  model = tinyQwen2AudioModel();
  data = prepareDataset(tmp());
  registry = (await createEaglet({ cwd: tmp() })).registry;
});

describe('prepareData + parity with transformers Qwen2AudioProcessor (real ffmpeg, real tokenizer)', () => {
  it('segments the 45 s recording at pauses; ids, loss masks, audio token counts and PCM equal the processor', async () => {
    const out = tmp();
    const events: EagletEvent[] = [];
    const r = await prepareData(
      registry,
      { model, data: [data.jsonl, data.rich], out, shardSize: 4 },
      { events: (e) => events.push(e) },
    );
    const m = r.manifest;
    expect(m.counts).toEqual({ records: 12, written: 12, rejected: 0, truncated: 0 });
    expect(m.shards.map((s) => s.records)).toEqual([4, 4, 4]);
    expect(m.audioActions).toHaveLength(1);
    const long = m.audioActions[0]!;
    expect(long).toMatchObject({ id: '5918', action: 'segmented', part: 0, hardCuts: 0 });
    expect(long.seconds).toBeGreaterThan(45);
    for (const [s, e] of long.segments!) expect(e - s).toBeLessThanOrEqual(30);
    expect(m.stats.lengthHistogram.counts.reduce((a, b) => a + b, 0)).toBe(12);
    expect(events.some((e) => e.type === 'progress' && e.task === 'prepare')).toBe(true);
    expect(readFileSync(join(out, 'lengths.svg'), 'utf8')).toMatch(/^<svg[\s\S]*12 records[\s\S]*<\/svg>\n$/);

    const parity = python('parity_check.py', [out, model]);
    expect(parity).toMatchObject({ rows: 12, segmented: 1 });
    expect(parity.max_pcm_diff).toBeLessThanOrEqual(1e-4);
    expect(Math.max(...parity.audio_tokens)).toBeLessThanOrEqual(750);
  });

  it('truncate policy: the long recording keeps its first 30 s (750 tokens) and the manifest says so', async () => {
    const out = tmp();
    const r = await prepareData(registry, { model, data: [data.jsonl], out, longAudioPolicy: 'truncate' });
    expect(r.manifest.audioActions).toEqual([expect.objectContaining({ id: '5918', action: 'truncated' })]);
    const parity = python('parity_check.py', [out, model]);
    expect(parity).toMatchObject({ rows: 9, truncated: 1 });
    expect(parity.audio_tokens).toContain(750);
  });

  it('reject policy: the long record is rejected with its reason and raw line, never truncated silently', async () => {
    const out = tmp();
    const r = await prepareData(registry, { model, data: [data.jsonl], out, longAudioPolicy: 'reject' });
    expect(r.manifest.counts).toMatchObject({ records: 9, written: 8, rejected: 1 });
    const [rej] = rejects(out);
    expect(rej).toMatchObject({ id: '5918', kind: 'long-audio', code: 'EAGLET_LONG_AUDIO', line: 9 });
    expect(rej!.reason).toMatch(/is 4\d\.\d+ s, longer than the 30 s/);
    expect(JSON.parse(rej!.raw).id).toBe(5918);
  });

  it('every bad record lands in rejects.jsonl with file, line, reason and raw text; the good one is written', async () => {
    const out = tmp();
    const r = await prepareData(registry, { model, data: [data.bad], out });
    expect(r.manifest.counts).toEqual({ records: 5, written: 1, rejected: 4, truncated: 0 });
    const byLine = Object.fromEntries(rejects(out).map((x) => [x.line, x]));
    expect(byLine[1]).toMatchObject({ kind: 'json', file: data.bad });
    expect(byLine[2]).toMatchObject({ kind: 'audio', code: 'EAGLET_AUDIO_MISSING', id: 'missing-audio' });
    expect(byLine[4]).toMatchObject({ kind: 'audio', code: 'EAGLET_AUDIO_EMPTY' });
    expect(byLine[5]).toMatchObject({
      kind: 'conversation',
      reason: expect.stringMatching(/no assistant reply/),
    });
    const raw = readFileSync(data.bad, 'utf8').split('\n');
    for (const x of rejects(out)) expect(x.raw).toBe(raw[x.line - 1]);
  });

  it('an audio policy (the HTTP app confines audio to its roots) rejects the records it refuses, with the reason', async () => {
    const out = tmp();
    const refused: string[] = [];
    const audioAccess = (ref: string) => {
      refused.push(ref);
      throw new Error(`${ref} is not allowed here`);
    };
    const r = await prepareData(registry, { model, data: [data.bad], out }, { audioAccess });
    expect(r.manifest.counts).toEqual({ records: 5, written: 0, rejected: 5, truncated: 0 });
    const good = rejects(out).find((x) => x.line === 3)!;
    expect(good).toMatchObject({
      kind: 'audio',
      reason: expect.stringMatching(/content\[\d+\]: .* is not allowed here/),
    });
    expect(refused).toHaveLength(4); // every record naming audio; asked before any file is opened
  });

  it('max-length policy: reject or truncate (never through audio placeholders)', async () => {
    const rejected = await prepareData(registry, { model, data: [data.rich], out: tmp(), maxLength: 64 });
    expect(rejected.manifest.counts).toMatchObject({ written: 1, rejected: 2 });
    const out = tmp();
    const truncated = await prepareData(registry, {
      model,
      data: [data.rich],
      out,
      maxLength: 64,
      maxLengthPolicy: 'truncate',
    });
    // The two audio records would be cut inside their placeholders: rejected; the text one fits.
    expect(truncated.manifest.counts).toMatchObject({ written: 1, rejected: 2, truncated: 0 });
    expect(rejects(out).every((x) => x.kind === 'length')).toBe(true);
    const wide = await prepareData(registry, {
      model,
      data: [data.rich],
      out: tmp(),
      maxLength: 190,
      maxLengthPolicy: 'truncate',
    });
    expect(wide.manifest.counts.truncated).toBeGreaterThan(0);
    expect(wide.manifest.stats.lengthHistogram.edges.at(-1)).toBe(190);
  });

  it('prepares text-only formats too (ultrachat): no audio, replies trained', async () => {
    const dir = tmp();
    const file = join(dir, 'chat.jsonl');
    writeFileSync(
      file,
      `${JSON.stringify({
        prompt_id: 'p1',
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello!' },
          { role: 'user', content: 'Bye' },
          { role: 'assistant', content: 'See you.' },
        ],
      })}\n`,
    );
    const out = tmp();
    const r = await prepareData(registry, { model, data: [file], out });
    expect(r.manifest.inputs[0]!.format).toBe('ultrachat');
    expect(r.manifest.counts.written).toBe(1);
    expect(r.manifest.stats.audioClips).toBe(0);
    const session = await registry.template('qwen2-audio').load(model);
    const batch = await readShardBatches(join(out, 'shard-00000.arrow')).next();
    const row = batch.value!.get(0)!.toJSON() as {
      input_ids: { toArray(): Int32Array };
      loss_mask: { toArray(): Uint8Array };
    };
    const ids = Array.from(row.input_ids.toArray());
    const mask = Array.from(row.loss_mask.toArray());
    expect(session.tokenizer.decode(ids.filter((_, i) => mask[i] === 1))).toBe(
      'Hello!<|im_end|>\nSee you.<|im_end|>\n',
    );
  });

  it('a cancel mid-run gives a coded error with a resume hint, no unhandled rejection, and the rerun completes', async () => {
    const out = tmp();
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const controller = new AbortController();
      const err = await prepareData(
        registry,
        { model, data: [data.jsonl, data.rich], out, shardSize: 2 },
        {
          signal: controller.signal,
          events: (e) => e.type === 'progress' && e.task === 'prepare' && e.done >= 1 && controller.abort(),
        },
      ).then(
        () => undefined,
        (e: { code?: string; hint?: string }) => e,
      );
      expect(err?.code).toBe('EAGLET_CANCELLED');
      expect(err?.hint).toMatch(/run the same command again to resume/);
      await new Promise((r) => setTimeout(r, 200)); // let any stray rejection surface
      expect(unhandled).toEqual([]);
      // The rerun resumes and finishes with every record accounted for.
      const r = await prepareData(registry, { model, data: [data.jsonl, data.rich], out, shardSize: 2 });
      expect(r.manifest.counts.records).toBe(12);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('is deterministic, and a rerun of a finished folder is a no-op; other settings are refused', async () => {
    const a = tmp();
    const b = tmp();
    await prepareData(registry, { model, data: [data.jsonl], out: a, shardSize: 3 });
    await prepareData(registry, { model, data: [data.jsonl], out: b, shardSize: 3, concurrency: 1 });
    expect(folderBytes(a)).toEqual(folderBytes(b));
    const again = await prepareData(registry, { model, data: [data.jsonl], out: a, shardSize: 3 });
    expect(again.alreadyDone).toBe(true);
    await expect(
      prepareData(registry, { model, data: [data.jsonl], out: a, shardSize: 2 }),
    ).rejects.toMatchObject({
      code: 'EAGLET_PREPARE_EXISTS',
    });
    const replaced = await prepareData(registry, {
      model,
      data: [data.jsonl],
      out: a,
      shardSize: 2,
      overwrite: true,
    });
    expect(replaced.manifest.shards).toHaveLength(5);
  });
});

/** Counts the opens of `files` through node:fs (streams open through `fs.open`) until `restore`. */
function countOpens(files: string[]): { counts: Record<string, number>; restore: () => void } {
  const counts = Object.fromEntries(files.map((f) => [f, 0]));
  const count = (path: unknown) => {
    if (typeof path === 'string' && path in counts) counts[path]!++;
  };
  const { open, openSync } = fs;
  const promisesOpen = fs.promises.open;
  fs.open = ((path: string, ...rest: unknown[]) => {
    count(path);
    return (open as (...a: unknown[]) => void)(path, ...rest);
  }) as typeof fs.open;
  fs.openSync = ((path: string, ...rest: unknown[]) => {
    count(path);
    return (openSync as (...a: unknown[]) => number)(path, ...rest);
  }) as typeof fs.openSync;
  fs.promises.open = ((path: string, ...rest: unknown[]) => {
    count(path);
    return (promisesOpen as (...a: unknown[]) => Promise<fs.promises.FileHandle>)(path, ...rest);
  }) as typeof fs.promises.open;
  return {
    counts,
    restore: () => {
      fs.open = open;
      fs.openSync = openSync;
      fs.promises.open = promisesOpen;
    },
  };
}

describe('prepareData resolves its audio decoder from the container', () => {
  it('decodes each audio part exactly once and reads each input once per pass (scan, then work)', async () => {
    const decoded: string[] = [];
    const counting: AudioDecoderFactory = (options) => {
      const ffmpeg = ffmpegDecoder(options);
      return {
        decode: (ref, o) => {
          decoded.push(ref);
          return ffmpeg.decode(ref, o);
        },
        check: (ref, o) => ffmpeg.check(ref, o),
      };
    };
    const scoped = registry.scoped();
    scoped.provide('audioDecoder', counting);
    const inputs = [data.jsonl, data.rich];
    const out = tmp();
    const opens = countOpens(inputs);
    let r: Awaited<ReturnType<typeof prepareData>>;
    try {
      r = await prepareData(scoped, { model, data: inputs, out, shardSize: 4 });
    } finally {
      opens.restore();
    }
    expect(opens.counts).toEqual({ [data.jsonl]: 2, [data.rich]: 2 });

    // Every audio part of every record, as the format parses it: 9 + 4, the 45 s one included
    // (segmented after one decode, never decoded per segment).
    const expected: string[] = [];
    for (const file of inputs)
      for await (const rec of readJsonl(file)) {
        if (!rec.ok) continue;
        const format = detectFormat(registry, rec.value)!;
        const parsed = format.parse(rec.value, { file, line: rec.line, baseDir: join(file, '..') });
        if (parsed.ok) expected.push(...audioParts(parsed.conversation).map((p) => p.audio));
      }
    expect(expected).toHaveLength(13);
    expect(decoded.sort()).toEqual(expected.sort());
    expect(r.manifest.audioActions).toEqual([expect.objectContaining({ id: '5918', action: 'segmented' })]);

    // The swap stays in the scope: the registry's own decoder writes the same bytes.
    const plain = tmp();
    await prepareData(registry, { model, data: inputs, out: plain, shardSize: 4 });
    expect(decoded).toHaveLength(13);
    expect(folderBytes(plain)).toEqual(folderBytes(out));
  });
});

describe('buildVocab', () => {
  it('writes d2t/t2d/freq that Python safetensors reads, with fewer distinct tokens than the draft vocabulary', async () => {
    const prepared = tmp();
    await prepareData(registry, { model, data: [data.jsonl, data.rich], out: prepared });
    const out = join(tmp(), 'vocab.safetensors');
    const r = await buildVocab({ data: [prepared], out });
    expect(r.draftVocabSize).toBe(32000);
    expect(r.vocabSize).toBe(156032);
    expect(r.distinctTokens).toBeLessThan(1000);
    expect(r.filled).toBe(32000 - r.distinctTokens);
    expect(r.coverage).toBe(1);
    const check = python('vocab_check.py', [out, prepared]);
    expect(check).toMatchObject({ ok: true, draft: 32000, vocab_size: 156032, hash: r.hash });
    expect(check.meta.tokenizer_hash).toBe(r.tokenizerHash);

    const small = join(tmp(), 'small.safetensors');
    const s = await buildVocab({ data: [prepared], out: small, draftVocabSize: 40 });
    expect(s.filled).toBe(0);
    expect(s.coverage).toBeLessThan(1);
    expect(s.hash).not.toBe(r.hash);
    expect(python('vocab_check.py', [small, prepared])).toMatchObject({ ok: true, draft: 40 });
  });

  it('refuses an unfinished folder and mixed tokenizers with clear errors', async () => {
    await expect(buildVocab({ data: [tmp()], out: join(tmp(), 'v.safetensors') })).rejects.toMatchObject({
      code: 'EAGLET_VOCAB_INPUT',
    });
  });
});
