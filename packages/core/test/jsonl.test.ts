import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsonlWriter, readJsonl } from '../src/index.js';

describe('readJsonl', () => {
  it('numbers lines like an editor, skips blanks, strips a BOM and reports bad JSON', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'eaglet-jsonl-')), 'a.jsonl');
    writeFileSync(file, '\ufeff{"a":1}\r\n\n{"a":\n{"b":2}');
    const lines = [];
    for await (const l of readJsonl(file)) lines.push(l);
    expect(lines.map((l) => [l.line, l.ok])).toEqual([
      [1, true],
      [3, false],
      [4, true],
    ]);
    expect(lines[0]).toMatchObject({ value: { a: 1 } });
    expect(lines[1]).toMatchObject({ raw: '{"a":', error: expect.stringMatching(/not valid JSON/) });
  });

  it('streams a large file in bounded memory', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'eaglet-jsonl-')), 'big.jsonl');
    const w = new JsonlWriter(file);
    const line = { text: 'x'.repeat(1000) };
    for (let i = 0; i < 100_000; i++) await w.write(line); // ~100 MB
    await w.close();
    global.gc?.();
    const before = process.memoryUsage().rss;
    let n = 0;
    let peak = before;
    for await (const l of readJsonl(file)) {
      n += l.ok ? 1 : 0;
      if (n % 10_000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    expect(n).toBe(100_000);
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
  });
});
