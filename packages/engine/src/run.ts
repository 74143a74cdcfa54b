import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  type DoneEvent,
  EagletError,
  type EagletEvent,
  EagletEvent as EventSchema,
  type EventSink,
  type NodeLaunch,
} from '@eaglet/core';
import { engineProcessEnv, resolvePython } from './python.js';

export interface EngineRunOptions {
  /** Engine command (`env`, `train`, ...). */
  command: string;
  /** Config object; written to a temporary JSON file passed as `--config`. */
  config?: unknown;
  /** Python module to run; default `eaglet_engine`. */
  module?: string;
  /** Python interpreter; default: resolvePython(). */
  python?: string;
  /** Extra PYTHONPATH folders (plugin adapters). */
  pythonPath?: readonly string[];
  /** GPUs on this node; above 1 (or with several nodes) the command runs under torchrun. */
  nprocPerNode?: number;
  /** Several machines: how torchrun's rendezvous brings the nodes together. */
  nodes?: NodeLaunch;
  /** Receives every validated event, in order. */
  onEvent?: EventSink;
  /**
   * Called with the engine's pid (the leader of its own process group) once it is started: a
   * caller that locks an output folder names it there, since the engine may outlive its parent.
   */
  onSpawn?: (pid: number) => void;
  /** Abort = cooperative stop: SIGINT, the engine finishes its step, checkpoints, emits done{stopped}. */
  signal?: AbortSignal;
  /** Seconds to wait after SIGINT before SIGTERM, and again before SIGKILL. */
  stopGraceSeconds?: number;
  /** stderr is appended here (created with its folder). Default: a file in a temporary folder. */
  logFile?: string;
  env?: Record<string, string>;
  cwd?: string;
}

export interface EngineRunResult {
  done: DoneEvent;
  /** Where stderr was kept. */
  logFile: string;
}

const STDERR_TAIL_LINES = 40;

/**
 * What torchrun prints when the nodes never meet: on node 0, its store waited for the others in
 * vain; on the others, node 0's endpoint was unreachable.
 */
const RENDEZVOUS_FAILED =
  /Rendezvous(Timeout|Connection|Closed)Error|The client socket has timed out|failed to connect to|Connection refused.*(29\d{3}|rdzv)|TCPStore.*(timed out|refused)|waiting for clients\. \d+\/\d+ clients joined/i;

/**
 * Builds the argv: `python -m MODULE CMD --config F`, or under torchrun (`python -m
 * torch.distributed.run ... -m MODULE ...`) for several processes: `--standalone` on one machine;
 * on several, torchrun's static rendezvous at the endpoint (node 0 holds rank 0) with the
 * rendezvous timeout and no restarts (a failed node fails the run).
 */
export function engineArgv(
  module: string,
  command: string,
  configPath: string | undefined,
  nproc: number,
  nodes?: NodeLaunch,
): string[] {
  const tail = ['-m', module, command, ...(configPath ? ['--config', configPath] : [])];
  if (nodes && nodes.nnodes > 1)
    return [
      '-m',
      'torch.distributed.run',
      `--nnodes=${nodes.nnodes}`,
      `--node-rank=${nodes.nodeRank}`,
      `--nproc-per-node=${nproc}`,
      '--rdzv-backend=static',
      `--rdzv-endpoint=${nodes.rdzvEndpoint}`,
      `--rdzv-id=${nodes.rdzvId}`,
      `--rdzv-conf=timeout=${nodes.rdzvTimeoutSeconds}`,
      '--max-restarts=0',
      ...tail,
    ];
  if (nproc > 1) return ['-m', 'torch.distributed.run', '--standalone', `--nproc-per-node=${nproc}`, ...tail];
  return tail;
}

/**
 * The engine process's environment. Under torchrun each rank gets an equal share of the host's
 * cores as OMP_NUM_THREADS unless the caller chose one: torchrun's own default, 1 thread per rank,
 * starves the CPU-side work (training on CPU, the data thread's decode and collate).
 */
export function rankThreadsEnv(
  base: NodeJS.ProcessEnv,
  nproc: number,
  cpus: number = availableParallelism(),
): NodeJS.ProcessEnv {
  if (nproc <= 1 || base.OMP_NUM_THREADS) return base;
  return { ...base, OMP_NUM_THREADS: String(Math.max(1, Math.floor(cpus / nproc))) };
}

/**
 * Runs one engine command to completion. Resolves with the `done` event after exit code 0;
 * rejects with an EagletError for an `error` event, an invalid event line (the process is
 * killed), a crash (non-zero exit or exit without `done`), each with the stderr tail.
 */
