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

/** Wraps anything thrown into an EagletError, keeping an EagletError as it is. */
export function toEagletError(e: unknown, code = 'EAGLET_INTERNAL'): EagletError {
  if (e instanceof EagletError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new EagletError(code, message, { cause: e });
}
