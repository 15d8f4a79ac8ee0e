/**
 * node services/detector/dist/test/event-id-reuse.bench.js — what one event per event_id costs the
 * periodic detectors on a large table (not part of the suite: prints figures, asserts nothing about
 * speed on a shared machine). Run under `flock /work/bench.lock` with the tests' stack environment.
 *
 *   BENCH_DB    database holding a filled `events` (read as the admin user)
 *   BENCH_AT    ISO end of the newest ingestion window to judge (default: the newest ingested_at)
 *   BENCH_RUNS  repetitions per figure (default 3; the median is printed)
 */
import { createClickHouse, sql } from '@mcp-audit/clickhouse';
import {
  authSprayDetector,
  DEFAULT_PERIODIC_CONFIG,
  eventIdReuseDetector,
  type PeriodicDetector,
} from '../src/periodic/index.js';
import { eventsTable, firstCopies, tsBetween } from '../src/periodic/shared.js';

const env = process.env as Record<string, string>;
const DB = env.BENCH_DB;
if (!DB) throw new Error('BENCH_DB is required (a database with a filled events table)');
const RUNS = Number(env.BENCH_RUNS ?? 3);
const ch = createClickHouse({
  url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123',
  username: env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER ?? 'mcp_admin',
  password: env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD ?? '',
  database: DB,
  requestTimeoutMs: 600_000,
});

const [size] = await ch.query<{ rows: string; ids: string; last: string; first: string }>(sql`
  SELECT count() AS rows, uniqExact(event_id) AS ids, toUInt32(max(ingested_at)) AS last, toUInt32(min(ts)) AS first
  FROM ${eventsTable(ch)}`);
const W5 = 5 * 60_000;
const DAY = 86_400_000;
const end = env.BENCH_AT ? Date.parse(env.BENCH_AT) : Math.floor((Number(size!.last) * 1000) / W5) * W5;
console.log(
  `events: ${size!.rows} rows, ${size!.ids} ids, event time from ${new Date(Number(size!.first) * 1000).toISOString()}; judged up to ${new Date(end).toISOString()}`,
);

async function time(label: string, f: () => Promise<string>): Promise<void> {
  const ms: number[] = [];
  let what = '';
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    what = await f();
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  ms.sort((a, b) => a - b);
  console.log(
    `${label.padEnd(58)} median ${ms[Math.floor(ms.length / 2)]!.toFixed(0).padStart(6)} ms  (${ms.map((m) => m.toFixed(0)).join(', ')})  ${what}`,
  );
}

const reuse = eventIdReuseDetector(ch, DEFAULT_PERIODIC_CONFIG.eventIdReuse);
const findings = async (d: PeriodicDetector, from: number, to: number) => {
  const evs = await d.evaluateRange!(from, to);
  return `${evs.length} windows, ${evs.reduce((a, e) => a + e.findings.length, 0)} findings`;
};
await time('event_id_reuse: one 5-minute window (a live tick)', () => findings(reuse, end - W5, end));
await time('event_id_reuse: one hour (12 windows)', () => findings(reuse, end - 12 * W5, end));
await time('event_id_reuse: catch-up of one day (288 windows)', () => findings(reuse, end - DAY, end));

// firstCopies: the same range query with and without the one-copy-per-id condition.
const count = (cond: typeof tsBetween) => async (from: number, to: number) => {
  const [r] = await ch.query<{ n: string; c: string }>(sql`
    SELECT uniqExact(event_id) AS n, uniqExact(client_id) AS c FROM ${eventsTable(ch)}
    WHERE ${cond(from, to)} AND (outcome = 'auth_failed' OR auth_result = 'failure')`);
  return `${r!.n} failures, ${r!.c} clients`;
};
const plain = count(tsBetween);
const dedup = count((a, b) => firstCopies(ch, a, b));
for (const [label, span] of [
  ['15 minutes', 15 * 60_000],
  ['one day', DAY],
  ['three days', 3 * DAY],
] as const) {
  await time(`auth failures over ${label}, every copy (before)`, () => plain(end - span, end));
  await time(`auth failures over ${label}, firstCopies (after)`, () => dedup(end - span, end));
}
const spray = authSprayDetector(ch, DEFAULT_PERIODIC_CONFIG.authSpray);
const Q = 15 * 60_000;
const endQ = Math.floor(end / Q) * Q;
await time('auth_spray: one day of windows (96)', () => findings(spray, endQ - DAY, endQ));
await ch.close();
