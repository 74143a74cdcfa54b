// biome-ignore-all lint/suspicious/noExplicitAny: response bodies are JSON whose shape each check asserts
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../src/index.js';
import { http, internalErrors, type Running, startTestServer, waitForJob } from './helpers.js';

const serverErrors = internalErrors();
afterAll(() => expect(serverErrors).toEqual([]));

/** A small deterministic PRNG (mulberry32), so a failing case can be replayed. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  name: string;
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

const WEIRD_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1e308,
  Number.MAX_SAFE_INTEGER + 2,
  '',
  ' ',
  'x'.repeat(5000),
  '\u0000',
  '../../../../etc/passwd',
  '/etc/shadow',
  'file:///etc/passwd',
  '%2e%2e%2f%2e%2e%2fetc',
  '\ud800',
  '😀',
  [],
  [null],
  {},
  { $ref: '#' },
  [[[[[]]]]],
];

const BAD_JSON = [
  '{',
  '}',
  '[',
  '{"kind":}',
  "{'kind':'validate'}",
  '{"kind":"validate",}',
  'nul',
  'undefined',
  'NaN',
  '{"a":1}{"b":2}',
  '\u0000',
  '{"kind":"validate","config":{"files":["a"]}',
  '"unterminated',
  '{"__proto__":{"polluted":true}}',
  '{"kind":"validate","config":{"constructor":{"prototype":{"polluted":true}}}}',
  `${'['.repeat(20000)}${']'.repeat(20000)}`,
  `{"a":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`,
  '\xff\xfe{',
  '   ',
];

const BAD_IDS = [
  'j-00000000-000000',
  'j-zzzzzzzz-zzzzzz',
  'nope',
  '..',
  '%2e%2e',
  '..%2f..%2fetc%2fpasswd',
  'j-00000000-000000%00',
  '%00',
  'x'.repeat(190),
  '%F0%9F%98%80',
  'J-00000000-000000',
];

describe('malformed requests on every route', () => {
  let s: Running;
  let token: Running;
  let jobId: string;
  let kinds: Array<{ kind: string; example: Record<string, unknown> }>;
  const results: Array<{ c: Case; status: number; text: string }> = [];

  beforeAll(async () => {
    s = await startTestServer({ bodyLimit: 64 * 1024 });
    token = await startTestServer({ token: 'fuzz-token-0123456789abcdef' });
    mkdirSync(join(s.root, 'data'), { recursive: true });
    writeFileSync(
      join(s.root, 'data', 'ok.jsonl'),
      '{"id":"1","conversations":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n',
    );
    symlinkSync('/etc', join(s.root, 'escape'));
    symlinkSync('/etc/passwd', join(s.root, 'data', 'escape.jsonl'));
    symlinkSync(join(s.root, 'loop-b'), join(s.root, 'loop-a'));
    symlinkSync(join(s.root, 'loop-a'), join(s.root, 'loop-b'));
    const job = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'validate', config: { files: ['data/ok.jsonl'] } },
    });
    jobId = job.json.id;
    await waitForJob(s.url, jobId);
    kinds = (await http(s.url, 'GET', '/api/kinds')).json.kinds;
  });
  afterAll(async () => {
    await s.close();
    await token.close();
  });

  function cases(): Case[] {
    const out: Case[] = [];
    const routes = s.server.routes.filter((r) => r.url.startsWith('/api') && r.method !== 'HEAD');
    expect(routes.length).toBeGreaterThanOrEqual(16);
    const random = rng(6);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;

    for (const route of routes) {
      const withId = (id: string) => route.url.replace(':id', id).replace(':index', '0');
      // unknown and malformed ids, traversal in path segments
      if (route.url.includes(':id'))
        for (const id of BAD_IDS)
          out.push({ name: `${route.method} ${route.url} id=${id}`, method: route.method, path: withId(id) });
      if (route.url.includes(':index'))
        for (const index of ['-1', 'abc', '1e309', '99999999999', '0x10', '%00', '..', '1.5'])
          out.push({
            name: `${route.url} index=${index}`,
            method: route.method,
            path: route.url.replace(':id', jobId).replace(':index', index),
          });
      const good = withId(jobId);
      // wrong methods
      for (const method of ['PUT', 'PATCH', 'OPTIONS'])
        out.push({ name: `${method} ${route.url}`, method, path: good });
      // unknown, repeated, mistyped and hostile query fields
      for (const q of [
        'unknown=1',
        'after=abc',
        'after=-5',
        'after=1&after=2',
        'limit=0',
        'limit=1e9',
        'limit=abc',
        'type=bogus',
        'status=done',
        'kind=%00',
        'path=..%2F..%2F..%2Fetc',
        'path=%2Fetc',
        'path=escape',
        'path=escape%2Fssl',
        'path=loop-a',
        'path=data%2Fok.jsonl',
        `path=${'a/'.repeat(3000)}`,
        'file=..%2F..%2Fetc%2Fpasswd',
        'file=%00',
        `x=${'y'.repeat(10000)}`,
      ])
        out.push({
          name: `${route.method} ${route.url}?${q.slice(0, 40)}`,
          method: route.method,
          path: `${good}?${q}`,
        });
      // bad headers
      out.push({
        name: `${route.url} last-event-id`,
        method: route.method,
        path: good,
        headers: { 'last-event-id': '-1x' },
      });
      out.push({
        name: `${route.url} foreign origin`,
        method: route.method,
        path: good,
        headers: { origin: 'http://evil.example' },
      });
      out.push({
        name: `${route.url} origin garbage`,
        method: route.method,
        path: good,
        headers: { origin: '::::' },
      });

      if (route.method !== 'POST' && route.method !== 'DELETE') continue;
      // bodies: bad JSON, wrong types, unknown fields, wrong content types, huge
      for (const raw of BAD_JSON)
        out.push({
          name: `${route.url} json ${JSON.stringify(raw.slice(0, 20))}`,
          method: route.method,
          path: good,
          body: raw,
          headers: { 'content-type': 'application/json' },
        });
      for (const v of WEIRD_VALUES)
        out.push({
          name: `${route.url} body ${JSON.stringify(v)?.slice(0, 20)}`,
          method: route.method,
          path: good,
          body: JSON.stringify(v),
          headers: { 'content-type': 'application/json' },
        });
      for (const type of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/xml',
        'application/json-patch+json',
        'application/json; charset=utf-16',
      ])
        out.push({
          name: `${route.url} content-type ${type}`,
          method: route.method,
          path: good,
          body: '{"kind":"validate"}',
          headers: { 'content-type': type },
        });
      out.push({
        name: `${route.url} huge body`,
        method: route.method,
        path: good,
        body: JSON.stringify({ kind: 'validate', config: { files: ['a'.repeat(200 * 1024)] } }),
        headers: { 'content-type': 'application/json' },
      });
      out.push({
        name: `${route.url} huge array`,
        method: route.method,
        path: good,
        body: JSON.stringify({
          kind: 'validate',
          config: { files: Array.from({ length: 40000 }, () => 'a') },
        }),
        headers: { 'content-type': 'application/json' },
      });
    }

    // POST /api/jobs: mutations of a valid request, one field at a time and at random
    const valid = {
      kind: 'validate',
      name: 'ok',
      config: { files: ['data/ok.jsonl'], format: 'auto', purpose: 'train', checkAudio: false },
    };
    const fields: Array<(v: any, x: unknown) => void> = [
      (v, x) => (v.kind = x),
      (v, x) => (v.name = x),
      (v, x) => (v.config = x),
      (v, x) => (v.config.files = x),
      (v, x) => (v.config.files[0] = x),
      (v, x) => v.config.files.push(x),
      (v, x) => (v.config.format = x),
      (v, x) => (v.config.purpose = x),
      (v, x) => (v.config.checkAudio = x),
      (v, x) => (v.config.extra = x),
      (v, x) => (v.extra = x),
      (v) => delete v.kind,
      (v) => delete v.config,
      (v) => delete v.config.files,
    ];
    for (const [i, mutate] of fields.entries())
      for (const x of WEIRD_VALUES) {
        const v = structuredClone(valid);
        mutate(v, x);
        out.push({
          name: `createJob field ${i} = ${JSON.stringify(x)?.slice(0, 20)}`,
          method: 'POST',
          path: '/api/jobs',
          body: JSON.stringify(v),
          headers: { 'content-type': 'application/json' },
        });
      }
    for (const p of [
      '../x.jsonl',
      '/etc/passwd',
      'escape/passwd',
      'data/escape.jsonl',
      'loop-a',
      'loop-a/x.jsonl',
      '.eaglet/server/jobs',
      'data/../../x',
      `${'../'.repeat(50)}etc/passwd`,
      'data/\u0000.jsonl',
      `data/${'n'.repeat(300)}.jsonl`,
    ])
      out.push({
        name: `createJob path ${p.slice(0, 30)}`,
        method: 'POST',
        path: '/api/jobs',
        body: JSON.stringify({ kind: 'validate', config: { files: [p], checkAudio: false } }),
        headers: { 'content-type': 'application/json' },
      });
    // every kind: each field of its example config set to each weird value (not quickstart: any
    // string is a folder name it can create, so it would run the whole pipeline each time)
    for (const k of kinds.filter((x) => x.kind !== 'quickstart'))
      for (const field of Object.keys(k.example))
        for (const x of WEIRD_VALUES.filter((_, i) => i % 3 === 0)) {
          const config = { ...k.example, [field]: x };
          out.push({
            name: `createJob ${k.kind}.${field} = ${JSON.stringify(x)?.slice(0, 20)}`,
            method: 'POST',
            path: '/api/jobs',
            body: JSON.stringify({ kind: k.kind, config }),
            headers: { 'content-type': 'application/json' },
          });
        }
    for (let n = 0; n < 150; n++) {
      const v: any = structuredClone(valid);
      for (let k = 0; k < 1 + Math.floor(random() * 3); k++) {
        try {
          pick(fields)(v, pick(WEIRD_VALUES));
        } catch {
          // an earlier mutation removed what this one changes
        }
      }
      out.push({
        name: `createJob random ${n}`,
        method: 'POST',
        path: '/api/jobs',
        body: JSON.stringify(v),
        headers: { 'content-type': 'application/json' },
      });
    }
    return out;
  }

  it('answers every one with a 4xx (or a success for the few that are valid) and a JSON error naming what is wrong; never a 5xx', async () => {
    const all = cases();
    expect(all.length).toBeGreaterThan(700);
    const queue = [...all];
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const res = await fetch(s.url + c.path, {
          method: c.method,
          headers: c.headers ?? {},
          ...(c.body !== undefined ? { body: c.body } : {}),
        });
        // An event stream stays open: read its first bytes, then hang up.
        let text = '';
        if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
          const reader = res.body!.getReader();
          await reader.read();
          await reader.cancel();
        } else text = await res.text();
        results.push({ c, status: res.status, text });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));

    const fiveHundreds = results.filter((r) => r.status >= 500);
    expect(fiveHundreds.map((r) => `${r.c.name}: ${r.status} ${r.text.slice(0, 200)}`)).toEqual([]);
    for (const r of results.filter((x) => x.status >= 400)) {
      const body = ApiError.safeParse(JSON.parse(r.text));
      expect(body.success, `${r.c.name}: ${r.text.slice(0, 200)}`).toBe(true);
      if (r.status === 400 && body.data!.error.issues) {
        for (const issue of body.data!.error.issues)
          expect(['body', 'query', 'params', 'header', 'path']).toContain(issue.in);
      }
    }
    // Nothing malformed was taken for a job; nothing got out of the roots.
    const accepted = results.filter(
      (r) => r.status < 400 && r.c.method === 'POST' && r.c.path === '/api/jobs',
    );
    for (const r of accepted) {
      const job = JSON.parse(r.text);
      // every absolute path the accepted config holds lies inside the root
      for (const [, p] of JSON.stringify(job.config).matchAll(/"(\/[^"]*)"/g))
        expect(p!.startsWith(s.root), p).toBe(true);
    }
    const counts: Record<string, number> = {};
    for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
    if (process.env.FUZZ_DEBUG)
      for (const r of results.filter((x) => x.status < 300)) console.log(r.status, r.c.name);
    console.log(
      `${results.length} malformed requests: ${JSON.stringify(counts)}; 5xx: ${fiveHundreds.length}`,
    );
    expect((await http(s.url, 'GET', '/api')).status).toBe(200);
  });

  it('confines every path field of every job kind to the roots, naming the field', async () => {
    const schemas = (await http(s.url, 'GET', '/api/kinds')).json.kinds;
    let checked = 0;
    for (const k of schemas) {
      for (const [field, value] of Object.entries(k.example as Record<string, unknown>)) {
        const isPathList = Array.isArray(value) && typeof value[0] === 'string' && value[0].includes('/');
        const isPath = typeof value === 'string' && (value.includes('/') || field === 'dir');
        if (!isPath && !isPathList) continue;
        for (const bad of ['../outside', '/etc/passwd', 'escape/passwd', 'loop-a/x', '.eaglet/server/x']) {
          const config = { ...k.example, [field]: isPathList ? [bad] : bad };
          const r = await http(s.url, 'POST', '/api/jobs', { body: { kind: k.kind, config } });
          const where = isPathList ? `config.${field}[0]` : `config.${field}`;
          expect(r.status, `${k.kind} ${field}=${bad}`).toBe(400);
          expect(
            r.json.error.issues.map((i: any) => i.path),
            `${k.kind} ${field}=${bad}`,
          ).toContain(where);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(5 * 10);
  });

  it('refuses malformed credentials with 401, never more', async () => {
    const auths = [
      'Bearer',
      'Bearer ',
      'Bearer a b',
      'Basic dXNlcjpwYXNz',
      'bearer fuzz-token-0123456789abcde',
      `Bearer ${'x'.repeat(8000)}`,
      'Bearer \t',
    ];
    const cookies = [
      'eaglet_token=',
      'eaglet_token=%E0%A4%A',
      'eaglet_token',
      '=;=;',
      `eaglet_token=${'%'.repeat(100)}`,
    ];
    for (const authorization of auths) {
      const r = await http(token.url, 'GET', '/api/jobs', { headers: { authorization } });
      expect(r.status, authorization.slice(0, 30)).toBe(401);
    }
    for (const cookie of cookies) {
      const r = await http(token.url, 'GET', '/api/jobs', { headers: { cookie } });
      expect(r.status, cookie.slice(0, 30)).toBe(401);
    }
    for (const body of ['{"token":1}', '{"token":"x","more":1}', '[]', '{']) {
      const r = await http(token.url, 'POST', '/api/session', {
        raw: body,
        headers: { 'content-type': 'application/json' },
      });
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
  });

  it('survives broken HTTP on a raw socket', async () => {
    const { port } = new URL(s.url);
    const raw = [
      'GARBAGE\r\n\r\n',
      'GET /api HTTP/9.9\r\n\r\n',
      'GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n',
      'POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"kind"',
      'POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n',
      'POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n',
      `GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(70000)}\r\n\r\n`,
      'GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
      'GET /api HTTP/1.1\r\n\r\n',
      'GET /%ZZ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
      `GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    ];
    for (const request of raw) {
      const status = await new Promise<number>((resolve) => {
        const socket = connect(Number(port), '127.0.0.1');
        let data = '';
        socket.setTimeout(3000, () => socket.destroy());
        socket.on('data', (d) => (data += d));
        socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
        socket.on('error', () => {});
        socket.end(request);
      });
      expect(status, request.slice(0, 60)).toBeLessThan(500);
    }
    expect((await http(s.url, 'GET', '/api')).status).toBe(200);
  });
});
