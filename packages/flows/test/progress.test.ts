import type { EagletEvent } from '@eaglet/core';
import { describe, expect, it } from 'vitest';
import { throttledProgress } from '../src/index.js';

describe('throttledProgress', () => {
  it('drops updates inside the interval but always sends reaching the total', () => {
    const events: EagletEvent[] = [];
    const emit = throttledProgress((e) => events.push(e), 'work', 'record', 60_000);
    for (let i = 1; i <= 7; i++) emit(i, 7);
    expect(events.map((e) => (e.type === 'progress' ? e.done : -1))).toEqual([1, 7]);
  });

  it('without a total only the interval applies', () => {
    const events: EagletEvent[] = [];
    const emit = throttledProgress((e) => events.push(e), 'work', 'record', 60_000);
    for (let i = 1; i <= 5; i++) emit(i);
    expect(events).toHaveLength(1);
  });
});
