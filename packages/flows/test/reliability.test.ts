import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type PluginRegistry, PREPARED_FILES } from '@eaglet/core';
import {
  hlsPlaylist,
  librivoxClips,
  makeSpeechDataset,
  type SpeechDataset,
  tinyQwen2AudioModel,
  truncatedFlac,
} from '@eaglet/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AudioAccess,
  buildVocab,
  createEaglet,
  LOCK_FILE,
  prepareData,
  type RejectLine,
  regenerate,
  train,
  validateData,
} from '../src/index.js';
import { type TinyOpenAIServer, tinyOpenAIServer } from './tiny-openai-server.js';

/**
 * One test per defect found by probing eaglet as a hostile-but-fair user would (issue 13), each
 * with real parts: real ffmpeg, real speech, the tiny Qwen2-Audio and the real engine, a real
 * HTTP endpoint. docs/reliability.md lists the promise each one keeps.
 */
const tmp = () => realpathSync(mkdtempSync(join(tmpdir(), 'eaglet-rel-')));
process.env.OMP_NUM_THREADS ??= '1'; // tiny models on a shared CPU

const user = (parts: unknown[]) => ({ role: 'user', content: parts });
const text = (t: string) => ({ type: 'text', text: t });
const reply = { role: 'assistant', content: [text('HELLO')] };
const jsonl = (path: string, records: unknown[]) =>
  writeFileSync(path, `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
const rejects = (out: string): RejectLine[] =>
  readFileSync(join(out, PREPARED_FILES.rejects), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

let registry: PluginRegistry;
let model: string;
/** A dataset folder (the "root" a server would confine audio to) and a clip outside it. */
let root: string;
let speech: SpeechDataset;
let secret: string;
/** The HTTP app's policy: local audio only inside the root (inline data is never asked about). */
let insideRoot: AudioAccess;
let trainInputs: { prepared: string; vocab: string } | undefined;

beforeAll(async () => {
  registry = (await createEaglet({ cwd: tmp() })).registry;
  model = tinyQwen2AudioModel();
  root = tmp();
  speech = makeSpeechDataset(join(root, 'data'));
  secret = join(tmp(), 'secret.flac');
  spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', librivoxClips()[1]!.path, secret]);
  insideRoot = (ref) => {
    if (!ref.startsWith(`${root}/`)) throw new Error(`${ref} is outside the allowed roots`);
  };
  const prepared = (await prepareData(registry, { model, data: [speech.jsonl], out: join(root, 'prepared') }))
    .out;
  const vocab = (
    await buildVocab({ data: [prepared], out: join(root, 'vocab.safetensors'), draftVocabSize: 32000 })
  ).out;
  trainInputs = { prepared, vocab };
}, 300_000);

describe('audio eaglet refuses to open (defect 1: a playlist read files outside the roots)', () => {
  it('an inline m3u8 naming a file outside, and a playlist file: validate and prepare refuse both, naming the container', async () => {
    writeFileSync(join(root, 'data', 'list.m3u8'), hlsPlaylist(secret));
    const inline = {
      type: 'input_audio',
      input_audio: { data: Buffer.from(hlsPlaylist(secret)).toString('base64'), format: 'm3u8' },
    };
    const file = join(root, 'data', 'playlists.jsonl');
    jsonl(file, [
      { id: 'inline', conversations: [user([inline, text('What is said?')]), reply] },
      {
        id: 'on-disk',
        conversations: [user([{ type: 'audio', audio: './list.m3u8' }, text('And here?')]), reply],
      },
      JSON.parse(readFileSync(speech.jsonl, 'utf8').split('\n')[0]!),
    ]);

    const out = join(root, 'prepared-playlists');
    const prepared = await prepareData(registry, { model, data: [file], out }, { audioAccess: insideRoot });
    expect(prepared.manifest.counts).toMatchObject({ records: 3, written: 1, rejected: 2 });
    const rejected = rejects(out);
    expect(rejected.map((r) => [r.id, r.kind, r.code])).toEqual([
      ['inline', 'audio', 'EAGLET_AUDIO_REFUSED'],
      ['on-disk', 'audio', 'EAGLET_AUDIO_REFUSED'],
    ]);

    const report = await validateData(registry, { files: [file] }, { audioAccess: insideRoot });
    expect(report.totals).toMatchObject({ records: 3, valid: 1, invalid: 2 });
    for (const p of report.problems)
      expect(p).toMatchObject({
        kind: 'audio',
        reason: expect.stringMatching(/container "hls" is not one eaglet decodes/),
      });

    // The same decision in both flows: prepare's reasons are validate's.
    expect(rejected.map((r) => r.reason.replace(/^.*: container/, 'container'))).toEqual(
      report.problems.map((p) => p.reason.replace(/^.*: container/, 'container')),
    );
  });
});

describe('truncated audio (defect 3: a cut FLAC was trained on)', () => {
  it('is invalid in validate and a reject in prepare, the reason naming both durations', async () => {
    truncatedFlac(join(root, 'data', 'audios', 'cut.flac'));
    const file = join(root, 'data', 'cut.jsonl');
    jsonl(file, [
      { id: 'cut', conversations: [user([{ type: 'audio', audio: './audios/cut.flac' }]), reply] },
    ]);
    const durations = /truncated: the container says 7\.10 s, ffmpeg decoded [01]\.\d\d s/;

    const report = await validateData(registry, { files: [file] });
    expect(report.totals.invalid).toBe(1);
    expect(report.problems[0]).toMatchObject({ kind: 'audio', path: 'conversations[0].content[0]' });
    expect(report.problems[0]!.reason).toMatch(durations);

    const out = join(root, 'prepared-cut');
    const prepared = await prepareData(registry, { model, data: [file], out });
    expect(prepared.manifest.counts).toMatchObject({ written: 0, rejected: 1 });
    expect(rejects(out)[0]).toMatchObject({ id: 'cut', kind: 'audio', code: 'EAGLET_AUDIO_TRUNCATED' });
    expect(rejects(out)[0]!.reason).toMatch(durations);
  });
});

describe('output folders (defects 5 and 8: a hang under /proc, two runs in one folder)', () => {
  it('refuses a folder that cannot be made or written at once, with a clear reason', async () => {
    const cases: Array<[string, RegExp]> = [
      ['/proc/eaglet-out/x', /\/proc does not take new folders/],
      ['/etc/passwd/x', /\/etc\/passwd is a file/],
      ['/sys/eaglet-out', /\/sys is not writable \(EPERM\)/],
    ];
    for (const [out, reason] of cases) {
      const started = Date.now();
      const run = prepareData(registry, { model, data: [speech.jsonl], out });
      await expect(run).rejects.toMatchObject({
        code: 'EAGLET_OUTPUT_INVALID',
        message: expect.stringMatching(reason),
      });
      expect(Date.now() - started, out).toBeLessThan(1000);
    }
  });

  it('locks the folder: a second prepare is refused naming the folder and the pid; the first completes', async () => {
    const out = join(root, 'prepared-twice');
    const first = prepareData(registry, { model, data: [speech.jsonl], out });
    const second = prepareData(registry, { model, data: [speech.jsonl], out });
    await expect(second).rejects.toMatchObject({
      code: 'EAGLET_OUTPUT_LOCKED',
      message: expect.stringContaining(
        `${out} is in use by another run: eaglet data prepare (pid ${process.pid}`,
      ),
    });
    expect((await first).manifest.counts).toMatchObject({ records: 5, written: 5 });
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);

    // A lock left by a run killed with -9 (its process is gone) is stale and taken over.
    const gone = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid;
    const lock = { pids: [gone], host: hostname(), command: 'eaglet data prepare', since: 'then' };
    writeFileSync(join(out, LOCK_FILE), JSON.stringify(lock));
    expect((await prepareData(registry, { model, data: [speech.jsonl], out })).alreadyDone).toBe(true);
  });

  it('regenerate and train take the same lock', async () => {
    const holder = spawn('sleep', ['60']);
    try {
      const out = join(root, 'held');
      mkdirSync(out);
      const lock = { pids: [holder.pid], host: hostname(), command: 'eaglet train', since: 'now' };
      writeFileSync(join(out, LOCK_FILE), JSON.stringify(lock));
      const locked = { code: 'EAGLET_OUTPUT_LOCKED', message: expect.stringContaining(`(pid ${holder.pid}`) };
      await expect(
        regenerate(registry, { data: [speech.jsonl], outputDir: out, endpoints: ['http://127.0.0.1:9/v1'] }),
      ).rejects.toMatchObject(locked);
      await expect(train(registry, { fields: { ...trainBase(), outputDir: out } })).rejects.toMatchObject(
        locked,
      );
    } finally {
      holder.kill('SIGKILL');
    }
  });
});

/** A tiny CPU training config over real prepared speech (prepared once). */
const trainBase = () => ({
  targetModel: model,
  trainData: [trainInputs!.prepared],
  vocab: trainInputs!.vocab,
  device: 'cpu' as const,
  precision: 'fp32' as const,
  compile: 'off' as const,
  ttt: { steps: 2 },
  batching: { maxTokens: 2048, maxRecords: 2 },
  maxSteps: 2,
  logEvery: 1,
  plot: false,
});

describe('training into a folder that holds a run (defect 2: it silently started over)', () => {
  it('is refused without --resume or --overwrite; --overwrite starts clean; a foreign folder is never cleared', async () => {
    const outputDir = join(root, 'train');
    const metricSteps = () =>
      readFileSync(join(outputDir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).step);
    await train(registry, { fields: { ...trainBase(), outputDir } });
    expect(metricSteps()).toEqual([1, 2]);

    const started = Date.now();
    await expect(train(registry, { fields: { ...trainBase(), outputDir } })).rejects.toMatchObject({
      code: 'EAGLET_OUTPUT_EXISTS',
      message: expect.stringMatching(/holds an earlier training run \(its latest checkpoint is at step 2\)/),
      hint: expect.stringMatching(/--resume .* --overwrite/),
    });
    expect(Date.now() - started).toBeLessThan(5000); // refused before any engine starts
    await expect(
      train(registry, { fields: { ...trainBase(), outputDir }, resume: true, overwrite: true }),
    ).rejects.toMatchObject({ code: 'EAGLET_CONFIG_INVALID' });

    const again = await train(registry, { fields: { ...trainBase(), outputDir, seed: 7 }, overwrite: true });
    expect(again).toMatchObject({ stopped: false, steps: 2 });
    expect(metricSteps()).toEqual([1, 2]); // one run's metrics, not two
    expect(readdirSync(join(outputDir, 'checkpoints')).filter((f) => f.startsWith('step-'))).toEqual([
      'step-00000002',
    ]);

    const foreign = join(root, 'not-a-run');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'thesis.tex'), 'precious');
    await expect(
      train(registry, { fields: { ...trainBase(), outputDir: foreign }, overwrite: true }),
    ).rejects.toMatchObject({
      code: 'EAGLET_OUTPUT_EXISTS',
      message: expect.stringMatching(/holds no eaglet training run/),
    });
    expect(readFileSync(join(foreign, 'thesis.tex'), 'utf8')).toBe('precious');
  }, 600_000);
});

describe('regenerate (defect 7 and its output layout)', () => {
  let server: TinyOpenAIServer;
  beforeAll(async () => {
    server = await tinyOpenAIServer({ delayMs: 200 });
  });
  afterAll(() => server.close());

  it('rides out an endpoint that is down for 20 s: waits on /health, loses nothing, leaks no listener', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const file = join(root, 'questions.jsonl');
      const n = 80;
      jsonl(
        file,
        Array.from({ length: n }, (_, i) => ({
          id: `q${i}`,
          conversations: [{ role: 'user', content: `question ${i}` }],
        })),
      );
      let downAt = 0;
      let upAt = 0;
      let logAtUp = 0;
      const started = Date.now();
      const report = await regenerate(
        registry,
        { data: [file], outputDir: join(root, 'regen-down'), endpoints: [server.url], concurrency: 16 },
        {
          events: (e) => {
            if (e.type !== 'progress' || e.done < 10 || downAt) return;
            downAt = Date.now();
            void server.down().then(() =>
              setTimeout(() => {
                logAtUp = server.log.length;
                upAt = Date.now();
                void server.up();
              }, 20_000),
            );
          },
        },
      );
      expect(upAt - downAt).toBeGreaterThanOrEqual(20_000);
      expect(Date.now() - started).toBeGreaterThan(20_000);
      expect(report).toMatchObject({ total: n, written: n, rejected: 0, stopped: false });
      expect(report.retries).toBeGreaterThan(0);
      const answers = readFileSync(report.shards[0]!, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(answers.map((r) => r.conversations.at(-1).content[0].text)).toEqual(
        Array.from({ length: n }, (_, i) => `echo: question ${i}`),
      );
      // Back up, the server hears from /health first: the requests waited for it.
      expect(server.log[logAtUp]).toBe('GET /health');
      expect(warnings.filter((w) => /MaxListenersExceeded/.test(w))).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  }, 120_000);

  it('keeps each input apart, with audio paths relative to the output as the input had them', async () => {
    const data = join(root, 'data');
    const lines = readFileSync(speech.jsonl, 'utf8').trim().split('\n');
    writeFileSync(join(data, 'train.jsonl'), `${lines.slice(0, 3).join('\n')}\n`);
    const absolute = JSON.parse(lines[3]!);
    absolute.conversations[0].content[0].audio = join(data, absolute.conversations[0].content[0].audio);
    writeFileSync(join(data, 'dev.jsonl'), `${[JSON.stringify(absolute), lines[4]].join('\n')}\n`);
    const outputDir = join(root, 'regen-sets');
    const report = await regenerate(registry, {
      data: [join(data, 'train.jsonl'), join(data, 'dev.jsonl')],
      outputDir,
      endpoints: [server.url],
      shardSize: 2,
    });
    expect(report.shards.map((s) => s.slice(outputDir.length + 1))).toEqual([
      'train/data_0-2.jsonl',
      'train/data_2-3.jsonl',
      'dev/data_0-2.jsonl',
    ]);
    const audioOf = (shard: string) =>
      readFileSync(join(outputDir, shard), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).conversations[0].content[0].audio as string);
    const ids = speech.records.map((r) => r.id);
    expect(audioOf('train/data_0-2.jsonl')).toEqual(
      ids.slice(0, 2).map((id) => `../../data/audios/${id}.flac`),
    );
    expect(audioOf('dev/data_0-2.jsonl')).toEqual([
      join(data, 'audios', `${ids[3]}.flac`), // absolute in the input: absolute in the output
      `../../data/audios/${ids[4]}.flac`,
    ]);
    // The dataset and its regenerated copy move together: the relative paths still resolve.
    const moved = tmp();
    cpSync(data, join(moved, 'data'), { recursive: true });
    cpSync(outputDir, join(moved, 'regen-sets'), { recursive: true });
    for (const ref of audioOf('train/data_0-2.jsonl'))
      expect(existsSync(join(moved, 'regen-sets', 'train', ref)), ref).toBe(true);
    expect(dirname(report.rejectsFile)).toBe(outputDir);
  });
});
