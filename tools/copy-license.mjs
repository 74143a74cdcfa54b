#!/usr/bin/env node
// `prepack` of every published package: puts the repository's LICENSE into the package folder, so
// each tarball carries the licence text without a tracked copy per package.
import { copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

copyFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'LICENSE'), join(process.cwd(), 'LICENSE'));
