import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dbIdent, MigrationError, runMigrations, sql, type ClickHouse } from '../src/index.js';
import { client, dropDatabase, memoryLogger, SCHEMAS_DIR, testDatabase } from './helpers.js';

let admin: ClickHouse;
const databases: string[] = [];
const dirs: string[] = [];

function fresh(tag: string): string {
  const db = testDatabase(tag);
  databases.push(db);
  return db;
}

/** A private copy of the repo's migrations, so a test may edit it. */
/**
 * These tests exercise the runner, so they pin the migration set to the first two files (the
 * repo's full list is checked in migrations.test.ts): adding a migration must not break them.
 */
const RUNNER_FIXTURE = ['001_events.sql', '002_events_hourly.sql'];

function copyOfSchemas(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-audit-schemas-'));
  for (const f of RUNNER_FIXTURE) cpSync(join(SCHEMAS_DIR, f), join(dir, f));
  dirs.push(dir);
  return dir;
}

async function tables(db: string): Promise<string[]> {
  const rows = await admin.query<{ name: string }>(
    sql`SELECT name FROM system.tables WHERE database = ${db} ORDER BY name`,
  );
  return rows.map((r) => r.name);
}

async function recorded(db: string) {
  return admin.query<{ version: number; name: string; n: string }>(
    sql`SELECT version, any(name) AS name, count() AS n FROM ${dbIdent(db)}.schema_migrations GROUP BY version ORDER BY version`,
  );
}

before(() => {
  admin = client('ADMIN');
});

after(async () => {
  for (const db of databases) await dropDatabase(admin, db);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await admin.close();
});

test('applies the migrations in order on a fresh database; a second run is a no-op', async () => {
  const db = fresh('order');
  const { logger, lines } = memoryLogger();
  const first = await runMigrations({ client: admin, dir: copyOfSchemas(), database: db, logger });
  assert.equal(first.database, db);
  assert.deepEqual(
    first.applied.map((m) => [m.version, m.file]),
    [
      [1, '001_events.sql'],
      [2, '002_events_hourly.sql'],
    ],
  );
  assert.deepEqual(first.alreadyApplied, []);
  assert.deepEqual(await tables(db), ['events', 'events_hourly', 'events_hourly_mv', 'schema_migrations']);
  assert.deepEqual(
    (await recorded(db)).map((r) => [Number(r.version), r.name, Number(r.n)]),
    [
      [1, '001_events.sql', 1],
      [2, '002_events_hourly.sql', 1],
    ],
  );
  assert.equal(lines.filter((l) => l.msg === 'migration applied').length, 2);

  const second = await runMigrations({ client: admin, dir: copyOfSchemas(), database: db });
  assert.deepEqual(second.applied, []);
  assert.deepEqual(second.alreadyApplied, [1, 2]);
  assert.equal((await recorded(db)).length, 2);
  // The lock is gone and nothing else was created.
  assert.deepEqual(await tables(db), ['events', 'events_hourly', 'events_hourly_mv', 'schema_migrations']);
});

test('a modified applied file stops the runner with AUDIT_ERR_MIGRATION_CHECKSUM naming the file', async () => {
  const db = fresh('checksum');
  const dir = copyOfSchemas();
  await runMigrations({ client: admin, dir, database: db });
  appendFileSync(join(dir, '001_events.sql'), '\n-- an innocent-looking edit\n');
  await assert.rejects(runMigrations({ client: admin, dir, database: db }), (err: unknown) => {
    assert.ok(err instanceof MigrationError);
    assert.equal(err.code, 'AUDIT_ERR_MIGRATION_CHECKSUM');
    assert.equal(err.file, '001_events.sql');
    assert.match(err.message, /001_events\.sql/);
    return true;
  });
  assert.ok(!(await tables(db)).includes('schema_migrations_lock'), 'lock released after the failure');
});

