import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { createBatchConsumer, type BatchContext, type ConsumedMessage, type Kafka } from '@mcp-audit/kafka';
import { createLogger, createRegistry } from '@mcp-audit/service-kit';
import type { AlertMessage } from '@mcp-audit/schema';
import { createAlertsHandler } from '../src/alerts.consumer.js';
import { parseRoutes } from '../src/alerts.router.js';
import { allowList, ipv6Bytes, refuseAddress } from '../src/address.policy.js';
import { TokenBucket } from '../src/backoff.js';
import { DeliveryEngine, type DeliveryRow } from '../src/delivery.engine.js';
import {
  buildDestinations,
  deliver,
  type DeliveryJob,
  type Destination,
  type SendOutcome,
} from '../src/destinations.js';
import { postJson } from '../src/http.sender.js';
import { createNotifierMetrics } from '../src/metrics.js';
import { parseParked, type Outbox, type OutboxRow, type PendingJob } from '../src/outbox.js';
import { sampleAlert } from './fixtures.js';

const log = createLogger('test', { level: 'silent' });
const metrics = () => createNotifierMetrics(createRegistry('t', { defaultMetrics: false }));
const TOPIC = 'alerts';

let n = 0;
const alert = (): AlertMessage => sampleAlert(++n, {}, '0190b000');

