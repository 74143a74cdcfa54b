import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { RegenerateConfig } from '@eaglet/core';
import { makeSpeechDataset, tinyQwen2AudioModel } from '@eaglet/fixtures';
import { createEaglet, type RegenerateReport, regenerate } from '@eaglet/flows';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer, stopServer } from './serve-helpers.js';

/**
 * The regeneration client against the embedded backend's real HTTP server (a separate
 * `eaglet backend serve` process with two replicas): round-robin, audio as input_audio and
 * audio_url, multi-turn in order, rejects with reasons, and a server killed mid-run with nothing
 * lost and nothing written twice.
 */
const PORT = 6300 + Math.floor(Math.random() * 500);
let model: string;
let dir: string;
let data: string;
let inputs: number;
const servers: RunningServer[] = [];

const serverArgs = () => [
  '--target-model',
  model,
  '--port',
  String(PORT),
  '--replicas',
  '2',
  '--device',
  'cpu',
  '--cpu-threads',
  '1',
  '--allowed-local-media-path',
  dir,
];

async function serve(): Promise<RunningServer> {
  const s = await startServer(serverArgs());
  servers.push(s);
  return s;
}

beforeAll(async () => {
  model = tinyQwen2AudioModel();
  dir = mkdtempSync(join(tmpdir(), 'eaglet-regen-'));
  const ds = makeSpeechDataset(join(dir, 'speech'));
  const lines = readFileSync(ds.jsonl, 'utf8').trim().split('\n');
  const first = JSON.parse(lines[0]!);
  const audio = first.conversations[0].content[0].audio;
  // Multi-turn records: each assistant turn is answered again, in order.
  const multi = (id: string) =>
    JSON.stringify({
      id,
      conversations: [
        { role: 'system', content: 'You transcribe speech.' },
        {
          role: 'user',
          content: [
            { type: 'audio', audio },
            { type: 'text', text: 'What is said?' },
          ],
        },
        { role: 'assistant', content: 'OLD ANSWER ONE' },
        { role: 'user', content: 'Now in lower case.' },
        { role: 'assistant', content: 'OLD ANSWER TWO' },
      ],
    });
  const records = [
    ...lines,
    multi('multi-1'),
    '{"id": "broken", "conversations": [', // not JSON
    JSON.stringify({
      id: 'no-audio',
      conversations: [{ role: 'user', content: [{ type: 'audio', audio: './audios/missing.flac' }] }],
    }),
    JSON.stringify({ id: 'text-only', conversations: [{ role: 'user', content: 'Say something.' }] }),
    ...lines.map((l) => l.replace(/"id":(\d+)/, '"id":"copy-$1"')),
    multi('multi-2'),
  ];
  data = join(ds.dir, 'regen-input.jsonl');
  writeFileSync(data, `${records.join('\n')}\n`);
  inputs = records.length;
  await serve();
}, 300_000);

afterAll(async () => {
  for (const s of servers) await stopServer(s);
});

const config = (out: string, extra: Record<string, unknown> = {}) =>
  RegenerateConfig.parse({
    data: [data],
    outputDir: out,
    basePort: PORT,
    numEndpoints: 2,
    shardSize: 4,
    concurrency: 3,
    maxTokens: 6,
    temperature: 0,
    retries: 8,
    backoffSeconds: 0.5,
    ...extra,
  });

/** Every record of a finished run: output ids (in order) and reject lines. */
function contents(out: string) {
  const shards = readdirSync(out)
    .filter((f) => f.startsWith('data_'))
    .sort((a, b) => Number(a.split(/[_-]/)[1]) - Number(b.split(/[_-]/)[1]));
  const records = shards.flatMap((f) =>
    readFileSync(join(out, f), 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l)),
  );
  const rejectsFile = join(out, 'rejects.jsonl');
  const rejects = existsSync(rejectsFile)
    ? readFileSync(rejectsFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
    : [];
  return { shards, records, rejects };
}

