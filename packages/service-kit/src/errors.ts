/**
 * Errors carry a stable code and whether retrying can help, in the spirit of fastify's FST_ERR_*.
 * HTTP surfaces map codes to statuses in one place (`httpStatusFor`).
 */
export type AuditErrorCode =
  | 'AUDIT_ERR_CONFIG'
  | 'AUDIT_ERR_UNAUTHENTICATED'
  | 'AUDIT_ERR_FORBIDDEN'
  | 'AUDIT_ERR_RATE_LIMITED'
  | 'AUDIT_ERR_BODY_TOO_LARGE'
  | 'AUDIT_ERR_INVALID_REQUEST'
  | 'AUDIT_ERR_KAFKA_UNAVAILABLE'
  | 'AUDIT_ERR_CLICKHOUSE_UNAVAILABLE'
  | 'AUDIT_ERR_SHUTTING_DOWN'
  | 'AUDIT_ERR_INTERNAL';

export class AuditError extends Error {
  readonly code: AuditErrorCode;
  readonly retryable: boolean;
  constructor(code: AuditErrorCode, message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AuditError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
  }
}

const STATUS: Record<AuditErrorCode, number> = {
  AUDIT_ERR_CONFIG: 500,
  AUDIT_ERR_UNAUTHENTICATED: 401,
  AUDIT_ERR_FORBIDDEN: 403,
  AUDIT_ERR_RATE_LIMITED: 429,
  AUDIT_ERR_BODY_TOO_LARGE: 413,
  AUDIT_ERR_INVALID_REQUEST: 400,
  AUDIT_ERR_KAFKA_UNAVAILABLE: 503,
  AUDIT_ERR_CLICKHOUSE_UNAVAILABLE: 503,
  AUDIT_ERR_SHUTTING_DOWN: 503,
  AUDIT_ERR_INTERNAL: 500,
};

export function httpStatusFor(code: AuditErrorCode): number {
  return STATUS[code];
}
