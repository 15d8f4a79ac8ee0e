/**
 * What one watchdog check costs on a large table: EVENTS_PER_DAY events (default 10M, 200 sources)
 * stored for today and for the same day 1–4 weeks back (what the silence reference reads), in a
 * database of its own on the tests' ClickHouse (generated server-side with numbers()). Prints the
 * check time over RUNS checks (silence only: the stall check is two Kafka admin calls).
 *   flock /work/bench.lock node services/detector/dist/test/watchdog.bench.js
 */
import { dbIdent, runMigrations, sql } from '@mcp-audit/clickhouse';
import { Lifecycle } from '../src/alert.lifecycle.js';
import { DETECTOR_TABLES } from '../src/app.js';
import { parseDetectorConfig } from '../src/config.js';
import { createPipelineWatchdog } from '../src/watchdog/pipeline.watchdog.js';
import { chClient, SCHEMAS_DIR, silentLog, suffix } from './periodic.fixtures.js';

const PER_DAY = Number(process.env.EVENTS_PER_DAY ?? 10_000_000);
const RUNS = Number(process.env.RUNS ?? 10);
const SOURCES = 200;
const DAY = 86_400_000;
const DB = `mcp_audit_wdbench_${suffix()}`;
const admin = chClient('ADMIN');
const log = silentLog();

async function main() {
  await runMigrations({ client: admin, dir: SCHEMAS_DIR, database: DB });
  const ch = chClient('ADMIN', { database: DB, insertTables: DETECTOR_TABLES });
  const now = Math.floor(Date.now() / 1000) * 1000;
  const t0 = Date.now();
  // Today: the last 24 h up to now; and the same 24 h 7, 14, 21, 28 days back. Ingested 2 s after ts.
  for (const back of [0, 7, 14, 21, 28]) {
    const from = Math.floor((now - back * DAY - DAY) / 1000);
    await admin.command(sql`
      INSERT INTO ${dbIdent(DB)}.events (event_id, ts, ingested_at, ver, kind, source_type, source_id, client_id)
      SELECT generateUUIDv4(), toDateTime(${from} + intDiv(number * 86400, ${PER_DAY}), 'UTC'),
             toDateTime(${from} + intDiv(number * 86400, ${PER_DAY}) + 2, 'UTC'), 1, 'tool_call', 'gateway',
             concat('gw-', toString(number % ${SOURCES})), concat('c-', toString(number % 5000))
      FROM numbers(${PER_DAY})`);
  }
  const loadS = (Date.now() - t0) / 1000;
  await admin.command(sql`OPTIMIZE TABLE ${dbIdent(DB)}.events`).catch(() => undefined);
  const life = new Lifecycle({
    // Every source reports, so no alert is expected: one would be a bug in the bench or the watchdog.
    sink: {
      write: () => Promise.reject(new Error('the bench expects no alert')),
    },
    log,
    origin: 'live',
  });
  const config = parseDetectorConfig({ watchdog: { stall: { enabled: false } } }).watchdog;
  const w = createPipelineWatchdog({ reader: ch, lifecycle: life, config, log, now: () => now });
  const ms: number[] = [];
  let last;
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    last = await w.check();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  console.log(
    `watchdog check: ${PER_DAY.toLocaleString('en')} events/day x 5 days (${SOURCES} sources), loaded in ${loadS.toFixed(1)} s; ` +
      `${RUNS} checks: median ${ms[ms.length >> 1]!.toFixed(0)} ms, max ${ms[ms.length - 1]!.toFixed(0)} ms; ` +
      `busy ${last!.busy}, silent ${last!.silent.length}, raised ${last!.raised}`,
  );
  await ch.close();
}

try {
  await main();
} finally {
  await admin.command(sql`DROP DATABASE IF EXISTS ${dbIdent(DB)}`);
  await admin.close();
}
