import type { JobRecord, StoredEvent } from '../schemas.js';

const num = (v: number) =>
  Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);

/**
 * A job's log as text, the way the CLI prints the same events without a terminal: messages,
 * metrics, checkpoints, artifacts, finished progress bars, then the outcome.
 */
export function renderLog(job: JobRecord, events: readonly StoredEvent[]): string {
  const lines = [`# job ${job.id} (${job.kind}${job.name ? `: ${job.name}` : ''}) created ${job.createdAt}`];
  for (const { time, event: e } of events) {
    let text: string | undefined;
    switch (e.type) {
      case 'log':
        text = `${e.level === 'info' ? '' : `${e.level}: `}${e.message}`;
        break;
      case 'error':
        text = `error [${e.code}]: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ''}`;
        break;
      case 'metrics':
        text = `[${e.split} step ${e.step}] ${Object.entries(e.values)
          .map(([k, v]) => `${k}=${num(v)}`)
          .join(' ')}`;
        break;
      case 'checkpoint':
        text = `checkpoint step ${e.step}: ${e.path}`;
        break;
      case 'artifact':
        text = `${e.kind}: ${e.path}`;
        break;
      case 'progress':
        if (e.total !== undefined && e.done >= e.total)
          text =
            `${e.task}: ${e.done}/${e.total} ${e.unit ?? ''} done${e.message ? ` ${e.message}` : ''}`.trimEnd();
        break;
      case 'done':
        text = e.stopped ? 'stopped at a safe point' : 'done';
        break;
    }
    if (text !== undefined) lines.push(`${time} ${text}`);
  }
  const outcome = job.error
    ? `${job.status}: [${job.error.code}] ${job.error.message}${job.error.hint ? `\n  hint: ${job.error.hint}` : ''}`
    : job.status;
  lines.push(`# ${job.finishedAt ?? ''} ${outcome}`.replace('#  ', '# '));
  return `${lines.join('\n')}\n`;
}
