import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { JobId, JobRecord, type StoredEvent } from '../schemas.js';

/**
 * Jobs on disk, one folder each under `<stateDir>/jobs/<id>/`:
 *   job.json      the record, rewritten atomically (temp file + rename) on every change that matters
 *   events.jsonl  every stored event, one JSON line each, appended in seq order
 * A server killed mid-write leaves at worst a partial last line in events.jsonl, which readers skip.
 */
export class JobStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'jobs');
    mkdirSync(this.dir, { recursive: true });
  }

  jobDir(id: string): string {
    return join(this.dir, id);
  }

  create(record: JobRecord): void {
    mkdirSync(this.jobDir(record.id), { recursive: true });
    this.save(record);
  }

  save(record: JobRecord): void {
    const file = join(this.jobDir(record.id), 'job.json');
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(record, null, 1)}\n`);
    renameSync(tmp, file);
  }

  appendEvent(id: string, event: StoredEvent): void {
    appendFileSync(join(this.jobDir(id), 'events.jsonl'), `${JSON.stringify(event)}\n`);
  }

  /** Every readable job record; unreadable ones are reported through `onProblem` and skipped. */
  loadAll(onProblem: (id: string, reason: string) => void): JobRecord[] {
    const out: JobRecord[] = [];
    for (const id of readdirSync(this.dir)) {
      if (!JobId.safeParse(id).success) continue;
      const file = join(this.jobDir(id), 'job.json');
      try {
        const parsed = JobRecord.safeParse(JSON.parse(readFileSync(file, 'utf8')));
        if (parsed.success) out.push(parsed.data);
        else onProblem(id, `job.json does not match the job schema: ${parsed.error.issues[0]?.message}`);
      } catch (e) {
        onProblem(id, (e as Error).message);
      }
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** Events with seq > after, optionally of one type, at most `limit`. */
  readEvents(id: string, options: { after?: number; limit?: number; type?: string } = {}): StoredEvent[] {
    const file = join(this.jobDir(id), 'events.jsonl');
    if (!existsSync(file)) return [];
    const after = options.after ?? 0;
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const out: StoredEvent[] = [];
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line) continue;
      let value: StoredEvent;
      try {
        value = JSON.parse(line) as StoredEvent;
      } catch {
        continue; // a line cut short by a crash
      }
      if (value.seq <= after) continue;
      if (options.type && value.event.type !== options.type) continue;
      out.push(value);
      if (out.length >= limit) break;
    }
    return out;
  }

  remove(id: string): void {
    rmSync(this.jobDir(id), { recursive: true, force: true });
  }
}
