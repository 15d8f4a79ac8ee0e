import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClickHouse, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import {
  createTestTopics,
  ingesterEnv,
  makeEvent,
  need,
  produceEvents,
  rng,
  startService,
  suffix,
  useStackClients,
  waitFor,
  env as stack,
} from '../lib/index.js';
import { startApi, writeApiKeys } from '../lib/browser.js';
import {
  clickhouseCluster,
  clusterNodeClients,
  clusterNodePid,
  startClickHouseCluster,
} from '../lib/cluster.js';
import {
  Lifecycle,
  createPeriodicRunner,
  memorySink,
  parseDetectorConfig,
  secretInArgsDetector,
} from '@mcp-audit/detector';
import { createLogger } from '@mcp-audit/service-kit';
import type { Admin, Producer } from 'kafkajs';

// The ClickHouse cluster profile (test/lib/cluster.ts: ZooKeeper + ch1, ch2 = shard 1, ch3 = shard 2)
// beside the tests' own stack, on ports of its own; Kafka is the tests' broker.
let admin: Admin;
let producer: Producer;
useStackClients((c) => ({ admin, producer } = c));

let serviceUrl = '';
let nodes: ClickHouse[] = [];
let analyst: ClickHouse;

before(async () => {
  const c = startClickHouseCluster();
  serviceUrl = c.serviceUrl;
  nodes = clusterNodeClients(c);
  analyst = createClickHouse({
    url: serviceUrl,
    username: need(stack, 'MCP_AUDIT_CLICKHOUSE_ANALYST_USER'),
    password: need(stack, 'MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD'),
    database: 'mcp_audit',
  });
});

after(async () => {
  await Promise.all([...nodes, analyst].map((c) => c?.close()));
});

/** Rows of `source` in one node's local events table (that node's copy of its shard). */
async function localCount(node: number, source: string): Promise<number> {
  const [r] = await nodes[node]!.query<{ n: string }>(
    sql`SELECT count() AS n FROM mcp_audit.events_local WHERE source_id = ${source}`,
  );
  return Number(r?.n ?? 0);
}

/** Distinct event ids of `source` through the Distributed table, as the analyst reads them. */
async function distinctStored(source: string): Promise<number> {
  const [r] = await analyst.query<{ n: string }>(
    sql`SELECT uniqExact(event_id) AS n FROM mcp_audit.events WHERE source_id = ${source}`,
  );
  return Number(r?.n ?? 0);
}

/** Calls of the test's clients in the hourly rollup, through the Distributed table. */
async function rollupCalls(tag: string): Promise<number> {
  const pattern = 'c-' + tag + '-%';
  const [h] = await analyst.query<{ calls: string }>(sql`
    SELECT sum(c) AS calls FROM (
      SELECT uniqExactMerge(calls) AS c FROM mcp_audit.events_hourly
      WHERE client_id LIKE ${pattern} GROUP BY client_id, hour)`);
  return Number(h?.calls ?? 0);
}

