import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  clickHouseErrorCode,
  DEFAULT_DATABASE,
  isRetryableClickHouseError,
  type ClickHouse,
  type ClickHouseLogger,
} from './client.js';
import { clusterStatements, type ClusterLayout } from './cluster.js';
import { MigrationError } from './errors.js';
import { dbIdent, ident, sql, toSql, unsafeRaw, type SqlFragment } from './literal.js';
import { lex } from './sql-lexer.js';

/**
 * Migration runner for schemas/clickhouse/NNN_name.sql.
 *
 * ClickHouse (18.16 in particular) has no transactions and no locks, so:
 * - the lock is a table: whoever's `CREATE TABLE …schema_migrations_lock` (no IF NOT EXISTS)
 *   succeeds holds it; the holder appends heartbeat rows; a lock whose newest row (or, before the
 *   first row, whose table) is older than `staleLockMs` is broken by dropping it;
 * - every statement must be idempotent (IF NOT EXISTS), so a crash in the middle of a file is
 *   repaired by running the whole file again; only the file's record in schema_migrations marks
 *   it applied.
 *
 * Files are written against the database `mcp_audit` (`mcp_audit.events`); the runner rewrites
 * that qualifier to the target database, which is how tests run on their own databases.
 */

export const MIGRATION_FILE = /^(\d{3,})_([a-z0-9_]+)\.sql$/;
const SOURCE_DB = 'mcp_audit';
const LOCK_TABLE = 'schema_migrations_lock';

export interface MigrationFile {
  version: number;
  /** File name, e.g. 001_events.sql */
  file: string;
  /** SHA-256 of the file's bytes, hex. */
  checksum: string;
  /** Statements with comments removed, still written against `mcp_audit.`. */
  statements: string[];
}

export interface AppliedMigration {
  version: number;
  file: string;
  checksum: string;
  durationMs: number;
}

export interface MigrationResult {
  database: string;
  /** Applied by this run, in order. */
  applied: AppliedMigration[];
  /** Versions found already applied. */
  alreadyApplied: number[];
}

export interface RunMigrationsOptions {
  /** An admin client. Do not give it a `database` that may not exist yet. */
  client: ClickHouse;
  /** Directory holding NNN_name.sql files. */
  dir: string;
  logger?: ClickHouseLogger;
  /** Target database (default mcp_audit). */
  database?: string;
  /** How long to wait for another runner's lock before failing (default 5 min). */
  lockTimeoutMs?: number;
  /** A lock without a heartbeat for this long is considered abandoned and broken (default 120 s). */
  staleLockMs?: number;
  /** Identifies this runner in the lock table (default host:pid:random). */
  owner?: string;
  /**
   * Cluster layout (cluster.ts): the name of the cluster in the server's remote_servers. The client
   * is ONE node; runClusterMigrations runs this on every node. Unset: the single-server layout.
   */
  cluster?: string;
  /** Apply only the files up to this version (the cluster runner applies a file on every node first). */
  upTo?: number;
}

const noop = () => {};
const SILENT: ClickHouseLogger = { debug: noop, info: noop, warn: noop, error: noop };

