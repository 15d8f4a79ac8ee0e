import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClickHouse } from '@mcp-audit/clickhouse';
import { createLogger, createRegistry } from '@mcp-audit/service-kit';
import type { AlertMessage } from '@mcp-audit/schema';
import { unreadableDeadLetter } from '../src/app.js';
import { TokenBucket } from '../src/backoff.js';
import { DeliveriesWriter } from '../src/deliveries.writer.js';
import { DeliveryEngine, type DeliveryRow } from '../src/delivery.engine.js';
import type { DeliveryJob, Destination } from '../src/destinations.js';
import { createNotifierMetrics } from '../src/metrics.js';
import { clickHouseOutbox, type UnreadableJob } from '../src/outbox.js';
import { sampleAlert } from './fixtures.js';

/** A logger whose lines the test reads. */
function capturingLog() {
  const lines: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  const log = createLogger('test', {
    level: 'debug',
    destination: { write: (s: string) => void lines.push(JSON.parse(s)) },
  });
  return { log, lines, said: (msg: RegExp) => lines.some((l) => msg.test(l.msg)) };
}

let n = 0;
const alert = (): AlertMessage => sampleAlert(++n, {}, '0190c000');

function okDestination(id: string) {
  const sent: string[] = [];
  const d: Destination = {
    id,
    kind: 'webhook',
    folds: false,
    bucket: new TokenBucket(10_000, 10_000),
    async send(jobs) {
      sent.push(jobs[0]!.jobId);
      return { count: 1, ok: true, retryable: false, httpStatus: 200, latencyMs: 1 };
    },
  };
  return { d, sent };
}

