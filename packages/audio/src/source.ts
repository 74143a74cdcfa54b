import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EagletError } from '@eaglet/core';

const DATA_URI = /^data:audio\/([\w.+-]+);base64,(.*)$/s;

/**
 * Runs `fn` on a local file for an audio reference: a path as it is, a data: URI written to a
 * temporary file (removed afterwards). http(s) URLs are refused: eaglet reads audio locally.
 */
export async function withLocalFile<T>(ref: string, fn: (path: string) => Promise<T>): Promise<T> {
  const m = DATA_URI.exec(ref);
  if (m) {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-audio-'));
    const path = join(dir, `clip.${m[1]}`);
    try {
      writeFileSync(path, Buffer.from(m[2]!, 'base64'));
      return await fn(path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (/^https?:/i.test(ref)) {
    throw new EagletError('EAGLET_AUDIO_REMOTE', `remote audio is not fetched: ${ref}`, {
      hint: 'download the audio and reference the local file',
    });
  }
  return fn(ref);
}