export async function runMigrations(opts: RunMigrationsOptions): Promise<MigrationResult> {
  const { client } = opts;
  const log = opts.logger ?? SILENT;
  const database = opts.database ?? DEFAULT_DATABASE;
  const db = dbIdent(database);
  const files = loadMigrations(opts.dir);

  await createDatabase(client, db);
  const lock = new MigrationLock(client, database, {
    owner: opts.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
    timeoutMs: opts.lockTimeoutMs ?? 300_000,
    staleMs: opts.staleLockMs ?? 120_000,
    log,
  });
  await lock.acquire();
  try {
    await client.command(sql`
      CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (
        version UInt32,
        name String,
        checksum String,
        applied_at DateTime('UTC'),
        applied_by String,
        duration_ms UInt32
      ) ENGINE = MergeTree() ORDER BY version`);
    const rows = await client.query<{ version: number; name: string; checksum: string }>(sql`
      SELECT version, argMin(name, applied_at) AS name, argMin(checksum, applied_at) AS checksum
      FROM ${db}.schema_migrations GROUP BY version ORDER BY version`);
    const applied = new Map(rows.map((r) => [Number(r.version), r]));

    // Refuse to run at all if history was rewritten: the database would not match the files.
    for (const f of files) {
      const a = applied.get(f.version);
      if (a && a.checksum !== f.checksum) {
        throw new MigrationError(
          'AUDIT_ERR_MIGRATION_CHECKSUM',
          `migration ${f.file} was modified after it was applied to ${database} ` +
            `(recorded sha256 ${a.checksum.slice(0, 12)}…, file has ${f.checksum.slice(0, 12)}…); ` +
            'add a new migration instead of editing an applied one',
          { file: f.file },
        );
      }
    }
    const known = new Set(files.map((f) => f.version));
    for (const [version, a] of applied) {
      if (!known.has(version)) log.warn({ database, version, name: a.name }, 'applied migration has no file');
    }

    const result: MigrationResult = { database, applied: [], alreadyApplied: [...applied.keys()] };
    for (const f of files) {
      if (applied.has(f.version)) continue;
      if (opts.upTo !== undefined && f.version > opts.upTo) break;
      await lock.assertHeld();
      const started = Date.now();
      const layout: ClusterLayout | undefined = opts.cluster
        ? { cluster: opts.cluster, database }
        : undefined;
      for (const statement of f.statements) {
        for (const s of layout ? clusterStatements(statement, layout, f.file) : [statement]) {
          await execute(client, rewriteDatabase(s, database), f.file, log);
        }
      }
      const durationMs = Date.now() - started;
      await client.command(sql`
        INSERT INTO ${db}.schema_migrations (version, name, checksum, applied_at, applied_by, duration_ms)
        VALUES (${f.version}, ${f.file}, ${f.checksum}, ${new Date()}, ${lock.owner}, ${durationMs})`);
      log.info({ database, migration: f.file, ms: durationMs }, 'migration applied');
      result.applied.push({ version: f.version, file: f.file, checksum: f.checksum, durationMs });
    }
    return result;
  } finally {
    await lock.release();
  }
}

/** Reads, checks and splits the migration files of `dir`, in version order. */
export function loadMigrations(dir: string): MigrationFile[] {
  const out: MigrationFile[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.sql')) continue;
    const m = MIGRATION_FILE.exec(file);
    if (!m) {
      throw new MigrationError(
        'AUDIT_ERR_MIGRATION_FILE',
        `${file}: migration files are named NNN_name.sql`,
        { file },
      );
    }
    const bytes = readFileSync(join(dir, file));
    const statements = splitStatements(bytes.toString('utf8'));
    for (const s of statements) checkStatement(s, file);
    out.push({
      version: Number(m[1]),
      file,
      checksum: createHash('sha256').update(bytes).digest('hex'),
      statements,
    });
  }
  out.sort((a, b) => a.version - b.version);
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.version === out[i - 1]!.version) {
      throw new MigrationError(
        'AUDIT_ERR_MIGRATION_FILE',
        `${out[i - 1]!.file} and ${out[i]!.file} have the same version`,
        { file: out[i]!.file },
      );
    }
  }
  return out;
}

/**
 * Splits a file into statements at `;` outside strings, quoted identifiers and comments, and
 * drops the comments (a `;` inside a comment or a string never splits).
 */
export function splitStatements(text: string): string[] {
  const { segments, end } = lex(text);
  if (end !== 'code' && end !== 'line_comment') {
    throw new MigrationError('AUDIT_ERR_MIGRATION_FILE', `unterminated ${end.replace('_', ' ')}`);
  }
  const statements: string[] = [];
  let current = '';
  for (const seg of segments) {
    if (seg.kind === 'comment') {
      current += ' ';
      continue;
    }
    if (seg.kind !== 'code') {
      current += seg.text;
      continue;
    }
    const pieces = seg.text.split(';');
    for (let i = 0; i < pieces.length; i++) {
      current += pieces[i];
      if (i < pieces.length - 1) {
        statements.push(current);
        current = '';
      }
    }
  }
  statements.push(current);
  return statements.map(tidy).filter((s) => s !== '');
}

