/**
 * Issue 16, "many instances": the periodic detectors run on the one detector instance holding the
 * leader lease (packages/kafka lease.ts), and hand over when it dies. Real processes, real Kafka and
 * ClickHouse of the test stack: the same stored events in two fresh databases; run A is one detector,
 * run B two detectors in one group, the leader killed with SIGKILL mid-run. B must end with exactly
 * A's alerts and transitions (no duplicate, no gap), in ClickHouse and on the alerts topic.
 *
 * The events are in ClickHouse only (as the ingester stores them), with the streaming detectors' topic
 * left empty: the streaming part is partitioned by the events topic's consumer group, not leased.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dbIdent, runMigrations, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Kafka } from '@mcp-audit/kafka';
import { createPeriodicDetectors, DEFAULT_PERIODIC_CONFIG } from '../src/periodic/index.js';
import {
  authFail,
  authOk,
  chClient,
  eventRow,
  randomPastDay,
  REPO_ROOT,
  SCHEMAS_DIR,
  silentLog,
  suffix,
  testKafka,
} from './periodic.fixtures.js';

const MIN = 60_000;
const LATE_MS = 120_000;
const D = randomPastDay();
const sfx = suffix();
const DBS = { a: `mcp_audit_lease_a_${sfx}`, b: `mcp_audit_lease_b_${sfx}` };
const TOPICS = {
  events: `lease-test-events-${sfx}`,
  lease: `lease-test-lease-${sfx}`,
  alertsA: `lease-test-alerts-a-${sfx}`,
  alertsB: `lease-test-alerts-b-${sfx}`,
};
const HOURS = 5;

let admin: ClickHouse;
let kafka: Kafka;
let dir: string;
const procs: Proc[] = [];

/** Seeded events: sprays, guessed keys and sessions used from two addresses, through 8 hours. */
function scenario(): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  const at = (m: number, s = 0) => D + m * MIN + s * 1000;
  for (let m = 0; m < HOURS * 60; m += 10) {
    rows.push(eventRow(at(m), { source_id: `gw-${sfx}`, client_id: `bg-${sfx}-${m % 3}` }));
    const k = m / 10;
    if (k % 2 === 0) {
      // auth_spray: one address against 5 clients inside a 15-minute window
      for (let i = 1; i <= 5; i++)
        rows.push(authFail(at(m, i), `10.${k % 250}.1.1`, `sp-${sfx}-${k}-${i}`, { source_id: `gw-${sfx}` }));
    }
    if (k % 3 === 0) {
      // auth_fail_then_success: five failures, then a success
      for (let i = 0; i < 5; i++)
        rows.push(authFail(at(m + 1, i), `10.${k % 250}.2.2`, `fs-${sfx}-${k}`, { source_id: `gw-${sfx}` }));
      rows.push(authOk(at(m + 3), `10.${k % 250}.2.2`, `fs-${sfx}-${k}`, { source_id: `gw-${sfx}` }));
    }
    if (k % 4 === 1) {
      // session_misuse: one session from two addresses
      for (const [j, ipLast] of [
        [0, 7],
        [2, 8],
      ] as const)
        rows.push(
          eventRow(at(m + j), {
            source_id: `gw-${sfx}`,
            client_id: `sm-${sfx}-${k}`,
            session_id: `sess-${sfx}-${k}`,
            client_ip: `10.${k % 250}.3.${ipLast}`,
          }),
        );
    }
  }
  return rows;
}

interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<void>;
  alive(): boolean;
}

async function startDetector(name: string, db: string, alertsTopic: string, group: string): Promise<Proc> {
  // Kept after the run (like test/lib's services): what each detector did, for a failure's diagnosis.
  mkdirSync(`${REPO_ROOT}.local/test-logs`, { recursive: true });
  const log = `${REPO_ROOT}.local/test-logs/detector-lease-${name}-${sfx}.log`;
  const out = createWriteStream(log);
  const user = process.env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER ?? 'mcp_admin';
  const password = process.env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD ?? '';
  const child = spawn(process.execPath, [`${REPO_ROOT}services/detector/dist/src/main.js`], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      MCP_AUDIT_CLICKHOUSE_URL: process.env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
      MCP_AUDIT_CLICKHOUSE_DATABASE: db,
      MCP_AUDIT_CLICKHOUSE_WRITER_USER: user,
      MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD: password,
      MCP_AUDIT_CLICKHOUSE_ANALYST_USER: user,
      MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD: password,
      MCP_AUDIT_KAFKA_BROKERS: process.env.MCP_AUDIT_KAFKA_BROKERS ?? '127.0.0.1:9092',
      MCP_AUDIT_EVENTS_TOPIC: TOPICS.events,
      MCP_AUDIT_ALERTS_TOPIC: alertsTopic,
      MCP_AUDIT_DETECTOR_GROUP_ID: group,
      MCP_AUDIT_DETECTOR_PORT: '0',
      MCP_AUDIT_DETECTOR_CONFIG: join(dir, 'detector.json'),
      MCP_AUDIT_DETECTOR_BASELINE_JOB: 'false',
      MCP_AUDIT_DETECTOR_LEASE_TOPIC: TOPICS.lease,
      MCP_AUDIT_DETECTOR_LEASE_SESSION_TIMEOUT_MS: '6000',
      MCP_AUDIT_DETECTOR_LEASE_TAKEOVER_DELAY_MS: '2000',
      MCP_AUDIT_LOG_LEVEL: 'info',
    },
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  let running = true;
  const exited = new Promise<void>((r) =>
    child.on('exit', () => {
      running = false;
      r();
    }),
  );
  const p = { name, child, log, exited, alive: () => running };
  procs.push(p);
  return p;
}

