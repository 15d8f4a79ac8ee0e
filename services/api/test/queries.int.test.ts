import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dbIdent, runMigrations, sql, toSql, type ClickHouse, type SqlFragment } from '@mcp-audit/clickhouse';
import { clientPage } from '../src/clients.queries.js';
import {
  eventById,
  eventWhere,
  facets,
  FACET_FIELDS,
  neighbours,
  searchEvents,
  sessionIdentities,
  toSummary,
  type SummaryRow,
} from '../src/events.queries.js';
import type { EventFilterInput, Range } from '../src/query.params.js';
import { adminClient, eventRow, freshDatabase, SCHEMAS_DIR } from './helpers.js';

/**
 * The query rewrites (two-phase search, one-scan facets, the client page without FINAL) give the
 * same answers as the FINAL queries they replaced, on a real ClickHouse database of the test's own:
 * several clients, tools, outcomes, labels, redelivered copies (same sort key, lower ver), and for
 * the search also forged copies (another ts or client, lower ver), against a model in JS. Searches
 * without a client filter or free text read the time-ordered copy events_by_time (008), filled by its
 * materialized view from these inserts into events; the others read events: both are compared here.
 */
let db: { name: string; drop: () => Promise<void> };
let ch: ClickHouse;
const NOW = Math.floor(Date.now() / 1000) * 1000;
const RANGE: Range = { from: NOW - 6 * 3_600_000, to: NOW };
type Row = ReturnType<typeof eventRow>;
const rows: Row[] = [];
const TOOLS = ['read_file', 'send_mail', 'query', 'list_issues'];
const OUTCOMES = ['ok', 'ok', 'ok', 'error', 'denied'];

before(async () => {
  db = await freshDatabase('queries');
  ch = adminClient(db.name, ['events']);
  let seed = 7;
  const r = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 3000; i++) {
    const c = Math.floor(r() * r() * 6);
    const tool = TOOLS[Math.floor(r() * TOOLS.length)]!;
    rows.push(
      eventRow({
        // a few share a second and a millisecond: ties are broken by event_id
        tsMs: RANGE.from - 3_600_000 + Math.floor((r() * 8 * 3_600_000) / 7) * 7,
        client_id: `c-${c}`,
        client_user: `u-${c % 3}`,
        session_id: `c-${c}-s${Math.floor(r() * 4)}`,
        server_name: tool === 'query' ? 'db' : 'files',
        tool_name: i % 50 === 0 ? '' : tool,
        outcome: OUTCOMES[Math.floor(r() * OUTCOMES.length)]!,
        label_values: [r() < 0.7 ? 'prod' : 'dev'],
        args: `{"q":"${r() < 0.1 ? 'Invoice' : 'x'}"}`,
      }),
    );
  }
  // redelivered copies: the same row, ingested later (lower ver)
  const redelivered = rows.filter((_, i) => i % 37 === 0).map((x) => ({ ...x, ver: x.ver - 30 }));
  await ch.insert('events', rows);
  await ch.insert('events', redelivered);
});

after(async () => {
  await ch?.close();
  await db?.drop();
});

const FILTERS: EventFilterInput[] = [
  {},
  { client: 'c-0' },
  { client: ['c-1', 'c-2'], tool: 'read_file' },
  { tool: 'query', outcome: 'error' },
  { label: 'env=dev', outcome: ['ok', 'denied'] },
  { session: 'c-0-s1' },
  { q: 'invoice', client: 'c-0' },
  { server: 'nope' },
];

/** A reference search: the summary columns of `source` (a table or subquery) matching `where`, in order. */
async function referenceSearch(source: SqlFragment, where: SqlFragment, dir: 'desc' | 'asc') {
  const order = dir === 'desc' ? sql`ts DESC, ts_ms DESC, event_id DESC` : sql`ts, ts_ms, event_id`;
  const r = await ch.query<SummaryRow>(sql`
    SELECT event_id, toUInt32(ts) AS ts_s, ts_ms, kind, outcome, client_id, client_user, client_ip, session_id,
      source_id, server_name, tool_name, method, duration_ms, error_message, label_keys, label_values
    FROM ${source} WHERE ${where} ORDER BY ${order} LIMIT 100000`);
  return r.map(toSummary);
}

