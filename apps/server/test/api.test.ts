// biome-ignore-all lint/suspicious/noExplicitAny: response bodies are JSON whose shape each test asserts
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { dirname, join } from 'node:path';
import { BenchReport, PreparedManifest, ValidationReport } from '@eaglet/core';
import { makeMalformedDataset, makeSpeechDataset, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BUILTIN_JOB_KINDS, createServer, defineJobKind, JobRecord, StoredEvent } from '../src/index.js';
import {
  http,
  internalErrors,
  nodeHttp,
  openApiChecker,
  type Running,
  slowDataset,
  startTestServer,
  tmp,
  waitForJob,
} from './helpers.js';

const freePort = () =>
  new Promise<number>((resolve) => {
    const srv = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });

const serverErrors = internalErrors();
afterAll(() => expect(serverErrors).toEqual([]));

/** Reads an SSE stream until it ends (or `stopAfter` returns true); returns the parsed messages. */
async function readSse(
  url: string,
  headers: Record<string, string> = {},
  stopAfter: (msgs: { event: string; id?: string; data: any }[]) => boolean = () => false,
) {
  const res = await fetch(url, { headers });
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const messages: { event: string; id?: string; data: any }[] = [];
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let cut = buf.indexOf('\n\n');
    while (cut >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      cut = buf.indexOf('\n\n');
      const lines = block.split('\n').filter((l) => !l.startsWith(':'));
      const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
      if (!data.length) continue;
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? 'message';
      const id = lines.find((l) => l.startsWith('id: '))?.slice(4);
      messages.push({ event, ...(id ? { id } : {}), data: JSON.parse(data.join('\n')) });
    }
    if (stopAfter(messages)) {
      await reader.cancel();
      break;
    }
  }
  return messages;
}