test('concurrent runners: each migration applied exactly once, all succeed', async () => {
  const db = fresh('concurrent');
  const clients = [client('ADMIN'), client('ADMIN'), client('ADMIN'), client('ADMIN')];
  try {
    const results = await Promise.all(
      clients.map((c, i) =>
        runMigrations({ client: c, dir: copyOfSchemas(), database: db, owner: `runner-${i}` }),
      ),
    );
    const applied = results.flatMap((r) => r.applied.map((m) => m.version)).sort();
    assert.deepEqual(applied, [1, 2], 'every version applied by exactly one runner');
    assert.deepEqual(
      (await recorded(db)).map((r) => [Number(r.version), Number(r.n)]),
      [
        [1, 1],
        [2, 1],
      ],
    );
    assert.ok(!(await tables(db)).includes('schema_migrations_lock'));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
});

test('a crash in the middle of a file is repaired by the next run', async () => {
  const db = fresh('crash');
  await runMigrations({ client: admin, dir: copyOfSchemas(), database: db });
  // Simulate a runner that died after the first statement of 002: table there, view and record not.
  await admin.command(sql`DROP TABLE ${dbIdent(db)}.events_hourly_mv`);
  await admin.command(sql`ALTER TABLE ${dbIdent(db)}.schema_migrations DELETE WHERE version = 2`);
  for (let i = 0; i < 100 && (await recorded(db)).length !== 1; i++)
    await new Promise((r) => setTimeout(r, 50));
  assert.equal((await recorded(db)).length, 1);

  const res = await runMigrations({ client: admin, dir: copyOfSchemas(), database: db });
  assert.deepEqual(
    res.applied.map((m) => m.version),
    [2],
  );
  assert.ok((await tables(db)).includes('events_hourly_mv'));
});

test('a single-column ALTER that already ran (18.16 has no ADD COLUMN IF NOT EXISTS) is recognised', async () => {
  const db = fresh('alter');
  const dir = copyOfSchemas();
  await runMigrations({ client: admin, dir, database: db });
  writeFileSync(
    join(dir, '003_add_note.sql'),
    [
      '-- one column per statement, so a re-run can tell what was already applied',
      "ALTER TABLE mcp_audit.events ADD COLUMN note String DEFAULT '';",
      'ALTER TABLE mcp_audit.events DROP COLUMN response_digest;',
      '',
    ].join('\n'),
  );
  // A runner died after both ALTERs but before recording 003.
  await admin.command(sql`ALTER TABLE ${dbIdent(db)}.events ADD COLUMN note String DEFAULT ''`);
  await admin.command(sql`ALTER TABLE ${dbIdent(db)}.events DROP COLUMN response_digest`);
  const { logger, lines } = memoryLogger();
  const res = await runMigrations({ client: admin, dir, database: db, logger });
  assert.deepEqual(
    res.applied.map((m) => m.version),
    [3],
  );
  assert.equal(lines.filter((l) => l.msg === 'ALTER already applied: skipped').length, 2);

  // Any other failure still stops the runner, naming the file.
  writeFileSync(join(dir, '004_bad.sql'), 'ALTER TABLE mcp_audit.events ADD COLUMN note2 NoSuchType;\n');
  await assert.rejects(
    runMigrations({ client: admin, dir, database: db }),
    (err: unknown) =>
      err instanceof MigrationError &&
      err.code === 'AUDIT_ERR_MIGRATION_FAILED' &&
      err.file === '004_bad.sql',
  );
});

test('a stale lock is broken; a live one makes the runner wait, then time out', async () => {
  const db = fresh('lock');
  const lock = sql`${dbIdent(db)}.schema_migrations_lock`;
  await admin.command(sql`CREATE DATABASE IF NOT EXISTS ${dbIdent(db)}`);

  // Live lock, heartbeat now: the runner waits and gives up after lockTimeoutMs.
  await admin.command(sql`CREATE TABLE ${lock} (owner String, acquired DateTime('UTC')) ENGINE = Log`);
  await admin.command(sql`INSERT INTO ${lock} (owner, acquired) VALUES (${'other-host:1'}, now())`);
  const started = Date.now();
  await assert.rejects(
    runMigrations({ client: admin, dir: copyOfSchemas(), database: db, lockTimeoutMs: 700 }),
    (err: unknown) =>
      err instanceof MigrationError &&
      err.code === 'AUDIT_ERR_MIGRATION_LOCK_TIMEOUT' &&
      err.retryable &&
      /other-host:1/.test(err.message),
  );
  assert.ok(Date.now() - started >= 700);
  assert.ok((await tables(db)).includes('schema_migrations_lock'), 'someone else’s lock is left alone');

  // The same lock, last heartbeat ten minutes ago: broken, then migrations run.
  await admin.command(sql`DROP TABLE ${lock}`);
  await admin.command(sql`CREATE TABLE ${lock} (owner String, acquired DateTime('UTC')) ENGINE = Log`);
  await admin.command(sql`INSERT INTO ${lock} (owner, acquired) VALUES (${'dead-host:1'}, now() - 600)`);
  const { logger, lines } = memoryLogger();
  const res = await runMigrations({
    client: admin,
    dir: copyOfSchemas(),
    database: db,
    staleLockMs: 120_000,
    logger,
  });
  assert.deepEqual(
    res.applied.map((m) => m.version),
    [1, 2],
  );
  assert.ok(lines.some((l) => l.level === 'warn' && l.msg === 'breaking stale migration lock'));
  assert.ok(!(await tables(db)).includes('schema_migrations_lock'));
});

test('the runner only touches its own database', async () => {
  const db = fresh('isolation');
  await runMigrations({ client: admin, dir: copyOfSchemas(), database: db });
  const [row] = await admin.query<{ q: string }>(
    sql`SELECT create_table_query AS q FROM system.tables WHERE database = ${db} AND name = 'events_hourly_mv'`,
  );
  assert.ok(row);
  assert.ok(row.q.includes(`FROM ${db}.events`), row.q);
  assert.ok(!/\bmcp_audit\./.test(row.q.replaceAll(`${db}.`, '')), 'no reference to the real database');
});
