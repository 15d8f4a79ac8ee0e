/**
 * The API's error codes and their HTTP statuses, in one place (API.md "Errors"). Handlers throw
 * ApiError; the error handler in app.ts turns every failure into `{ error: { code, message } }`.
 */
export const API_ERROR_STATUS = {
  AUDIT_ERR_VALIDATION: 400,
  AUDIT_ERR_UNAUTHENTICATED: 401,
  AUDIT_ERR_FORBIDDEN: 403,
  AUDIT_ERR_NOT_FOUND: 404,
  AUDIT_ERR_CONFLICT: 409,
  AUDIT_ERR_BODY_TOO_LARGE: 413,
  AUDIT_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  AUDIT_ERR_QUERY_LIMIT: 422,
  AUDIT_ERR_RATE_LIMITED: 429,
  AUDIT_ERR_INTERNAL: 500,
  AUDIT_ERR_AUDIT_LOG: 503,
  AUDIT_ERR_UNAVAILABLE: 503,
} as const;

export type ApiErrorCode = keyof typeof API_ERROR_STATUS;

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  /** Seconds, for 429. */
  readonly retryAfter: number | undefined;
  constructor(code: ApiErrorCode, message: string, opts: { retryAfter?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ApiError';
    this.code = code;
    this.retryAfter = opts.retryAfter;
  }
  get status(): number {
    return API_ERROR_STATUS[this.code];
  }
}

export const errorBody = (code: ApiErrorCode, message: string) => ({ error: { code, message } });

// ClickHouse codes of the limits in the api_reader profile (deploy/clickhouse/users.xml.tmpl).
const LIMIT_CODES: Record<number, string> = {
  158: 'rows to read (max_rows_to_read)',
  159: 'execution time (max_execution_time)',
  160: 'execution speed (too slow for max_execution_time)',
  307: 'bytes to read (max_bytes_to_read)',
  396: 'result size (max_result_rows)',
  241: 'memory (max_memory_usage)',
};

/** The limit a ClickHouse error code stands for, if it is one of the profile's limits. */
export function queryLimitOf(serverCode: number | undefined): string | undefined {
  return serverCode === undefined ? undefined : LIMIT_CODES[serverCode];
}
