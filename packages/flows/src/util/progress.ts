import type { EventSink } from '@eaglet/core';

/**
 * A progress emitter that sends at most one event per `intervalMs`, except that reaching the
 * total is always sent (a bar must not stop short of its end).
 */
export function throttledProgress(
  events: EventSink | undefined,
  task: string,
  unit: string,
  intervalMs = 100,
): (done: number, total?: number, message?: string) => void {
  let last = 0;
  return (done, total, message) => {
    const now = Date.now();
    const final = total !== undefined && done >= total;
    if (!events || (now - last < intervalMs && !final)) return;
    last = now;
    events({
      type: 'progress',
      task,
      done,
      unit,
      ...(total === undefined ? {} : { total }),
      ...(message ? { message } : {}),
    });
  };
}
