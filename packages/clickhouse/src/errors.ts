/**
 * Errors of this package carry a stable code and whether retrying can help, the same shape as
 * AuditError in @mcp-audit/service-kit (which this package deliberately does not depend on).
 */
export type ClickHouseErrorCode =
  | 'AUDIT_ERR_SQL_LITERAL'
  | 'AUDIT_ERR_CLICKHOUSE_UNAVAILABLE'
  | 'AUDIT_ERR_CLICKHOUSE_QUERY'
  | 'AUDIT_ERR_MIGRATION_CHECKSUM'
  | 'AUDIT_ERR_MIGRATION_FILE'
  | 'AUDIT_ERR_MIGRATION_FAILED'
  | 'AUDIT_ERR_MIGRATION_LOCK_TIMEOUT'
  | 'AUDIT_ERR_MIGRATION_LOCK_LOST'
  | 'AUDIT_ERR_MIGRATION_CLUSTER';

export class ClickHouseAuditError extends Error {
  readonly code: ClickHouseErrorCode;
  readonly retryable: boolean;
  constructor(
    code: ClickHouseErrorCode,
    message: string,
    opts: { retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ClickHouseAuditError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
  }
}

/** A value that cannot be encoded as a SQL literal (or an identifier outside its allowlist). */
export class SqlLiteralError extends ClickHouseAuditError {
  constructor(message: string) {
    super('AUDIT_ERR_SQL_LITERAL', message);
    this.name = 'SqlLiteralError';
  }
}

/**
 * A failed request. `serverCode` is ClickHouse's numeric error code when the server answered
 * (18.16 formats it as `Code: 60, e.displayText() = …`, current releases as `Code: 60. DB::Exception`).
 */
export class ClickHouseRequestError extends ClickHouseAuditError {
  readonly serverCode: number | undefined;
  constructor(message: string, opts: { serverCode: number | undefined; retryable: boolean; cause: unknown }) {
    super(opts.retryable ? 'AUDIT_ERR_CLICKHOUSE_UNAVAILABLE' : 'AUDIT_ERR_CLICKHOUSE_QUERY', message, opts);
    this.name = 'ClickHouseRequestError';
    this.serverCode = opts.serverCode;
  }
}

export class MigrationError extends ClickHouseAuditError {
  /** The migration file concerned, when there is one. */
  readonly file: string | undefined;
  constructor(
    code: Extract<ClickHouseErrorCode, `AUDIT_ERR_MIGRATION_${string}`>,
    message: string,
    opts: { retryable?: boolean; cause?: unknown; file?: string } = {},
  ) {
    super(code, message, opts);
    this.name = 'MigrationError';
    this.file = opts.file;
  }
}
