/**
 * One error type with stable codes, modelled on undici's UndiciError/UND_ERR_*.
 * Code outside `cli` throws these; only `cli` turns them into text and exit codes.
 */
export const ErrorCodes = {
  E_CONFIG: 'E_CONFIG',
  E_USAGE: 'E_USAGE',
  E_STATE: 'E_STATE',
  E_MANIFEST: 'E_MANIFEST',
  E_MANIFEST_EXPIRED: 'E_MANIFEST_EXPIRED',
  E_SIGNATURE: 'E_SIGNATURE',
  E_UNVERIFIED: 'E_UNVERIFIED',
  E_CLIENT_TOO_OLD: 'E_CLIENT_TOO_OLD',
  E_VERSION: 'E_VERSION',
  E_UNSUPPORTED_ARCH: 'E_UNSUPPORTED_ARCH',
  E_NO_PACKAGE: 'E_NO_PACKAGE',
  E_NETWORK: 'E_NETWORK',
  E_HTTP: 'E_HTTP',
  E_STALL: 'E_STALL',
  E_HASH_MISMATCH: 'E_HASH_MISMATCH',
  E_SIZE_MISMATCH: 'E_SIZE_MISMATCH',
  E_DISK_FULL: 'E_DISK_FULL',
  E_IO: 'E_IO',
  E_ABORTED: 'E_ABORTED',
  E_TIMEOUT: 'E_TIMEOUT',
  E_ARCHIVE: 'E_ARCHIVE',
  E_UNSAFE_PATH: 'E_UNSAFE_PATH',
  E_BUNDLE: 'E_BUNDLE',
  E_BACKUP: 'E_BACKUP',
  E_BACKUP_NOT_FOUND: 'E_BACKUP_NOT_FOUND',
  E_RESTORE: 'E_RESTORE',
  E_APPLY: 'E_APPLY',
  E_BASE_MISMATCH: 'E_BASE_MISMATCH',
  E_DOCKER: 'E_DOCKER',
  E_COMPOSE: 'E_COMPOSE',
  E_COMPOSE_INVALID: 'E_COMPOSE_INVALID',
  E_IMAGE_LOAD: 'E_IMAGE_LOAD',
  E_IMAGE_ARCH: 'E_IMAGE_ARCH',
  E_IMAGE_MISSING: 'E_IMAGE_MISSING',
  E_HEALTH: 'E_HEALTH',
  E_MIGRATION: 'E_MIGRATION',
  E_ROLLBACK: 'E_ROLLBACK',
  E_LOCKED: 'E_LOCKED',
  E_CANCELLED: 'E_CANCELLED',
  E_INTERNAL: 'E_INTERNAL',
  // nuwax repair and traffic protection
  E_TRAFFIC: 'E_TRAFFIC',
  // nuwax's own update (self-update): an install that is not from a release archive, a failed self-test
  E_SELF_UPDATE: 'E_SELF_UPDATE',
  // config.toml cannot be written, so an upgrade could not record its version; EPERM/EACCES elsewhere
  E_CONFIG_READONLY: 'E_CONFIG_READONLY',
  E_PERMISSION: 'E_PERMISSION',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class NuwaxError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NuwaxError';
    this.code = code;
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details
      ? { code: this.code, message: this.message, details: this.details }
      : { code: this.code, message: this.message };
  }
}

export function isNuwaxError(error: unknown, code?: ErrorCode): error is NuwaxError {
  return error instanceof NuwaxError && (code === undefined || error.code === code);
}

/** Wraps anything thrown into a NuwaxError, keeping the original as `cause`. */
export function toNuwaxError(error: unknown, fallback: ErrorCode = ErrorCodes.E_INTERNAL): NuwaxError {
  if (error instanceof NuwaxError) return error;
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOSPC' || errno === 'EDQUOT' || errno === 'EFBIG') {
    return new NuwaxError(ErrorCodes.E_DISK_FULL, `No space left on the device (${errno})`, { cause: error });
  }
  if (errno === 'EIO' || errno === 'EROFS') {
    // On an edge box these mostly mean failing storage (an SD card remounted read-only), though a
    // closed terminal gives EIO too: name the error and what it touched, not "internal".
    const message = error instanceof Error ? error.message : String(error);
    return new NuwaxError(
      ErrorCodes.E_IO,
      `I/O error (${message}); if it names a file, check that storage (read-only or failing)`,
      { cause: error },
    );
  }
  if ((errno === 'EPERM' || errno === 'EACCES') && fallback === ErrorCodes.E_INTERNAL) {
    const message = error instanceof Error ? error.message : String(error);
    return new NuwaxError(ErrorCodes.E_PERMISSION, `Permission denied (${message})`, { cause: error });
  }
  if ((error as Error | undefined)?.name === 'AbortError') {
    return new NuwaxError(ErrorCodes.E_ABORTED, 'The operation was cancelled', { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new NuwaxError(fallback, message, { cause: error });
}

/**
 * Socket codes of a host that cannot be reached at all: the next mirror is tried at once, this one
 * again only in the next round (downloads and manifest fetches alike).
 */
export const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Throws E_ABORTED when the signal has fired; call between units of long work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new NuwaxError(ErrorCodes.E_ABORTED, 'The operation was cancelled', { cause: signal.reason });
  }
}
