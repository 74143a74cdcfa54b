import type { EagletEvent, EventSink } from '@eaglet/core';
import cliProgress from 'cli-progress';

/**
 * Shows events on a terminal: one progress bar per task (rate and ETA), metrics and logs as lines.
 * Without a TTY (CI logs) progress becomes a line every few seconds. Returns the sink and a
 * `close` that stops the bars.
 */
export function terminalRenderer(stream: NodeJS.WriteStream = process.stderr): {
  sink: EventSink;
  close(): void;
} {
  const tty = stream.isTTY === true;
  const multibar = tty
    ? new cliProgress.MultiBar(
        {
          stream,
          format: ' {task} |{bar}| {value}/{total} {unit} | {rate}/s | ETA {eta_formatted} {message}',
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 50,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const bars = new Map<
    string,
    { bar?: cliProgress.SingleBar; start: number; lastLine: number; done: number }
  >();
  const line = (text: string) => (multibar ? multibar.log(`${text}\n`) : stream.write(`${text}\n`));

  const sink: EventSink = (event: EagletEvent) => {
    switch (event.type) {
      case 'progress': {
        let state = bars.get(event.task);
        const now = Date.now();
        // A task that starts over (each eval of a training run) counts its rate from its new start.
        if (state && event.done < state.done) {
          state.start = now;
          state.lastLine = 0;
        }
        if (!state) {
          state = { start: now, lastLine: 0, done: 0 };
          if (multibar) {
            state.bar = multibar.create(event.total ?? 0, event.done, {
              task: event.task,
              unit: event.unit ?? '',
              rate: '0',
              message: '',
            });
          }
          bars.set(event.task, state);
        }
        state.done = event.done;
        const rate = event.done / Math.max((now - state.start) / 1000, 1e-3);
        const payload = {
          task: event.task,
          unit: event.unit ?? '',
          rate: formatRate(rate),
          message: event.message ?? '',
        };
        if (state.bar) {
          if (event.total !== undefined) state.bar.setTotal(event.total);
          state.bar.update(event.done, payload);
        } else if (now - state.lastLine > 5000 || (event.total !== undefined && event.done >= event.total)) {
          state.lastLine = now;
          const pct = event.total ? ` (${((100 * event.done) / event.total).toFixed(1)}%)` : '';
          const eta = event.total && rate > 0 ? ` ETA ${Math.round((event.total - event.done) / rate)}s` : '';
          line(
            `${event.task}: ${event.done}${event.total ? `/${event.total}` : ''} ${event.unit ?? ''}${pct} ${payload.rate}/s${eta} ${payload.message}`.trimEnd(),
          );
        }
        break;
      }
      case 'metrics':
        line(
          `[${event.split} step ${event.step}] ${Object.entries(event.values)
            .map(([k, v]) => `${k}=${formatNumber(v)}`)
            .join(' ')}`,
        );
        break;
      case 'log':
        if (event.level !== 'debug')
          line(`${event.level === 'info' ? '' : `${event.level}: `}${event.message}`);
        break;
      case 'checkpoint':
        line(`checkpoint step ${event.step}: ${event.path}`);
        break;
      case 'artifact':
        line(`${event.kind}: ${event.path}`);
        break;
      case 'error':
        line(`error: ${event.message}`);
        break;
      case 'done':
        break;
    }
  };
  return { sink, close: () => multibar?.stop() };
}

function formatRate(rate: number): string {
  if (rate >= 1e6) return `${(rate / 1e6).toFixed(1)}M`;
  if (rate >= 1e3) return `${(rate / 1e3).toFixed(1)}k`;
  return rate >= 10 ? rate.toFixed(0) : rate.toFixed(2);
}

function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
}
