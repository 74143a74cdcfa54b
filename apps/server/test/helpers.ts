// biome-ignore-all lint/suspicious/noExplicitAny: response bodies are JSON whose shape each test asserts
import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { librivoxClips } from '@eaglet/fixtures';
import { createEaglet } from '@eaglet/flows';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { createServer, type EagletServer, type ServerOptionsInput } from '../src/index.js';

export const tmp = (prefix = 'eaglet-server-') => realpathSync(mkdtempSync(join(tmpdir(), prefix)));

export interface Running {
  server: EagletServer;
  url: string;
  root: string;
  close(): Promise<void>;
}

/** A real server on a free loopback port, with a fresh root folder (unless given). */
export async function startTestServer(options: Partial<ServerOptionsInput> = {}): Promise<Running> {
  const root = options.roots?.[0] ?? tmp();
  const { registry } = await createEaglet({ cwd: root });
  const server = await createServer(
    { port: 0, shutdownGraceSeconds: 10, ...options, roots: options.roots ?? [root] },
    { registry },
  );
  const url = await server.listen();
  return { server, url, root, close: () => server.close() };
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** One HTTP request over the network (fetch), JSON in and out. */
export async function http(
  url: string,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(url + path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls a job until `done(job)` or the timeout. */
export async function waitForJob(
  url: string,
  id: string,
  done: (job: any) => boolean = (j) => ['succeeded', 'failed', 'cancelled', 'interrupted'].includes(j.status),
  timeoutMs = 60_000,
  headers: Record<string, string> = {},
): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await http(url, 'GET', `/api/jobs/${id}`, { headers });
    if (r.status === 200 && done(r.json)) return r.json;
    if (Date.now() > until) throw new Error(`job ${id} did not get there in time: ${r.text.slice(0, 500)}`);
    await sleep(100);
  }
}

/**
 * A dataset that takes the validate flow a while: `n` records, each naming its own audio file (a
 * symlink to a real LibriVox clip), so every record costs one real ffprobe run.
 */
export function slowDataset(dir: string, n: number): string {
  mkdirSync(join(dir, 'audios'), { recursive: true });
  // One copy inside the folder, n links to it: each is probed on its own (slow), and all stay
  // inside the server's roots, to which the server confines audio named in the data.
  const clip = join(dir, 'clip.wav');
  copyFileSync(librivoxClips()[0]!.path, clip);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    symlinkSync(clip, join(dir, 'audios', `${i}.wav`));
    lines.push(
      JSON.stringify({
        id: `r${i}`,
        conversations: [
          {
            role: 'user',
            content: [
              { type: 'audio', audio: `audios/${i}.wav` },
              { type: 'text', text: 'Transcribe.' },
            ],
          },
          { role: 'assistant', content: 'words' },
        ],
      }),
    );
  }
  const file = join(dir, 'slow.jsonl');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/**
 * Checks a response body against the server's own OpenAPI document (the schema of that route and
 * status), so the document is proven to describe what the server really sends.
 */
export function openApiChecker(
  doc: any,
): (method: string, route: string, status: number, body: unknown) => void {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ $id: 'openapi.json', components: doc.components });
  return (method, route, status, body) => {
    const op = doc.paths[route]?.[method.toLowerCase()];
    if (!op) throw new Error(`the OpenAPI document has no ${method} ${route}`);
    const response = op.responses[String(status)];
    if (!response) throw new Error(`the OpenAPI document has no ${status} response for ${method} ${route}`);
    const schema = response.content?.['application/json']?.schema;
    if (!schema) return;
    const rewritten = JSON.parse(
      JSON.stringify(schema).replaceAll('"#/components/', '"openapi.json#/components/'),
    );
    const validate = ajv.compile(rewritten);
    if (!validate(body))
      throw new Error(
        `${method} ${route} ${status}: body does not match the OpenAPI schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 800)}`,
      );
  };
}

/** A request through node:http, which (unlike fetch) lets a test set any Host header. */
export function nodeHttp(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url + path, { method, headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Internal errors the server reported (as process warnings) while a suite ran: a response that
 * looked fine to the client can still have hidden one, so suites assert this stays empty.
 */
export function internalErrors(): string[] {
  const seen: string[] = [];
  process.on('warning', (w) => {
    if (w.message.startsWith('eaglet server: internal error')) seen.push(w.message);
  });
  return seen;
}
