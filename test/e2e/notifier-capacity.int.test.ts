import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Admin, Producer } from 'kafkajs';
import type { ClickHouse } from '@mcp-audit/clickhouse';
import { startService, suffix, waitFor, useStackClients } from '../lib/index.js';
import {
  committedOffsets,
  createAlertTopics,
  makeAlert,
  notifierEnv,
  outboxRows,
  produceAlerts,
  startReceivers,
  writeRoutes,
  ROUTING_KEY,
  WEBHOOK_SECRET,
} from '../lib/receivers/index.js';

let admin: Admin;
let producer: Producer;
let ch: ClickHouse;
useStackClients((c) => ({ admin, producer, ch } = c));

test('a dead webhook holds back only itself; with its share of memory full, SIGTERM stops promptly, offsets never pass an unparked message, and a restart delivers everything', async () => {
  const tag = `capacity-${suffix()}`;
  const rx = await startReceivers({ routingKey: ROUTING_KEY, webhookSecret: WEBHOOK_SECRET });
  rx.webhook.fallback = { hang: true };
  const topics = await createAlertTopics(admin, tag);
  const group = `e2e-notifier-${suffix()}`;
  const routes = writeRoutes({ base: rx.base, destinations: ['pagerduty', 'webhook'] });
  // 10 jobs in memory at most (5 per destination): a few messages fill the webhook's share.
  const envs = notifierEnv(rx, topics, group, routes, {
    MCP_AUDIT_NOTIFIER_MAX_PENDING: '10',
    MCP_AUDIT_NOTIFIER_MAX_ATTEMPTS: '1000',
    MCP_AUDIT_NOTIFIER_TIMEOUT_MS: '1500',
    MCP_AUDIT_NOTIFIER_SHUTDOWN_MS: '20000',
  });
  const first = startService('notifier', envs, `${tag}-1`);
  let second: ReturnType<typeof startService> | undefined;
  try {
    const alerts = Array.from({ length: 60 }, (_, i) => makeAlert(i, tag));
    const pdKeys = () => new Set(rx.pagerduty.accepted.map((r) => String(r.body.dedup_key)));
    // Two waves: the first fills the dead webhook's share, the second must still reach PagerDuty.
    await produceAlerts(producer, topics.alerts, alerts.slice(0, 30));
    await waitFor(() => pdKeys().size >= 30, { timeoutMs: 60_000, what: 'the first wave at PagerDuty' });
    await produceAlerts(producer, topics.alerts, alerts.slice(30));
    await waitFor(() => pdKeys().size >= 60, {
      timeoutMs: 60_000,
      what: 'the second wave at PagerDuty while the webhook is dead',
    });
    assert.equal(rx.webhook.accepted.length, 0);
    await waitFor(
      async () => (await outboxRows(ch, group)).filter((r) => r.destination_id === 'siem').length >= 60,
      { timeoutMs: 30_000, what: 'every webhook job parked' },
    );

    const t0 = Date.now();
    const code = await first.stop();
    const ms = Date.now() - t0;
    assert.equal(code, 0, 'a clean exit, not the shutdown deadline');
    assert.ok(ms < 10_000, `stopped in ${ms} ms`);
    assert.ok(!/shutdown deadline exceeded/.test(readFileSync(first.logFile, 'utf8')));

    // Ledger: below each partition's committed offset, every message has its jobs parked.
    const parked = await outboxRows(ch, group);
    const committed = await committedOffsets(admin, group, topics.alerts);
    for (const [p, next] of committed) {
      const offsets = new Set(
        parked
          .filter((r) => r.kafka_partition === p && r.destination_id === 'siem')
          .map((r) => Number(r.kafka_offset)),
      );
      for (let o = 0; o < next; o++)
        assert.ok(offsets.has(o), `partition ${p} offset ${o} committed but not parked`);
    }

    rx.webhook.fallback = undefined;
    second = startService('notifier', envs, `${tag}-2`);
    const ids = new Set(alerts.map((a) => a.alert_id));
    const webhookIds = () =>
      new Set(rx.webhook.accepted.map((r) => (r.body.alert as { alert_id: string }).alert_id));
    await waitFor(() => webhookIds().size === ids.size, {
      timeoutMs: 90_000,
      what: 'every alert at the recovered webhook after the restart',
    });
    assert.equal(rx.webhook.accepted.length, ids.size, 'the webhook got each alert once');
    assert.ok(rx.pagerduty.accepted.length - 60 <= 5, 'PagerDuty: duplicates bounded');
    assert.deepEqual(rx.webhook.violations, []);
    assert.deepEqual(rx.pagerduty.violations, []);
  } finally {
    await first.kill9();
    await second?.stop();
    await rx.close();
  }
});
