// biome-ignore-all lint/suspicious/noExplicitAny: response bodies are JSON whose shape each test asserts
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { makeSpeechDataset } from '@eaglet/fixtures';
import { afterEach, describe, expect, it } from 'vitest';
import { http, slowDataset, tmp, waitForJob } from './helpers.js';

const SERVE = join(import.meta.dirname, 'fixtures', 'serve.mjs');
const children = new Set<ChildProcess>();

/** Starts a server process; resolves with its first stdout line (its URL, or its error). */
function serve(
  options: object,
): Promise<{ child: ChildProcess; url?: string; interrupted?: string[]; error?: any }> {
  const child = spawn(
    process.execPath,
    [SERVE, JSON.stringify({ port: 0, shutdownGraceSeconds: 20, ...options })],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: join(import.meta.dirname, '..'),
    },
  );
  children.add(child);
  child.on('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    createInterface({ input: child.stdout! }).once('line', (line) => resolve({ child, ...JSON.parse(line) }));
  });
}

const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });

afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
});

describe('a restarted server', () => {
  it('shows finished jobs as they were and marks the one running when it was killed as interrupted', async () => {
    const root = tmp();
    const speech = makeSpeechDataset(join(root, 'speech')).jsonl;
    const slow = slowDataset(join(root, 'slow'), 300);

    const a = await serve({ roots: [root] });
    expect(a.interrupted).toEqual([]);
    const done = await http(a.url!, 'POST', '/api/jobs', {
      body: { kind: 'validate', name: 'finished', config: { files: [speech] } },
    });
    const finished = await waitForJob(a.url!, done.json.id);
    expect(finished.status).toBe('succeeded');
    const finishedEvents = (await http(a.url!, 'GET', `/api/jobs/${finished.id}/events`)).json;

    const running = await http(a.url!, 'POST', '/api/jobs', {
      body: { kind: 'validate', name: 'running', config: { files: [slow] } },
    });
    const before = await waitForJob(a.url!, running.json.id, (j) => j.status === 'running' && j.events > 0);
    a.child.kill('SIGKILL'); // no shutdown code runs: the job record still says `running`
    expect((await exited(a.child)).signal).toBe('SIGKILL');

    const b = await serve({ roots: [root] });
    expect(b.interrupted).toEqual([running.json.id]);
    const list = (await http(b.url!, 'GET', '/api/jobs')).json.jobs;
    expect(list.map((j: any) => [j.name, j.status])).toEqual([
      ['running', 'interrupted'],
      ['finished', 'succeeded'],
    ]);
    const after = (await http(b.url!, 'GET', `/api/jobs/${finished.id}`)).json;
    expect(after).toEqual(finished); // result, progress and timings survive unchanged
    expect((await http(b.url!, 'GET', `/api/jobs/${finished.id}/events`)).json).toEqual(finishedEvents);

    const interrupted = (await http(b.url!, 'GET', `/api/jobs/${running.json.id}`)).json;
    expect(interrupted.error).toMatchObject({
      code: 'EAGLET_SERVER_INTERRUPTED',
      message: 'the server stopped while this job was running',
    });
    expect(interrupted.startedAt).toBe(before.startedAt);
    // The record on disk may lag its events (progress is saved every few seconds): rebuilt from them.
    expect(interrupted.events).toBeGreaterThan(before.events);
    const stored = (await http(b.url!, 'GET', `/api/jobs/${running.json.id}/events`)).json;
    expect(stored.last).toBe(interrupted.events);
    const lastProgress = stored.events.filter((e: any) => e.event.type === 'progress').at(-1).event;
    expect(interrupted.progress.validate).toEqual(lastProgress);
    expect(stored.events.map((e: any) => e.seq)).toEqual(stored.events.map((_: unknown, i: number) => i + 1));
    const logs = (await http(b.url!, 'GET', `/api/jobs/${running.json.id}/logs`)).text;
    expect(logs).toMatch(/interrupted: the server stopped while this job was running/);
    expect(logs).toMatch(/# .* interrupted: \[EAGLET_SERVER_INTERRUPTED\]/);

    // It can be started again; and a server stopped with SIGTERM marks its running job itself.
    const again = await http(b.url!, 'POST', `/api/jobs/${running.json.id}/retry`);
    expect(again.status).toBe(201);
    await waitForJob(b.url!, again.json.id, (j) => j.status === 'running' && j.events > 0);
    b.child.kill('SIGTERM');
    expect(await exited(b.child)).toEqual({ code: 0, signal: null });

    const c = await serve({ roots: [root] });
    expect(c.interrupted).toEqual([]); // b recorded its own shutdown
    const stopped = (await http(c.url!, 'GET', `/api/jobs/${again.json.id}`)).json;
    expect(stopped.status).toBe('interrupted');
    expect(stopped.finishedAt).toBeDefined();

    // One server per state folder.
    const d = await serve({ roots: [root] });
    expect(d.error).toMatchObject({ code: 'EAGLET_SERVER_LOCKED' });
    expect((await exited(d.child)).code).toBe(1);
    c.child.kill('SIGTERM');
    expect((await exited(c.child)).code).toBe(0);
  });
});
