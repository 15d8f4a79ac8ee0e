import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ClickHouseRequestError,
  clickHouseErrorCode,
  isRetryableClickHouseError,
  loadMigrations,
  MigrationError,
  rewriteDatabase,
  splitStatements,
  SqlLiteralError,
} from '../src/index.js';
import { SCHEMAS_DIR } from './helpers.js';

test('splitStatements: splits at ; outside strings and comments, drops comments', () => {
  const text = [
    '-- header; not a statement',
    "CREATE TABLE IF NOT EXISTS mcp_audit.a (x String DEFAULT 'a;b') ENGINE = Log;",
    '',
    '/* block; comment */',
    'CREATE TABLE IF NOT EXISTS mcp_audit.b',
    '(',
    "    y String DEFAULT 'it''s; -- not a comment' -- trailing; comment",
    ') ENGINE = Log;  ',
    '-- footer',
    '',
  ].join('\n');
  assert.deepEqual(splitStatements(text), [
    "CREATE TABLE IF NOT EXISTS mcp_audit.a (x String DEFAULT 'a;b') ENGINE = Log",
    "CREATE TABLE IF NOT EXISTS mcp_audit.b\n(\n    y String DEFAULT 'it''s; -- not a comment'\n) ENGINE = Log",
  ]);
  assert.deepEqual(splitStatements('SELECT 1'), ['SELECT 1']);
  assert.deepEqual(splitStatements('-- only a comment\n;\n'), []);
  assert.throws(() => splitStatements("SELECT 'open"), MigrationError);
});

test('rewriteDatabase: mcp_audit. in code only, never inside strings', () => {
  assert.equal(
    rewriteDatabase(
      "CREATE MATERIALIZED VIEW IF NOT EXISTS mcp_audit.v TO mcp_audit.t AS SELECT 'mcp_audit.x' AS s FROM mcp_audit.events",
      'mcp_audit_test_1',
    ),
    "CREATE MATERIALIZED VIEW IF NOT EXISTS `mcp_audit_test_1`.v TO `mcp_audit_test_1`.t AS SELECT 'mcp_audit.x' AS s FROM `mcp_audit_test_1`.events",
  );
  assert.equal(
    rewriteDatabase('SELECT * FROM not_mcp_audit.x, mcp_audit.y', 'd'),
    'SELECT * FROM not_mcp_audit.x, `d`.y',
  );
  assert.throws(() => rewriteDatabase('SELECT 1', 'bad-name'), SqlLiteralError);
});

test('the repo migrations load: numbered, idempotent, checksummed', () => {
  const files = loadMigrations(SCHEMAS_DIR);
  assert.deepEqual(
    files.map((f) => [f.version, f.file]),
    [
      [1, '001_events.sql'],
      [2, '002_events_hourly.sql'],
      [3, '003_alert_deliveries.sql'],
      [4, '004_detection.sql'],
      [5, '005_periodic_progress.sql'],
      [6, '006_api.sql'],
      [7, '007_retention.sql'],
      [8, '008_events_by_time.sql'],
      [9, '009_event_ids.sql'],
      [10, '010_tool_annotations.sql'],
      [11, '011_incidents.sql'],
      [13, '013_raw_remainder.sql'],
      [14, '014_events_hourly_final.sql'],
    ],
  );
  for (const f of files) {
    assert.match(f.checksum, /^[0-9a-f]{64}$/);
    for (const s of f.statements)
      // Idempotent: CREATE … IF NOT EXISTS, a single-column ALTER the runner skips once applied, or
      // a backfill INSERT … SELECT into a ReplacingMergeTree copy (008, 009: a second run only adds
      // identical rows, one event to every reader, merged away).
      assert.match(
        s,
        /^(CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS mcp_audit\.|ALTER TABLE mcp_audit\.\w+ ADD COLUMN |INSERT INTO mcp_audit\.(events_by_time|event_ids)\s+SELECT )/,
      );
  }
  assert.equal(files[1]!.statements.length, 2);
});

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-audit-migrations-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

