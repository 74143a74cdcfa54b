import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

/** One line of a jsonl file: its 1-based number, the raw text, and the parsed value or the parse error. */
export type JsonlLine =
  | { line: number; raw: string; ok: true; value: unknown }
  | { line: number; raw: string; ok: false; error: string };

/**
 * Streams a jsonl file line by line in constant memory (multi-GB files are fine). Blank lines are
 * skipped but still counted, so line numbers match what an editor shows. A UTF-8 BOM is ignored.
 */
export async function* readJsonl(
  path: string,
  options: { startLine?: number } = {},
): AsyncGenerator<JsonlLine> {
  const input = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  try {
    for await (let raw of lines) {
      line++;
      if (line === 1 && raw.charCodeAt(0) === 0xfeff) raw = raw.slice(1);
      if (line < (options.startLine ?? 1) || raw.trim() === '') continue;
      try {
        yield { line, raw, ok: true, value: JSON.parse(raw) };
      } catch (e) {
        yield { line, raw, ok: false, error: `not valid JSON: ${(e as Error).message}` };
      }
    }
  } finally {
    lines.close();
    input.destroy();
  }
}

/** Appends JSON values as lines, respecting back-pressure. */
export class JsonlWriter {
  private readonly stream: WriteStream;

  constructor(path: string, options: { append?: boolean } = {}) {
    this.stream = createWriteStream(path, { flags: options.append ? 'a' : 'w', encoding: 'utf8' });
  }

  async write(value: unknown): Promise<void> {
    if (!this.stream.write(`${JSON.stringify(value)}\n`)) await once(this.stream, 'drain');
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
  }
}