/** What searchEvents returned before: FINAL over the range. */
async function finalSearch(where: SqlFragment, dir: 'desc' | 'asc') {
  return referenceSearch(sql`${dbIdent(ch.database)}.events FINAL`, where, dir);
}

async function allPages(f: EventFilterInput, dir: 'desc' | 'asc', limit: number) {
  const out: unknown[] = [];
  let cursor: string | undefined;
  for (let n = 0; n < 1000; n++) {
    const p = await searchEvents(ch, eventWhere(f, RANGE), { limit, cursor, dir });
    out.push(...p.items);
    if (!p.next_cursor) return out;
    assert.equal(p.items.length, limit);
    cursor = p.next_cursor;
  }
  throw new Error('too many pages');
}

test('search: every page equals the FINAL query it replaced (both orders, several filters)', async () => {
  for (const f of FILTERS) {
    for (const dir of ['desc', 'asc'] as const) {
      const expected = await finalSearch(eventWhere(f, RANGE), dir);
      const got = await allPages(f, dir, f.client === undefined && f.session === undefined ? 250 : 40);
      assert.deepEqual(got, expected, `${JSON.stringify(f)} ${dir}`);
    }
  }
});

test('facets equal the per-field FINAL counts they replaced', async () => {
  const d = dbIdent(ch.database);
  for (const f of FILTERS) {
    const where = eventWhere(f, RANGE);
    const got = await facets(ch, where);
    for (const field of FACET_FIELDS) {
      const col = {
        client_id: sql`client_id`,
        client_user: sql`client_user`,
        server_name: sql`server_name`,
        tool_name: sql`tool_name`,
        method: sql`method`,
        kind: sql`kind`,
        outcome: sql`outcome`,
        source_id: sql`source_id`,
      }[field];
      const want = await ch.query<{ value: string; count: string }>(sql`
        SELECT ${col} AS value, count() AS count FROM ${d}.events FINAL WHERE ${where}
        GROUP BY value ORDER BY count DESC, value LIMIT 10`);
      assert.deepEqual(
        got[field],
        want.map((w) => ({ value: w.value, count: Number(w.count) })),
        `${JSON.stringify(f)} ${field}`,
      );
    }
  }
});

test('client page: servers and tools with first/last use and calls equal the FINAL queries', async () => {
  const d = dbIdent(ch.database);
  for (const c of ['c-0', 'c-3', 'c-9']) {
    const page = await clientPage(ch, c, RANGE);
    const tb = eventWhere({}, RANGE);
    const servers = await ch.query<{ name: string; first_s: number; last_s: number; calls: string }>(sql`
      SELECT server_name AS name, toUInt32(min(ts)) AS first_s, toUInt32(max(ts)) AS last_s, count() AS calls
      FROM ${d}.events FINAL WHERE client_id = ${c} AND ${tb} AND server_name != ''
      GROUP BY name ORDER BY calls DESC, name LIMIT 200`);
    const tools = await ch.query<{
      server: string;
      name: string;
      first_s: number;
      last_s: number;
      calls: string;
    }>(sql`
      SELECT server_name AS server, tool_name AS name, toUInt32(min(ts)) AS first_s, toUInt32(max(ts)) AS last_s,
             count() AS calls
      FROM ${d}.events FINAL WHERE client_id = ${c} AND ${tb} AND tool_name != ''
      GROUP BY server, name ORDER BY calls DESC, name LIMIT 500`);
    const iso = (s: number) => new Date(Number(s) * 1000).toISOString();
    assert.deepEqual(
      page.servers,
      servers.map((s) => ({
        name: s.name,
        first_seen: iso(s.first_s),
        last_seen: iso(s.last_s),
        calls: Number(s.calls),
      })),
    );
    assert.deepEqual(
      page.tools,
      tools.map((t) => ({
        server: t.server,
        name: t.name,
        first_seen: iso(t.first_s),
        last_seen: iso(t.last_s),
        calls: Number(t.calls),
      })),
    );
    // labels: those of the client's newest event in the range (any of them when several share its ms)
    const newest = await ch.query<{ label_keys: string[]; label_values: string[] }>(sql`
      SELECT label_keys, label_values FROM ${d}.events
      WHERE client_id = ${c} AND ${tb} AND (toUInt64(ts) * 1000 + ts_ms) = (
        SELECT max(toUInt64(ts) * 1000 + ts_ms) FROM ${d}.events WHERE client_id = ${c} AND ${tb})`);
    const asMap = (r: { label_keys: string[]; label_values: string[] }) =>
      Object.fromEntries(r.label_keys.map((k, i) => [k, r.label_values[i]]));
    if (newest.length === 0) assert.deepEqual(page.labels, {});
    else
      assert.ok(
        newest.some((n) => JSON.stringify(asMap(n)) === JSON.stringify(page.labels)),
        c,
      );
    if (c === 'c-9') assert.equal(page.tools.length, 0);
  }
});

