import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EagletError, EagletEvent } from '@eaglet/core';
import { describe, expect, it } from 'vitest';
import { engineArgv, engineEnv, runEngine } from '../src/index.js';

// These tests spawn the real engine Python (the environment bootstrap made) on a fixture module
// that uses eaglet_engine's real event writer and stop handling.
const fixtures = join(import.meta.dirname, 'fixtures');
const fake = (command: string, extra: Partial<Parameters<typeof runEngine>[0]> = {}) => {
  const events: EagletEvent[] = [];
  const promise = runEngine({
    command,
    module: 'fake_engine',
    pythonPath: [fixtures],
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { events, promise };
};
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as EagletError,
  );

describe('runEngine', () => {
  it('streams validated events and resolves with done', async () => {
    const { events, promise } = fake('ok');
    const { done } = await promise;
    expect(done).toEqual({ type: 'done', stopped: false, result: { answer: 42 } });
    expect(events.map((e) => e.type)).toEqual(['progress', 'progress', 'progress', 'metrics', 'done']);
    expect(events[3]).toEqual({
      type: 'metrics',
      split: 'train',
      step: 3,
      values: { loss: 1.5, acc_0: 0.25 },
    });
  });

  it('kills the engine on a line that is not JSON and says which line', async () => {
    const started = Date.now();
    const err = await failure(fake('not-json').promise);
    expect(err?.code).toBe('EAGLET_ENGINE_PROTOCOL');
    expect(err?.message).toContain('stdout line 2');
    expect(err?.message).toContain('this is not json');
    expect(Date.now() - started).toBeLessThan(20_000); // killed, not waited for
  });

  it('rejects an event that breaks the schema, naming the field', async () => {
    const err = await failure(fake('bad-event').promise);
    expect(err?.code).toBe('EAGLET_ENGINE_PROTOCOL');
    expect(err?.message).toMatch(/invalid event .*done/);
  });

  it('turns a crash into an error with the exit code and the stderr tail', async () => {
    const logFile = join(import.meta.dirname, '..', 'node_modules', '.tmp', `crash-${Date.now()}.log`);
    const err = await failure(fake('crash', { logFile }).promise);
    expect(err?.code).toBe('EAGLET_ENGINE_CRASHED');
    expect(err?.message).toContain('exited with code 3');
    expect(err?.message).toContain('about to fail: segfault-like exit');
    expect(readFileSync(logFile, 'utf8')).toContain('about to fail');
  });

  it('treats an exit without done as a crash', async () => {
    const err = await failure(fake('no-done').promise);
    expect(err?.code).toBe('EAGLET_ENGINE_CRASHED');
    expect(err?.message).toContain('exited without a done event');
  });

  it('passes an engine error event through with its code and hint', async () => {
    const err = await failure(fake('error').promise);
    expect(err?.code).toBe('EAGLET_TARGET_INVALID');
    expect(err?.hint).toBe('pass the model folder');
  });

  it('cancels cooperatively: SIGINT, the engine checkpoints and reports stopped', async () => {
    const controller = new AbortController();
    const { events, promise } = fake('train-until-stopped', {
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'progress' && e.done === 5) controller.abort();
      },
    });
    const { done } = await promise;
    expect(done.stopped).toBe(true);
    expect(done.result).toMatchObject({ signal: 'SIGINT' });
    expect(events.some((e) => e.type === 'checkpoint')).toBe(true);
  });

  it('escalates to SIGTERM and SIGKILL when the engine ignores the stop', async () => {
    const controller = new AbortController();
    const { promise } = fake('ignore-stop', {
      signal: controller.signal,
      stopGraceSeconds: 0.5,
      onEvent: () => controller.abort(),
    });
    const err = await failure(promise);
    expect(err?.code).toBe('EAGLET_ENGINE_CRASHED');
    expect(err?.message).toContain('killed by SIGKILL');
  });

  it('runs the real env command', async () => {
    const env = await engineEnv();
    expect(env.packages.torch).toMatch(/^\d+\.\d+/);
    expect(env.packages.transformers).toMatch(/^\d+\.\d+/);
    expect(typeof env.cuda.available).toBe('boolean');
  });

  it('builds torchrun argv for several GPUs', () => {
    expect(engineArgv('eaglet_engine', 'train', '/c.json', 1)).toEqual([
      '-m',
      'eaglet_engine',
      'train',
      '--config',
      '/c.json',
    ]);
    expect(engineArgv('eaglet_engine', 'train', '/c.json', 4)).toEqual([
      '-m',
      'torch.distributed.run',
      '--standalone',
      '--nproc-per-node=4',
      '-m',
      'eaglet_engine',
      'train',
      '--config',
      '/c.json',
    ]);
  });

  it('builds torchrun argv for several nodes: static rendezvous at the endpoint, no restarts', () => {
    const nodes = {
      nnodes: 2,
      nodeRank: 1,
      rdzvEndpoint: 'node0:29500',
      rdzvId: 'run7',
      rdzvTimeoutSeconds: 60,
    };
    expect(engineArgv('eaglet_engine', 'train', '/c.json', 8, nodes)).toEqual([
      '-m',
      'torch.distributed.run',
      '--nnodes=2',
      '--node-rank=1',
      '--nproc-per-node=8',
      '--rdzv-backend=static',
      '--rdzv-endpoint=node0:29500',
      '--rdzv-id=run7',
      '--rdzv-conf=timeout=60',
      '--max-restarts=0',
      '-m',
      'eaglet_engine',
      'train',
      '--config',
      '/c.json',
    ]);
  });
});

describe('engine JSON Schemas', () => {
  it('are generated from the current zod schemas (run `node tools/gen-engine-schemas.mjs`)', async () => {
    const { engineJsonSchemas } = await import('@eaglet/core');
    const dir = join(import.meta.dirname, '..', 'python', 'eaglet_engine', 'schemas');
    for (const [name, schema] of Object.entries(engineJsonSchemas())) {
      const file = join(dir, `${name}.schema.json`);
      expect(existsSync(file), file).toBe(true);
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(schema);
    }
  });
});
