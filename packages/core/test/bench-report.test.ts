import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BenchConfig,
  benchReportMarkdown,
  buildBenchReport,
  compareOutputs,
  percentile,
  specDecodeStats,
  toOpenAIMessages,
} from '../src/index.js';

describe('benchmark figures', () => {
  it('percentiles interpolate linearly like numpy', () => {
    const v = [4, 1, 3, 2, 10];
    expect(percentile(v, 50)).toBe(3);
    expect(percentile(v, 90)).toBeCloseTo(7.6); // numpy.percentile([1,2,3,4,10], 90)
    expect(percentile([5], 90)).toBe(5);
  });

  it('acceptance length is 1 + accepted / drafts, per position over drafts (vLLM counters)', () => {
    const s = specDecodeStats({
      numDrafts: 10,
      numDraftTokens: 30,
      numAcceptedTokens: 18,
      acceptedPerPosition: [9, 6, 3],
    });
    expect(s.meanAcceptanceLength).toBeCloseTo(2.8);
    expect(s.draftAcceptanceRate).toBeCloseTo(0.6);
    expect(s.acceptanceRatePerPosition).toEqual([0.9, 0.6, 0.3]);
  });

  it('compares outputs token for token and finds the first difference', () => {
    const a = [
      { id: 'x', ids: [1, 2, 3] },
      { id: 'y', ids: [4, 5] },
    ];
    expect(compareOutputs([{ baseline: a, eagle3: a }])).toEqual({ compared: 2, identical: 2 });
    expect(compareOutputs([{ baseline: a, eagle3: [a[0]!, { id: 'y', ids: [4, 6] }] }])).toEqual({
      compared: 2,
      identical: 1,
      firstMismatch: { prompt: 1, id: 'y', position: 1 },
    });
  });

  it('builds a validated report with speedup, definitions and Markdown', () => {
    // A report is built from the config the backend ran: its backend and target resolved.
    const config = {
      ...BenchConfig.parse({
        targetModel: '/m',
        draftModel: '/d',
        outputFile: '/o.json',
        testDataPath: '/t.jsonl',
      }),
      backend: 'torch',
      target: 'qwen2-audio',
    };
    const req = (id: string, tokens: number, latency: number) => ({
      id,
      promptTokens: 10,
      outputTokens: tokens,
      latency,
    });
    const outputs = [{ id: 'a', ids: [1] }];
    const baseline = { requests: [req('a', 100, 2), req('b', 100, 2)], outputs, wallSeconds: 4 };
    const eagle3 = {
      requests: [req('a', 100, 1), req('b', 100, 1)],
      outputs,
      wallSeconds: 2,
      counters: { numDrafts: 80, numDraftTokens: 160, numAcceptedTokens: 120, acceptedPerPosition: [70, 50] },
    };
    // Three rounds that agree: a measurement the report presents as a result.
    const report = buildBenchReport({
      config,
      device: 'cpu',
      rounds: [0, 1, 2].map((i) => ({
        order: i % 2 ? (['eagle3', 'baseline'] as const) : (['baseline', 'eagle3'] as const),
        baseline,
        eagle3,
      })),
    });
    expect(report.speedup).toBeCloseTo(2);
    expect(report.latencySpeedup).toBeCloseTo(2);
    expect(report.eagle3?.spec?.meanAcceptanceLength).toBeCloseTo(2.5);
    expect(report.outputsMatch).toEqual({ compared: 1, identical: 1 });
    expect(report.definitions.meanAcceptanceLength).toMatch(/1 \+ accepted \/ drafts/);
    const md = benchReportMarkdown(report);
    expect(md).toMatch(/Speedup \(throughput\): 2\.00x/);
    expect(md).toMatch(/\| acceptance rate \| 0\.875 \| 0\.625 \|/);
    expect(md).toMatch(/1 of 1 Eagle3 outputs equal the baseline's/);
  });

  it('the seed default num_spec_tokens is 2 and every seed flag maps to a BenchConfig field', () => {
    const c = BenchConfig.parse({ targetModel: '/m', outputFile: '/o', testDataPath: '/t' });
    expect([
      c.numSpecTokens,
      c.numPrompts,
      c.temperature,
      c.maxModelLen,
      c.outputLen,
      c.maxNumSeqs,
      c.tp,
    ]).toEqual([2, 100, 0, 16384, 1024, 1, 1]);
  });
});

describe('OpenAI messages from canonical ones', () => {
  it('sends audio as input_audio (base64 + format) or audio_url (file://), text turns as strings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-oa-'));
    const wav = join(dir, 'a.wav');
    writeFileSync(wav, Buffer.from('RIFFfake'));
    const messages = [
      { role: 'system' as const, content: [{ type: 'text' as const, text: 'be brief' }] },
      {
        role: 'user' as const,
        content: [
          { type: 'audio' as const, audio: wav },
          { type: 'text' as const, text: 'What is said?' },
        ],
      },
    ];
    const inline = await toOpenAIMessages(messages, 'input_audio');
    expect(inline[0]).toEqual({ role: 'system', content: 'be brief' });
    expect(inline[1]!.content).toEqual([
      {
        type: 'input_audio',
        input_audio: { data: Buffer.from('RIFFfake').toString('base64'), format: 'wav' },
      },
      { type: 'text', text: 'What is said?' },
    ]);
    const byUrl = await toOpenAIMessages(messages, 'audio_url');
    expect(byUrl[1]!.content).toContainEqual({ type: 'audio_url', audio_url: { url: `file://${wav}` } });
    await expect(
      toOpenAIMessages(
        [{ role: 'user', content: [{ type: 'audio', audio: join(dir, 'none.flac') }] }],
        'input_audio',
      ),
    ).rejects.toMatchObject({ code: 'EAGLET_AUDIO_MISSING' });
  });
});
