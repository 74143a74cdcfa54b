import { readFileSync } from 'node:fs';
import { EagletError, toEagletError } from './errors.js';

/**
 * Reads and parses a JSON file. Errors name the file: EAGLET_FILE_INVALID for text that is not
 * JSON (with the parser's position), EAGLET_FILE_<ERRNO> when it cannot be read. `what` says what
 * the file is for the hint (e.g. `the model's config.json`).
 */
export function readJsonFile(path: string, what = 'the file'): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw toEagletError(e);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new EagletError('EAGLET_FILE_INVALID', `${path} is not valid JSON: ${(e as Error).message}`, {
      hint: `repair or replace ${what}`,
    });
  }
}
