import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EagletError } from '@eaglet/core';

/**
 * One server per state folder: two servers would each mark the other's running jobs interrupted.
 * The lock file holds the owner's pid; a lock whose process is gone (a killed server) is taken over.
 */
export class StateLock {
  private constructor(private readonly file: string) {}

  static acquire(stateDir: string): StateLock {
    const file = join(stateDir, 'server.lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(file, JSON.stringify({ pid: process.pid, since: new Date().toISOString() }), {
          flag: 'wx',
        });
        return new StateLock(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let pid = 0;
      try {
        pid = (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid;
      } catch {
        // unreadable: a crash while writing it; take it over
      }
      // Our own pid counts too: another server in this process still holds the folder.
      if (pid && alive(pid)) {
        throw new EagletError('EAGLET_SERVER_LOCKED', `another eaglet server (pid ${pid}) uses ${stateDir}`, {
          hint: 'stop it, or give this one its own --state-dir',
        });
      }
      rmSync(file, { force: true });
    }
    throw new EagletError('EAGLET_SERVER_LOCKED', `could not lock ${stateDir}`);
  }

  release(): void {
    rmSync(this.file, { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