test('neighbours and session identities equal the FINAL queries they replaced', async () => {
  const d = dbIdent(ch.database);
  const cols = sql`event_id, toUInt32(ts) AS ts_s, ts_ms, kind, outcome, client_id, client_user, client_ip,
    session_id, source_id, server_name, tool_name, method, duration_ms, error_message, label_keys, label_values`;
  for (const x of [rows[5]!, rows[37]!, rows[100]!, rows[2999]!]) {
    const e = (await eventById(ch, x.event_id, { from: NOW - 86_400_000, to: NOW + 86_400_000 }))!;
    const near = sql`session_id = ${e.session_id} AND ts >= ${new Date((Number(e.ts_s) - 7 * 86_400) * 1000)}
      AND ts <= ${new Date((Number(e.ts_s) + 7 * 86_400) * 1000)} AND event_id != toUUID(${e.event_id})`;
    const t = new Date(Number(e.ts_s) * 1000);
    const [ms, id] = [Number(e.ts_ms), e.event_id];
    const before = await ch.query<SummaryRow>(sql`SELECT ${cols} FROM ${d}.events FINAL WHERE ${near}
      AND (ts < ${t} OR (ts = ${t} AND (ts_ms < ${ms} OR (ts_ms = ${ms} AND event_id < toUUID(${id})))))
      ORDER BY ts DESC, ts_ms DESC, event_id DESC LIMIT 10`);
    const after = await ch.query<SummaryRow>(sql`SELECT ${cols} FROM ${d}.events FINAL WHERE ${near}
      AND (ts > ${t} OR (ts = ${t} AND (ts_ms > ${ms} OR (ts_ms = ${ms} AND event_id > toUUID(${id})))))
      ORDER BY ts, ts_ms, event_id LIMIT 10`);
    assert.deepEqual(await neighbours(ch, e, 10), {
      before: before.reverse().map(toSummary),
      after: after.map(toSummary),
    });
    const ids = await ch.query<{ client_id: string; events: string }>(sql`
      SELECT client_id, client_user, client_ip, count() AS events FROM ${d}.events FINAL
      WHERE session_id = ${e.session_id} AND ${eventWhere({}, RANGE)}
      GROUP BY client_id, client_user, client_ip ORDER BY client_id, client_user, client_ip`);
    const got = await sessionIdentities(ch, e.session_id, RANGE);
    assert.deepEqual(
      got
        .map((g) => ({ client_id: g.client_id, events: g.events }))
        .sort((a, b) => (a.client_id < b.client_id ? -1 : 1)),
      ids.map((i) => ({ client_id: i.client_id, events: Number(i.events) })),
    );
  }
});

