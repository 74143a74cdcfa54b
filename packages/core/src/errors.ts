/**
 * eaglet's one error type. Every error a user can hit carries a stable `code` (for scripts and the
 * HTTP API) and, where there is one, a `hint` that says how to fix it.
 */
export class EagletError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly details: unknown;

  constructor(
    code: string,
    message: string,
    options: { hint?: string; cause?: unknown; details?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EagletError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  /** One human-readable block: message, then the hint on its own line. */
  format(): string {
    return this.hint ? `${this.message}\n  hint: ${this.hint}` : this.message;
  }

  toJSON(): { code: string; message: string; hint?: string; details?: unknown } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

export const isEagletError = (e: unknown): e is EagletError => e instanceof EagletError;

/**
 * Wraps anything thrown into an EagletError, keeping an EagletError as it is. A file-system error
 * (Node's errno errors: EACCES, ENOTDIR, ENOSPC...) becomes EAGLET_FILE_<ERRNO> with a message
 * naming the path and a hint, so no caller ever shows a bare errno object.
 */
export function toEagletError(e: unknown, code = 'EAGLET_INTERNAL'): EagletError {
  if (e instanceof EagletError) return e;
  const errno = e as NodeJS.ErrnoException & { dest?: string };
  if (e instanceof Error && typeof errno.code === 'string' && /^E[A-Z]+$/.test(errno.code) && errno.syscall) {
    const what = FILE_ERRORS[errno.code];
    const path = errno.path ? `${errno.path}${errno.dest ? ` -> ${errno.dest}` : ''}` : '(no path)';
    return new EagletError(
      `EAGLET_FILE_${errno.code}`,
      `${what?.[0] ?? errno.message}: ${path} (${errno.syscall})`,
      { hint: what?.[1] ?? 'check the path and its permissions', cause: e },
    );
  }
  const message = e instanceof Error ? e.message || e.name : String(e);
  return new EagletError(code, message || 'unknown error', {
    cause: e,
    ...(code === 'EAGLET_INTERNAL'
      ? { hint: 'this is unexpected: please report it with the command that caused it' }
      : {}),
  });
}

/** errno code -> [what happened, how to fix it]. */
const FILE_ERRORS: Record<string, [string, string]> = {
  EACCES: ['permission denied', 'check the permissions of the path, or choose another one'],
  EPERM: ['operation not permitted', 'check the permissions of the path, or choose another one'],
  EROFS: ['read-only file system', 'choose a path on a writable file system'],
  ENOENT: ['no such file or folder', 'check the path'],
  ENOTDIR: ['a part of the path is a file, not a folder', 'check the path'],
  EISDIR: ['is a folder, not a file', 'give a file path'],
  EEXIST: ['already exists', 'choose another path or remove it'],
  ENOSPC: ['no space left on the device', 'free some space or choose another disk'],
  EMFILE: ['too many open files', 'raise the open-file limit (ulimit -n)'],
  ENAMETOOLONG: ['path too long', 'choose a shorter path'],
  ELOOP: ['too many symbolic links (a link loop?)', 'check the symbolic links on the path'],
};
