import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import {
  type BenchPass,
  BenchRequest,
  EagletError,
  EagletEvent,
  type EventSink,
  SpecDecodeCounters,
} from '@eaglet/core';
import { z } from 'zod';
import { pythonPath } from './python.js';

/** What `python -m eaglet_vllm bench` writes besides EagletEvents (progress, log, error). */
const RunnerMessage = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready'), versions: z.record(z.string(), z.string()) }),
  z.strictObject({
    type: z.literal('pass'),
    result: z.strictObject({
      requests: z.array(BenchRequest),
      outputs: z.array(z.strictObject({ id: z.string(), ids: z.array(z.number().int()) })),
      counters: SpecDecodeCounters.optional(),
    }),
  }),
]);
type RunnerMessage = z.infer<typeof RunnerMessage>;

const TAIL_LINES = 40;

export interface BenchProcessOptions {
  python: string;
  /** The runner's config (bench.py reads it), written to `configFile`. */
  config: unknown;
  configFile: string;
  /** The runner, and the target plugin's vLLM support. */
  pythonPath: readonly string[];
  /** stderr (vLLM's own output) is appended here. */
  logFile: string;
  onEvent: EventSink;
  signal: AbortSignal;
}

/**
 * One `python -m eaglet_vllm bench` process: one mode's vLLM engine, loaded once, running a pass
 * over the prompts per `pass()` until `stop()`. Passes run one at a time.
 */
export class VllmBenchProcess {
  private pending: { resolve: (m: RunnerMessage) => void; reject: (e: Error) => void } | undefined;
  private readonly tail: string[] = [];
  private exited = false;
  private readonly exit: Promise<void>;
  private readonly log: WriteStream;
  versions: Record<string, string> = {};

  private constructor(
    private readonly child: ChildProcess,
    private readonly options: BenchProcessOptions,
  ) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    this.log = createWriteStream(options.logFile, { flags: 'a' });
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.log.write(`${line}\n`);
      this.tail.push(line);
      if (this.tail.length > TAIL_LINES) this.tail.shift();
    });
    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
    child.stdin!.on('error', () => {}); // a dead runner's stdin: its exit is reported instead
    this.exit = new Promise((resolve) =>
      child.on('close', (code, signal) => {
        this.exited = true;
        this.log.end();
        this.fail(
          new EagletError(
            'EAGLET_ENGINE_CRASHED',
            `the vLLM benchmark runner exited (${signal ?? `code ${code}`})\n--- stderr (last lines) ---\n${this.tail.join('\n')}`,
            { hint: `full log: ${options.logFile}` },
          ),
        );
        resolve();
      }),
    );
    child.on('error', (e) =>
      this.fail(new EagletError('EAGLET_ENGINE_SPAWN', `could not start ${options.python}: ${e.message}`)),
    );
  }

  /** Starts the runner and resolves once its engine is loaded. */
  static async start(options: BenchProcessOptions): Promise<VllmBenchProcess> {
    writeFileSync(options.configFile, JSON.stringify(options.config));
    const child = spawn(options.python, ['-m', 'eaglet_vllm', 'bench', '--config', options.configFile], {
      env: { ...process.env, PYTHONPATH: pythonPath(options.pythonPath), PYTHONUNBUFFERED: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // its own process group: stopping it reaches vLLM's engine processes too
    });
    const runner = new VllmBenchProcess(child, options);
    const ready = await runner.request(undefined);
    if (ready.type === 'ready') runner.versions = ready.versions;
    return runner;
  }

  /** One pass over the prompts (`limit`: the first `prompts`, at most `maxTokens` new tokens each). */
  async pass(limit?: { prompts: number; maxTokens: number }): Promise<BenchPass> {
    const answer = await this.request({ op: 'pass', ...(limit ? { limit } : {}) });
    if (answer.type !== 'pass')
      throw new EagletError('EAGLET_ENGINE_PROTOCOL', 'the runner answered a pass with ready');
    return answer.result;
  }

  /** Asks the runner to exit; SIGTERM, then SIGKILL, to its process group if it does not. */
  async stop(graceSeconds = 30): Promise<void> {
    if (this.exited) return;
    this.child.stdin!.end(`${JSON.stringify({ op: 'shutdown' })}\n`);
    const term = setTimeout(() => this.kill('SIGTERM'), graceSeconds * 1000);
    const kill = setTimeout(() => this.kill('SIGKILL'), 2 * graceSeconds * 1000);
    await this.exit;
    clearTimeout(term);
    clearTimeout(kill);
  }

  /** Sends a command (none: waits for `ready`) and resolves with the answer; cancelled by the signal. */
  private request(command: object | undefined): Promise<RunnerMessage> {
    const { signal } = this.options;
    if (this.exited)
      return Promise.reject(new EagletError('EAGLET_WORKER_GONE', 'the vLLM runner is not running'));
    return new Promise<RunnerMessage>((resolve, reject) => {
      const onAbort = () => {
        this.fail(new EagletError('EAGLET_CANCELLED', 'benchmark cancelled'));
        this.kill('SIGTERM');
      };
      const done = () => signal.removeEventListener('abort', onAbort);
      this.pending = {
        resolve: (m) => {
          done();
          resolve(m);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      if (command) this.child.stdin!.write(`${JSON.stringify(command)}\n`);
    });
  }

  private onLine(line: string): void {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      this.log.write(`[stdout, not JSON] ${line}\n`);
      return;
    }
    const own = RunnerMessage.safeParse(json);
    if (own.success) {
      const p = this.pending;
      this.pending = undefined;
      p?.resolve(own.data);
      return;
    }
    const event = EagletEvent.safeParse(json);
    if (!event.success) {
      this.fail(
        new EagletError(
          'EAGLET_ENGINE_PROTOCOL',
          `the vLLM runner wrote an unknown message: ${line.slice(0, 200)}`,
        ),
      );
      this.kill('SIGKILL');
    } else if (event.data.type === 'error') {
      const e = event.data;
      this.fail(
        new EagletError(e.code, e.message, {
          hint: `full log: ${this.options.logFile}`,
          details: { traceback: e.traceback },
        }),
      );
    } else this.options.onEvent(event.data);
  }

  private fail(e: Error): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(e);
  }

  private kill(signal: NodeJS.Signals): void {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      this.child.kill(signal);
    }
  }
}
