import type { ChatTemplateSession, TargetModel } from '@eaglet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedReplica, OpenAIServer } from '../src/index.js';

/**
 * The HTTP layer on its own (a real server on loopback) with a replica whose worker is not
 * started: validation, auth and routing answer before any model is needed. The full path (a real
 * worker, audio, streaming) is tested through the CLI in apps/cli/test/regenerate.test.ts.
 */
const target = {
  id: 't',
  audio: { sampleRate: 16000, channels: 1, maxSeconds: 30 },
} as unknown as TargetModel;
const session = {} as ChatTemplateSession;
const replica = new EmbeddedReplica(target, session, {
  target: { id: 't', adapter: 'nowhere', model: '/nowhere', architecture: 'None', auxLayerIds: [2, 4, 5] },
});
const server = new OpenAIServer({ replica, model: 'tiny', host: '127.0.0.1', port: 0, apiKey: 'sekret' });
let url: string;

beforeAll(async () => {
  url = await server.listen();
});
afterAll(() => server.close());

const post = (body: unknown, key = 'sekret') =>
  fetch(`${url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('OpenAIServer', () => {
  it('reports the worker down on /health and lists the model', async () => {
    expect((await fetch(`${url.replace(/\/v1$/, '')}/health`)).status).toBe(503);
    const models = await fetch(`${url}/models`, { headers: { authorization: 'Bearer sekret' } });
    expect((await models.json()).data).toEqual([expect.objectContaining({ id: 'tiny', object: 'model' })]);
  });

  it('answers malformed requests with 4xx errors that name the field, in the OpenAI error shape', async () => {
    const cases: Array<[unknown, number, RegExp, string?]> = [
      [{ messages: [{ role: 'user', content: 'hi' }] }, 401, /API key/, 'wrong'],
      ['{"messages": [', 400, /not JSON/],
      [{}, 400, /messages/],
      [{ messages: [] }, 400, /messages is empty/],
      [{ messages: [{ role: 'robot', content: 'hi' }] }, 400, /messages\[0\]\.role/],
      [{ messages: [{ role: 'user', content: 'hi' }], n: 2 }, 400, /n = 1/],
      [{ messages: [{ role: 'user', content: 'hi' }], top_p: 0 }, 400, /top_p/],
      [{ messages: [{ role: 'user', content: 'hi' }], model: 'other' }, 404, /other/],
      [{ messages: [{ role: 'user', content: 'hi' }], stop: ['x'] }, 400, /stop/],
      [
        { messages: [{ role: 'user', content: [{ type: 'audio_url', audio_url: { url: 'ftp://x' } }] }] },
        400,
        /audio_url/,
      ],
      [
        {
          messages: [
            { role: 'user', content: [{ type: 'audio_url', audio_url: { url: 'file:///etc/passwd' } }] },
          ],
        },
        400,
        /refused/,
      ],
      [
        {
          messages: [
            {
              role: 'user',
              content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: '../x' } }],
            },
          ],
        },
        400,
        /format/,
      ],
    ];
    for (const [body, status, message, key] of cases) {
      const res = await post(body, key);
      const json = await res.json();
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(json.error.message, JSON.stringify(body)).toMatch(message);
      expect(json.error).toHaveProperty('type');
    }
    expect((await fetch(`${url}/nothing`, { headers: { authorization: 'Bearer sekret' } })).status).toBe(404);
  });

  it('refuses a prompt longer than maxModelLen with a 400 naming the limit, without a worker', async () => {
    const longPrompt = {
      renderPrompt: () => ({ inputIds: new Array(80).fill(1) }),
    } as unknown as ChatTemplateSession;
    const engineTarget = {
      id: 'tiny',
      adapter: 'nowhere',
      model: '/nowhere',
      architecture: 'Tiny',
      auxLayerIds: [1, 2, 3],
    };
    const small = new EmbeddedReplica(target, longPrompt, { target: engineTarget, maxModelLen: 64 });
    const smallServer = new OpenAIServer({ replica: small, model: 'tiny', host: '127.0.0.1', port: 0 });
    const smallUrl = await smallServer.listen();
    try {
      const res = await fetch(`${smallUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(res.status).toBe(400);
      expect((await res.json()).error.message).toMatch(/80 tokens.*at most 64 .*\(maxModelLen\)/);
    } finally {
      await smallServer.close();
    }
  });

  it('says the worker is gone (503, retryable) for a valid request when no worker runs', async () => {
    const res = await post({ messages: [{ role: 'system', content: 'x' }] });
    expect([500, 503]).toContain(res.status);
  });
});
