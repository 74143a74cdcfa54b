import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  EagletError,
  EagletEvent,
  type GenerateRequestInput,
  type GenerateResult,
  GenerationEngineConfig,
  type GenerationEngineConfigInput,
  WorkerMessage,
} from '@eaglet/core';
import { engineProcessEnv, resolvePython } from './python.js';
import { engineArgv } from './run.js';

export interface WorkerReadyInfo {
  device: string;
  dtype: string;
  speculative: boolean;
  numSpecTokens: number;
  vocabSize: number;
  versions: Record<string, string>;
  /** 'graphs': CUDA graphs over static caches; 'eager': plain PyTorch (CPU, or a target the fast path refuses). */
  decodePath?: 'graphs' | 'eager';
  captureSeconds?: number;
  /** On the graph path: 'fused' Triton kernels for a decode step, or the 'compiled' / 'plain' PyTorch functions. */
  decodeKernels?: 'fused' | 'compiled' | 'plain';
}

export interface StartWorkerOptions {
  config: GenerationEngineConfigInput;
  python?: string;
  /** Extra PYTHONPATH folders (plugin adapters). */
  pythonPath?: readonly string[];
  /** stderr is appended here. Default: a file in a temporary folder. */
  logFile?: string;
  env?: Record<string, string>;
  /** Seconds to wait for the model to load. */
  readyTimeoutSeconds?: number;
  /** Called once if the process exits without being asked to (crash, OOM kill). */
  onExit?: (info: { code: number | null; signal: NodeJS.Signals | null; stderrTail: string }) => void;
}

type Pending = {
  resolve: (r: GenerateResult) => void;
  reject: (e: Error) => void;
  onTokens?: ((ids: number[]) => void) | undefined;
};

const TAIL = 40;

/**
 * A long-lived `python -m eaglet_engine worker` process: the model loads once, then requests go
 * in as JSON lines on stdin and results come back as JSON lines on stdout (schemas in
 * @eaglet/core's generation.ts). Requests run one at a time in the order sent.
 */
export class EngineWorker {
  private readonly pending = new Map<string, Pending>();
  private readonly tail: string[] = [];
  private nextId = 0;
  private exited = false;
  private stopping = false;
  private exitWaiters: Array<() => void> = [];