test('loadMigrations refuses files that are misnamed, duplicated or not idempotent', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ '1_x.sql': 'SELECT 1;' }, /NNN_name/],
    [{ '001_A.sql': 'SELECT 1;' }, /NNN_name/],
    [{ '001_a.sql': 'SELECT 1;', '0001_b.sql': 'SELECT 1;' }, /same version/],
    [{ '001_a.sql': 'CREATE TABLE mcp_audit.t (x UInt8) ENGINE = Log;' }, /IF NOT EXISTS/],
    [{ '001_a.sql': 'CREATE MATERIALIZED VIEW mcp_audit.v TO mcp_audit.t AS SELECT 1;' }, /IF NOT EXISTS/],
    [{ '001_a.sql': 'DROP TABLE mcp_audit.t;' }, /IF EXISTS/],
    [{ '001_a.sql': 'CREATE DATABASE IF NOT EXISTS mcp_audit;' }, /creates the database/],
    [{ '001_a.sql': 'CREATE TABLE IF NOT EXISTS `mcp_audit`.t (x UInt8) ENGINE = Log;' }, /unquoted/],
    [{ '001_a.sql': 'OPTIMIZE TABLE mcp_audit FINAL;' }, /unquoted/],
  ];
  for (const [files, re] of cases) {
    const dir = dirWith(files);
    try {
      assert.throws(
        () => loadMigrations(dir),
        (err: unknown) =>
          err instanceof MigrationError && err.code === 'AUDIT_ERR_MIGRATION_FILE' && re.test(err.message),
        JSON.stringify(files),
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  }
  const ok = dirWith({ 'README.txt': 'ignored', '010_b.sql': 'SELECT 2;', '002_a.sql': 'SELECT 1;' });
  try {
    assert.deepEqual(
      loadMigrations(ok).map((f) => f.version),
      [2, 10],
    );
  } finally {
    rmSync(ok, { recursive: true });
  }
});

test('error classification: transport and availability retry, bad rows and syntax do not', () => {
  const v18 = (code: number, what: string) =>
    new Error(`Code: ${code}, e.displayText() = DB::Exception: ${what}, e.what() = DB::Exception\n`);
  const current = Object.assign(new Error('Too many parts (300).'), { code: '252', type: 'TOO_MANY_PARTS' });
  const sys = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:8123`), { code });

  assert.equal(clickHouseErrorCode(v18(60, "Table x doesn't exist.")), 60);
  assert.equal(clickHouseErrorCode(current), 252);
  assert.equal(clickHouseErrorCode(sys('ECONNREFUSED')), undefined);

  for (const err of [
    v18(252, 'Too many parts'),
    v18(241, 'Memory limit exceeded'),
    v18(60, "Table mcp_audit.events doesn't exist."),
    v18(516, 'Authentication failed'),
    current,
    sys('ECONNREFUSED'),
    sys('ECONNRESET'),
    new Error('Timeout error.'),
    new Error('socket hang up'),
  ]) {
    assert.equal(isRetryableClickHouseError(err), true, err.message);
  }
  for (const err of [
    v18(62, 'Syntax error'),
    v18(117, 'Unknown field found while parsing JSONEachRow format: x'),
    v18(27, 'Cannot parse input'),
    v18(392, 'DDL queries are prohibited for the user'),
    new TypeError('Do not know how to serialize a BigInt'),
    new SqlLiteralError('nope'),
    'not an error',
  ]) {
    assert.equal(isRetryableClickHouseError(err), false, String(err));
  }
  const wrapped = new ClickHouseRequestError('x', { serverCode: 252, retryable: true, cause: current });
  assert.equal(wrapped.code, 'AUDIT_ERR_CLICKHOUSE_UNAVAILABLE');
  assert.equal(isRetryableClickHouseError(wrapped), true);
  assert.equal(
    new ClickHouseRequestError('y', { serverCode: 62, retryable: false, cause: null }).code,
    'AUDIT_ERR_CLICKHOUSE_QUERY',
  );
});
