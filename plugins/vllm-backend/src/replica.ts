import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { EagletError } from '@eaglet/core';

export interface ReplicaSpec {
  /** Index of the replica (port offset). */
  index: number;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Base URL of the replica's OpenAI API (…/v1); health is GET {origin}/health. */
  url: string;
  logFile: string;
}

/**
 * One server process under supervision: started in its own process group with its output kept in
 * a log file, healthy once GET /health answers 200, restarted (with backoff) when it exits
 * unasked, stopped with SIGTERM then SIGKILL.
 */
export class SupervisedReplica {
  private child: ChildProcess | undefined;
  private log: WriteStream | undefined;
  private stopping = false;
  restarts = 0;
  lastExit: string | undefined;

  constructor(
    readonly spec: ReplicaSpec,
    private readonly options: { restartOnCrash: boolean; onEvent: (message: string) => void },
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    mkdirSync(dirname(this.spec.logFile), { recursive: true });
    this.log ??= createWriteStream(this.spec.logFile, { flags: 'a' });
    this.log.write(`\n=== ${new Date().toISOString()} ${this.spec.command} ${this.spec.args.join(' ')}\n`);
    const child = spawn(this.spec.command, this.spec.args, {
      env: this.spec.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    child.on('exit', (code, signal) => {
      this.lastExit = signal ?? `code ${code}`;
      if (this.stopping) return;
      this.options.onEvent(`replica ${this.spec.index} exited (${this.lastExit}); log ${this.spec.logFile}`);
      if (this.options.restartOnCrash) {
        const delay = Math.min(30_000, 1000 * 2 ** Math.min(this.restarts, 5));
        this.restarts++;
        setTimeout(() => {
          if (!this.stopping) this.start();
        }, delay).unref();
      }
    });
    this.child = child;
  }

  async healthy(timeoutMs = 5000): Promise<boolean> {
    try {
      const res = await fetch(`${new URL(this.spec.url).origin}/health`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      return res.ok;
    } catch {
      return false;
    }
  }

  /** Waits until /health answers, failing early when the process dies. */
  async waitHealthy(timeoutSeconds: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutSeconds * 1000;
    while (Date.now() < deadline) {
      if (signal?.aborted)
        throw new EagletError('EAGLET_CANCELLED', 'cancelled while waiting for the server');
      if (await this.healthy()) return;
      if (!this.running && !this.options.restartOnCrash) {
        throw new EagletError(
          'EAGLET_SERVER_DIED',
          `replica ${this.spec.index} exited (${this.lastExit}) before it was healthy`,
          {
            hint: `see its log: ${this.spec.logFile}`,
          },
        );
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    throw new EagletError(
      'EAGLET_SERVER_TIMEOUT',
      `replica ${this.spec.index} not healthy after ${timeoutSeconds} s (${this.spec.url})`,
      {
        hint: `see its log: ${this.spec.logFile}`,
      },
    );
  }

  async stop(graceSeconds = 30): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null && child.pid) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const kill = (sig: NodeJS.Signals) => {
        try {
          process.kill(-child.pid!, sig);
        } catch {
          child.kill(sig);
        }
      };
      kill('SIGTERM');
      const hard = setTimeout(() => kill('SIGKILL'), graceSeconds * 1000);
      await exited;
      clearTimeout(hard);
    }
    await new Promise<void>((r) => (this.log ? this.log.end(() => r()) : r()));
    this.log = undefined;
  }

  /** Kills the process as a crash would (tests). */
  crash(): void {
    if (this.child?.pid) process.kill(-this.child.pid, 'SIGKILL');
  }
}
