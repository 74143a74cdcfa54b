// biome-ignore-all lint/suspicious/noExplicitAny: response bodies are JSON whose shape each test asserts
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { PREPARED_FILES, type TrainConfigInput, ValidationReport } from '@eaglet/core';
import { hlsPlaylist, librivoxClips, makeSpeechDataset, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { buildVocab, createEaglet, LOCK_FILE, prepareData, train } from '@eaglet/flows';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { http, type Running, sleep, slowDataset, startTestServer, tmp, waitForJob } from './helpers.js';

/**
 * The server's side of issue 13's defects: audio a job may not open, `Origin: null`, and a
 * training job whose server is killed with -9, retried. docs/reliability.md lists the promises.
 */
process.env.OMP_NUM_THREADS ??= '1'; // tiny models on a shared CPU

describe('audio inside a job (defect 1: an inline playlist read a file outside the roots)', () => {
  let s: Running;
  let model: string;
  beforeAll(async () => {
    model = tinyQwen2AudioModel();
    s = await startTestServer({ roots: [tmp(), dirname(model)] });
  });
  afterAll(() => s.close());

  it('an inline m3u8 naming a file outside the roots: validate reports it, prepare rejects it, no sample of it is written', async () => {
    const speech = makeSpeechDataset(join(s.root, 'speech'));
    const secret = join(tmp(), 'secret.flac');
    spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', librivoxClips()[1]!.path, secret]);
    const playlist = Buffer.from(hlsPlaylist(secret)).toString('base64');
    const hostile = {
      id: 'hostile',
      conversations: [
        {
          role: 'user',
          content: [
            { type: 'input_audio', input_audio: { data: playlist, format: 'm3u8' } },
            { type: 'text', text: 'What is said?' },
          ],
        },
        { role: 'assistant', content: 'HELLO' },
      ],
    };
    const good = readFileSync(speech.jsonl, 'utf8').split('\n')[0]!;
    writeFileSync(join(s.root, 'speech', 'hostile.jsonl'), `${JSON.stringify(hostile)}\n${good}\n`);

    const p = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'prepare', config: { model, data: ['speech/hostile.jsonl'], out: 'prepared' } },
    });
    const prepared = await waitForJob(s.url, p.json.id, undefined, 180_000);
    expect(prepared.status, JSON.stringify(prepared.error)).toBe('succeeded');
    expect(prepared.result.manifest.counts).toMatchObject({ records: 2, written: 1, rejected: 1 });
    // The one written row holds the good record's clip alone (7.1 s), nothing of the secret's.
    expect(prepared.result.manifest.stats.audioClips).toBe(1);
    expect(prepared.result.manifest.stats.audioSeconds).toBeCloseTo(7.1, 1);
    const reject = JSON.parse(readFileSync(join(s.root, 'prepared', PREPARED_FILES.rejects), 'utf8'));
    expect(reject).toMatchObject({ id: 'hostile', kind: 'audio', code: 'EAGLET_AUDIO_REFUSED' });

    const v = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: ['speech/hostile.jsonl'] } },
    });
    const report = ValidationReport.parse((await waitForJob(s.url, v.json.id)).result);
    expect(report.totals).toMatchObject({ records: 2, valid: 1, invalid: 1 });
    expect(report.problems[0]).toMatchObject({ id: 'hostile', kind: 'audio' });
    expect(report.problems[0]!.reason).toMatch(/container "hls" is not one eaglet decodes/);
  }, 300_000);
});

describe('Origin: null (defect 6: a sandboxed page cancelled a job)', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s.close());

  it('is refused like any foreign origin, and the job runs on', async () => {
    const slow = slowDataset(join(s.root, 'slow'), 300);
    const job = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: [slow] } },
    });
    await waitForJob(s.url, job.json.id, (j) => j.status === 'running');
    const cancel = await http(s.url, 'POST', `/api/jobs/${job.json.id}/cancel`, {
      headers: { origin: 'null' },
    });
    expect(cancel.status).toBe(403);
    expect(cancel.json.error).toMatchObject({
      code: 'EAGLET_FORBIDDEN_ORIGIN',
      message: expect.stringMatching(/null/),
    });
    expect((await http(s.url, 'GET', '/api/jobs', { headers: { origin: 'null' } })).status).toBe(403);
    expect((await http(s.url, 'GET', `/api/jobs/${job.json.id}`)).json.status).toBe('running');
    await http(s.url, 'POST', `/api/jobs/${job.json.id}/cancel`);
  }, 120_000);
});

