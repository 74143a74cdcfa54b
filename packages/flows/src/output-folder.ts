import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { EagletError, toEagletError } from '@eaglet/core';

/** The lock file a run keeps in the output folder it writes (prepare, train, regenerate). */
export const LOCK_FILE = '.eaglet.lock';

/** What the lock file says: who writes the folder. */
interface LockHolder {
  /** Processes whose life holds the lock: the run, and an engine it started (which may outlive it). */
  pids: number[];
  host: string;
  /** What runs there, e.g. `eaglet train`. */
  command: string;
  since: string;
}

/** An output folder this process writes alone until `release()`. */
export interface OutputFolder {
  readonly dir: string;
  /** The folder did not exist before this run. */
  readonly created: boolean;
  /**
   * Names another process whose life also holds the lock: a training engine keeps writing the
   * folder for a moment after its parent is killed, and a second run must not start until it is gone.
   */
  share(pid: number): void;
  /** Drops the lock (and the folder, when this run created it and left it empty). */
  release(): void;
}

/**
 * Makes an output folder (or takes an existing one) and locks it for one run: a lock file created
 * atomically (`O_EXCL`) holds the pids and host of its holder. A second run gets a clear error
 * naming the folder and the pid; a lock whose processes are all gone (a run killed with -9) is
 * stale and taken over. Folders are created one level at a time after checking the nearest
 * existing parent, so an unwritable place or a file in the way gives a clear error at once (Node's
 * recursive mkdir spins forever under /proc).
 */
export function claimOutputFolder(dir: string, command: string): OutputFolder {
  const created = makeOutputFolder(dir);
  const file = join(dir, LOCK_FILE);
  const holder: LockHolder = {
    pids: [process.pid],
    host: hostname(),
    command,
    since: new Date().toISOString(),
  };
  takeLock(dir, file, holder);
  let released = false;
  return {
    dir,
    created,
    share(pid) {
      holder.pids.push(pid);
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(holder));
      renameSync(tmp, file);
    },
    release() {
      if (released) return;
      released = true;
      if (readHolder(file)?.pids[0] === process.pid) rmSync(file, { force: true });
      if (created) {
        try {
          rmdirSync(dir); // only when empty: a run that failed before writing anything
        } catch {
          // it holds the run's files
        }
      }
    },
  };
}

function takeLock(dir: string, file: string, holder: LockHolder): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(holder), { flag: 'wx' });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw folderError(dir, e);
    }
    const other = readHolder(file);
    // A lock from another machine (a shared file system) cannot be checked: it is honoured.
    if (other && (other.host !== holder.host || other.pids.some(alive))) {
      const live = other.host === holder.host ? other.pids.filter(alive) : other.pids;
      throw new EagletError(
        'EAGLET_OUTPUT_LOCKED',
        `${dir} is in use by another run: ${other.command} (pid ${live.join(', ')}${other.host === holder.host ? '' : ` on ${other.host}`}, since ${other.since})`,
        {
          hint: `wait for it to finish or stop it, or choose another output folder; if that process is gone, delete ${file}`,
        },
      );
    }
    rmSync(file, { force: true }); // stale: its processes are gone (or the file is unreadable)
  }
  throw new EagletError('EAGLET_OUTPUT_LOCKED', `${dir}: another run took the lock at the same moment`, {
    hint: 'run one at a time per output folder',
  });
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockHolder>;
    return Array.isArray(h.pids) && typeof h.host === 'string'
      ? { pids: h.pids, host: h.host, command: h.command ?? 'eaglet', since: h.since ?? '?' }
      : undefined;
  } catch {
    return undefined; // a crash while writing it
  }
}

/** Is the process alive? A zombie (exited, not yet reaped by its parent) counts as gone. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc (not Linux): kill(0) is all there is
  }
}

/**
 * Creates `dir` and any missing parents, one level at a time, after checking the nearest existing
 * one is a folder: a clear EAGLET_OUTPUT_INVALID for a file in the way, an unwritable place or a
 * file system that takes no folders, where Node's recursive mkdir loops forever (under /proc).
 * True when `dir` did not exist.
 */
export function makeOutputFolder(dir: string): boolean {
  const missing: string[] = [];
  let existing = dir;
  while (!existsSync(existing)) {
    missing.unshift(existing);
    const parent = dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(existing);
  } catch (e) {
    throw folderError(dir, e);
  }
  if (!st.isDirectory())
    throw new EagletError('EAGLET_OUTPUT_INVALID', `cannot use ${dir} as a folder: ${existing} is a file`, {
      hint: 'choose an output folder whose path does not run through a file',
    });
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(d).isDirectory()) continue;
      throw folderError(dir, e, dirname(d));
    }
  }
  return missing.length > 0;
}

/** A clear error for a folder that cannot be created or written. */
function folderError(dir: string, e: unknown, parent?: string): EagletError {
  const code = (e as NodeJS.ErrnoException).code;
  const where = parent ?? dir;
  const reason =
    code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
      ? `${where} is not writable (${code})`
      : code === 'ENOTDIR'
        ? `a part of the path is a file, not a folder (ENOTDIR)`
        : code === 'ENOENT'
          ? `${where} does not take new folders (ENOENT: a special file system such as /proc?)`
          : toEagletError(e).message;
  return new EagletError('EAGLET_OUTPUT_INVALID', `cannot write the output folder ${dir}: ${reason}`, {
    hint: 'choose an output folder in a place you can write',
    cause: e,
  });
}

/** The folder's entries other than the lock file. */
export function folderContents(dir: string): string[] {
  return readdirSync(dir).filter((f) => f !== LOCK_FILE && !f.startsWith(`${LOCK_FILE}.`));
}