const until = async (f: () => boolean, what: string, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

const gauge = async (m: ReturnType<typeof createNotifierMetrics>, k: 'recordPaused' | 'recordRowsBuffered') =>
  (await m[k].get()).values[0]?.value;

test('ClickHouse away for long: attempt rows are never dropped; delivery pauses over the bound and resumes as they drain', async () => {
  const { log, said } = capturingLog();
  const m = createNotifierMetrics(createRegistry('t', { defaultMetrics: false }));
  const ch = { up: false, inserts: 0 };
  const stored: DeliveryRow[] = [];
  const writer = new DeliveriesWriter({
    insert: async (rows) => {
      ch.inserts++;
      if (!ch.up) throw new Error('ClickHouse unavailable');
      stored.push(...rows);
    },
    log,
    flushMs: 5,
    maxBuffered: 10,
    onBuffered: (k) => m.recordRowsBuffered.set(k),
    onPaused: (p) => m.recordPaused.set(p ? 1 : 0),
  });
  const dest = okDestination('w');
  const engine = new DeliveryEngine(
    { groupId: 'g', topic: 't', maxAttempts: 5, backoffBaseMs: 1, backoffMaxMs: 5, maxPending: 1_000 },
    {
      destinations: new Map([[dest.d.id, dest.d]]),
      record: (rows) => writer.add(rows),
      recordPaused: () => writer.paused(),
      deadLetter: async () => undefined,
      deadLetterUnreadable: async () => undefined,
      log,
      metrics: m,
    },
  );
  const jobs: DeliveryJob[] = Array.from({ length: 50 }, () => {
    const a = alert();
    return { jobId: `${a.alert_id}:w`, messageId: a.alert_id, destinationId: 'w', message: a, attempts: 0 };
  });
  engine.enqueue(jobs);
  engine.start();

  await until(() => writer.paused() !== undefined, 'backpressure');
  const sentWhilePaused = dest.sent.length;
  await until(() => ch.inserts >= 3, 'a few failed inserts while paused');
  assert.equal(
    dest.sent.length,
    sentWhilePaused,
    'no new attempt starts while the rows are over their bound',
  );
  assert.ok(sentWhilePaused <= 11, `bounded: the bound plus the attempt in flight (${sentWhilePaused})`);
  assert.equal(writer.buffered, sentWhilePaused, 'every row of every attempt still held, none dropped');
  assert.equal(await gauge(m, 'recordPaused'), 1);
  assert.equal(await gauge(m, 'recordRowsBuffered'), sentWhilePaused);
  assert.ok(said(/new delivery attempts paused/), 'a log line when backpressure starts');

  ch.up = true;
  await until(() => engine.pending === 0 && writer.buffered === 0, 'all delivered and written');
  await engine.stop();
  await writer.stop();
  assert.deepEqual(
    dest.sent,
    jobs.map((j) => j.jobId),
    'all delivered, in order, each once',
  );
  assert.deepEqual(
    stored.filter((r) => r.final === 1).map((r) => `${r.job_id}:${r.status}`),
    jobs.map((j) => `${j.jobId}:delivered`),
    'a final row for every job, the oldest included',
  );
  assert.equal(await gauge(m, 'recordPaused'), 0);
  assert.ok(said(/delivery attempts resumed/), 'a log line when backpressure ends');
});

test('a parked job whose message no longer parses is dead-lettered with its reason and a final row; the next job is delivered', async () => {
  const { log, said } = capturingLog();
  const m = createNotifierMetrics(createRegistry('t', { defaultMetrics: false }));
  const alerts = [alert(), alert(), alert(), alert()];
  const stored = alerts.map((a) => JSON.stringify(a));
  stored[1] = '{"schema_version":0,"type":"alert","alert_id":"old"}'; // an older version's message
  stored[2] = '{"schema_version":1,"type":"al'; // cut short
  const rows = alerts.map((a, i) => ({
    job_id: `${a.alert_id}:w`,
    message_id: a.alert_id,
    dedup_key: a.dedup_key,
    destination_id: 'w',
    kafka_partition: 0,
    kafka_offset: String(i),
    seq: 0,
    message: stored[i]!,
  }));
  const recorded: DeliveryRow[] = [];
  // ClickHouse as the outbox reads it: the parked rows without a final row (the SQL is not evaluated).
  const ch = {
    database: 'mcp_audit',
    query: async () => {
      const done = new Set(recorded.filter((r) => r.final === 1).map((r) => r.job_id));
      return rows.filter((r) => !done.has(r.job_id));
    },
  } as unknown as ClickHouse;
  const dlq: UnreadableJob[] = [];
  let dlqFailures = 1;
  const dest = okDestination('w');
  const engine = new DeliveryEngine(
    { groupId: 'g', topic: 't', maxAttempts: 5, backoffBaseMs: 1, backoffMaxMs: 5, maxPending: 100 },
    {
      destinations: new Map([[dest.d.id, dest.d]]),
      record: (r) => void recorded.push(...r),
      deadLetter: async () => undefined,
      deadLetterUnreadable: async (j) => {
        if (dlqFailures-- > 0) throw new Error('Kafka unavailable');
        dlq.push(j);
      },
      outbox: clickHouseOutbox(ch),
      log,
      metrics: m,
    },
  );
  engine.start();
  engine.assign([0]);
  await until(
    () => dest.sent.length === 2 && dlq.length === 2,
    'the readable jobs delivered, the others dead-lettered',
  );
  await engine.stop();

  assert.deepEqual(dest.sent, [rows[0]!.job_id, rows[3]!.job_id]);
  assert.deepEqual(
    dlq.map((j) => [j.jobId, j.raw]),
    [1, 2].map((i) => [rows[i]!.job_id, stored[i]]),
    'kept as stored',
  );
  assert.match(dlq[0]!.reason, /schema_version/);
  assert.equal(dlq[1]!.reason, 'not JSON');
  const finals = recorded.filter((r) => r.final === 1).map((r) => `${r.job_id}:${r.status}`);
  assert.deepEqual(
    finals.sort(),
    rows.map((r, i) => `${r.job_id}:${i === 1 || i === 2 ? 'dead_lettered' : 'delivered'}`).sort(),
  );
  const dead = recorded.find((r) => r.job_id === rows[2]!.job_id)!;
  assert.equal(dead.dedup_key, alerts[2]!.dedup_key);
  assert.match(dead.error, /unreadable parked message: not JSON/);
  assert.equal((await m.unreadable.get()).values.find((v) => v.labels.destination === 'w')?.value, 2);
  assert.ok(said(/no longer parses: dead-lettered/), 'an error logged');

  const msg = unreadableDeadLetter(dlq[1]!, 'mcp.audit.alerts.v1', new Date(0));
  assert.equal(msg.value, stored[2]);
  assert.equal(msg.key, alerts[2]!.dedup_key);
  assert.deepEqual(msg.headers, {
    'mcp-audit-dlq-code': 'AUDIT_ERR_UNREADABLE_PARKED',
    'mcp-audit-dlq-reason': 'not JSON',
    'mcp-audit-destination-id': 'w',
    'mcp-audit-job-id': rows[2]!.job_id,
    'mcp-audit-source-topic': 'mcp.audit.alerts.v1',
    'mcp-audit-source-partition': '0',
    'mcp-audit-source-offset': '2',
    'mcp-audit-dlq-at': '1970-01-01T00:00:00.000Z',
  });
});