const SERVE = join(import.meta.dirname, 'fixtures', 'serve.mjs');
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** A server in its own process (the built package, as `eaglet serve` runs it). */
function serve(options: object): Promise<{ child: ChildProcess; url: string; interrupted: string[] }> {
  const child = spawn(process.execPath, [SERVE, JSON.stringify({ port: 0, ...options })], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: join(import.meta.dirname, '..'),
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    createInterface({ input: child.stdout! }).once('line', (line) => resolve({ child, ...JSON.parse(line) }));
  });
}

/** Whether a process lives (a zombie, exited but not reaped, does not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

describe('a training job whose server is killed with -9 (defect 2: a retry started over)', () => {
  it('retried on a new server, continues from its last checkpoint and ends with the weights of an uninterrupted run', async () => {
    const root = tmp();
    const model = tinyQwen2AudioModel();
    const { registry } = await createEaglet({ cwd: root });
    const speech = makeSpeechDataset(join(root, 'speech'), {
      espeak: ['Speculative decoding makes models faster.'],
    });
    const prepared = (
      await prepareData(registry, { model, data: [speech.jsonl], out: join(root, 'prepared') })
    ).out;
    const vocab = (
      await buildVocab({ data: [prepared], out: join(root, 'vocab.safetensors'), draftVocabSize: 32000 })
    ).out;
    const config = (outputDir: string): TrainConfigInput => ({
      targetModel: model,
      trainData: [prepared],
      vocab,
      outputDir,
      maxSteps: 10,
      epochs: 100,
      saveEvery: 2,
      keepCheckpoints: 10,
      logEvery: 1,
      batching: { maxTokens: 2048, maxRecords: 1 },
      ttt: { steps: 2 },
      device: 'cpu',
      precision: 'fp32',
      compile: 'off',
      plot: false,
    });
    const whole = await train(registry, { fields: config(join(root, 'whole')) });
    expect(whole.steps).toBe(10);

    const a = await serve({ roots: [root, dirname(model)] });
    const outputDir = join(root, 'killed');
    const job = await http(a.url, 'POST', '/api/jobs', {
      body: { kind: 'train', config: config(outputDir) },
    });
    expect(job.status, job.text).toBe(201);
    // Killed mid-run, after its first checkpoint (step 2) and at least one step past it.
    const before = await waitForJob(
      a.url,
      job.json.id,
      (j) => j.artifacts.some((x: any) => x.kind === 'checkpoint') && j.progress.train?.done >= 3,
      300_000,
    );
    expect(before.status).toBe('running');
    const holder = JSON.parse(readFileSync(join(outputDir, LOCK_FILE), 'utf8'));
    expect(holder).toMatchObject({ command: 'eaglet train', pids: [a.child.pid, expect.any(Number)] });
    a.child.kill('SIGKILL');
    // The engine outlives its server for a moment (it notices at its next event); the lock names
    // it, so nothing else trains into the folder until it is gone.
    const engine = holder.pids[1] as number;
    for (let t = 0; alive(engine) && t < 600; t++) await sleep(100);
    expect(alive(engine)).toBe(false);

    const b = await serve({ roots: [root, dirname(model)] });
    expect(b.interrupted).toEqual([job.json.id]);
    const retry = await http(b.url, 'POST', `/api/jobs/${job.json.id}/retry`);
    expect(retry.status, retry.text).toBe(201);
    expect(retry.json.config).toMatchObject({ resume: true, overwrite: false });
    const done = await waitForJob(b.url, retry.json.id, undefined, 300_000);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.result).toMatchObject({ steps: 10, stopped: false });
    const logs = (await http(b.url, 'GET', `/api/jobs/${retry.json.id}/logs`)).text;
    const resumedAt = Number(/resumed from .* at step (\d+)/.exec(logs)?.[1]);
    expect(resumedAt).toBeGreaterThanOrEqual(2);
    expect(resumedAt).toBeLessThan(10);
    const steps = readFileSync(join(outputDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).step);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]); // once each: the killed run's tail was dropped
    const weights = (draft: string) => readFileSync(join(draft, 'model.safetensors'));
    expect(weights(done.result.draft.vllm).equals(weights(whole.draft!.vllm!))).toBe(true);
    expect(existsSync(join(outputDir, LOCK_FILE))).toBe(false);
    b.child.kill('SIGTERM');
  }, 900_000);
});