test('search: a forged copy (another ts or client, lower ver) never shows; one row per event_id, the first ingested', async () => {
  const inRange = (x: Row) => x.ts * 1000 + x.ts_ms >= RANGE.from && x.ts * 1000 + x.ts_ms < RANGE.to;
  const base = rows.filter((x) => x.client_id === 'c-0' && inRange(x) && x.ts * 1000 > RANGE.from + 60_000);
  const forged = [
    // a later copy of an event moved to the range's last second under another client (the newest)
    { ...base[0]!, ver: base[0]!.ver - 100, ts: Math.floor(RANGE.to / 1000) - 1, client_id: 'c-forged' },
    // a later copy with another tool, same key
    { ...base[1]!, ver: base[1]!.ver - 100, tool_name: 'exfiltrate' },
    // a later copy one second earlier
    { ...base[2]!, ver: base[2]!.ver - 100, ts: base[2]!.ts - 1 },
  ];
  await ch.insert('events', forged);
  {
    // the model: per event_id the highest-ver copy in the range, then the filter
    const all = [...rows, ...forged].filter(inRange);
    const winners = new Map<string, Row>();
    for (const x of all) {
      const w = winners.get(x.event_id);
      if (!w || x.ver > w.ver) winners.set(x.event_id, x);
    }
    const key = (x: Row) => [x.ts, x.ts_ms, x.event_id] as const;
    const cmp = (a: Row, b: Row) => {
      const [p, q] = [key(a), key(b)];
      return p[0] - q[0] || p[1] - q[1] || (p[2] < q[2] ? -1 : p[2] > q[2] ? 1 : 0);
    };
    for (const [f, pred] of [
      [{}, () => true],
      [{ client: 'c-forged' }, (x: Row) => x.client_id === 'c-forged'],
      [{ tool: 'exfiltrate' }, (x: Row) => x.tool_name === 'exfiltrate'],
      [{ client: 'c-0' }, (x: Row) => x.client_id === 'c-0'],
    ] as Array<[EventFilterInput, (x: Row) => boolean]>) {
      const want = [...winners.values()]
        .filter(pred)
        .sort(cmp)
        .reverse()
        .map((x) => x.event_id);
      const got = (await allPages(f, 'desc', 60)) as Array<{ event_id: string; client_id: string }>;
      assert.deepEqual(
        got.map((g) => g.event_id),
        want,
        JSON.stringify(f),
      );
      assert.ok(!got.some((g) => g.client_id === 'c-forged'));
    }
  }
});

/** Every copy's searchable columns, ordered, from one table. */
async function copies(c: ClickHouse, database: string, table: 'events' | 'events_by_time') {
  const t = sql`${dbIdent(database)}.${table === 'events' ? sql`events` : sql`events_by_time`}`;
  return c.query<Record<string, unknown>>(sql`
    SELECT event_id, toUInt32(ts) AS ts_s, ts_ms, ver, kind, outcome, client_id, client_user, client_ip, session_id,
      source_id, server_name, tool_name, method, duration_ms, error_message, label_keys, label_values
    FROM ${t} ORDER BY event_id, ver, ts_s, ts_ms, client_id, tool_name`);
}

test('events_by_time holds every copy inserted into events (materialized view), column for column', async () => {
  const got = await copies(ch, ch.database, 'events_by_time');
  const want = await copies(ch, ch.database, 'events');
  assert.ok(want.length > rows.length, 'redelivered and forged copies are there too');
  assert.deepEqual(got, want);
});

async function dedupSearch(f: EventFilterInput, dir: 'desc' | 'asc') {
  const d = dbIdent(ch.database);
  const winners = sql`(SELECT * FROM ${d}.events WHERE ${eventWhere({}, RANGE)} ORDER BY ver DESC LIMIT 1 BY event_id)`;
  return referenceSearch(winners, eventWhere(f, RANGE), dir);
}

