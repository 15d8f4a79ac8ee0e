import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { Admin, Producer } from 'kafkajs';
import { sql, type ClickHouse } from '@mcp-audit/clickhouse';
import {
  REPO_ROOT,
  countBySource,
  createTestTopics,
  ingesterEnv,
  makeEvent,
  produceEvents,
  rng,
  startService,
  suffix,
  waitFor,
  waitForStored,
  useStackClients,
  listeningPort,
} from '../lib/index.js';

// These tests stop and restart the shared local ClickHouse and Kafka, so the runner executes test
// files one at a time (scripts/run-tests.mjs uses --test-concurrency=1).
let admin: Admin;
let producer: Producer;
let ch: ClickHouse;
useStackClients((c) => ({ admin, producer, ch } = c));

function stack(...args: string[]) {
  execFileSync('bash', [`${REPO_ROOT}deploy/local/stack.sh`, ...args], { stdio: 'inherit' });
}

function genEvents(n: number, sourceId: string, seed: number) {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) =>
    makeEvent(r, i, { sourceId, clientPrefix: `c-${sourceId}`, clients: 50 }),
  );
}

test('kill -9 of the ingester mid-run, then restart: nothing lost, no duplicate visible', async () => {
  const tag = `kill9-${suffix()}`;
  const topics = await createTestTopics(admin, 'kill9');
  const events = genEvents(30_000, tag, 1);
  await produceEvents(producer, topics.events, events);
  const group = `e2e-ingester-${suffix()}`;
  // Small, frequent inserts so the kill lands between committed and uncommitted work.
  const extra = { MCP_AUDIT_INGESTER_BATCH_ROWS: '2000', MCP_AUDIT_INGESTER_FLUSH_MS: '200' };
  const first = startService('ingester', ingesterEnv(topics, group, extra), tag);
  await waitFor(async () => (await countBySource(ch, tag)).distinct >= 5_000, {
    timeoutMs: 120_000,
    what: 'first rows',
  });
  await first.kill9();
  const before = await countBySource(ch, tag);
  assert.ok(before.distinct < events.length, `killed mid-run (had ${before.distinct})`);
  const second = startService('ingester', ingesterEnv(topics, group, extra), tag);
  try {
    const c = await waitForStored(ch, tag, events.length);
    assert.equal(c.distinct, events.length, 'every event stored');
    assert.equal(c.visible, events.length, 'no duplicate visible to analysts (FINAL)');
    const ids = new Set(events.map((e) => e.event_id as string));
    const rows = await ch.query<{ id: string }>(
      sql`SELECT toString(event_id) AS id FROM mcp_audit.events FINAL WHERE source_id = ${tag}`,
    );
    assert.equal(rows.length, ids.size);
    for (const r of rows) assert.ok(ids.has(r.id), `unexpected id ${r.id}`);
    console.log(
      `kill -9: ${before.distinct} stored before the kill, ${c.physical - c.distinct} physical duplicates (hidden)`,
    );
  } finally {
    assert.equal(await second.stop(), 0, 'graceful exit on SIGTERM');
  }
});