const until = async (f: () => boolean, what = 'condition', ms = 5_000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** A destination whose behaviour the test switches: ok, failing (retryable) or hanging. */
function switchable(
  id: string,
  mode: { now: 'ok' | 'fail' | 'hang' },
  rate = { per: 10_000, burst: 10_000 },
) {
  const sent: string[] = [];
  const release: Array<() => void> = [];
  const d: Destination = {
    id,
    kind: 'webhook',
    folds: false,
    bucket: new TokenBucket(rate.per, rate.burst),
    async send(jobs): Promise<SendOutcome> {
      if (mode.now === 'hang') await new Promise<void>((r) => release.push(r));
      if (mode.now === 'fail') return { count: 1, ok: false, retryable: true, httpStatus: 500, latencyMs: 1 };
      sent.push(jobs[0]!.jobId);
      return { count: 1, ok: true, retryable: false, httpStatus: 200, latencyMs: 1 };
    },
  };
  return { d, sent, release: () => release.splice(0).forEach((r) => r()) };
}

/** The outbox in memory, with the same contract as the ClickHouse one. */
function memoryOutbox(rows: DeliveryRow[]) {
  const parkedRows: OutboxRow[] = [];
  const calls = { park: 0, pending: 0 };
  let failParks = 0;
  const outbox: Outbox = {
    async park(r) {
      calls.park++;
      if (failParks > 0) {
        failParks--;
        throw new Error('ClickHouse unavailable');
      }
      parkedRows.push(...r);
    },
    async parked(_g, ids) {
      return new Set(parkedRows.filter((r) => ids.includes(r.job_id)).map((r) => r.job_id));
    },
    async pending(q) {
      calls.pending++;
      const final = new Set(rows.filter((r) => r.final === 1).map((r) => r.job_id));
      return parkedRows
        .filter(
          (r) =>
            r.topic === q.topic &&
            r.destination_id === q.destinationId &&
            !final.has(r.job_id) &&
            q.from.some(
              (c) =>
                c.partition === r.kafka_partition &&
                (BigInt(r.kafka_offset) > c.offset ||
                  (BigInt(r.kafka_offset) === c.offset && r.seq >= c.seq)),
            ),
        )
        .sort(
          (a, b) =>
            a.kafka_partition - b.kafka_partition ||
            Number(BigInt(a.kafka_offset) - BigInt(b.kafka_offset)) ||
            a.seq - b.seq,
        )
        .slice(0, q.limit)
        .map((r): PendingJob => {
          const source = { partition: r.kafka_partition, offset: r.kafka_offset, seq: r.seq };
          const ids = { jobId: r.job_id, messageId: r.message_id, destinationId: r.destination_id };
          const m = parseParked(r.message);
          return m.ok
            ? { ...ids, message: m.message, attempts: 0, source }
            : { unreadable: true, ...ids, dedupKey: r.dedup_key, raw: r.message, reason: m.reason, source };
        });
    },
    async orphans() {
      return [];
    },
  };
  return {
    outbox,
    parkedRows,
    calls,
    failNextParks: (k: number) => void (failParks = k),
  };
}

function harness(dests: Destination[], maxPending: number) {
  const rows: DeliveryRow[] = [];
  const mem = memoryOutbox(rows);
  const m = metrics();
  const destinations = new Map(dests.map((d) => [d.id, d]));
  const engine = new DeliveryEngine(
    { groupId: 'g', topic: TOPIC, maxAttempts: 1_000, backoffBaseMs: 5, backoffMaxMs: 20, maxPending },
    {
      destinations,
      record: (r) => rows.push(...r),
      deadLetterUnreadable: async () => undefined,
      deadLetter: async () => undefined,
      outbox: mem.outbox,
      log,
      metrics: m,
    },
  );
  const routes = parseRoutes({
    destinations: dests.map((d) => ({ id: d.id, kind: 'webhook', url: { env: 'U' }, secret: { env: 'S' } })),
    rules: [{ name: 'all', destinations: dests.map((d) => d.id) }],
  });
  const handler = createAlertsHandler({
    groupId: 'g',
    dlqTopic: 'dlq',
    routes,
    destinations,
    outbox: mem.outbox,
    engine,
    producer: {
      connect: async () => undefined,
      send: async () => undefined,
      disconnect: async () => undefined,
      isConnected: () => true,
    },
    record: (r) => rows.push(...r),
    log,
    metrics: m,
  });
  return { engine, handler, rows, ...mem };
}

let offset = 0;
const messages = (partition: number, alerts: AlertMessage[]): ConsumedMessage[] =>
  alerts.map((a) => ({
    topic: TOPIC,
    partition,
    offset: String(offset++),
    key: Buffer.from(a.dedup_key),
    value: Buffer.from(JSON.stringify(a)),
    headers: {},
    timestamp: String(Date.now()),
  }));

function ctx(over: Partial<{ running: boolean }> = {}) {
  const state = { running: over.running ?? true, heartbeats: 0 };
  const c: BatchContext = {
    heartbeat: async () => void state.heartbeats++,
    isRunning: () => state.running,
    isStale: () => false,
    highWatermark: '0',
  };
  return { c, state };
}

const within = async <T>(ms: number, p: Promise<T>, what: string): Promise<T> => {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
};

test('capacity is per destination: a dead one holds back only itself, the handler never waits, and its jobs come back from the outbox in order', async () => {
  const deadMode = { now: 'fail' as 'ok' | 'fail' | 'hang' };
  const deadDest = switchable('dead', deadMode);
  const ok = switchable('ok', { now: 'ok' });
  // 10 in memory at most: 5 per destination.
  const h = harness([deadDest.d, ok.d], 10);
  h.engine.start();
  const alerts = Array.from({ length: 40 }, () => alert());
  const batches = [alerts.slice(0, 20), alerts.slice(20)].map((a) => messages(0, a));
  for (const b of batches) await within(1_000, h.handler(b, ctx().c), 'a batch with a full destination');
  assert.equal(h.parkedRows.length, 80, 'every job parked before the handler returned');
  await until(() => ok.sent.length === 40, 'the healthy destination to get all 40');
  const want = (dest: string) => alerts.map((a) => `${a.alert_id}:${dest}`);
  assert.deepEqual(ok.sent, want('ok'), 'in topic order');
  const held = h.engine.health().details.queues as Record<string, number>;
  assert.ok(held.dead! <= 5, `the dead destination holds at most its share in memory (${held.dead})`);
  deadMode.now = 'ok';
  await until(() => deadDest.sent.length >= 40, 'the dead destination to recover and get all 40');
  await h.engine.stop();
  assert.deepEqual(deadDest.sent, want('dead'), 'read back from the outbox in order, each once');
});

test('shutdown with every destination full: the handler has already returned, and a park that keeps failing gives up once the consumer stops', async () => {
  const stuck = switchable('stuck', { now: 'hang' });
  const h = harness([stuck.d], 10);
  h.engine.start();
  const first = ctx();
  await within(
    1_000,
    h.handler(
      messages(
        0,
        Array.from({ length: 30 }, () => alert()),
      ),
      first.c,
    ),
    'first batch',
  );
  await within(
    1_000,
    h.handler(
      messages(
        0,
        Array.from({ length: 30 }, () => alert()),
      ),
      first.c,
    ),
    'second batch',
  );
  assert.equal(h.parkedRows.length, 60);
  // ClickHouse goes away: the handler retries, heartbeating, until the consumer stops.
  h.failNextParks(1_000);
  const c = ctx();
  const batch = messages(0, [alert(), alert()]);
  const running = h.handler(batch, c.c);
  await until(() => h.calls.park >= 4, 'park retries');
  c.state.running = false;
  await assert.rejects(within(1_000, running, 'the handler to give up'), /ClickHouse unavailable/);
  assert.ok(c.state.heartbeats > 0, 'heartbeats while retrying');
  assert.equal(h.parkedRows.length, 60, 'nothing of the failed batch parked (its offsets are not resolved)');
  assert.equal(
    (h.engine.health().details.queues as Record<string, number>).stuck,
    10,
    'and nothing of it in memory',
  );
  stuck.release();
  await within(2_000, h.engine.stop(), 'engine stop');
});

test('parked jobs follow partitions: loaded on assignment, dropped on revocation, redelivered messages not sent twice', async () => {
  const mode = { now: 'hang' as 'ok' | 'fail' | 'hang' };
  const w = switchable('w', mode);
  const h = harness([w.d], 100);
  // Another instance parked these before it went away: 3 partitions, 4 alerts each.
  const byPartition = [0, 1, 2].map(() => Array.from({ length: 4 }, () => alert()));
  const parkedBy = harness([switchable('w', { now: 'ok' }).d], 100);
  for (const [p, alerts] of byPartition.entries()) await parkedBy.handler(messages(p, alerts), ctx().c);
  h.parkedRows.push(...parkedBy.parkedRows);
  h.engine.start();
  h.engine.assign([0, 2]);
  await until(() => h.engine.pending === 8, 'partitions 0 and 2 loaded');
  // Partition 0 moves to another instance: its queued jobs leave memory (the head is in flight).
  h.engine.assign([2]);
  assert.equal(h.engine.pending, 5, 'partition 0 dropped except the request in flight');
  // The in-flight job fails after the revocation: it is not retried here.
  mode.now = 'fail';
  w.release();
  await until(() => h.engine.pending === 4, 'the revoked in-flight job dropped');
  mode.now = 'ok';
  await until(() => w.sent.length === 4, 'partition 2 delivered');
  const ids = (alerts: AlertMessage[]) => alerts.map((a) => `${a.alert_id}:w`);
  assert.deepEqual(w.sent, ids(byPartition[2]!));
  // A redelivered message of partition 2 (already parked, already delivered) is not sent again;
  // a message of a partition this instance does not hold is parked and left to its owner.
  await h.handler(messages(2, byPartition[2]!.slice(0, 2)), ctx().c);
  const foreign = messages(0, [alert()]);
  await h.handler(foreign, ctx().c);
  h.engine.assign([1, 2]);
  await until(() => w.sent.length === 8, 'partition 1 loaded and delivered');
  await h.engine.stop();
  assert.deepEqual(w.sent, [...ids(byPartition[2]!), ...ids(byPartition[1]!)], 'each once, in order');
  assert.equal(h.parkedRows.filter((r) => r.kafka_partition === 0).length, 5, 'partition 0 stays parked');
});

test('the batch consumer reports GROUP_JOIN partitions of its topic, and crash/stop as leaving', () => {
  const consumers: EventEmitter[] = [];
  const fake = {
    consumer: () => {
      const e = new EventEmitter();
      const c = Object.assign(e, {
        events: { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash', STOP: 'consumer.stop' },
      });
      consumers.push(c);
      return c;
    },
  } as unknown as Kafka;
  const seen: string[] = [];
  createBatchConsumer({
    kafka: fake,
    groupId: 'g',
    topic: TOPIC,
    handler: async () => undefined,
    log: createLogger('assignments-test', { level: 'silent' }),
    assignments: {
      joined: (p, m) => seen.push(`join ${m} ${p.join(',')}`),
      left: (r) => seen.push(`left ${r}`),
    },
  });
  consumers[0]!.emit('consumer.group_join', {
    payload: { memberId: 'm1', memberAssignment: { [TOPIC]: [2, 0], other: [1] } },
  });
  consumers[0]!.emit('consumer.crash', { payload: { error: new Error('x'), restart: true } });
  consumers[0]!.emit('consumer.group_join', { payload: { memberId: 'm2', memberAssignment: {} } });
  consumers[0]!.emit('consumer.stop', {});
  assert.deepEqual(seen, ['join m1 2,0', 'left crash', 'join m2 ', 'left stop']);
});

test('address policy: IPv4-compatible (::/96) and 6to4 wrapping private IPv4 refused unless allowlisted', () => {
  const none = allowList([]);
  assert.deepEqual(ipv6Bytes('::127.0.0.1')?.slice(12), [127, 0, 0, 1]);
  assert.deepEqual(ipv6Bytes('2002:a00:1::1')?.slice(0, 6), [0x20, 0x02, 10, 0, 0, 1]);
  for (const ip of [
    '::127.0.0.1',
    '::7f00:1', // [::127.0.0.1] as a parsed URL spells it
    '::a9fe:a9fe', // ::169.254.169.254
    '::8.8.8.8', // deprecated ::/96 is refused whatever it wraps
    '::ffff:7f00:1',
    '2002:7f00:1::', // 6to4 of 127.0.0.1
    '2002:a00:1::1', // 6to4 of 10.0.0.1
    '2002:a9fe:a9fe::1', // 6to4 of the metadata address
    '2002:c0a8:101:0:0:0:0:1', // 6to4 of 192.168.1.1
    'fe80::1%eth0',
  ])
    assert.ok(refuseAddress(ip, none), `${ip} refused`);
  for (const ip of ['2002:808:808::1', '2606:4700::1111', '::ffff:8.8.8.8'])
    assert.equal(refuseAddress(ip, none), undefined, `${ip} allowed`);
  assert.equal(refuseAddress('::7f00:1', allowList(['127.0.0.1/32'])), undefined, 'allowlisted as IPv4');
  assert.equal(refuseAddress('2002:7f00:1::', allowList(['2002::/16'])), undefined, 'allowlisted as IPv6');
  assert.ok(refuseAddress('2002:7f00:2::', allowList(['127.0.0.1/32'])));
  assert.ok(!/127|7f00/.test(refuseAddress('::7f00:1', none)!), 'the reason never names the address');
  assert.equal(
    new URL('http://[::127.0.0.1]:1/').hostname,
    '[::7f00:1]',
    'why bytes, not dotted text, are checked',
  );
});

test('PagerDuty: one token bucket per routing key, shared by destinations with that key, at the strictest rate', () => {
  const pd = (id: string, key: string, rate?: { per_second: number; burst: number }) => ({
    id,
    kind: 'pagerduty',
    routing_key: { env: key },
    ...(rate ? { rate } : {}),
  });
  const routes = parseRoutes({
    destinations: [
      pd('pd-a', 'KEY_A', { per_second: 5, burst: 10 }),
      pd('pd-a2', 'KEY_A_AGAIN', { per_second: 2, burst: 4 }),
      pd('pd-b', 'KEY_B'),
      { id: 'hook', kind: 'webhook', url: { env: 'HOOK' }, secret: { env: 'KEY_A' } },
    ],
    rules: [{ name: 'all', destinations: ['pd-a', 'pd-a2', 'pd-b', 'hook'] }],
  });
  const d = buildDestinations(routes, {
    postJson: async () => ({ status: 202, headers: {}, body: '', latencyMs: 1 }),
    consoleUrl: 'https://c',
    timeoutMs: 1_000,
    env: { KEY_A: 'R-same', KEY_A_AGAIN: 'R-same', KEY_B: 'R-other', HOOK: 'https://h.example/x' },
    readFile: () => '',
  });
  const bucket = (id: string) => d.get(id)!.bucket;
  assert.equal(bucket('pd-a'), bucket('pd-a2'), 'same routing key, same bucket');
  assert.notEqual(bucket('pd-a'), bucket('pd-b'));
  assert.notEqual(bucket('hook'), bucket('pd-a'));
  assert.deepEqual([bucket('pd-a').perSecond, bucket('pd-a').burst], [2, 4], 'the strictest rate');
  assert.deepEqual([bucket('pd-b').perSecond, bucket('pd-b').burst], [2, 10], 'the default');
});

test('PagerDuty: two destinations with one routing key together stay within its burst', async () => {
  let sends = 0;
  const routes = parseRoutes({
    destinations: ['pd-a', 'pd-b'].map((id) => ({
      id,
      kind: 'pagerduty',
      routing_key: { env: 'KEY' },
      rate: { per_second: 0.001, burst: 3 },
    })),
    rules: [{ name: 'all', destinations: ['pd-a', 'pd-b'] }],
  });
  const dests = buildDestinations(routes, {
    postJson: async () => {
      sends++;
      return { status: 202, headers: {}, body: '', latencyMs: 1 };
    },
    consoleUrl: 'https://c',
    timeoutMs: 1_000,
    env: { KEY: 'R-shared' },
    readFile: () => '',
  });
  const h = harness([...dests.values()], 100);
  h.engine.enqueue(
    ['pd-a', 'pd-b'].flatMap((id) =>
      Array.from({ length: 5 }, (): DeliveryJob => {
        const a = alert();
        return {
          jobId: `${a.alert_id}:${id}`,
          messageId: a.alert_id,
          destinationId: id,
          message: a,
          attempts: 0,
        };
      }),
    ),
  );
  h.engine.start();
  await until(() => sends >= 3, 'the burst');
  await new Promise((r) => setTimeout(r, 100)); // a margin in which an over-send would show
  await h.engine.stop();
  assert.equal(sends, 3, 'ten queued across both, three sent: the burst of their one key');
});

async function listen(
  handler: Parameters<typeof createServer>[1],
): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

test('error strings never carry the URL, host, path, secret or response body: DNS failure, refused, timeout, 500 with body', async () => {
  const secret = 'T0KEN-s3cr3t-path-9f8e7d';
  const allowed = allowList(['127.0.0.1/32']);
  const hung = new Set<import('node:http').ServerResponse>();
  const echo = await listen((req, res) => {
    if (req.url?.startsWith('/hang')) return void hung.add(res);
    res.writeHead(500).end(`upstream failed for http://${req.headers.host}${req.url} token=${secret}`);
  });
  const closed = await listen(() => undefined);
  await new Promise<void>((r) => closed.server.close(() => r()));
  const cases = {
    dns: new URL(`https://hooks-${secret.toLowerCase()}.invalid/services/${secret}`),
    refused: new URL(`http://127.0.0.1:${closed.port}/services/${secret}`),
    timeout: new URL(`http://127.0.0.1:${echo.port}/hang/${secret}`),
    server500: new URL(`http://127.0.0.1:${echo.port}/services/${secret}?key=${secret}`),
    policy: new URL(`http://10.0.0.7:8443/services/${secret}`),
  };
  const errors: Record<string, string> = {};
  try {
    for (const [name, url] of Object.entries(cases)) {
      const r = await deliver(
        () => postJson(url, '{}', { timeoutMs: name === 'dns' ? 5_000 : 300, allowed }),
        1,
      );
      assert.equal(r.ok, false);
      errors[name] = r.error ?? '';
    }
  } finally {
    for (const res of hung) res.destroy();
    echo.server.closeAllConnections();
    await new Promise<void>((r) => echo.server.close(() => r()));
  }
  assert.match(errors.dns!, /^(ENOTFOUND|EAI_AGAIN|EAI_FAIL|EAI_NODATA): DNS lookup/);
  assert.equal(errors.refused, 'ECONNREFUSED: connection refused');
  assert.equal(errors.timeout, 'AUDIT_ERR_DELIVERY_TIMEOUT: timed out after 300 ms');
  assert.equal(errors.server500, 'HTTP 500 Internal Server Error');
  assert.match(errors.policy!, /^AUDIT_ERR_DESTINATION_REFUSED: /);
  for (const [name, e] of Object.entries(errors)) {
    const url = cases[name as keyof typeof cases];
    for (const bad of [
      secret,
      secret.toLowerCase(),
      url.hostname,
      url.host,
      url.pathname,
      'invalid',
      '10.0.0.7',
    ])
      assert.ok(!e.includes(bad), `${name}: "${e}" contains ${bad}`);
    assert.ok(!e.includes(String(closed.port)) && !e.includes(String(echo.port)), `${name}: no port`);
  }
});