describe('the job API over real HTTP', () => {
  let s: Running;
  let check: ReturnType<typeof openApiChecker>;
  let speech: string;
  let malformed: string;

  beforeAll(async () => {
    s = await startTestServer({ lightJobs: 2 });
    check = openApiChecker(s.server.openapi);
    speech = makeSpeechDataset(join(s.root, 'speech')).jsonl;
    malformed = makeMalformedDataset(join(s.root, 'bad')).jsonl;
  });
  afterAll(() => s.close());

  it('says what it is and which job kinds it runs, with their config schemas', async () => {
    const info = await http(s.url, 'GET', '/api');
    expect(info.status).toBe(200);
    check('GET', '/api', 200, info.json);
    expect(info.json).toMatchObject({ name: 'eaglet', roots: [s.root], auth: false });
    expect(info.json.kinds).toContain('validate');

    const kinds = await http(s.url, 'GET', '/api/kinds');
    check('GET', '/api/kinds', 200, kinds.json);
    const validate = kinds.json.kinds.find((k: any) => k.kind === 'validate');
    expect(validate.configSchema.properties.files.type).toBe('array');
    expect(validate.configSchema.required).toEqual(['files']);
  });

  it('runs a validate job through the same flow as the CLI and streams its events', async () => {
    const created = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', name: 'speech', config: { files: ['speech/data.jsonl'] } },
    });
    expect(created.status).toBe(201);
    check('POST', '/api/jobs', 201, created.json);
    const id = created.json.id;
    expect(created.json.config).toEqual({
      files: [speech],
      format: 'auto',
      purpose: 'train',
      checkAudio: true,
    });

    const messages = await readSse(`${s.url}/api/jobs/${id}/stream`);
    expect(messages[0]!.event).toBe('job');
    expect(messages.at(-1)).toMatchObject({ event: 'end', data: { status: 'succeeded' } });
    const events = messages.filter((m) => m.event === 'message').map((m) => StoredEvent.parse(m.data));
    expect(events.length).toBeGreaterThan(0);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.at(-1)!.event).toMatchObject({ type: 'progress', task: 'validate' });

    const job = await waitForJob(s.url, id);
    const full = await http(s.url, 'GET', `/api/jobs/${id}`);
    check('GET', '/api/jobs/{id}', 200, full.json);
    expect(JobRecord.parse(full.json).status).toBe('succeeded');
    const report = ValidationReport.parse(job.result);
    expect(report).toMatchObject({ ok: true, totals: { records: 5, valid: 5, invalid: 0 } });

    const page = await http(s.url, 'GET', `/api/jobs/${id}/events?after=0&type=progress`);
    check('GET', '/api/jobs/{id}/events', 200, page.json);
    expect(page.json.last).toBe(job.events);
    expect(page.json.events.every((e: any) => e.event.type === 'progress')).toBe(true);

    const list = await http(s.url, 'GET', '/api/jobs?kind=validate&status=succeeded');
    check('GET', '/api/jobs', 200, list.json);
    const listed = list.json.jobs.find((j: any) => j.id === id);
    expect(listed).toBeDefined();
    expect(listed.result).toBeUndefined(); // lists stay small: results come with GET /api/jobs/{id}
  });

  it('reports every invalid record of a malformed file in the job result', async () => {
    const created = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: [malformed] } },
    });
    const job = await waitForJob(s.url, created.json.id);
    expect(job.status).toBe('succeeded'); // the job ran; the data is what is invalid
    const report = ValidationReport.parse(job.result);
    expect(report.ok).toBe(false);
    expect(report.totals.invalid).toBeGreaterThanOrEqual(12);
    expect(report.problems.every((p) => p.line > 0 && p.reason)).toBe(true);
    const logs = await http(s.url, 'GET', `/api/jobs/${job.id}/logs`);
    expect(logs.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(logs.text).toMatch(/# .* succeeded\n$/);
  });

  it("confines the audio files named inside a job's data to the roots, as it does config paths", async () => {
    // A dataset inside the root whose records name audio outside it: by absolute path, by a
    // relative path that climbs out, through a symlink, and by URL. Each is a reported problem
    // (never opened); the record naming a clip inside the root is valid.
    const dir = join(s.root, 'escape');
    mkdirSync(dir, { recursive: true });
    const clip = readdirSync(join(s.root, 'speech', 'audios')).find((f) => f.endsWith('.flac'))!;
    const outside = join(tmp(), 'secret.flac');
    writeFileSync(outside, readFileSync(join(s.root, 'speech', 'audios', clip)));
    symlinkSync(outside, join(dir, 'link.flac'));
    const refs = [
      outside,
      `../../${outside.split('/').slice(-2).join('/')}`,
      './link.flac',
      'https://example.com/a.wav',
      `../speech/audios/${clip}`,
    ];
    const record = (id: string, audio: string) =>
      JSON.stringify({
        id,
        conversations: [
          {
            role: 'user',
            content: [
              { type: 'audio', audio },
              { type: 'text', text: 'What is said?' },
            ],
          },
          { role: 'assistant', content: [{ type: 'text', text: 'Hello.' }] },
        ],
      });
    writeFileSync(join(dir, 'data.jsonl'), `${refs.map((r, i) => record(`r${i}`, r)).join('\n')}\n`);
    const created = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: ['escape/data.jsonl'] } },
    });
    expect(created.status).toBe(201);
    const job = await waitForJob(s.url, created.json.id);
    const report = ValidationReport.parse(job.result);
    expect(report.totals).toMatchObject({ records: 5, valid: 1, invalid: 4 });
    const reasons = Object.fromEntries(report.problems.map((p) => [p.id, p]));
    expect(reasons.r0).toMatchObject({ kind: 'audio', line: 1, path: 'conversations[0].content[0]' });
    expect(reasons.r0!.reason).toMatch(/is outside the allowed roots/);
    expect(reasons.r1!.reason).toMatch(/is outside the allowed roots/);
    expect(reasons.r2!.reason).toMatch(/leads outside the allowed roots through a symlink/);
    expect(reasons.r3!.reason).toMatch(/does not fetch remote audio/);
    expect(reasons.r4).toBeUndefined();
  });

  it('resumes a stream after Last-Event-ID without repeating events', async () => {
    const created = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: [speech] } },
    });
    const job = await waitForJob(s.url, created.json.id);
    const all = await readSse(`${s.url}/api/jobs/${job.id}/stream`);
    const ids = all.filter((m) => m.event === 'message').map((m) => Number(m.id));
    expect(ids.length).toBe(job.events);
    const resumed = await readSse(`${s.url}/api/jobs/${job.id}/stream`, { 'last-event-id': String(ids[0]) });
    expect(resumed.filter((m) => m.event === 'message').map((m) => Number(m.id))).toEqual(ids.slice(1));
    const bad = await http(s.url, 'GET', `/api/jobs/${job.id}/stream`, { headers: { 'last-event-id': 'x' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.issues[0]).toMatchObject({ in: 'header', path: 'last-event-id' });
  });

  it('announces job changes on the global stream', async () => {
    const seen = readSse(`${s.url}/api/stream`, {}, (msgs) =>
      msgs.some((m) => m.event === 'job' && m.data.status === 'succeeded' && m.data.name === 'watched'),
    );
    await new Promise((r) => setTimeout(r, 200));
    await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', name: 'watched', config: { files: [speech] } },
    });
    const msgs = await seen;
    const statuses = msgs.filter((m) => m.data.name === 'watched').map((m) => m.data.status);
    expect(statuses[0]).toMatch(/queued|running/);
    expect(statuses.at(-1)).toBe('succeeded');
    for (const m of msgs) expect(m.data.result).toBeUndefined();
  });

  it('cancels a running job at a safe point and a queued one at once', async () => {
    const slow = slowDataset(join(s.root, 'slow'), 400);
    const a = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: [slow] } },
    });
    const b = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: [slow] } },
    });
    const c = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: [slow] } },
    });
    expect(c.json.status).toBe('queued'); // lightJobs: 2
    const cancelledQueued = await http(s.url, 'POST', `/api/jobs/${c.json.id}/cancel`);
    expect(cancelledQueued.status).toBe(202);
    check('POST', '/api/jobs/{id}/cancel', 202, cancelledQueued.json);
    expect(cancelledQueued.json.status).toBe('cancelled');

    await waitForJob(s.url, a.json.id, (j) => Object.keys(j.progress).length > 0);
    const cancelling = await http(s.url, 'POST', `/api/jobs/${a.json.id}/cancel`);
    expect(cancelling.json.status).toBe('cancelling');
    const done = await waitForJob(s.url, a.json.id);
    expect(done.status).toBe('cancelled');
    expect(done.error.code).toBe('EAGLET_CANCELLED');
    const again = await http(s.url, 'POST', `/api/jobs/${a.json.id}/cancel`);
    expect(again.status).toBe(409);
    await http(s.url, 'POST', `/api/jobs/${b.json.id}/cancel`);
    expect((await waitForJob(s.url, b.json.id)).status).toBe('cancelled');
  }, 300_000);

  it('retries a finished job with the same config, and deletes finished jobs only', async () => {
    const first = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: [speech] } },
    });
    await waitForJob(s.url, first.json.id);
    const retry = await http(s.url, 'POST', `/api/jobs/${first.json.id}/retry`);
    expect(retry.status).toBe(201);
    check('POST', '/api/jobs/{id}/retry', 201, retry.json);
    expect(retry.json.id).not.toBe(first.json.id);
    expect(retry.json.config).toEqual(first.json.config);
    await waitForJob(s.url, retry.json.id);
    const del = await http(s.url, 'DELETE', `/api/jobs/${first.json.id}`);
    expect(del.status).toBe(204);
    const gone = await http(s.url, 'GET', `/api/jobs/${first.json.id}`);
    expect(gone.status).toBe(404);
    check('GET', '/api/jobs/{id}', 404, gone.json);
  });

  it('runs prepare, vocab, train and bench on a real model and real speech, and serves their artifacts', async () => {
    // The tiny model lives in the fixtures cache: a second root makes it reachable.
    const model = tinyQwen2AudioModel();
    const p = await startTestServer({ roots: [tmp(), dirname(model)] });
    try {
      const data = makeSpeechDataset(join(p.root, 'speech')).jsonl;
      const prep = await http(p.url, 'POST', '/api/jobs', {
        body: {
          kind: 'prepare',
          config: { model, data: ['speech/data.jsonl'], out: 'prepared', shardSize: 2 },
        },
      });
      expect(prep.status).toBe(201);
      const prepared = await waitForJob(p.url, prep.json.id, undefined, 180_000);
      expect(prepared.status, JSON.stringify(prepared.error)).toBe('succeeded');
      const manifest = PreparedManifest.parse(prepared.result.manifest);
      expect(manifest.counts.records).toBe(5);
      expect(manifest.counts.written + manifest.counts.rejected).toBe(5); // nothing lost
      expect(manifest.inputs[0]!.file).toBe(data);

      const list = await http(p.url, 'GET', `/api/jobs/${prepared.id}/artifacts`);
      check('GET', '/api/jobs/{id}/artifacts', 200, list.json);
      const kinds = list.json.artifacts.map((a: any) => a.kind);
      expect(kinds).toEqual(expect.arrayContaining(['manifest', 'rejects']));
      const m = list.json.artifacts.find((a: any) => a.kind === 'manifest');
      expect(m).toMatchObject({
        exists: true,
        type: 'file',
        path: join(p.root, 'prepared', 'manifest.json'),
      });
      const file = await http(p.url, 'GET', m.url);
      expect(file.status).toBe(200);
      expect(file.headers.get('content-type')).toMatch(/^application\/json/);
      expect(file.text).toBe(readFileSync(m.path, 'utf8'));
      expect(file.headers.get('content-security-policy')).toMatch(/sandbox/);
      expect(file.headers.get('x-content-type-options')).toBe('nosniff');
      expect((await http(p.url, 'GET', `/api/jobs/${prepared.id}/artifacts/99`)).status).toBe(404);
      const notFolder = await http(p.url, 'GET', `${m.url}?file=x`);
      expect(notFolder.status).toBe(400);
      expect(notFolder.json.error.issues[0]).toMatchObject({ in: 'query', path: 'file' });

      const vocab = await http(p.url, 'POST', '/api/jobs', {
        body: { kind: 'vocab', config: { data: ['prepared'], out: 'vocab.safetensors', draftVocabSize: 64 } },
      });
      const built = await waitForJob(p.url, vocab.json.id, undefined, 120_000);
      expect(built.status, JSON.stringify(built.error)).toBe('succeeded');
      expect(built.result).toMatchObject({ out: join(p.root, 'vocab.safetensors'), draftVocabSize: 64 });
      const v = (await http(p.url, 'GET', `/api/jobs/${built.id}/artifacts`)).json.artifacts[0];
      expect(v).toMatchObject({ kind: 'vocab', type: 'file' });
      const bytes = await fetch(p.url + v.url);
      expect(bytes.headers.get('content-disposition')).toMatch(/^attachment/);
      expect(Buffer.from(await bytes.arrayBuffer()).equals(readFileSync(v.path))).toBe(true);

      // Train a draft: the engine's metrics events are stored and streamed; the export is a folder artifact.
      const t = await http(p.url, 'POST', '/api/jobs', {
        body: {
          kind: 'train',
          config: {
            targetModel: model,
            trainData: ['prepared'],
            vocab: 'vocab.safetensors',
            outputDir: 'train',
            maxSteps: 20,
            logEvery: 5,
            precision: 'fp32',
            device: 'cpu',
            compile: 'off',
            ttt: { steps: 3 },
          },
        },
      });
      expect(t.status, t.text).toBe(201);
      const trained = await waitForJob(p.url, t.json.id, undefined, 300_000);
      expect(trained.status, JSON.stringify(trained.error)).toBe('succeeded');
      check('GET', '/api/jobs/{id}', 200, (await http(p.url, 'GET', `/api/jobs/${trained.id}`)).json);
      expect(trained.result).toMatchObject({ steps: 20, stopped: false });
      const metrics = (await http(p.url, 'GET', `/api/jobs/${trained.id}/events?type=metrics`)).json.events;
      expect(metrics.map((m: any) => m.event.step)).toEqual([5, 10, 15, 20]);
      expect(Object.keys(metrics[0].event.values)).toEqual(
        expect.arrayContaining(['loss', 'acc_0', 'acc_2', 'ploss_0']),
      );
      const trainArtifacts = (await http(p.url, 'GET', `/api/jobs/${trained.id}/artifacts`)).json.artifacts;
      const keys = trainArtifacts.map((a: any) => `${a.kind} ${a.path}`);
      expect(new Set(keys).size).toBe(keys.length); // announced twice (the plot) is listed once
      const draft = trainArtifacts.find((a: any) => a.kind === 'draft');
      expect(draft).toMatchObject({ type: 'directory', exists: true });
      const listing = (await http(p.url, 'GET', draft.url)).json;
      expect(listing.entries.map((e: any) => e.name)).toEqual(
        expect.arrayContaining(['config.json', 'model.safetensors']),
      );
      const draftConfig = await http(p.url, 'GET', `${draft.url}?file=config.json`);
      expect(draftConfig.json.architectures).toEqual(['LlamaForCausalLMEagle3']);

      // Cancel stops a training at a safe point with a checkpoint; a new job resumes from it.
      const trainConfig = { ...t.json.config, outputDir: join(p.root, 'train-long'), maxSteps: 100_000 };
      const long = await http(p.url, 'POST', '/api/jobs', { body: { kind: 'train', config: trainConfig } });
      await waitForJob(p.url, long.json.id, (j) => j.progress.train?.done >= 3, 300_000);
      expect((await http(p.url, 'POST', `/api/jobs/${long.json.id}/cancel`)).json.status).toBe('cancelling');
      const stopped = await waitForJob(p.url, long.json.id, undefined, 300_000);
      expect(stopped.status).toBe('cancelled');
      expect(stopped.result).toMatchObject({ stopped: true });
      expect(stopped.artifacts.map((a: any) => a.kind)).toContain('checkpoint');
      const resumed = await http(p.url, 'POST', '/api/jobs', {
        body: { kind: 'train', config: { ...trainConfig, resume: true, maxSteps: stopped.result.steps + 5 } },
      });
      const finished = await waitForJob(p.url, resumed.json.id, undefined, 300_000);
      expect(finished.status, JSON.stringify(finished.error)).toBe('succeeded');
      expect(finished.result.steps).toBe(stopped.result.steps + 5);
      const logs = (await http(p.url, 'GET', `/api/jobs/${resumed.json.id}/logs`)).text;
      expect(logs).toMatch(/resumed from .* at step/);

      // The benchmark on the embedded backend: the target alone and with the trained draft.
      const b = await http(p.url, 'POST', '/api/jobs', {
        body: {
          kind: 'bench',
          config: {
            targetModel: model,
            draftModel: draft.path,
            testDataPath: 'speech/data.jsonl',
            outputFile: 'bench/report.json',
            numPrompts: 2,
            outputLen: 8,
            numSpecTokens: 3,
            warmupPrompts: 0,
            device: 'cpu',
          },
        },
      });
      expect(b.status, b.text).toBe(201);
      const benched = await waitForJob(p.url, b.json.id, undefined, 300_000);
      expect(benched.status, JSON.stringify(benched.error)).toBe('succeeded');
      check('GET', '/api/jobs/{id}', 200, (await http(p.url, 'GET', `/api/jobs/${benched.id}`)).json);
      const report = BenchReport.parse(benched.result.report);
      expect(report.baseline).toMatchObject({ mode: 'baseline', numPrompts: 2 });
      expect(report.baseline!.throughput).toBeGreaterThan(0);
      expect(report.eagle3!.spec!.acceptanceRatePerPosition).toHaveLength(3);
      expect(report.outputsMatch).toMatchObject({ compared: 2, identical: 2 }); // greedy: Eagle3 changes speed, not output
      const reports = (await http(p.url, 'GET', `/api/jobs/${benched.id}/artifacts`)).json.artifacts;
      const png = reports.find((a: any) => a.path.endsWith('.png'));
      expect(png).toMatchObject({ exists: true, type: 'file' });
      const image = await fetch(p.url + png.url);
      expect(image.headers.get('content-type')).toBe('image/png');
      expect(
        Buffer.from(await image.arrayBuffer())
          .subarray(1, 4)
          .toString(),
      ).toBe('PNG');
    } finally {
      await p.close();
    }
  }, 900_000);

  it('lists folders inside the roots and refuses the rest', async () => {
    const ok = await http(s.url, 'GET', '/api/files?path=speech');
    expect(ok.status).toBe(200);
    check('GET', '/api/files', 200, ok.json);
    expect(ok.json.entries.map((e: any) => e.name)).toEqual(['audios', 'data.jsonl']);
    symlinkSync('/etc', join(s.root, 'etc-link'));
    for (const path of ['..', '/etc', 'speech/../../', 'etc-link', 'etc-link/ssl', '.eaglet/server']) {
      const r = await http(s.url, 'GET', `/api/files?path=${encodeURIComponent(path)}`);
      expect(r.status, path).toBe(403);
      check('GET', '/api/files', 403, r.json);
      expect(r.json.error.issues[0]).toMatchObject({ in: 'query', path: 'path' });
    }
  });

  it('refuses job paths outside the roots, naming the field', async () => {
    symlinkSync('/etc/passwd', join(s.root, 'passwd-link'));
    symlinkSync('/nonexistent/outside/file.jsonl', join(s.root, 'dangling-link'));
    const cases: Array<[unknown, string]> = [
      [['../outside.jsonl'], 'config.files[0]'],
      [[speech, '/etc/passwd'], 'config.files[1]'],
      [['passwd-link'], 'config.files[0]'],
      [['dangling-link'], 'config.files[0]'],
      [['.eaglet/server/jobs/x.jsonl'], 'config.files[0]'],
    ];
    for (const [files, field] of cases) {
      const r = await http(s.url, 'POST', '/api/jobs', { body: { kind: 'validate', config: { files } } });
      expect(r.status, JSON.stringify(files)).toBe(400);
      check('POST', '/api/jobs', 400, r.json);
      expect(r.json.error.issues).toEqual([expect.objectContaining({ in: 'body', path: field })]);
      expect(r.json.error.message).toContain(field);
    }
  });

  it('refuses a model or dataset named by Hub id unless the server runs with --hub', async () => {
    const r = await http(s.url, 'POST', '/api/jobs', {
      body: {
        kind: 'prepare',
        config: { model: 'org/some-model', data: ['org/some-data@main'], out: 'prepared-hub' },
      },
    });
    expect(r.status).toBe(400);
    check('POST', '/api/jobs', 400, r.json);
    expect(r.json.error.issues.map((i: { path: string }) => i.path)).toEqual([
      'config.model',
      'config.data[0]',
    ]);
    expect(r.json.error.issues[0].reason).toMatch(
      /org\/some-model is a Hugging Face Hub id.*start it with --hub/,
    );
  });

  it('answers bad configs with 400 naming each field', async () => {
    const r = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: [], purpose: 'eat', checkAudio: 'yes', extra: 1 } },
    });
    expect(r.status).toBe(400);
    const paths = r.json.error.issues.map((i: any) => i.path).sort();
    expect(paths).toEqual(['config.checkAudio', 'config.extra', 'config.files', 'config.purpose']);
    const unknownFormat = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: [speech], format: 'nope' } },
    });
    expect(unknownFormat.json.error.issues[0]).toMatchObject({ path: 'config.format' });
    expect(unknownFormat.json.error.issues[0].reason).toMatch(/known: auto, openai-conversations/);
    const unknownKind = await http(s.url, 'POST', '/api/jobs', { body: { kind: 'teleport', config: {} } });
    expect(unknownKind.json.error.issues[0]).toMatchObject({ path: 'kind' });
    expect(unknownKind.json.error.issues[0].reason).toMatch(/known: validate/);
  });

  it("checks a bench's backendOptions with the chosen backend's own schema and confines the paths in them", async () => {
    const bench = async (config: Record<string, unknown>) => {
      const r = await http(s.url, 'POST', '/api/jobs', {
        body: {
          kind: 'bench',
          config: { targetModel: 'model', testDataPath: speech, outputFile: 'b/r.json', ...config },
        },
      });
      expect(r.status, r.text).toBe(400);
      check('POST', '/api/jobs', 400, r.json);
      return r.json.error.issues as Array<{ path: string; reason: string }>;
    };
    // No backend named: the default (the embedded torch backend) judges the options.
    const torch = await bench({ backendOptions: { cpuThreads: -1, gpuMemoryUtilization: 0.5 } });
    expect(torch.map((i) => i.path).sort()).toEqual([
      'config.backendOptions.cpuThreads',
      'config.backendOptions.gpuMemoryUtilization',
    ]);
    expect(torch.find((i) => i.path.endsWith('cpuThreads'))!.reason).toMatch(/backend torch/);
    expect(torch.find((i) => i.path.endsWith('gpuMemoryUtilization'))!.reason).toMatch(
      /backend torch has no such option \(it takes: cpuThreads\)/,
    );
    const vllm = await bench({ backend: 'vllm', backendOptions: { enforceEager: 'yes' } });
    expect(vllm).toEqual([
      {
        in: 'body',
        path: 'config.backendOptions.enforceEager',
        reason: expect.stringMatching(/backend vllm/),
      },
    ]);
    // vLLM's Python is a program the job would run: a path like the others, kept inside the roots.
    const outside = await bench({ backend: 'vllm', backendOptions: { vllmPython: '/usr/bin/python3' } });
    expect(outside).toEqual([
      expect.objectContaining({
        path: 'config.backendOptions.vllmPython',
        reason: expect.stringMatching(/outside the allowed roots/),
      }),
    ]);
    expect(await bench({ backend: 'teleport' })).toEqual([
      expect.objectContaining({
        path: 'config.backend',
        reason: expect.stringMatching(/unknown backend "teleport" \(known: torch, vllm/),
      }),
    ]);
  });

  it('limits the body size', async () => {
    const big = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: ['x'.repeat(300 * 1024)] } },
    });
    expect(big.status).toBe(413);
    check('POST', '/api/jobs', 413, big.json);
  });
});

