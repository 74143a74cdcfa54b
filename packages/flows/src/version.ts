import { packageVersion } from '@eaglet/core';

/**
 * eaglet's version (this package's), recorded in what the flows write. It lives at the top of src/
 * because packageVersion reads the package.json one folder above the calling module.
 */
export const EAGLET_VERSION = packageVersion(import.meta.url);