test('SIGTERM mid-run: /health and /metrics while running, exit 0 within the deadline, restart adds no duplicate', async () => {
  const tag = `sigterm-${suffix()}`;
  const topics = await createTestTopics(admin, 'sigterm');
  const events = genEvents(40_000, tag, 3);
  await produceEvents(producer, topics.events, events);
  const group = `e2e-ingester-${suffix()}`;
  const extra = {
    MCP_AUDIT_INGESTER_BATCH_ROWS: '2000',
    MCP_AUDIT_INGESTER_FLUSH_MS: '200',
    MCP_AUDIT_INGESTER_PORT: '0',
    MCP_AUDIT_INGESTER_SHUTDOWN_MS: '20000',
  };
  const first = startService('ingester', ingesterEnv(topics, group, extra), tag);
  // NOTE: a failed assertion must not leave the child running (the runner would wait for it forever).
  const guard = setTimeout(() => void first.kill9(), 170_000);
  guard.unref();
  let ms = 0;
  try {
    const port = await listeningPort(first, 'ops');
    await waitFor(async () => (await countBySource(ch, tag)).distinct >= 5_000, {
      timeoutMs: 120_000,
      what: 'first rows',
    });
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(health.status, 200, 'healthy while consuming');
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const name of [
      'mcp_audit_ingester_consumed_total',
      'mcp_audit_ingester_written_total',
      'mcp_audit_ingester_dead_lettered_total',
      'mcp_audit_ingester_insert_rows',
      'mcp_audit_ingester_insert_seconds',
      'mcp_audit_ingester_lag_messages',
    ])
      assert.match(metrics, new RegExp(`^# TYPE ${name} `, 'm'), `/metrics exposes ${name}`);
    const written = Number(/^mcp_audit_ingester_written_total(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1] ?? 0);
    assert.ok(written >= 5_000, `written_total counts stored rows (${written})`);

    const t0 = Date.now();
    const code = await first.stop();
    ms = Date.now() - t0;
    assert.equal(code, 0, 'graceful exit on SIGTERM');
    assert.ok(ms < 20_000, `exited within its deadline (${ms} ms)`);
  } catch (err) {
    await first.kill9();
    throw err;
  } finally {
    clearTimeout(guard);
  }
  const atStop = await countBySource(ch, tag);
  assert.ok(atStop.distinct < events.length, `stopped mid-run (had ${atStop.distinct})`);

  const second = startService(
    'ingester',
    ingesterEnv(topics, group, { ...extra, MCP_AUDIT_INGESTER_PORT: '0' }),
    tag,
  );
  try {
    const c = await waitForStored(ch, tag, events.length);
    assert.equal(c.distinct, events.length, 'every event stored');
    // What the first instance held was flushed and committed before it exited: nothing redelivered.
    assert.equal(c.physical, events.length, 'no physical duplicate after a graceful stop');
    console.log(`SIGTERM: exited in ${ms} ms with ${atStop.distinct} stored; 0 duplicates after restart`);
  } finally {
    assert.equal(await second.stop(), 0);
  }
});

test('ClickHouse stopped for 30 s during ingestion: nothing lost, ingester never exits', async () => {
  const tag = `chdown-${suffix()}`;
  const topics = await createTestTopics(admin, 'chdown');
  const events = genEvents(20_000, tag, 2);
  const group = `e2e-ingester-${suffix()}`;
  const ing = startService('ingester', ingesterEnv(topics, group), tag);
  try {
    await produceEvents(producer, topics.events, events.slice(0, 5_000));
    await waitForStored(ch, tag, 5_000);
    stack('down', 'clickhouse');
    const outageStart = Date.now();
    try {
      await produceEvents(producer, topics.events, events.slice(5_000));
      // The outage length is the scenario itself, not a wait for a condition.
      await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - outageStart))));
      assert.ok(ing.isRunning(), 'ingester still running while ClickHouse is down');
    } finally {
      stack('up', 'clickhouse');
    }
    const c = await waitForStored(ch, tag, events.length);
    assert.equal(c.visible, events.length);
    assert.ok(ing.isRunning(), 'ingester never exited');
  } finally {
    assert.equal(await ing.stop(), 0);
  }
});

test('Kafka broker restarted during ingestion: nothing lost', async () => {
  const tag = `kafkarestart-${suffix()}`;
  const topics = await createTestTopics(admin, 'kafkarestart');
  const events = genEvents(20_000, tag, 3);
  const group = `e2e-ingester-${suffix()}`;
  const ing = startService('ingester', ingesterEnv(topics, group), tag);
  try {
    await produceEvents(producer, topics.events, events.slice(0, 10_000));
    await waitFor(async () => (await countBySource(ch, tag)).distinct >= 2_000, {
      timeoutMs: 120_000,
      what: 'first rows',
    });
    stack('down', 'kafka');
    stack('up', 'kafka');
    // Our own producer reconnects by itself; kafkajs retries the send.
    await waitFor(
      async () => {
        await produceEvents(producer, topics.events, events.slice(10_000));
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, what: 'producing after the restart' },
    );
    const c = await waitForStored(ch, tag, events.length);
    assert.equal(c.visible, events.length);
    assert.ok(ing.isRunning(), 'ingester survived the broker restart');
  } finally {
    assert.equal(await ing.stop(), 0);
  }
});
