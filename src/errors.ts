/**
 * Every error weft raises on purpose is declared here once, with a stable code,
 * an HTTP status for the APIs, and a one-line meaning that docs/errors.md repeats
 * (a test keeps the two in step). Errors carry the offending key and value so a
 * user can find the bad input without reading a stack trace.
 */

/** The catalogue: code -> HTTP status and what it means. */
export const ERROR_CODES = {
  WEFT_ERR_CONFIG_INVALID: { status: 400, meaning: 'A configuration value (flag, environment variable or config file) is invalid.' },
  WEFT_ERR_CONFIG_FILE: { status: 400, meaning: 'The config file cannot be read or parsed.' },
  WEFT_ERR_NOT_IMPLEMENTED: { status: 501, meaning: 'The command exists in the CLI but its subsystem has not landed yet.' },
  WEFT_ERR_LABEL_INVALID: { status: 400, meaning: 'A container label (weft.* or Registrator SERVICE_*) has a bad value.' },
  WEFT_ERR_LABEL_UNKNOWN: { status: 400, meaning: 'A weft.* label is not one weft knows (likely a typo).' },
  WEFT_ERR_CONSUL_UNAVAILABLE: { status: 503, meaning: 'Consul (or the dev agent) cannot be reached.' },
  WEFT_ERR_CONSUL_REQUEST: { status: 502, meaning: 'Consul answered a request with an error.' },
  WEFT_ERR_KV_CAS_CONFLICT: { status: 409, meaning: 'A check-and-set write lost to a concurrent writer.' },
  WEFT_ERR_LOCK_LOST: { status: 409, meaning: 'A session lock was lost (session expired or invalidated).' },
  WEFT_ERR_DEV_CONSUL_BAD_REQUEST: { status: 400, meaning: 'The dev Consul agent rejected a request (bad JSON, missing field).' },
  WEFT_ERR_DEV_CONSUL_NOT_FOUND: { status: 404, meaning: 'The dev Consul agent has no such service, check or session.' },
  WEFT_ERR_DEV_CONSUL_DATA_DIR: { status: 500, meaning: 'The dev Consul agent cannot read or write its data directory.' },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A coded weft error. `key`/`value` name the offending input when there is one. */
export class WeftError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly key?: string;
  readonly value?: unknown;

  constructor(code: ErrorCode, message: string, details: { key?: string; value?: unknown; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'WeftError';
    this.code = code;
    this.statusCode = ERROR_CODES[code].status;
    if (details.key !== undefined) this.key = details.key;
    if ('value' in details) this.value = details.value;
  }

  /** The one JSON error shape every weft API answers with. */
  toJSON(): { code: ErrorCode; message: string; key?: string; value?: unknown } {
    const out: { code: ErrorCode; message: string; key?: string; value?: unknown } = { code: this.code, message: this.message };
    if (this.key !== undefined) out.key = this.key;
    if (this.value !== undefined) out.value = this.value;
    return out;
  }
}

/** Builds a WeftError whose message names the key and the value: `key "x": reason (got "v")`. */
export function invalid(code: ErrorCode, key: string, value: unknown, reason: string): WeftError {
  return new WeftError(code, `${key}: ${reason} (got ${JSON.stringify(value)})`, { key, value });
}

/** True when `err` is a WeftError with the given code (or any code when omitted). */
export function isWeftError(err: unknown, code?: ErrorCode): err is WeftError {
  return err instanceof WeftError && (code === undefined || err.code === code);
}
