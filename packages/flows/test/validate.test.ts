import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ffmpegDecoder } from '@eaglet/audio';
import type { AudioDecoderFactory } from '@eaglet/core';
import { makeMalformedDataset, makeSpeechDataset } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEaglet, validateData } from '../src/index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'eaglet-validate-'));

describe('validateData', () => {
  let registry: Awaited<ReturnType<typeof createEaglet>>['registry'];
  beforeAll(async () => {
    ({ registry } = await createEaglet({ cwd: tmp() }));
  });

  it('passes the seed-format dataset of real LibriVox speech', async () => {
    const ds = makeSpeechDataset(tmp());
    const events: unknown[] = [];
    const report = await validateData(registry, { files: [ds.jsonl] }, { events: (e) => events.push(e) });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.files[0]).toMatchObject({
      format: 'openai-conversations',
      records: 5,
      valid: 5,
      invalid: 0,
      audioFiles: 5,
    });
    // 7.10 + 2.99 + 5.30 + 6.05 + 3.29 seconds (soxi)
    expect(report.files[0]!.audioSeconds).toBeCloseTo(24.73, 1);
    expect(events.at(-1)).toMatchObject({ type: 'progress', task: 'validate' });
  });

  it('checks each audio file once, with the decoder the container holds (swapped in a scope)', async () => {
    const ds = makeSpeechDataset(tmp());
    // Every clip named twice: by the dataset's records and by copies of them with other ids.
    const lines = readFileSync(ds.jsonl, 'utf8').trim().split('\n');
    const twice = join(ds.dir, 'twice.jsonl');
    writeFileSync(
      twice,
      `${[...lines, ...lines.map((l) => JSON.stringify({ ...JSON.parse(l), id: `copy-${JSON.parse(l).id}` }))].join('\n')}\n`,
    );
    const checked: string[] = [];
    const counting: AudioDecoderFactory = (options) => {
      const ffmpeg = ffmpegDecoder(options);
      return {
        decode: (ref, o) => ffmpeg.decode(ref, o),
        check: (ref, o) => {
          checked.push(ref);
          return ffmpeg.check(ref, o);
        },
      };
    };
    const scoped = registry.scoped();
    scoped.provide('audioDecoder', counting);
    const report = await validateData(scoped, { files: [twice] });
    expect(report.problems).toEqual([]);
    expect(report.files[0]).toMatchObject({ records: 10, valid: 10, audioFiles: 5 });
    expect(checked).toHaveLength(5);
    expect(new Set(checked).size).toBe(5);
  });

  it('reports every malformed record with line, field path and reason, and does not stop', async () => {
    const { jsonl, expected, validLines } = makeMalformedDataset(tmp());
    const report = await validateData(registry, { files: [jsonl] });
    expect(report.ok).toBe(false);
    expect(new Set(expected.map((e) => e.kind)).size).toBeGreaterThanOrEqual(5);
    expect(expected.length).toBeGreaterThanOrEqual(12);
    for (const e of expected) {
      const found = report.problems.filter((p) => p.line === e.line);
      expect(found, `line ${e.line}: ${e.reason}`).toHaveLength(1);
      expect(found[0]).toMatchObject({ file: jsonl, kind: e.kind, path: e.path });
      expect(found[0]!.reason).toMatch(e.reason);
    }
    expect(report.problems.filter((p) => validLines.includes(p.line))).toEqual([]);
    expect(report.totals).toEqual({
      records: expected.length + validLines.length,
      valid: validLines.length,
      invalid: expected.length,
      problems: expected.length,
    });
  });

  it('detects sharegpt and ultrachat per file and resolves audio against each file', async () => {
    const ds = makeSpeechDataset(tmp());
    const dir = ds.dir;
    writeFileSync(
      join(dir, 'sg.jsonl'),
      `${JSON.stringify({
        id: 'a',
        audios: [ds.records[0]!.audio],
        conversations: [
          { from: 'human', value: '<audio>What is said?' },
          { from: 'gpt', value: 'x' },
        ],
      })}\n`,
    );
    writeFileSync(
      join(dir, 'uc.jsonl'),
      `${JSON.stringify({
        prompt_id: 'p1',
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
        ],
      })}\n`,
    );
    const report = await validateData(registry, { files: [join(dir, 'sg.jsonl'), join(dir, 'uc.jsonl')] });
    expect(report.problems).toEqual([]);
    expect(report.files.map((f) => f.format)).toEqual(['sharegpt', 'ultrachat']);
    expect(report.files[0]!.audioFiles).toBe(1);
  });

  it('reports a missing file and an undetectable format without throwing', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'odd.jsonl'), '{"foo": 1}\n');
    const report = await validateData(registry, { files: [join(dir, 'nope.jsonl'), join(dir, 'odd.jsonl')] });
    expect(report.problems.map((p) => [p.line, p.kind])).toEqual([
      [0, 'format'],
      [1, 'format'],
    ]);
    expect(report.problems[0]!.reason).toMatch(/cannot read file/);
    expect(report.problems[1]!.reason).toMatch(/no known format recognises this record.*pass --format/);
  });

  it('fails fast on an unknown --format with the known names', async () => {
    await expect(validateData(registry, { files: ['x'], format: 'parquet' })).rejects.toThrow(
      /unknown data format "parquet"/,
    );
  });
});