describe('regenerate', () => {
  it("answers the user turns again through the embedded backend's real OpenAI server", async () => {
    const model = tinyQwen2AudioModel();
    const p = await startTestServer({ roots: [tmp(), dirname(model)] });
    const { createEaglet, serveBackend } = await import('@eaglet/flows');
    const { registry } = await createEaglet({ cwd: p.root });
    const port = await freePort();
    const backend = await serveBackend(registry, {
      backend: 'torch',
      target: 'qwen2-audio',
      targetModel: model,
      host: '127.0.0.1',
      port,
      maxModelLen: 4096,
    });
    try {
      makeSpeechDataset(join(p.root, 'speech'));
      const created = await http(p.url, 'POST', '/api/jobs', {
        body: {
          kind: 'regenerate',
          config: {
            data: ['speech/data.jsonl'],
            outputDir: 'regen',
            basePort: port,
            maxTokens: 8,
            concurrency: 2,
          },
        },
      });
      expect(created.status, created.text).toBe(201);
      const job = await waitForJob(p.url, created.json.id, undefined, 300_000);
      expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
      expect(job.result).toMatchObject({ total: 5, written: 5, rejected: 0 });
      const shards = (await http(p.url, 'GET', `/api/jobs/${job.id}/artifacts`)).json.artifacts.filter(
        (a: any) => a.kind === 'shard',
      );
      expect(shards.length).toBeGreaterThan(0);
      const lines = (await http(p.url, 'GET', shards[0].url)).text.trim().split('\n');
      expect(lines.length).toBe(5);
    } finally {
      await backend.stop();
      await p.close();
    }
  }, 600_000);
});

