import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSpeechDataset, randomEagle3Draft, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { createEaglet, describeTarget } from '@eaglet/flows';
import { describe, expect, it } from 'vitest';
import { eaglet } from './helpers.js';

describe('eaglet bench on the embedded backend (tiny Qwen2-Audio, real speech)', () => {
  it('runs baseline and Eagle3 on the same prompts; greedy Eagle3 output equals the baseline; JSON, Markdown and plot', async () => {
    const model = tinyQwen2AudioModel();
    // The draft reads the layers the target's plugin declares.
    const { registry } = await createEaglet({ cwd: tmpdir() });
    const { info } = await describeTarget(registry, { model });
    const draft = randomEagle3Draft(model, { auxLayerIds: info.auxLayerIds });
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-bench-'));
    const data = makeSpeechDataset(join(dir, 'speech'));
    const out = join(dir, 'out', 'report.json');
    // The seed script's own flag spellings.
    const r = await eaglet(
      [
        'bench',
        '--target_model',
        model,
        '--draft_model',
        draft,
        '--use_eagle',
        '--test_data_path',
        data.jsonl,
        '--output_file',
        out,
        '--num_prompts',
        '3',
        '--output_len',
        '12',
        '--num_spec_tokens',
        '3',
        '--temp',
        '0',
        '--device',
        'cpu',
        '--backend-option', // the embedded backend's own setting
        'cpuThreads=1',
        '--json',
      ],
      { timeoutMs: 400_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.baseline.numPrompts).toBe(3);
    expect(report.eagle3.numPrompts).toBe(3);
    expect(report.outputsMatch).toEqual({ compared: 3, identical: 3 });
    const spec = report.eagle3.spec;
    expect(spec.numDraftTokens).toBe(3 * spec.numDrafts);
    expect(spec.acceptedPerPosition).toHaveLength(3);
    expect(spec.meanAcceptanceLength).toBeCloseTo(1 + spec.numAcceptedTokens / spec.numDrafts);
    expect(report.speedup).toBeGreaterThan(0);
    expect(report.config.numSpecTokens).toBe(3);
    for (const f of ['report.md', 'report.png']) expect(existsSync(join(dir, 'out', f))).toBe(true);
    expect(readFileSync(join(dir, 'out', 'report.md'), 'utf8')).toMatch(
      /3 of 3 Eagle3 outputs equal the baseline's token for token/,
    );
    // The default: three rounds after a warm-up, the order alternating, each with its speedup.
    expect(report.rounds.map((x: { order: string[] }) => x.order)).toEqual([
      ['baseline', 'eagle3'],
      ['eagle3', 'baseline'],
      ['baseline', 'eagle3'],
    ]);
    for (const round of report.rounds) expect(round.speedup).toBeGreaterThan(0);
    expect(report.speedupInterval.low).toBeLessThanOrEqual(report.speedup);
    expect(report.speedupInterval.high).toBeGreaterThanOrEqual(report.speedup);
    expect(report.speedupBound).toBeCloseTo(spec.meanAcceptanceLength);
    expect(typeof report.trustworthy).toBe('boolean');
  }, 420_000);

  it('says plainly that one round is not trustworthy, on stdout and stderr', async () => {
    const model = tinyQwen2AudioModel();
    const { registry } = await createEaglet({ cwd: tmpdir() });
    const { info } = await describeTarget(registry, { model });
    const draft = randomEagle3Draft(model, { auxLayerIds: info.auxLayerIds });
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-bench-one-'));
    const data = makeSpeechDataset(join(dir, 'speech'));
    const r = await eaglet(
      [
        'bench',
        '--target-model',
        model,
        '--draft-model',
        draft,
        '--test-data-path',
        data.jsonl,
        '--output-file',
        join(dir, 'report.json'),
        '--num-prompts',
        '1',
        '--output-len',
        '8',
        '--rounds',
        '1',
        '--device',
        'cpu',
        '--backend-option',
        'cpuThreads=1',
      ],
      { timeoutMs: 400_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /\*\*Speedup: not trustworthy\.\*\* The measured \d+\.\d\dx .* is not a result, because:/,
    );
    expect(r.stdout).toMatch(/- only 1 round was measured/);
    expect(r.stdout).not.toMatch(/Speedup \(throughput\)/);
    expect(r.stderr).toMatch(/warn: the measured speed is not trustworthy: only 1 round was measured/);
    expect(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'))).toMatchObject({
      schemaVersion: 2,
      trustworthy: false,
      rounds: [{ round: 1, order: ['baseline', 'eagle3'] }],
    });
  }, 420_000);
});
