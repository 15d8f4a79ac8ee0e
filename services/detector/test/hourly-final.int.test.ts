/**
 * Finalized per-hour counts (migration 014, hourly.finalizer.ts) against the real ClickHouse: events
 * go into the run's own database's `events` (its materialized views fill events_hourly and
 * events_hourly_touched), and the histories read from events_hourly_final must equal the histories
 * merged from events_hourly's states (`readHistories`, the computation the baselines had before) —
 * and so must every baseline computed from them — after the first run, after late events, after a
 * redelivered copy, and through the baseline job.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { dbIdent, runMigrations, sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import { DETECTOR_TABLES } from '../src/app.js';
import {
  baselineWindow,
  buildGrid,
  computeClientBaseline,
  fromRow,
  type Baseline,
  type ClientHistory,
} from '../src/baseline.js';
import { readHistories } from '../src/baseline.history.js';
import { createBaselineJob } from '../src/baselines.job.js';
import { baselinesInWorker } from '../src/baselines.worker.js';
import { parseDetectorConfig } from '../src/config.js';
import { createHourlyFinalizer, type HourlyFinalizer } from '../src/hourly.finalizer.js';
import { chClient, eventRow, randomPastDay, SCHEMAS_DIR, silentLog, suffix } from './periodic.fixtures.js';

const MIN = 60_000;
const H = 60 * MIN;
const DAY = 24 * H;
const sfx = suffix();
const DB = `mcp_audit_final_${sfx}`;
// A past day far from now: every hour of the window is closed.
const AS_OF = randomPastDay();
const { from: FROM, to: TO } = baselineWindow(AS_OF, 28);
const client = (n: string) => `fin-${n}-${sfx}`;
const C = { busy: client('busy'), errors: client('errors'), auth: client('auth'), late: client('late') };
const ZONES: Record<string, string> = {
  [C.busy]: 'UTC',
  [C.errors]: 'Europe/Berlin',
  [C.auth]: 'America/New_York',
  [C.late]: 'Asia/Kolkata',
};
const config = parseDetectorConfig({ clients: { [C.errors]: { timeZone: 'Europe/Berlin' } } });
const opts = { asOf: AS_OF, windowDays: 28, learningActiveDays: 7 };

let admin: ClickHouse;
let writer: ClickHouse;
let analyst: ClickHouse;
let finalizer: HourlyFinalizer;
const db = dbIdent(DB);

/** A deterministic pseudo-random stream (the data differs per client, hour and call). */
function* numbers(seed: number): Generator<number> {
  let x = seed;
  for (;;) {
    x = (x * 1103515245 + 12345) % 2147483648;
    yield x / 2147483648;
  }
}

function history(): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  const rnd = numbers(7);
  const next = () => rnd.next().value as number;
  const tools = ['read_file', 'query', 'search', 'send'];
  for (let d = 0; d < 28; d++) {
    for (let h = 0; h < 24; h++) {
      const hour = FROM + d * DAY + h * H;
      // busy: every working hour, 2 tools on 2 servers, a varying count
      if (h >= 7 && h <= 18 && d % 7 < 5)
        for (let i = 0, n = 1 + Math.floor(next() * 8); i < n; i++)
          rows.push(
            eventRow(hour + i * MIN, {
              client_id: C.busy,
              tool_name: tools[i % 2],
              server_name: i % 3 === 0 ? 'files' : 'db',
              request_bytes: 100 + i,
              response_bytes: Math.floor(next() * 5000),
            }),
          );
      // errors: some hours, with errors, denials and tool errors (5+ calls so shares count)
      if (h % 3 === 0 && d >= 10)
        for (let i = 0; i < 6; i++)
          rows.push(
            eventRow(hour + i * MIN, {
              client_id: C.errors,
              tool_name: tools[2 + (i % 2)]!,
              server_name: 'search',
              outcome: i === 0 ? 'error' : i === 1 ? 'denied' : 'ok',
              tool_is_error: i === 2 ? 1 : null,
            }),
          );
      // auth: failures only, now and then, no tool (no server)
      if ((d * 24 + h) % 17 === 0)
        for (let i = 0; i < 3; i++)
          rows.push(
            eventRow(hour + i * MIN, {
              client_id: C.auth,
              tool_name: '',
              server_name: '',
              method: 'initialize',
              outcome: 'auth_failed',
              auth_result: 'failure',
            }),
          );
      // late: the last week only (learning), at the first and last hour of the window too
      if ((d >= 21 && h % 5 === 1) || (d === 0 && h === 0) || (d === 27 && h === 23))
        rows.push(eventRow(hour + 30 * MIN, { client_id: C.late, tool_name: 'query', server_name: 'db' }));
    }
  }
  return rows;
}