describe('data regenerate through the embedded OpenAI server', () => {
  let clean: ReturnType<typeof contents>;
  let report: RegenerateReport;

  it('answers every record again, in input order, sharded, with rejects and their reasons', async () => {
    const { registry } = await createEaglet({ cwd: dir });
    const out = join(dir, 'clean');
    report = await regenerate(registry, config(out));
    clean = contents(out);
    expect(report.total).toBe(inputs);
    expect(report.written + report.rejected).toBe(inputs);
    expect(clean.records.length + clean.rejects.length).toBe(inputs);
    expect(clean.shards[0]).toBe('data_0-4.jsonl');
    expect(clean.shards.at(-1)).toBe(`data_${Math.floor((inputs - 1) / 4) * 4}-${inputs}.jsonl`);
    expect(report.model).toMatch(/^tiny-qwen2-audio/);
    // rejects: the broken line and the missing audio, each with file, line and reason
    expect(clean.rejects.map((r) => r.reason).join('\n')).toMatch(/not valid JSON/);
    expect(clean.rejects.find((r) => r.id === 'no-audio')?.reason).toMatch(/missing\.flac/);
    // multi-turn: both assistant turns replaced, the second after the regenerated first
    const multi = clean.records.find((r) => r.id === 'multi-1');
    const roles = multi.conversations.map((m: { role: string }) => m.role);
    expect(roles).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);
    expect(JSON.stringify(multi)).not.toMatch(/OLD ANSWER/);
    // a record without a reply gets one
    expect(clean.records.find((r) => r.id === 'text-only').conversations.at(-1).role).toBe('assistant');
    // audio paths stay valid from the output folder (relative under it, absolute elsewhere)
    const audio = clean.records[0].conversations[0].content[0].audio as string;
    expect(readFileSync(isAbsolute(audio) ? audio : join(out, audio)).length).toBeGreaterThan(1000);
  });

  it('audio_url sends file:// URLs the server may read; the answers equal input_audio ones', async () => {
    const { registry } = await createEaglet({ cwd: dir });
    const out = join(dir, 'audio-url');
    await regenerate(registry, config(out, { audioMode: 'audio_url' }));
    expect(contents(out).records).toEqual(clean.records);
  });

  it('resumes after a partial line and a server killed mid-run: nothing lost, nothing duplicated', async () => {
    const { registry } = await createEaglet({ cwd: dir });
    const out = join(dir, 'killed');
    const events: string[] = [];
    let killed = false;
    let restarted: Promise<unknown> = Promise.resolve();
    const run = regenerate(registry, config(out), {
      events: (e) => {
        if (e.type === 'log' && e.level === 'warn') events.push(e.message);
        if (e.type === 'progress' && e.done >= 4 && !killed) {
          killed = true;
          // A crash: SIGKILL, no clean shutdown; restart on the same ports a moment later.
          const victim = servers.at(-1)!;
          restarted = stopServer(victim, 'SIGKILL')
            .then(() => new Promise((r) => setTimeout(r, 1000)))
            .then(() => serve());
        }
      },
    });
    const first = await run;
    // The run may finish on the restarted server's first port before its second is up (and its
    // ready line printed): the next test stops that server, so it must be listed by then.
    await restarted;
    expect(killed).toBe(true);
    expect(events.some((m) => /retrying/.test(m))).toBe(true);
    expect(first.retries).toBeGreaterThan(0);
    expect(contents(out).records).toEqual(clean.records);
    expect(contents(out).rejects.map((r) => r.index)).toEqual(clean.rejects.map((r) => r.index));
    // A writer killed mid-line leaves a partial last line: it is cut and nothing else changes.
    const last = contents(out).shards.at(-1)!;
    appendFileSync(join(out, last), '{"id": "half a rec');
    const again = await regenerate(registry, config(out));
    expect(again.written + again.rejected).toBe(0);
    expect(again.resumed).toBe(inputs);
    expect(contents(out).records).toEqual(clean.records);
  });

  it('stops with a clear error when every endpoint stays down, and the next run completes the rest', async () => {
    const { registry } = await createEaglet({ cwd: dir });
    const out = join(dir, 'down');
    let stopped = false;
    // Endpoints that stop answering are waited for within retryMinutes (default 10): a short budget here.
    const failing = regenerate(
      registry,
      config(out, { retries: 2, backoffSeconds: 0.2, retryMinutes: 0.05 }),
      {
        events: (e) => {
          if (e.type === 'progress' && e.done >= 5 && !stopped) {
            stopped = true;
            void stopServer(servers.at(-1)!, 'SIGKILL');
          }
        },
      },
    );
    await expect(failing).rejects.toMatchObject({ code: 'EAGLET_ENDPOINTS_DOWN' });
    const partial = contents(out);
    expect(partial.records.length + partial.rejects.length).toBeLessThan(inputs);
    await serve();
    const rest = await regenerate(registry, config(out));
    expect(rest.resumed).toBe(partial.records.length + partial.rejects.length);
    expect(contents(out).records).toEqual(clean.records);
    expect(contents(out).rejects.map((r) => r.index)).toEqual(clean.rejects.map((r) => r.index));
  });
});