  private constructor(
    private readonly child: ChildProcess,
    readonly logFile: string,
    readonly info: WorkerReadyInfo,
  ) {}

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return !this.exited;
  }

  static async start(options: StartWorkerOptions): Promise<EngineWorker> {
    const config = GenerationEngineConfig.parse(options.config);
    const python = options.python ?? resolvePython();
    const tmp = mkdtempSync(join(tmpdir(), 'eaglet-worker-'));
    const logFile = options.logFile ?? join(tmp, 'worker.log');
    mkdirSync(dirname(logFile), { recursive: true });
    const configPath = join(tmp, 'config.json');
    writeFileSync(configPath, JSON.stringify(config, null, 2));
    const child = spawn(python, engineArgv('eaglet_engine', 'worker', configPath, 1), {
      env: engineProcessEnv({ ...process.env, ...options.env }, options.pythonPath),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const log = createWriteStream(logFile, { flags: 'a' });
    const tail: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (line) => {
      log.write(`${line}\n`);
      tail.push(line);
      if (tail.length > TAIL) tail.shift();
    });
    child.stdin!.on('error', () => {}); // a dead worker's stdin: the exit handler reports it

    let worker: EngineWorker | undefined;
    let readyResolve!: (w: EngineWorker) => void;
    let readyReject!: (e: Error) => void;
    const ready = new Promise<EngineWorker>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    const failStart = (message: string) =>
      readyReject(
        new EagletError(
          'EAGLET_WORKER_START',
          `${message}\n--- stderr (last lines) ---\n${tail.join('\n')}`,
          {
            hint: `full log: ${logFile}`,
          },
        ),
      );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        log.write(`[stdout, not JSON] ${line}\n`);
        return;
      }
      const msg = WorkerMessage.safeParse(json);
      if (msg.success) {
        const m = msg.data;
        if (m.type === 'ready') {
          const { type: _t, ...info } = m;
          worker = new EngineWorker(child, logFile, info);
          worker.tail.push(...tail);
          readyResolve(worker);
        } else worker?.handle(m);
        return;
      }
      const event = EagletEvent.safeParse(json);
      if (event.success && event.data.type === 'error') {
        const e = event.data;
        if (!worker) failStart(`${e.code}: ${e.message}`);
        else worker.failAll(new EagletError(e.code, e.message, e.hint ? { hint: e.hint } : {}));
      }
      // `done` and other events carry nothing a caller waits on.
    });
    child.on('error', (e) => failStart(`could not start ${python}: ${e.message}`));
    child.on('close', (code, signal) => {
      log.end();
      if (!worker) {
        failStart(`the worker exited before it was ready (${signal ?? `code ${code}`})`);
        return;
      }
      worker.onClose(code, signal, options.onExit);
    });
    const timeout = setTimeout(
      () => {
        failStart(`the worker was not ready after ${options.readyTimeoutSeconds ?? 600} s`);
        killTree(child, 'SIGKILL');
      },
      (options.readyTimeoutSeconds ?? 600) * 1000,
    );
    try {
      return await ready;
    } finally {
      clearTimeout(timeout);
    }
  }

  private handle(m: WorkerMessage): void {
    if (m.type === 'log') return;
    if (m.type === 'fatal') {
      this.failAll(new EagletError(m.code, m.message, m.hint ? { hint: m.hint } : {}));
      return;
    }
    if (m.type === 'ready') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === 'tokens') p.onTokens?.(m.ids);
    else if (m.type === 'result') {
      this.pending.delete(m.id);
      p.resolve(m.result);
    } else if (m.type === 'failed') {
      this.pending.delete(m.id);
      p.reject(new EagletError(m.code, m.message));
    }
  }

  private failAll(e: Error): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(e);
    }
  }

  private onClose(
    code: number | null,
    signal: NodeJS.Signals | null,
    onExit: StartWorkerOptions['onExit'],
  ): void {
    this.exited = true;
    const stderrTail = this.tail.join('\n');
    if (this.pending.size) {
      this.failAll(
        new EagletError(
          'EAGLET_ENGINE_CRASHED',
          `the generation worker exited (${signal ?? `code ${code}`}) with requests in flight\n--- stderr (last lines) ---\n${stderrTail}`,
          { hint: `full log: ${this.logFile}` },
        ),
      );
    }
    if (!this.stopping) onExit?.({ code, signal, stderrTail });
    for (const w of this.exitWaiters.splice(0)) w();
  }

  /** Generates for one request; `onTokens` receives tokens as they come (streaming). */
  generate(
    request: Omit<GenerateRequestInput, 'op' | 'id' | 'stream'>,
    options: { onTokens?: (ids: number[]) => void; signal?: AbortSignal } = {},
  ): Promise<GenerateResult> {
    if (this.exited || this.stopping)
      return Promise.reject(new EagletError('EAGLET_WORKER_GONE', 'the generation worker is not running'));
    const id = `r${this.nextId++}`;
    return new Promise<GenerateResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onTokens: options.onTokens });
      const onAbort = () => this.send({ op: 'cancel', id });
      if (options.signal?.aborted) onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => options.signal?.removeEventListener('abort', onAbort);
      const p = this.pending.get(id)!;
      p.resolve = (r) => {
        cleanup();
        resolve(r);
      };
      p.reject = (e) => {
        cleanup();
        reject(e);
      };
      this.send({ op: 'generate', id, ...request, stream: !!options.onTokens });
    });
  }

  private send(message: unknown): void {
    if (!this.exited) this.child.stdin!.write(`${JSON.stringify(message)}\n`);
  }

  /** Asks the worker to finish and exit; SIGTERM then SIGKILL if it does not within the grace time. */
  async stop(graceSeconds = 10): Promise<void> {
    if (this.exited) return;
    this.stopping = true;
    const exited = new Promise<void>((r) => this.exitWaiters.push(r));
    this.send({ op: 'shutdown' });
    this.child.stdin!.end();
    const term = setTimeout(() => killTree(this.child, 'SIGTERM'), graceSeconds * 1000);
    const kill = setTimeout(() => killTree(this.child, 'SIGKILL'), 2 * graceSeconds * 1000);
    await exited;
    clearTimeout(term);
    clearTimeout(kill);
  }

  /** Kills the process at once (tests simulate a crash with this). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    killTree(this.child, signal);
  }
}

function killTree(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}