export async function runEngine(options: EngineRunOptions): Promise<EngineRunResult> {
  const python = options.python ?? resolvePython();
  const tmp = mkdtempSync(join(tmpdir(), 'eaglet-engine-'));
  const logFile = options.logFile ?? join(tmp, 'engine.log');
  mkdirSync(dirname(logFile), { recursive: true });
  let configPath: string | undefined;
  if (options.config !== undefined) {
    configPath = join(tmp, 'config.json');
    writeFileSync(configPath, JSON.stringify(options.config, null, 2));
  }
  const argv = engineArgv(
    options.module ?? 'eaglet_engine',
    options.command,
    configPath,
    options.nprocPerNode ?? 1,
    options.nodes,
  );
  const child = spawn(python, argv, {
    cwd: options.cwd,
    env: engineProcessEnv(
      rankThreadsEnv({ ...process.env, ...options.env }, options.nprocPerNode ?? 1),
      options.pythonPath,
    ),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: a stop reaches torchrun's workers too
  });
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  const log = createWriteStream(logFile, { flags: 'a' });
  const tail: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    log.write(`${line}\n`);
    tail.push(line);
    if (tail.length > STDERR_TAIL_LINES) tail.shift();
  });

  let done: DoneEvent | undefined;
  let failure: EagletError | undefined;
  let lineNo = 0;
  const stdoutClosed = new Promise<void>((resolve) => {
    createInterface({ input: child.stdout! })
      .on('line', (line) => {
        lineNo++;
        if (failure) return;
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          failure = protocolError(
            `engine wrote a line that is not JSON (stdout line ${lineNo}): ${clip(line)}`,
          );
          killGroup(child, 'SIGKILL');
          return;
        }
        const checked = EventSchema.safeParse(parsed);
        if (!checked.success) {
          const why = checked.error.issues
            .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
            .join('; ');
          failure = protocolError(
            `engine wrote an invalid event (stdout line ${lineNo}): ${why}: ${clip(line)}`,
          );
          killGroup(child, 'SIGKILL');
          return;
        }
        const event: EagletEvent = checked.data;
        if (event.type === 'done') done = event;
        if (event.type === 'error') {
          failure = new EagletError(event.code, event.message, {
            ...(event.hint ? { hint: event.hint } : {}),
            details: { traceback: event.traceback },
          });
        }
        options.onEvent?.(event);
      })
      .on('close', resolve);
  });

  const onAbort = () => stopGracefully(child, (options.stopGraceSeconds ?? 60) * 1000);
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.on('error', (e) =>
        reject(
          new EagletError('EAGLET_ENGINE_SPAWN', `could not start ${python}: ${e.message}`, { cause: e }),
        ),
      );
      child.on('close', (code, signal) => resolve({ code, signal }));
    },
  ).finally(() => options.signal?.removeEventListener('abort', onAbort));
  await stdoutClosed;
  await new Promise<void>((resolve) => log.end(resolve));
  if (options.logFile === undefined) {
    // Keep the temporary log only when something went wrong.
    if (!failure && exit.code === 0 && done) rmSync(tmp, { recursive: true, force: true });
  } else if (configPath) rmSync(configPath, { force: true });

  const stderrTail = tail.join('\n');
  if (failure) {
    if (failure.code === 'EAGLET_ENGINE_PROTOCOL') failure = withTail(failure, stderrTail, logFile);
    throw failure;
  }
  if (exit.code !== 0 || !done) {
    if (options.nodes && !done && RENDEZVOUS_FAILED.test(stderrTail)) {
      const { rdzvEndpoint, rdzvTimeoutSeconds, nnodes } = options.nodes;
      throw new EagletError(
        'EAGLET_RENDEZVOUS',
        `the ${nnodes} nodes did not meet at the rendezvous ${rdzvEndpoint} within ${rdzvTimeoutSeconds} s`,
        {
          hint: `start the same command on every node; check that ${rdzvEndpoint} is node 0's address, that the port is free there and open between the nodes; full log: ${logFile}`,
          details: { logFile },
        },
      );
    }
    const how = exit.signal
      ? `was killed by ${exit.signal}`
      : exit.code !== 0
        ? `exited with code ${exit.code}`
        : 'exited without a done event';
    throw new EagletError(
      'EAGLET_ENGINE_CRASHED',
      `engine command "${options.command}" ${how}\n--- stderr (last lines) ---\n${stderrTail}`,
      {
        hint: `full log: ${logFile}`,
        details: { exitCode: exit.code, signal: exit.signal, logFile },
      },
    );
  }
  return { done, logFile };
}

function protocolError(message: string): EagletError {
  return new EagletError('EAGLET_ENGINE_PROTOCOL', message, {
    hint: 'the engine must write only JSON event lines on stdout; logs belong on stderr',
  });
}

function withTail(e: EagletError, stderrTail: string, logFile: string): EagletError {
  return new EagletError(e.code, `${e.message}\n--- stderr (last lines) ---\n${stderrTail}`, {
    ...(e.hint ? { hint: `${e.hint}; full log: ${logFile}` } : {}),
  });
}

const clip = (s: string) => (s.length > 200 ? `${s.slice(0, 200)}…` : s);

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

/** SIGINT to the group; SIGTERM if still running after the grace period; SIGKILL after another. */
function stopGracefully(child: ChildProcess, graceMs: number): void {
  killGroup(child, 'SIGINT');
  const term = setTimeout(() => {
    killGroup(child, 'SIGTERM');
    const kill = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
    kill.unref();
  }, graceMs);
  term.unref();
  child.once('close', () => clearTimeout(term));
}
