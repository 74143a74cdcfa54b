import { createReadStream, fstatSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import type { DirectoryListing } from '../schemas.js';
import { HttpError } from './errors.js';

// Reading the disk for the API: what a path is, a folder listing, a file sent as the response
// (the routes check the paths against the roots first).

/** What is at a path: a file, a folder, or nothing readable (a socket, a device, a dangling link). */
export function kindOfPath(path: string): 'file' | 'directory' | 'missing' {
  try {
    const st = statSync(path);
    return st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'missing';
  } catch {
    return 'missing';
  }
}

/** A folder's entries, folders first, then by name; links and special files are `other`. */
export function listDirectory(path: string): z.infer<typeof DirectoryListing> {
  const entries = readdirSync(path, { withFileTypes: true })
    .map((d) => {
      let size = 0;
      let type: 'file' | 'directory' | 'other' = d.isDirectory()
        ? 'directory'
        : d.isFile()
          ? 'file'
          : 'other';
      if (d.isSymbolicLink()) type = 'other';
      if (type === 'file') {
        try {
          size = statSync(join(path, d.name)).size;
        } catch {
          type = 'other';
        }
      }
      return { name: d.name, type, size };
    })
    .sort((a, b) => (a.type === b.type ? (a.name < b.name ? -1 : 1) : a.type === 'directory' ? -1 : 1));
  return { path, entries };
}

/** Media types a browser may show inline; anything else downloads. HTML never runs from here. */
const INLINE: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.wav': 'audio/wav',
};

/**
 * Streams a file as the whole response. The reply is taken over from Fastify once the file is open
 * (an error before that is still a JSON 4xx), so nothing can send it a second time.
 */
export function sendFile(reply: FastifyReply, path: string): Promise<FastifyReply> {
  const type = INLINE[extname(path).toLowerCase()];
  const name = path.split('/').pop() ?? 'file';
  return new Promise((resolve, reject) => {
    const stream = createReadStream(path);
    stream.once('error', (e) => {
      if (reply.sent) reply.raw.destroy(e);
      else reject(new HttpError(404, 'EAGLET_NOT_FOUND', `cannot read ${path}: ${(e as Error).message}`));
    });
    stream.once('open', (fd) => {
      let size: number;
      try {
        size = fstatSync(fd).size;
      } catch (e) {
        stream.destroy(e as Error);
        return;
      }
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': type ?? 'application/octet-stream',
        'content-length': size,
        // Header values must be Latin-1: an ASCII fallback plus the exact name, RFC 6266 style.
        'content-disposition': `${type ? 'inline' : 'attachment'}; filename="${name.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`,
        'content-security-policy': "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'x-frame-options': 'DENY',
        'cache-control': 'no-store',
      });
      reply.raw.once('close', () => stream.destroy());
      stream.pipe(reply.raw);
      resolve(reply);
    });
  });
}