test('cluster: ingest through Distributed tables, kill -9 a replica of shard 1 mid-ingest: nothing lost, reads fail over, the replica catches up', async () => {
  const tag = `cluster-${suffix()}`;
  // NOTE: on a loaded machine the shared test broker sometimes answers a fresh topic's leader wait
  // with 'does not host this topic-partition'; new random names on the next try.
  const topics = await waitFor(() => createTestTopics(admin, 'cluster'), {
    timeoutMs: 30_000,
    intervalMs: 500,
  });
  const alerts = await waitFor(() => createTestTopics(admin, 'cluster-alerts', 1), {
    timeoutMs: 30_000,
    intervalMs: 500,
  });
  const r = rng(16);
  const events = Array.from({ length: 8_000 }, (_, i) =>
    makeEvent(r, i, { sourceId: tag, clientPrefix: `c-${tag}`, clients: 60 }),
  );
  // Two calls of one client passing the same credential, two hours back on a 5-minute boundary: the
  // periodic secret_in_args detector, reading through the Distributed table, must raise one alert.
  const t0 = Math.floor((Date.now() - 2 * 3_600_000) / 300_000) * 300_000;
  const token = `ghp_${suffix()}${suffix()}${suffix()}${suffix()}abcd`;
  for (const m of [1, 2]) {
    const e = makeEvent(r, 0, { sourceId: tag, clientPrefix: `c-${tag}-sec`, clients: 1 });
    events.push({ ...e, ts: new Date(t0 + m * 60_000).toISOString(), args: { note: `use ${token}` } });
  }
  // A first part before the ingester starts; the rest is produced while the test waits for rows and
  // kills ch1, paced, and its last 500 only after the kill: the kill lands mid-ingest however fast
  // the machine drains what it has (CI's drained all 8,002 before the kill when they were sent at once).
  const FIRST = 3_000;
  const LAST = 500;
  await produceEvents(producer, topics.events, events.slice(0, FIRST));
  let onKilled = () => {};
  const killed = new Promise<void>((resolve) => (onKilled = resolve));
  let startRest = () => {};
  const restStarted = new Promise<void>((resolve) => (startRest = resolve));
  const rest = (async () => {
    await restStarted;
    const paced = events.slice(FIRST, events.length - LAST);
    for (let i = 0; i < paced.length; i += 250) {
      await produceEvents(producer, topics.events, paced.slice(i, i + 250));
      await new Promise((r) => setTimeout(r, 50));
    }
    await killed;
    await produceEvents(producer, topics.events, events.slice(events.length - LAST));
  })();
  rest.catch(() => {});
  const group = `e2e-cluster-${suffix()}`;
  const ingester = startService(
    'ingester',
    ingesterEnv(topics, group, {
      MCP_AUDIT_CLICKHOUSE_URL: serviceUrl,
      // Small, frequent inserts so the kill lands while inserts are in flight.
      MCP_AUDIT_INGESTER_BATCH_ROWS: '400',
      MCP_AUDIT_INGESTER_FLUSH_MS: '200',
    }),
    tag,
  );
  const keys = writeApiKeys([{ id: 'cluster-analyst', scopes: ['analyst'] }]);
  const api = await startApi({
    keysFile: keys.file,
    alertsTopic: alerts.events,
    tag,
    extra: { MCP_AUDIT_CLICKHOUSE_URL: serviceUrl },
  });
  const ch1Pid = () => clusterNodePid('ch1');
  const guard = setTimeout(() => void ingester.kill9(), 170_000);
  guard.unref();
  try {
    await waitFor(async () => (await distinctStored(tag)) >= 1_500, {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: 'first rows through the Distributed table',
    });
    startRest();
    const pid = ch1Pid();
    process.kill(pid, 'SIGKILL');
    await waitFor(
      () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      { what: 'ch1 gone' },
    );
    const atKill = await distinctStored(tag);
    onKilled();
    assert.ok(atKill <= events.length - LAST, `killed mid-ingest (${atKill} of ${events.length} stored)`);
    await rest;

    // Reads keep answering with ch1 dead: shard 1 is read from ch2, nothing skipped.
    const sample = await nodes[1]!.query<{ id: string }>(
      sql`SELECT toString(event_id) AS id FROM mcp_audit.events_local WHERE source_id = ${tag} LIMIT 3`,
    );
    assert.equal(sample.length, 3, 'shard 1 holds some of the events');
    for (const { id } of sample) {
      const res = await fetch(`${api.base}/api/v1/events/${id}`, {
        headers: { authorization: `Bearer ${keys.keys['cluster-analyst']}` },
      });
      assert.equal(res.status, 200, `GET /api/v1/events/${id} with ch1 down: ${await res.clone().text()}`);
      assert.equal(((await res.json()) as { event: { event_id: string } }).event.event_id, id);
    }

    // Nothing lost: every id sent is stored once the ingester drained the topic through ch2 and ch3.
    const stored = await waitFor(
      async () => {
        const n = await distinctStored(tag);
        return n >= events.length ? n : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: `${events.length} events with ch1 down` },
    );
    assert.equal(stored, events.length, 'count by event_id = sent');
    const ids = new Set(events.map((e) => e.event_id as string));
    const rows = await analyst.query<{ id: string }>(
      sql`SELECT DISTINCT toString(event_id) AS id FROM mcp_audit.events WHERE source_id = ${tag}`,
    );
    assert.equal(rows.filter((x) => ids.has(x.id)).length, ids.size, 'the very ids sent');

    // Detection through the cluster with ch1 dead: the periodic detector's queries answer.
    const cfg = parseDetectorConfig({});
    const sink = memorySink();
    const log = createLogger('cluster-test', { level: 'silent' });
    const lifecycle = new Lifecycle({ sink, log, origin: 'replay', now: () => 0 });
    const runner = createPeriodicRunner({
      detectors: [secretInArgsDetector(analyst, cfg.periodic.secretInArgs)],
      lifecycle,
      watermark: async () => 0,
      lateMs: 0,
      log,
    });
    await runner.runRange(t0, t0 + 30 * 60_000);
    await lifecycle.flush();
    const raised = sink.messages.flatMap((m) =>
      m.type === 'alert' && m.client_id.startsWith(`c-${tag}-sec`) ? [m] : [],
    );
    assert.equal(
      raised.length,
      1,
      `one secret_in_args alert: ${JSON.stringify(raised.map((a) => a.dedup_key))}`,
    );
    assert.ok(!JSON.stringify(raised).includes(token), 'never the value');

    // Both shards hold data; shard 1's survivor plus shard 2 hold every event exactly once by id.
    const [s1, s2] = [await localCount(1, tag), await localCount(2, tag)];
    assert.ok(s1 > 0 && s2 > 0, `both shards written (${s1}, ${s2})`);
    // The rollup (a materialized view on each shard's local table) never counts an event twice; with
    // ch1 dead it may lack the parts ch1 had acknowledged and ch2 had not fetched yet (they are on
    // ch1's disk, not lost): checked whole after ch1 is back.
    const whileDown = await rollupCalls(tag);
    assert.ok(whileDown <= events.length, `events_hourly calls with ch1 down: ${whileDown}`);

    // ch1 back: it fetches what ch2 took while it was dead.
    clickhouseCluster('up');
    const caughtUp = await waitFor(
      async () => {
        const [a, b] = [await localCount(0, tag), await localCount(1, tag)];
        return a === b && a > 0 ? a : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: 'ch1 catching up with ch2' },
    );
    assert.equal(caughtUp, await localCount(1, tag));
    const rollup = await waitFor(
      async () => {
        const n = await rollupCalls(tag);
        return n === events.length ? n : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'events_hourly calls = sent with ch1 back' },
    );
    assert.equal(rollup, events.length);
    console.log(
      `cluster: ${atKill} of ${events.length} stored when ch1 was killed; shard 1 ${s1} rows, shard 2 ${s2} rows ` +
        `(physical, ${s1 + s2 - events.length} identical copies); ch1 caught up to ${caughtUp}; ` +
        `events_hourly calls ${whileDown} with ch1 down, ${rollup} after`,
    );
  } finally {
    clearTimeout(guard);
    if (!ingester.isRunning()) assert.fail(`the ingester exited; see ${ingester.logFile}`);
    assert.equal(await ingester.stop(), 0, 'ingester: graceful exit');
    await api.svc.stop();
    // Never leave the cluster with a dead node for the next run.
    clickhouseCluster('up');
    await admin
      .deleteTopics({ topics: [topics.events, topics.dlq, alerts.events, alerts.dlq] })
      .catch(() => {});
  }
});