const logOf = (p: Proc) => readFileSync(p.log, 'utf8');
const acquisitions = (p: Proc) =>
  logOf(p)
    .split('\n')
    .filter((l) => l.includes('lease acquired')).length;

// Generous: the machine is shared, and a loaded ClickHouse slows every window down.
async function waitFor<T>(
  what: string,
  fn: () => Promise<T | false> | T | false,
  timeoutMs = 600_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Saved progress per detector (epoch ms of the last evaluated window end). */
async function progress(db: string): Promise<Map<string, number>> {
  const rows = await admin.query<{ detector: string; t: string }>(
    sql`SELECT detector, max(last_end_ms) AS t FROM ${dbIdent(db)}.periodic_progress GROUP BY detector`,
  );
  return new Map(rows.map((r) => [r.detector, Number(r.t)]));
}

let target: Map<string, number>;
const windowsLeft = (p: Map<string, number>, windowMs: Map<string, number>) =>
  [...target].reduce((n, [d, end]) => n + Math.max(0, (end - (p.get(d) ?? D)) / windowMs.get(d)!), 0);

async function alertRows(db: string): Promise<string[]> {
  const rows = await admin.query<{ k: string; n: string }>(sql`
    SELECT concat(alert_id, ' ', dedup_key, ' ', toString(window_start_ms)) AS k, count() AS n
    FROM ${dbIdent(db)}.alerts GROUP BY k ORDER BY k`);
  return rows.map((r) => `${r.k} x${r.n}`);
}

async function transitionRows(db: string): Promise<string[]> {
  const rows = await admin.query<{ k: string; n: string }>(sql`
    SELECT concat(alert_id, ' ', from_status, '>', to_status, ' ', toString(changed_at_ms)) AS k, count() AS n
    FROM ${dbIdent(db)}.alert_transitions GROUP BY k ORDER BY k`);
  return rows.map((r) => `${r.k} x${r.n}`);
}

/** Every message on an alerts topic, as "type alert_id status", sorted (duplicates stay). */
async function topicMessages(topic: string): Promise<string[]> {
  const kadmin = kafka.admin();
  await kadmin.connect();
  const high = Number((await kadmin.fetchTopicOffsets(topic))[0]!.high);
  await kadmin.disconnect();
  const out: string[] = [];
  if (high === 0) return out;
  const consumer = kafka.consumer({ groupId: `lease-test-read-${suffix()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        const m = JSON.parse(message.value!.toString()) as { type: string; alert_id: string; status: string };
        out.push(`${m.type} ${m.alert_id} ${m.status}`);
        if (Number(message.offset) + 1 >= high) resolve();
      },
    });
  });
  await consumer.disconnect();
  return out.sort();
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mcp-audit-lease-'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'detector.json'),
    JSON.stringify({
      allowedLatenessMs: LATE_MS,
      // Small ticks, so the run lasts long enough to be killed in the middle of it.
      periodic: { maxWindowsPerTick: 4, tickMs: 1_000 },
      // Wall-clock alerts differ between any two runs: not part of this comparison.
      watchdog: { enabled: false },
    }),
  );
  admin = chClient('ADMIN', { insertTables: ['events', 'periodic_progress'] });
  kafka = testKafka('lease-test', silentLog());
  const kadmin = kafka.admin();
  await kadmin.connect();
  await kadmin.createTopics({
    waitForLeaders: true,
    topics: Object.values(TOPICS).map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })),
  });
  await kadmin.disconnect();
  const rows = scenario();
  const lastTs = Math.max(...rows.map((r) => Number(r.ts) * 1000));
  const detectors = createPeriodicDetectors({ ch: admin, config: DEFAULT_PERIODIC_CONFIG, log: silentLog() });
  target = new Map(
    detectors.map((d) => {
      const closed = lastTs - LATE_MS - (d.lookaheadMs ?? 0);
      return [d.name, Math.floor(closed / d.windowMs) * d.windowMs];
    }),
  );
  for (const db of Object.values(DBS)) {
    await runMigrations({ client: admin, dir: SCHEMAS_DIR, database: db });
    const ch = chClient('ADMIN', { database: db, insertTables: ['events', 'periodic_progress'] });
    await ch.insert('events', rows);
    // Both runs start evaluating at the start of the seeded day.
    await ch.insert(
      'periodic_progress',
      detectors.map((d) => ({ detector: d.name, window_ms: d.windowMs, last_end_ms: D, updated_at: 0 })),
    );
    await ch.close();
  }
});

after(async () => {
  for (const p of procs) if (p.alive()) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  for (const db of Object.values(DBS)) await admin.command(sql`DROP DATABASE IF EXISTS ${dbIdent(db)}`);
  await admin.close();
  const kadmin = kafka.admin();
  await kadmin.connect();
  await kadmin.deleteTopics({ topics: Object.values(TOPICS) }).catch(() => undefined);
  await kadmin.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

test('two detectors, the leader killed mid-run: the alerts of one detector, no duplicate, no gap', async () => {
  const windowMs = new Map(
    createPeriodicDetectors({ ch: admin, config: DEFAULT_PERIODIC_CONFIG, log: silentLog() }).map((d) => [
      d.name,
      d.windowMs,
    ]),
  );
  const done = async (db: string) => windowsLeft(await progress(db), windowMs) === 0;
  const total = windowsLeft(new Map(), windowMs);

  // Run A: one detector.
  const single = await startDetector('single', DBS.a, TOPICS.alertsA, `lease-test-a-${sfx}`);
  await waitFor('the single detector to evaluate every window', async () => (await done(DBS.a)) || false);
  single.child.kill('SIGTERM');
  await single.exited;
  const expected = { alerts: await alertRows(DBS.a), transitions: await transitionRows(DBS.a) };
  assert.ok(expected.alerts.length >= 20, `the scenario raises alerts (${expected.alerts.length})`);
  assert.ok(
    expected.transitions.some((t) => t.includes('open>resolved')),
    'some alerts also resolve (hand-over must not repeat a resolution either)',
  );

  // Run B: two detectors in one group; exactly one takes the lease.
  const group = `lease-test-b-${sfx}`;
  const b1 = await startDetector('b1', DBS.b, TOPICS.alertsB, group);
  const b2 = await startDetector('b2', DBS.b, TOPICS.alertsB, group);
  const leader = await waitFor('a leader', () => {
    const l = [b1, b2].filter((p) => acquisitions(p) > 0);
    assert.ok(l.length <= 1, 'never two leaders');
    return l.length === 1 ? l[0]! : false;
  });
  const survivor = leader === b1 ? b2 : b1;
  // Mid-run: a fifth of the windows evaluated, the rest not.
  await waitFor('the leader a fifth through the windows', async () => {
    const left = windowsLeft(await progress(DBS.b), windowMs);
    assert.ok(left > 0, 'the run ended before the kill: make it longer');
    return left <= total * 0.8 || false;
  });
  assert.equal(acquisitions(survivor), 0, 'the standby did not run the periodic detectors');
  const killedAt = Date.now();
  leader.child.kill('SIGKILL');
  await leader.exited;
  const leftAtKill = windowsLeft(await progress(DBS.b), windowMs);
  await waitFor('the survivor to take the lease over', () => acquisitions(survivor) > 0);
  const takeoverMs = Date.now() - killedAt;
  await waitFor('the survivor to evaluate every window', async () => (await done(DBS.b)) || false);
  survivor.child.kill('SIGTERM');
  await survivor.exited;
  process.stdout.write(
    `# hand-over: leader killed with ${leftAtKill} of ${total} windows left; survivor leader after ${takeoverMs} ms\n`,
  );

  assert.deepEqual(await alertRows(DBS.b), expected.alerts, 'alerts: those of one detector, once each');
  assert.deepEqual(await transitionRows(DBS.b), expected.transitions, 'transitions: those of one detector');
  assert.ok(
    (await alertRows(DBS.b)).every((r) => r.endsWith(' x1')),
    'no alert row twice',
  );
  const [msgsA, msgsB] = [await topicMessages(TOPICS.alertsA), await topicMessages(TOPICS.alertsB)];
  assert.ok(msgsA.length >= expected.alerts.length, 'run A published its alerts');
  assert.deepEqual(msgsB, msgsA, 'alert messages on Kafka: those of one detector, once each');
});
