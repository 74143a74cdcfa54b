import { afterEach, describe, expect, it, vi } from 'vitest';
import { terminalRenderer } from '../src/render.js';

afterEach(() => vi.useRealTimers());

describe('terminalRenderer without a TTY (CI logs)', () => {
  it('counts the rate and ETA of a task that starts over (each eval pass) from its new start', () => {
    vi.useFakeTimers({ now: 0 });
    const lines: string[] = [];
    const stream = { isTTY: false, write: (text: string) => lines.push(text.trimEnd()) };
    const { sink } = terminalRenderer(stream as unknown as NodeJS.WriteStream);
    const eval5 = (done: number) => sink({ type: 'progress', task: 'eval', done, total: 5, unit: 'batch' });
    eval5(0);
    vi.setSystemTime(5_000);
    eval5(5); // the first pass: 5 batches in 5 s
    vi.setSystemTime(600_000); // training goes on for ten minutes, then the next pass
    eval5(0);
    vi.setSystemTime(601_000);
    eval5(1);
    vi.setSystemTime(605_000);
    eval5(5);
    expect(lines.filter((l) => l.startsWith('eval: 5/5'))).toEqual([
      'eval: 5/5 batch (100.0%) 1.00/s ETA 0s',
      'eval: 5/5 batch (100.0%) 1.00/s ETA 0s',
    ]);
  });
});
