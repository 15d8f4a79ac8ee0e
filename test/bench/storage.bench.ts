/**
 * npm run bench:storage — bytes per event on disk (system.parts, active parts, after OPTIMIZE … FINAL)
 * for the ingest bench's events, in a database of its own (dropped afterwards), so the figures are
 * not mixed with other data. Each event goes the ingester's way: parseEvent, redactEvent, toEventRow.
 * Beside mcp_audit.events as migrated, in the same run:
 * - `legacy raw`: the same rows with `raw` holding the whole redacted event (what rows stored before
 *   migration 013 hold), the reference for the remainder;
 * - `LowCardinality`: the same rows in a copy whose repetitive strings are LowCardinality(String)
 *   (18.16 needs allow_experimental_low_cardinality_type), measured, not adopted by a migration.
 * The server's compression (lz4 by default, zstd with the <compression> section that deploy/ writes)
 * applies to all three alike. Prints figures; asserts nothing.
 *
 *   BENCH_STORAGE_EVENTS (default 200000)
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  createClickHouse,
  dbIdent,
  ident,
  runMigrations,
  sql,
  str,
  type ClickHouse,
  type SqlFragment,
} from '@mcp-audit/clickhouse';
import { parseEvent, type AuditEventV1 } from '@mcp-audit/schema';
import { createEventRedactor } from '@mcp-audit/redaction';
import { toEventRow, type EventRow } from '@mcp-audit/ingester';
import { env, makeEvent, need, rng, suffix } from '../lib/index.js';

const N = Number(process.env.BENCH_STORAGE_EVENTS ?? 200_000);
const BATCH = 20_000;
const SCHEMAS = fileURLToPath(new URL('../../../schemas/clickhouse/', import.meta.url));

const TABLES = ['events', 'events_legacy', 'events_lc', 'events_by_time'] as const;
type Table = (typeof TABLES)[number];
const TABLE_SET = new Set<string>(TABLES);

/** Columns of the LowCardinality copy: strings with few distinct values per granule. */
const LOW_CARDINALITY = new Set([
  'kind',
  'source_type',
  'source_id',
  'source_version',
  'client_name',
  'client_agent',
  'client_user_agent',
  'server_name',
  'server_version',
  'server_transport',
  'method',
  'tool_name',
  'tool_definition_hash',
  'outcome',
  'auth_method',
  'auth_result',
  'auth_reason',
  'error_code',
]);

const loadavg = () =>
  `load ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`;

async function columnsOf(
  ch: ClickHouse,
  db: string,
  table: Table,
): Promise<Array<{ name: string; type: string }>> {
  // DESCRIBE: in column order (18.16's system.columns has no position)
  return ch.query<{ name: string; type: string }>(
    sql`DESCRIBE TABLE ${dbIdent(db)}.${ident(table, TABLE_SET)}`,
  );
}

/** The LowCardinality copy of events: same engine, partitioning and order, other string types. */
async function createLowCardinalityCopy(ch: ClickHouse, db: string): Promise<void> {
  const cols = await columnsOf(ch, db, 'events');
  const names = new Set(cols.map((c) => c.name));
  const defs: SqlFragment[] = cols.map((c) =>
    LOW_CARDINALITY.has(c.name) && c.type === 'String'
      ? sql`${ident(c.name, names)} LowCardinality(String)`
      : sql`${ident(c.name, names)} ${typeSql(c.type)}`,
  );
  let list = defs[0]!;
  for (const d of defs.slice(1)) list = sql`${list}, ${d}`;
  await ch.command(
    sql`CREATE TABLE ${dbIdent(db)}.events_lc (${list}) ENGINE = ReplacingMergeTree(ver)
      PARTITION BY toYYYYMMDD(ts) ORDER BY (client_id, ts, event_id)`,
    { settings: { allow_experimental_low_cardinality_type: 1 } },
  );
}

/** The types events uses (an allowlist: the copy is built from system.columns). */
const TYPES: Record<string, SqlFragment> = {
  UUID: sql`UUID`,
  "DateTime('UTC')": sql`DateTime('UTC')`,
  UInt8: sql`UInt8`,
  UInt16: sql`UInt16`,
  UInt32: sql`UInt32`,
  UInt64: sql`UInt64`,
  Int32: sql`Int32`,
  Int64: sql`Int64`,
  String: sql`String`,
  'Nullable(UInt8)': sql`Nullable(UInt8)`,
  'Nullable(UInt16)': sql`Nullable(UInt16)`,
  'Nullable(Int32)': sql`Nullable(Int32)`,
  'Array(String)': sql`Array(String)`,
};
function typeSql(t: string): SqlFragment {
  const f = TYPES[t];
  if (!f) throw new Error(`storage bench: events has a column of type ${t} the copy does not know`);
  return f;
}

async function optimize(ch: ClickHouse, db: string, table: Table): Promise<void> {
  const parts = await ch.query<{ id: string }>(
    sql`SELECT DISTINCT partition_id AS id FROM system.parts WHERE database = ${db} AND table = ${table} AND active`,
  );
  for (const p of parts)
    await ch.command(
      sql`OPTIMIZE TABLE ${dbIdent(db)}.${ident(table, TABLE_SET)} PARTITION ID ${str(p.id)} FINAL`,
    );
}

