import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { BIN, eaglet } from './helpers.js';

describe('eaglet serve (built binary)', () => {
  it('serves the API and the dashboard until Ctrl-C, then exits cleanly', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'eaglet-serve-'));
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.FORCE_COLOR;
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--json'], { cwd, env });
    const first = await new Promise<string>((resolve) =>
      createInterface({ input: child.stdout }).once('line', resolve),
    );
    const { url } = JSON.parse(first) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const info = (await (await fetch(`${url}/api`)).json()) as { roots: string[]; kinds: string[] };
    expect(info.roots).toEqual([cwd]);
    expect(info.kinds).toContain('validate');
    expect((await fetch(`${url}/`)).headers.get('content-type')).toMatch(/text\/html/);
    const exit = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGINT');
    expect(await exit).toBe(0);
  });

  it('refuses to listen beyond loopback without a token', async () => {
    const r = await eaglet(['serve', '--host', '0.0.0.0', '--port', '0'], {
      cwd: mkdtempSync(join(tmpdir(), 'eaglet-serve-')),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('EAGLET_SERVER_TOKEN_REQUIRED');
    expect(r.stderr).toContain('--token');
  });
});
