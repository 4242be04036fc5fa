/**
 * A rejection with a stable code. `message` is safe to show the caller and names the problem and the
 * fix; `detail` is for the operator's log only and may name policy internals.
 */
export class CiOidcError extends Error {
  readonly code: string;
  readonly status: number;
  readonly detail: string | undefined;

  constructor(code: string, message: string, options: { status?: number; detail?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CiOidcError';
    this.code = code;
    this.status = options.status ?? 400;
    this.detail = options.detail;
  }
}

/** A configuration problem found at start-up: names the key and the fix. */
export class ConfigError extends Error {
  readonly issues: string[];

  constructor(issues: string[]) {
    super(`invalid configuration:\n  - ${issues.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export function isCiOidcError(value: unknown): value is CiOidcError {
  return value instanceof CiOidcError;
}