interface Size {
  rows: number;
  parts: number;
  bytes: number;
}
async function sizeOf(ch: ClickHouse, db: string, table: Table): Promise<Size> {
  const [r] = await ch.query<{ rows: string; parts: string; bytes: string }>(
    sql`SELECT sum(rows) AS rows, count() AS parts, sum(bytes_on_disk) AS bytes
      FROM system.parts WHERE database = ${db} AND table = ${table} AND active`,
  );
  return { rows: Number(r!.rows), parts: Number(r!.parts), bytes: Number(r!.bytes) };
}

/** Best of three full reads (every column decompressed), ms. */
async function readMs(ch: ClickHouse, db: string, table: Table): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await ch.query(
      sql`SELECT count() AS n FROM ${dbIdent(db)}.${ident(table, TABLE_SET)} WHERE NOT ignore(*)`,
    );
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

async function topColumns(ch: ClickHouse, db: string, table: Table, rows: number): Promise<string> {
  const cols = await ch.query<{ name: string; c: string; u: string }>(
    sql`SELECT name, data_compressed_bytes AS c, data_uncompressed_bytes AS u FROM system.columns
      WHERE database = ${db} AND table = ${table} ORDER BY data_compressed_bytes DESC LIMIT 10`,
  );
  return cols
    .map((c) => `${c.name} ${(Number(c.c) / rows).toFixed(1)} (${(Number(c.u) / rows).toFixed(0)} raw)`)
    .join(', ');
}

async function main() {
  const admin = createClickHouse({
    url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    username: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER'),
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
    requestTimeoutMs: 600_000,
  });
  const db = `mcp_audit_storage_bench_${suffix()}`;
  const [{ version }] = (await admin.query<{ version: string }>(sql`SELECT version() AS version`)) as [
    { version: string },
  ];
  try {
    await runMigrations({ client: admin, dir: SCHEMAS, database: db });
    await admin.command(sql`CREATE TABLE ${dbIdent(db)}.events_legacy AS ${dbIdent(db)}.events`);
    await createLowCardinalityCopy(admin, db);
    const ch = createClickHouse({
      url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
      username: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER'),
      password: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
      database: db,
      insertTables: ['events', 'events_legacy', 'events_lc'],
      requestTimeoutMs: 600_000,
    });

    const redactor = createEventRedactor();
    const r = rng(42);
    const tag = `bench-${suffix()}`;
    const ingestedAtMs = Date.now();
    let rawBytes = 0;
    let remainderBytes = 0;
    let remainders = 0;
    for (let i = 0; i < N; i += BATCH) {
      const rows: EventRow[] = [];
      const legacy: EventRow[] = [];
      for (let j = i; j < Math.min(N, i + BATCH); j++) {
        const p = parseEvent(
          JSON.stringify(makeEvent(r, j, { sourceId: tag, clientPrefix: tag, clients: 500 })),
        );
        if (!p.ok) throw new Error(`storage bench: generated event ${j} is invalid: ${p.reason}`);
        const { event, raw } = redactor.redactEvent(p.event as AuditEventV1, p.raw);
        const row = toEventRow(event, raw, { partition: 0, offset: String(j), ingestedAtMs });
        rows.push(row);
        legacy.push({ ...row, raw });
        rawBytes += Buffer.byteLength(raw);
        remainderBytes += Buffer.byteLength(row.raw);
        if (row.raw !== '') remainders++;
      }
      await ch.insert('events', rows);
      await ch.insert('events_legacy', legacy);
      await ch.insert('events_lc', rows);
    }
    await ch.close();

    console.log(
      `storage: ${N} events (the ingest bench's generator), ClickHouse ${version}, ${loadavg()}; raw column: ` +
        `${(rawBytes / N).toFixed(0)} bytes/event received, ${(remainderBytes / N).toFixed(1)} stored as remainder ` +
        `(${remainders} non-empty)`,
    );
    const sizes = new Map<Table, Size>();
    for (const t of TABLES) {
      await optimize(admin, db, t);
      sizes.set(t, await sizeOf(admin, db, t));
    }
    const reads = new Map<Table, number>();
    for (const t of TABLES) reads.set(t, await readMs(admin, db, t));
    const line = (label: string, t: Table) => {
      const s = sizes.get(t)!;
      return `${label.padEnd(34)} ${String(s.rows).padStart(8)} rows ${String(s.parts).padStart(3)} parts ${(s.bytes / 1024 / 1024).toFixed(1).padStart(7)} MiB ${(s.bytes / s.rows).toFixed(1).padStart(7)} bytes/event; full read ${reads.get(t)!.toFixed(0)} ms`;
    };
    console.log(line('events (migrated, raw = remainder)', 'events'));
    console.log(line('events, legacy raw (full copy)', 'events_legacy'));
    console.log(line('events, LowCardinality strings', 'events_lc'));
    console.log(line('events_by_time (008, its MV)', 'events_by_time'));
    const ev = sizes.get('events')!;
    console.log(
      `events ÷ legacy: ${(ev.bytes / sizes.get('events_legacy')!.bytes).toFixed(2)}; LowCardinality ÷ events: ${(sizes.get('events_lc')!.bytes / ev.bytes).toFixed(2)}`,
    );
    console.log(
      `events, largest columns (bytes/event compressed): ${await topColumns(admin, db, 'events', ev.rows)}`,
    );
    console.log(
      `legacy, largest columns: ${await topColumns(admin, db, 'events_legacy', sizes.get('events_legacy')!.rows)}`,
    );
    console.log(`LowCardinality copy, largest columns: ${await topColumns(admin, db, 'events_lc', ev.rows)}`);
  } finally {
    await admin.command(sql`DROP DATABASE IF EXISTS ${dbIdent(db)}`);
    await admin.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