async function insertEvents(rows: Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 5_000) await writer.insert('events', rows.slice(i, i + 5_000));
}

const only = sql`client_id IN ${tuple(Object.values(C))}`;

/** A history with its hours in order and its maps as sorted entries (the readers' orders differ). */
const canonical = (h: ClientHistory) => ({
  clientId: h.clientId,
  hours: [...h.hours].sort((a, b) => a.hour - b.hour),
  tools: [...h.tools].sort(),
  servers: [...h.servers].sort(),
});
const byClient = <T extends { clientId: string }>(xs: T[]) =>
  [...xs].sort((a, b) => (a.clientId < b.clientId ? -1 : 1));
const canonicalBaseline = (b: Baseline) => ({
  ...b,
  tools: [...b.tools].sort(),
  servers: [...b.servers].sort(),
});
const baselines = (hs: ClientHistory[]) =>
  byClient(hs).map((h) =>
    canonicalBaseline(computeClientBaseline(h, buildGrid(FROM, 28, ZONES[h.clientId]!), opts)),
  );

async function both() {
  const reference = byClient(await readHistories(analyst, db, FROM, TO, only));
  const final = byClient(await readHistories(analyst, db, FROM, TO, only, 'final'));
  return { reference, final };
}
/** Equal histories (canonical forms) and equal baselines computed from them. */
function assertSame(final: ClientHistory[], reference: ClientHistory[]): void {
  assert.deepEqual(final.map(canonical), reference.map(canonical));
  assert.deepEqual(baselines(final), baselines(reference));
}

before(async () => {
  admin = chClient('ADMIN');
  await runMigrations({ client: admin, dir: SCHEMAS_DIR, database: DB });
  writer = chClient('ADMIN', { database: DB, insertTables: ['events', ...DETECTOR_TABLES] });
  analyst = chClient('ADMIN', { database: DB });
  // Keep every finalization of an hour as its own row (no background merge): the readers must pick
  // the latest themselves.
  await admin.command(sql`SYSTEM STOP MERGES ${db}.events_hourly_final`);
  finalizer = createHourlyFinalizer({ reader: analyst, writer, db, log: silentLog(), chunkPairs: 500 });
  await insertEvents(history());
});

after(async () => {
  await writer?.close();
  await analyst?.close();
  await admin?.command(sql`DROP DATABASE IF EXISTS ${db}`);
  await admin?.close();
});

test('first run: every touched hour is finalized, and the histories and baselines equal the merged states', async () => {
  const before = await both();
  assert.equal(before.final.length, 0, 'nothing is final before the first run');
  const r = await finalizer.run();
  assert.equal(r.full, true);
  const [touched] = await analyst.query<{ n: string }>(sql`
    SELECT count() AS n FROM (SELECT DISTINCT client_id, hour FROM ${db}.events_hourly_touched)`);
  assert.equal(r.pairs, Number(touched?.n));
  const { reference, final } = await both();
  assert.equal(reference.length, 4);
  assert.ok(reference.every((h) => h.hours.length > 20));
  assertSame(final, reference);
  // The data is not trivial: errors, auth failures, two servers, learning and active clients.
  const b = baselines(reference);
  assert.ok(b.some((x) => x.errorShare.hours > 0 && x.errorShare.median > 0));
  assert.ok(b.some((x) => x.authFailuresHourMax === 3));
  assert.deepEqual(new Set(b.map((x) => x.state)), new Set(['active', 'learning']));
});

test('a second run with nothing new finalizes only what the margin holds back, and changes nothing', async () => {
  const r = await finalizer.run();
  assert.equal(r.full, false);
  const { reference, final } = await both();
  assertSame(final, reference);
});

