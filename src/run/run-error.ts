// One error class for the run layer: what went wrong, at which path, in which field,
// so that a user who only sees the message knows which file to look at.

export interface RunErrorOptions {
  /** The file or directory at fault. */
  path?: string | undefined;
  /** The field, file entry or config key at fault. */
  field?: string | undefined;
  /** Machine-readable reason, e.g. 'EACCES', 'CONFIG_MISMATCH', 'NO_CHECKPOINT'. */
  code?: string | undefined;
  cause?: unknown;
}

/** An error from the run directory, checkpoints or metrics files. */
export class RunError extends Error {
  readonly path: string | undefined;
  readonly field: string | undefined;
  readonly code: string | undefined;

  constructor(detail: string, options: RunErrorOptions = {}) {
    const where = options.path !== undefined ? `${options.path}${options.field !== undefined ? ` (${options.field})` : ''}: ` : '';
    super(`${where}${detail}`, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'RunError';
    this.path = options.path;
    this.field = options.field;
    this.code = options.code;
  }

  /** Wraps a Node fs error (EACCES, ENOSPC, ...) with a sentence a user can act on. */
  static fromFs(e: unknown, path: string, what: string): RunError {
    const err = e as NodeJS.ErrnoException;
    const code = err?.code;
    const hint =
      code === 'EACCES' || code === 'EPERM' ? ' (permission denied: is the run directory writable?)'
      : code === 'ENOSPC' ? ' (no space left on the device)'
      : code === 'EROFS' ? ' (read-only file system)'
      : '';
    return new RunError(`${what}: ${err?.message ?? String(e)}${hint}`, { path, code, cause: e });
  }
}
