import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { type DataFormat, EagletError, type PluginRegistry, type PreparedManifest } from '@eaglet/core';
import { detectFormat } from '../detect-format.js';

/** One input file as a single read finds it. */
export interface ScannedInput {
  /** sha256 of its bytes. */
  sha256: string;
  /** Its records: non-blank lines, the ones readJsonl yields. */
  records: number;
  /** The first registered format that recognises one of its records (when asked to detect). */
  format?: DataFormat;
}

/**
 * Reads a file once: hashes its bytes, counts its records and, when `detect` is on, finds its
 * format from the first parseable record that a registered format recognises (records after that
 * are only counted, not parsed).
 */
export async function scanInput(
  registry: PluginRegistry,
  file: string,
  detect: boolean,
): Promise<ScannedInput> {
  const hash = createHash('sha256');
  const stream = createReadStream(file);
  stream.on('data', (chunk) => hash.update(chunk));
  let records = 0;
  let format: DataFormat | undefined;
  let first = true;
  for await (let line of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })) {
    if (first && line.charCodeAt(0) === 0xfeff) line = line.slice(1); // a UTF-8 BOM, as readJsonl drops it
    first = false;
    if (line.trim() === '') continue;
    records++;
    if (detect && !format) {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        continue; // a broken line is rejected in the work pass; it decides no format
      }
      format = detectFormat(registry, value);
    }
  }
  return { sha256: hash.digest('hex'), records, ...(format ? { format } : {}) };
}

/**
 * The scan pass of `eaglet data prepare`: every input read once, in order, for the manifest's
 * `inputs` (file, sha256, format, records) and the format each file's records are parsed with.
 * `formatName` is a registered format, or `auto` to detect it per file.
 */
export async function scanInputs(
  registry: PluginRegistry,
  files: readonly string[],
  formatName: string,
): Promise<{ inputs: PreparedManifest['inputs']; formats: DataFormat[] }> {
  const inputs: PreparedManifest['inputs'] = [];
  const formats: DataFormat[] = [];
  for (const file of files) {
    if (!existsSync(file))
      throw new EagletError('EAGLET_INPUT_MISSING', `input file not found: ${file}`, {
        hint: 'check --data',
      });
    const fixed = formatName === 'auto' ? undefined : registry.format(formatName);
    const scan = await scanInput(registry, file, !fixed);
    const format = fixed ?? scan.format;
    if (!format && scan.records > 0) {
      throw new EagletError(
        'EAGLET_FORMAT_UNKNOWN',
        `no known data format recognises the records of ${file}`,
        {
          hint: `pass --format (known: ${registry.ids('format').join(', ')}); \`eaglet data validate\` lists what is wrong`,
        },
      );
    }
    formats.push(format ?? registry.formats()[0]!);
    inputs.push({ file, sha256: scan.sha256, format: format?.name ?? 'none', records: scan.records });
  }
  return { inputs, formats };
}