test('search after merges (OPTIMIZE … FINAL of both tables): still one row per event_id, the highest ver', async () => {
  const d = dbIdent(ch.database);
  await ch.command(sql`OPTIMIZE TABLE ${d}.events FINAL`);
  await ch.command(sql`OPTIMIZE TABLE ${d}.events_by_time FINAL`);
  for (const f of [{}, { tool: 'query', outcome: 'error' }, { session: 'c-0-s1' }] as EventFilterInput[]) {
    for (const dir of ['desc', 'asc'] as const) {
      // One row per event_id (its highest ver in the range) from events, then the filter: FINAL would
      // show test 5's forged copies under another client or second as second rows.
      const expected = await dedupSearch(f, dir);
      assert.deepEqual(await allPages(f, dir, 70), expected, `${JSON.stringify(f)} ${dir}`);
    }
  }
  const byTime = await ch.query<{ n: string }>(sql`SELECT uniqExact(event_id) AS n FROM ${d}.events_by_time`);
  const events = await ch.query<{ n: string }>(sql`SELECT uniqExact(event_id) AS n FROM ${d}.events`);
  assert.equal(byTime[0]!.n, events[0]!.n);
});

test('008 backfills events_by_time from the events an install already had', async () => {
  // A database migrated up to 007 with events in it, then migrated with 008.
  const dir = mkdtempSync(join(tmpdir(), 'api-migrations-'));
  const admin = adminClient();
  const name = `mcp_audit_test_backfill_${process.pid}_${Date.now()}`;
  try {
    const files = readdirSync(SCHEMAS_DIR).filter((f) => /^\d{3}_.*\.sql$/.test(f));
    const upTo = (n: number) => {
      for (const f of files.filter((x) => Number(x.slice(0, 3)) <= n))
        copyFileSync(join(SCHEMAS_DIR, f), join(dir, f));
    };
    upTo(7);
    await runMigrations({ client: admin, dir, database: name });
    const c = adminClient(name, ['events']);
    try {
      await c.insert('events', rows.slice(0, 500));
      await c.insert(
        'events',
        rows.slice(0, 20).map((x) => ({ ...x, ver: x.ver - 30 })),
      );
      upTo(8);
      const r = await runMigrations({ client: admin, dir, database: name });
      assert.deepEqual(
        r.applied.map((a) => a.file),
        ['008_events_by_time.sql'],
      );
      assert.deepEqual(await copies(c, name, 'events_by_time'), await copies(c, name, 'events'));
      // and later inserts arrive through the view
      await c.insert('events', rows.slice(500, 600));
      assert.deepEqual(await copies(c, name, 'events_by_time'), await copies(c, name, 'events'));
    } finally {
      await c.close();
    }
  } finally {
    await admin.command(sql`DROP DATABASE IF EXISTS ${dbIdent(name)}`);
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a search whose newest hour holds a page reads that hour only; a sparse one asks the whole range after it', async () => {
  const statements: string[] = [];
  const counting: ClickHouse = {
    ...ch,
    database: ch.database,
    query: (q, o) => {
      statements.push(toSql(q));
      return ch.query(q, o);
    },
  };
  // c-1: no forged copy of test 5 (one would send the page to the exact path, a second statement)
  const hour = toSql(sql`ts >= ${new Date((Math.floor(RANGE.to / 1000) - 3600) * 1000)}`);
  const where = eventWhere({ client: 'c-1' }, RANGE);
  const page = await searchEvents(counting, where, { limit: 20 });
  assert.equal(statements.length, 2, 'keys of the newest hour, then their winners');
  assert.ok(statements[0]!.includes(hour), 'the keys are asked in the hour');
  assert.deepEqual(page.items, (await dedupSearch({ client: 'c-1' }, 'desc')).slice(0, 20));
  statements.length = 0;
  // a few matches an hour: the newest hour holds fewer than 11, so the whole range is asked after it
  const f: EventFilterInput = { client: 'c-1', tool: 'query', outcome: 'error' };
  const sparse = await searchEvents(counting, eventWhere(f, RANGE), { limit: 10 });
  assert.equal(statements.length, 3, 'the hour, then keys over the range, then winners');
  assert.ok(statements[0]!.includes(hour) && !statements[1]!.includes(hour));
  assert.deepEqual(sparse.items, (await dedupSearch(f, 'desc')).slice(0, 10));
  assert.equal(sparse.items.length, 10);
});