test('late events and a redelivered copy: the touched hours are finalized again, equal to the states', async () => {
  const busyHour = FROM + 3 * DAY + 9 * H; // a weekday working hour: already final
  const lateRows = [
    eventRow(busyHour + 59 * MIN, { client_id: C.busy, tool_name: 'brand_new_tool', server_name: 'files' }),
    eventRow(FROM + 27 * DAY + 2 * H, { client_id: C.late, outcome: 'error' }), // a new hour
    eventRow(FROM + 20 * DAY + 5 * H, { client_id: C.auth, outcome: 'auth_failed', auth_result: 'failure' }),
  ];
  const [copyOf] = await analyst.query<Record<string, unknown>>(sql`
    SELECT * FROM ${db}.events WHERE client_id = ${C.errors} ORDER BY ts LIMIT 1`);
  assert.ok(copyOf);
  await insertEvents([
    ...lateRows,
    copyOf,
    { ...eventRow(TO - H, { client_id: C.errors }), event_id: randomUUID() },
  ]);
  const stale = await both();
  assert.notDeepEqual(
    stale.final.map(canonical),
    stale.reference.map(canonical),
    'the late events are not final yet',
  );
  const r = await finalizer.run();
  assert.ok(r.pairs >= 5, `late hours finalized again: ${r.pairs}`);
  const [rows] = await analyst.query<{ n: string; pairs: string }>(sql`
    SELECT count() AS n, uniqExact(client_id, hour) AS pairs FROM ${db}.events_hourly_final`);
  assert.ok(Number(rows?.n) > Number(rows?.pairs), 'hours finalized twice are two rows');
  const { reference, final } = await both();
  assertSame(final, reference);
  const busy = reference.find((h) => h.clientId === C.busy)!;
  assert.equal(busy.tools.get('brand_new_tool'), 1);
});

test('the baseline job writes the baselines the merged states give', async () => {
  const job = createBaselineJob({
    reader: analyst,
    writer,
    config: { ...config },
    log: silentLog(),
    finalizer,
  });
  const result = await job.computeAsOf(AS_OF);
  assert.equal(result.clients, 4);
  const rows = await analyst.query<Record<string, unknown>>(sql`
    SELECT * FROM ${db}.baselines WHERE as_of = ${new Date(AS_OF)} AND kind = 'client' AND ${only}`);
  const written = byClient(rows.map(fromRow)).map(canonicalBaseline);
  const expected = byClient(await readHistories(analyst, db, FROM, TO, only)).map((h) =>
    canonicalBaseline(
      computeClientBaseline(h, buildGrid(FROM, 28, h.clientId === C.errors ? 'Europe/Berlin' : 'UTC'), opts),
    ),
  );
  assert.deepEqual(written, expected);
});

test('the job in a worker thread (as the service runs it) writes the same baselines', async () => {
  const asOf = AS_OF - DAY;
  const window = baselineWindow(asOf, 28);
  const env = process.env;
  const admin = {
    username: env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER ?? 'mcp_admin',
    password: env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD ?? '',
  };
  const compute = baselinesInWorker(
    {
      url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
      database: DB,
      writer: admin,
      reader: admin,
      insertTables: DETECTOR_TABLES,
      logLevel: 'silent',
    },
    config,
    256,
  );
  const result = await compute(asOf);
  assert.equal(result.clients, 4);
  assert.equal(result.asOf, asOf);
  const rows = await analyst.query<Record<string, unknown>>(sql`
    SELECT * FROM ${db}.baselines WHERE as_of = ${new Date(asOf)} AND kind = 'client' AND ${only}`);
  const written = byClient(rows.map(fromRow)).map(canonicalBaseline);
  const expected = byClient(await readHistories(analyst, db, window.from, window.to, only)).map((h) =>
    canonicalBaseline(
      computeClientBaseline(
        h,
        buildGrid(window.from, 28, h.clientId === C.errors ? 'Europe/Berlin' : 'UTC'),
        { ...opts, asOf },
      ),
    ),
  );
  assert.deepEqual(written, expected);
});