/** Rewrites the `mcp_audit.` qualifier (in code only, never inside strings) to `database`. */
export function rewriteDatabase(statement: string, database: string): string {
  const target = `${toSql(dbIdent(database))}.`;
  return lex(statement)
    .segments.map((s) => (s.kind === 'code' ? s.text.replace(/(?<![\w$`.])mcp_audit\./g, target) : s.text))
    .join('');
}

// Statements must survive being run twice: a crash between a file's statements and its record in
// schema_migrations re-runs the whole file.
function checkStatement(statement: string, file: string): void {
  const code = lex(statement)
    .segments.filter((s) => s.kind === 'code')
    .map((s) => s.text)
    .join(' ');
  const fail = (why: string) => {
    throw new MigrationError('AUDIT_ERR_MIGRATION_FILE', `${file}: ${why}: ${statement.slice(0, 120)}`, {
      file,
    });
  };
  if (/^\s*CREATE\s+(?:TABLE|DATABASE|VIEW|MATERIALIZED\s+VIEW)\s+(?!IF\s+NOT\s+EXISTS\b)/i.test(code)) {
    fail('CREATE without IF NOT EXISTS is not idempotent');
  }
  if (/^\s*DROP\s+(?:TABLE|DATABASE|VIEW)\s+(?!IF\s+EXISTS\b)/i.test(code)) {
    fail('DROP without IF EXISTS is not idempotent');
  }
  if (/^\s*CREATE\s+DATABASE\b/i.test(code)) fail('the runner creates the database itself');
  // Anything else naming mcp_audit would escape the database rewrite (and hit the real database).
  if (/(?<![\w$])mcp_audit(?!\.)\b/.test(code) || /`mcp_audit`/.test(statement)) {
    fail(`refer to tables as ${SOURCE_DB}.<table> (unquoted) so the runner can target another database`);
  }
}

/**
 * 18.16 has no `ADD COLUMN IF NOT EXISTS` / `DROP COLUMN IF EXISTS`: for a single-column ALTER,
 * "already exists" / "cannot find column" on a re-run means the statement was applied before.
 */
function alreadyAppliedAlter(statement: string, err: unknown): boolean {
  if (clickHouseErrorCode(err) !== 44) return false; // ILLEGAL_COLUMN
  const m = /^\s*ALTER\s+TABLE\s+\S+\s+(ADD|DROP)\s+COLUMN\s+([\s\S]*)$/i.exec(statement);
  if (!m || hasTopLevelComma(m[2]!)) return false;
  const msg = err instanceof Error ? err.message : '';
  return m[1]!.toUpperCase() === 'ADD' ? /already exists/i.test(msg) : /Cannot find column/i.test(msg);
}

function hasTopLevelComma(text: string): boolean {
  let depth = 0;
  for (const seg of lex(text).segments) {
    if (seg.kind !== 'code') continue;
    for (const c of seg.text) {
      if (c === '(') depth++;
      else if (c === ')') depth--;
      else if (c === ',' && depth === 0) return true;
    }
  }
  return false;
}

async function execute(
  client: ClickHouse,
  statement: string,
  file: string,
  log: ClickHouseLogger,
): Promise<void> {
  try {
    await client.command(unsafeRaw(statement));
  } catch (err) {
    if (alreadyAppliedAlter(statement, err)) {
      log.info({ migration: file }, 'ALTER already applied: skipped');
      return;
    }
    throw new MigrationError('AUDIT_ERR_MIGRATION_FAILED', `${file}: ${(err as Error).message}`, {
      file,
      cause: err,
      retryable: isRetryableClickHouseError(err),
    });
  }
}

async function createDatabase(client: ClickHouse, db: SqlFragment): Promise<void> {
  try {
    await client.command(sql`CREATE DATABASE IF NOT EXISTS ${db}`);
  } catch (err) {
    // Two runners creating it at the same instant: the loser may be told it already exists.
    if (clickHouseErrorCode(err) !== 82) throw err; // DATABASE_ALREADY_EXISTS
  }
}

function tidy(statement: string): string {
  return statement
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .join('\n')
    .trim();
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A mutual-exclusion lock made of a table (see the module comment). */
class MigrationLock {
  readonly owner: string;
  private readonly table: SqlFragment;
  private heartbeat: NodeJS.Timeout | undefined;
  private held = false;

  constructor(
    private readonly client: ClickHouse,
    private readonly database: string,
    private readonly opts: { owner: string; timeoutMs: number; staleMs: number; log: ClickHouseLogger },
  ) {
    this.owner = opts.owner;
    this.table = sql`${dbIdent(database)}.${ident(LOCK_TABLE, [LOCK_TABLE])}`;
  }

  async acquire(): Promise<void> {
    const { log, timeoutMs, staleMs } = this.opts;
    const deadline = Date.now() + timeoutMs;
    let delay = 50;
    let waitingLogged = false;
    for (;;) {
      if (await this.tryCreate()) break;
      const holder = await this.inspect();
      if (holder && holder.ageSec * 1000 > staleMs) {
        log.warn(
          { database: this.database, holder: holder.owner, ageSec: holder.ageSec },
          'breaking stale migration lock',
        );
        // NOTE: two runners may both judge the same lock stale; the second DROP can then remove the
        // first one's fresh lock. assertHeld() before every migration narrows the damage, and the
        // statements are idempotent. Only a runner that died without releasing leaves a stale lock.
        await this.client.command(sql`DROP TABLE IF EXISTS ${this.table}`);
        continue;
      }
      if (Date.now() > deadline) {
        throw new MigrationError(
          'AUDIT_ERR_MIGRATION_LOCK_TIMEOUT',
          `migration lock on ${this.database} still held by ${holder?.owner || 'a starting runner'} ` +
            `after ${timeoutMs} ms (it is broken once older than ${staleMs} ms)`,
          { retryable: true },
        );
      }
      if (holder === undefined) {
        // Released between our CREATE and our look: try again almost at once.
        await sleep(5 + Math.random() * 10);
        continue;
      }
      if (!waitingLogged) {
        log.info({ database: this.database, holder: holder.owner }, 'waiting for the migration lock');
        waitingLogged = true;
      }
      await sleep(delay * (0.5 + Math.random()));
      delay = Math.min(2_000, delay * 2);
    }
    this.held = true;
    await this.beat();
    const every = Math.max(1_000, Math.floor(staleMs / 4));
    this.heartbeat = setInterval(() => {
      this.beat().catch((err: unknown) =>
        log.warn({ err, database: this.database }, 'migration lock heartbeat failed'),
      );
    }, every);
    this.heartbeat.unref();
    log.debug({ database: this.database, owner: this.owner }, 'migration lock acquired');
  }

  /** Throws if another runner broke our lock (we were too slow to heartbeat). */
  async assertHeld(): Promise<void> {
    let rows: Array<{ mine: string; theirs: string }>;
    try {
      rows = await this.client.query(sql`
        SELECT countIf(owner = ${this.owner}) AS mine, countIf(owner != ${this.owner}) AS theirs FROM ${this.table}`);
    } catch (err) {
      if (clickHouseErrorCode(err) !== 60) throw err;
      rows = [];
    }
    const r = rows[0];
    if (!r || Number(r.mine) === 0 || Number(r.theirs) > 0) {
      this.held = false;
      throw new MigrationError(
        'AUDIT_ERR_MIGRATION_LOCK_LOST',
        `lost the migration lock on ${this.database}`,
        {
          retryable: true,
        },
      );
    }
  }

  async release(): Promise<void> {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    if (!this.held) return;
    this.held = false;
    try {
      await this.assertHeld(); // never drop a lock that is now someone else's
      await this.client.command(sql`DROP TABLE IF EXISTS ${this.table}`);
      this.opts.log.debug({ database: this.database, owner: this.owner }, 'migration lock released');
    } catch (err) {
      this.opts.log.warn({ err, database: this.database }, 'could not release the migration lock');
    }
  }

  private async tryCreate(): Promise<boolean> {
    try {
      await this.client.command(
        sql`CREATE TABLE ${this.table} (owner String, acquired DateTime('UTC')) ENGINE = Log`,
      );
      return true;
    } catch (err) {
      const msg = err instanceof Error ? err.message : '';
      if (clickHouseErrorCode(err) === 57 || /already exists|creating or attaching right now/i.test(msg))
        return false;
      throw err;
    }
  }

  private async beat(): Promise<void> {
    await this.client.command(sql`INSERT INTO ${this.table} (owner, acquired) VALUES (${this.owner}, now())`);
  }

  /** The holder and the age of its newest sign of life, or undefined if the lock is gone. */
  private async inspect(): Promise<{ owner: string; ageSec: number } | undefined> {
    try {
      const [r] = await this.client.query<{ owner: string; age: string; n: string }>(sql`
        SELECT argMax(owner, acquired) AS owner, toInt64(toUInt32(now())) - toUInt32(max(acquired)) AS age,
          count() AS n
        FROM ${this.table}`);
      if (r && Number(r.n) > 0) return { owner: r.owner, ageSec: Number(r.age) };
      // Between CREATE and the first heartbeat row, the table's own creation time is the age.
      const [t] = await this.client.query<{ age: string }>(sql`
        SELECT toInt64(toUInt32(now())) - toUInt32(metadata_modification_time) AS age
        FROM system.tables WHERE database = ${this.database} AND name = ${LOCK_TABLE}`);
      return t ? { owner: '', ageSec: Number(t.age) } : undefined;
    } catch (err) {
      // UNKNOWN_TABLE: released meanwhile. NOTE: on 18.16 even the system.tables query can fail
      // this way while a table of the database is being dropped.
      if (clickHouseErrorCode(err) === 60) return undefined;
      throw err;
    }
  }
}
