import type { EventSink } from '@eaglet/core';

/** A progress emitter that sends at most one event per `intervalMs` (the last call always wins eventually). */
export function throttledProgress(
  events: EventSink | undefined,
  task: string,
  unit: string,
  intervalMs = 100,
): (done: number, total?: number, message?: string) => void {
  let last = 0;
  return (done, total, message) => {
    const now = Date.now();
    if (!events || now - last < intervalMs) return;
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
