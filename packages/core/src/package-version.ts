import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The version in the package.json one folder above a module (works from both `src/` and `dist/`).
 * Plugins use it so `eaglet plugins` shows the installed version without a second copy of it.
 */
export function packageVersion(moduleUrl: string): string {
  const path = join(dirname(fileURLToPath(moduleUrl)), '..', 'package.json');
  return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
}