describe('the embedded OpenAI-compatible server', () => {
  const url = () => servers.at(-1)!.urls[0]!;
  const post = (body: unknown) =>
    fetch(`${url()}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('answers text and audio; streaming gives the same text as a plain response', async () => {
    const audio = readFileSync(
      JSON.parse(readFileSync(data, 'utf8').split('\n')[0]!).conversations[0].content[0].audio.replace(
        './',
        `${join(dir, 'speech')}/`,
      ),
    );
    const messages = [
      {
        role: 'user',
        content: [
          { type: 'input_audio', input_audio: { data: audio.toString('base64'), format: 'flac' } },
          { type: 'text', text: 'What is said?' },
        ],
      },
    ];
    const plain = await (await post({ messages, max_tokens: 8, temperature: 0 })).json();
    expect(plain.object).toBe('chat.completion');
    expect(plain.usage.completion_tokens).toBeGreaterThan(0);
    expect(plain.usage.prompt_tokens).toBeGreaterThan(20); // the audio placeholders are counted
    const res = await post({
      messages,
      max_tokens: 8,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events = (await res.text()).split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)));
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe(plain.choices[0].message.content);
    expect(chunks.at(-1).usage.completion_tokens).toBe(plain.usage.completion_tokens);
  });

  it('refuses bad requests with 4xx naming the field', async () => {
    const models = await (await fetch(`${url()}/models`)).json();
    expect(models.data[0].id).toBe(servers.at(-1)!.model);
    const cases: Array<[unknown, number, RegExp]> = [
      [{ max_tokens: 4 }, 400, /messages/],
      [{ messages: [{ role: 'user', content: 'hi' }], temperature: -1 }, 400, /temperature/],
      [{ messages: [{ role: 'user', content: 'hi' }], model: 'gpt-4' }, 404, /gpt-4/],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }, 400, /messages\[0\]\.content/],
      [
        {
          messages: [
            {
              role: 'user',
              content: [{ type: 'input_audio', input_audio: { data: 'bm90IGF1ZGlv', format: 'wav' } }],
            },
          ],
        },
        400,
        /audio/,
      ],
      [
        {
          messages: [
            { role: 'user', content: [{ type: 'audio_url', audio_url: { url: 'file:///etc/passwd' } }] },
          ],
        },
        403,
        /outside/,
      ],
      [{ messages: [{ role: 'assistant', content: 'hi' }] }, 400, /last message/],
    ];
    for (const [body, status, message] of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect((await res.json()).error.message).toMatch(message);
    }
    const notJson = await fetch(`${url()}/chat/completions`, { method: 'POST', body: '{"messages": [' });
    expect(notJson.status).toBe(400);
  });
});