describe('artifact serving', () => {
  // A job kind made for this test: it announces whatever paths it is given, as a flow would. What
  // is tested is the server's side: which announced paths it serves, and how.
  const announce = defineJobKind({
    kind: 'announce',
    title: 'Announce artifacts',
    description: 'test only',
    resource: 'light',
    config: z.strictObject({ paths: z.array(z.string()) }),
    run: async ({ config, events }) => {
      for (const path of config.paths) events({ type: 'artifact', kind: 'file', path });
    },
  });

  it('serves files and folders inside the roots, with any name, and nothing outside', async () => {
    const root = tmp();
    const { registry } = await (await import('@eaglet/flows')).createEaglet({ cwd: root });
    const server = await createServer(
      { roots: [root], port: 0 },
      { registry, kinds: [...BUILTIN_JOB_KINDS, announce] },
    );
    const url = await server.listen();
    try {
      mkdirSync(join(root, 'draft', 'sub'), { recursive: true });
      writeFileSync(join(root, 'draft', 'config.json'), '{"a":1}');
      writeFileSync(join(root, 'draft', 'sub', 'x.txt'), 'inner');
      writeFileSync(join(root, 'plot ünïcode 😀.png'), 'not really a png');
      symlinkSync('/etc/passwd', join(root, 'draft', 'passwd'));
      const paths = [
        join(root, 'draft'),
        join(root, 'plot ünïcode 😀.png'),
        '/etc/hostname',
        join(root, 'gone.json'),
      ];
      const created = await http(url, 'POST', '/api/jobs', { body: { kind: 'announce', config: { paths } } });
      const job = await waitForJob(url, created.json.id);
      const list = (await http(url, 'GET', `/api/jobs/${job.id}/artifacts`)).json.artifacts;
      expect(list.map((a: any) => a.type)).toEqual(['directory', 'file', 'file', 'missing']);

      const folder = await http(url, 'GET', `/api/jobs/${job.id}/artifacts/0`);
      expect(folder.json.entries.map((e: any) => [e.name, e.type])).toEqual([
        ['sub', 'directory'],
        ['config.json', 'file'],
        ['passwd', 'other'],
      ]);
      expect((await http(url, 'GET', `/api/jobs/${job.id}/artifacts/0?file=config.json`)).text).toBe(
        '{"a":1}',
      );
      expect((await http(url, 'GET', `/api/jobs/${job.id}/artifacts/0?file=sub%2Fx.txt`)).text).toBe('inner');
      for (const file of ['..%2F..%2Fetc%2Fpasswd', 'passwd', '%2Fetc%2Fpasswd', 'sub%2F..%2F..%2Fplot']) {
        const r = await http(url, 'GET', `/api/jobs/${job.id}/artifacts/0?file=${file}`);
        expect(r.status, file).toBe(400);
        expect(r.json.error.issues[0]).toMatchObject({ in: 'query', path: 'file' });
      }
      const odd = await fetch(`${url}/api/jobs/${job.id}/artifacts/1`);
      expect(odd.status).toBe(200);
      expect(odd.headers.get('content-disposition')).toBe(
        `inline; filename="plot _n_code __.png"; filename*=UTF-8''${encodeURIComponent('plot ünïcode 😀.png')}`,
      );
      expect(await odd.text()).toBe('not really a png');
      const outside = await http(url, 'GET', `/api/jobs/${job.id}/artifacts/2`);
      expect(outside.status).toBe(403);
      expect(outside.json.error.code).toBe('EAGLET_PATH_REFUSED');
      expect((await http(url, 'GET', `/api/jobs/${job.id}/artifacts/3`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

describe('a full queue', () => {
  it('answers 429 beyond the queue limit and takes jobs again once it drains', async () => {
    const s = await startTestServer({ lightJobs: 1, queuedJobs: 1 });
    try {
      const slow = slowDataset(join(s.root, 'slow'), 60);
      const a = await http(s.url, 'POST', '/api/jobs', {
        body: { kind: 'validate', config: { files: [slow] } },
      });
      const b = await http(s.url, 'POST', '/api/jobs', {
        body: { kind: 'validate', config: { files: [slow] } },
      });
      expect([a.json.status, b.json.status]).toEqual(['running', 'queued']);
      const c = await http(s.url, 'POST', '/api/jobs', {
        body: { kind: 'validate', config: { files: [slow] } },
      });
      expect(c.status).toBe(429);
      expect(c.json.error.code).toBe('EAGLET_QUEUE_FULL');
      await http(s.url, 'POST', `/api/jobs/${b.json.id}/cancel`);
      const d = await http(s.url, 'POST', '/api/jobs', {
        body: { kind: 'validate', config: { files: [slow] } },
      });
      expect(d.status).toBe(201);
      for (const id of [a.json.id, d.json.id]) await http(s.url, 'POST', `/api/jobs/${id}/cancel`);
    } finally {
      await s.close();
    }
  }, 300_000);
});

describe('the server refuses to start unsafely', () => {
  const registryFor = async (root: string) => (await import('@eaglet/flows')).createEaglet({ cwd: root });

  it('needs a token to listen beyond loopback, and a long one', async () => {
    const root = tmp();
    const { registry } = await registryFor(root);
    await expect(createServer({ host: '0.0.0.0', roots: [root] }, { registry })).rejects.toMatchObject({
      code: 'EAGLET_SERVER_TOKEN_REQUIRED',
    });
    await expect(createServer({ host: '::', roots: [root] }, { registry })).rejects.toMatchObject({
      code: 'EAGLET_SERVER_TOKEN_REQUIRED',
    });
    await expect(createServer({ roots: [root], token: 'short' }, { registry })).rejects.toMatchObject({
      code: 'EAGLET_SERVER_TOKEN_WEAK',
    });
    await expect(createServer({ roots: [join(root, 'missing')] }, { registry })).rejects.toMatchObject({
      code: 'EAGLET_SERVER_CONFIG',
    });
  });

  it('lets one server at a time use a state folder', async () => {
    const a = await startTestServer();
    const { registry } = await registryFor(a.root);
    await expect(createServer({ roots: [a.root], port: 0 }, { registry })).rejects.toMatchObject({
      code: 'EAGLET_SERVER_LOCKED',
    });
    await a.close();
    const b = await createServer({ roots: [a.root], port: 0 }, { registry });
    await b.close();
  });
});

describe('with a token', () => {
  const token = 'test-token-0123456789abcdef';
  let s: Running;
  beforeAll(async () => {
    s = await startTestServer({ token });
  });
  afterAll(() => s.close());

  it('refuses the API without it, accepts a bearer header or the session cookie', async () => {
    const none = await http(s.url, 'GET', '/api/jobs');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/Bearer/);
    expect(
      (await http(s.url, 'GET', '/api/jobs', { headers: { authorization: 'Bearer wrong-token-000000000' } }))
        .status,
    ).toBe(401);
    expect(
      (await http(s.url, 'GET', '/api/jobs', { headers: { authorization: `Bearer ${token}` } })).status,
    ).toBe(200);

    const wrong = await http(s.url, 'POST', '/api/session', { body: { token: 'nope' } });
    expect(wrong.status).toBe(401);
    const session = await http(s.url, 'POST', '/api/session', { body: { token } });
    expect(session.status).toBe(204);
    const cookie = session.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const withCookie = await http(s.url, 'GET', '/api/jobs', { headers: { cookie: cookie.split(';')[0]! } });
    expect(withCookie.status).toBe(200);
    // The page and the API description are public; the page asks for the token.
    expect((await http(s.url, 'GET', '/')).status).toBe(200);
    expect((await http(s.url, 'GET', '/api/openapi.json')).status).toBe(200);
  });
});

describe('browser-borne attacks', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s.close());

  it('refuses a foreign Host (DNS rebinding) and a foreign Origin (cross-site requests)', async () => {
    const rebound = await nodeHttp(s.url, 'GET', '/api/jobs', { host: 'attacker.example:8765' });
    expect(rebound.status).toBe(403);
    expect(rebound.json.error.issues[0]).toMatchObject({ in: 'header', path: 'host' });
    const crossSite = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: ['x'] } },
      headers: { origin: 'http://attacker.example' },
    });
    expect(crossSite.status).toBe(403);
    expect(crossSite.json.error.issues[0]).toMatchObject({ in: 'header', path: 'origin' });
    const form = await http(s.url, 'POST', '/api/jobs', {
      raw: 'kind=validate',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    const sameOrigin = await http(s.url, 'GET', '/api', { headers: { origin: s.url } });
    expect(sameOrigin.status).toBe(200);
  });

  it('serves the page with a strict content security policy', async () => {
    const page = await http(s.url, 'GET', '/');
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    for (const asset of [
      '/app.js',
      '/charts.js',
      '/format.js',
      '/results.js',
      '/style.css',
      '/vendor/uPlot.esm.js',
    ]) {
      expect((await http(s.url, 'GET', asset)).status, asset).toBe(200);
    }
  });
});
