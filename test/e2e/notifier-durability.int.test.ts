import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Producer } from 'kafkajs';
import { startService, suffix, waitFor, useStackClients } from '../lib/index.js';
import {
  createAlertTopics,
  makeAlert,
  notifierEnv,
  produceAlerts,
  slackNames,
  startReceivers,
  writeRoutes,
  ROUTING_KEY,
  WEBHOOK_SECRET,
} from '../lib/receivers/index.js';

let admin: Admin;
let producer: Producer;
useStackClients((c) => ({ admin, producer } = c));

test('kill -9 of the notifier mid-delivery, then restart: nothing lost', async () => {
  const tag = `kill9-${suffix()}`;
  const rx = await startReceivers({ routingKey: ROUTING_KEY, webhookSecret: WEBHOOK_SECRET });
  const topics = await createAlertTopics(admin, tag);
  const group = `e2e-notifier-${suffix()}`;
  const routes = writeRoutes({ base: rx.base, destinations: ['pagerduty', 'webhook'] });
  const envs = notifierEnv(rx, topics, group, routes);
  // Slow receivers so the kill lands with deliveries parked but not yet made.
  rx.pagerduty.delayMs = 60;
  rx.webhook.delayMs = 60;
  const alerts = Array.from({ length: 60 }, (_, i) => makeAlert(i, tag));
  await produceAlerts(producer, topics.alerts, alerts);
  const first = startService('notifier', envs, tag);
  let second: ReturnType<typeof startService> | undefined;
  try {
    await waitFor(() => rx.webhook.accepted.length >= 10, { timeoutMs: 60_000, what: 'first deliveries' });
    await first.kill9();
    const before = rx.webhook.accepted.length;
    assert.ok(before < alerts.length, `killed mid-delivery (${before} delivered)`);
    rx.pagerduty.delayMs = 0;
    rx.webhook.delayMs = 0;
    second = startService('notifier', envs, tag);
    const ids = new Set(alerts.map((a) => a.alert_id));
    const keys = new Set(alerts.map((a) => a.dedup_key));
    const webhookIds = () =>
      new Set(rx.webhook.accepted.map((r) => (r.body.alert as { alert_id: string }).alert_id));
    const pdKeys = () => new Set(rx.pagerduty.accepted.map((r) => String(r.body.dedup_key)));
    await waitFor(() => webhookIds().size === ids.size && pdKeys().size === keys.size, {
      timeoutMs: 90_000,
      what: 'every alert at both destinations after the restart',
    });
    for (const id of ids) assert.ok(webhookIds().has(id));
    for (const key of keys) assert.ok(pdKeys().has(key));
    // At-least-once: only what was in flight or not yet recorded at the kill may arrive twice.
    const dupWebhook = rx.webhook.accepted.length - ids.size;
    const dupPd = rx.pagerduty.accepted.length - keys.size;
    assert.ok(
      dupWebhook <= 5 && dupPd <= 5,
      `duplicates bounded (webhook ${dupWebhook}, pagerduty ${dupPd})`,
    );
    assert.deepEqual(rx.webhook.violations, []);
    assert.deepEqual(rx.pagerduty.violations, []);
  } finally {
    await first.kill9();
    await second?.stop();
    await rx.close();
  }
});

test('200 alerts in a minute to one Slack webhook: rate-respecting messages and digests naming all 200', async () => {
  const tag = `rate-${suffix()}`;
  const rx = await startReceivers({ routingKey: ROUTING_KEY, webhookSecret: WEBHOOK_SECRET });
  const topics = await createAlertTopics(admin, tag);
  const group = `e2e-notifier-${suffix()}`;
  // Time compressed 5x through configuration only: 5 messages/s with bursts of 3 stands for
  // Slack's 1/s, and 200 alerts over 12 s stand for 200 in a minute.
  const rate = { per_second: 5, burst: 3 };
  const routes = writeRoutes({ base: rx.base, destinations: ['slack'], slackRate: rate });
  const svc = startService('notifier', notifierEnv(rx, topics, group, routes), tag);
  try {
    await waitFor(async () => (await fetchHealth(svc.logFile)) || undefined, {
      timeoutMs: 30_000,
      what: 'notifier started',
    });
    const alerts = Array.from({ length: 200 }, (_, i) => makeAlert(i, tag));
    for (let i = 0; i < 200; i += 10) {
      await produceAlerts(producer, topics.alerts, alerts.slice(i, i + 10));
      await new Promise((r) => setTimeout(r, 600)); // the arrival pattern under test, not a wait
    }
    const named = () => new Set(rx.slack.accepted.flatMap((r) => slackNames(r.body).ids));
    await waitFor(() => named().size >= 200, { timeoutMs: 60_000, what: 'all 200 alerts named in Slack' });
    assert.deepEqual(rx.slack.violations, []);
    for (const a of alerts) assert.ok(named().has(a.alert_id), `${a.alert_id} named`);
    const msgs = rx.slack.accepted;
    const digests = msgs.filter((m) => slackNames(m.body).digest);
    assert.ok(digests.length > 0, 'over the rate, alerts were folded into digests');
    assert.ok(msgs.length - digests.length > 0, 'below the rate, alerts got their own message');
    assert.ok(msgs.length < 200, `${msgs.length} messages for 200 alerts`);
    // Token bucket: in any span of t seconds at most burst + rate * t messages (+1 for clock jitter).
    for (let i = 0; i < msgs.length; i++)
      for (let j = i; j < msgs.length; j++) {
        const t = (msgs[j]!.at - msgs[i]!.at) / 1000;
        assert.ok(
          j - i + 1 <= rate.burst + rate.per_second * t + 1,
          `messages ${i}..${j} within ${t}s exceed the rate`,
        );
      }
    const total = msgs.reduce((n, m) => n + slackNames(m.body).ids.length, 0);
    assert.equal(total, 200, 'each alert named exactly once');
  } finally {
    await svc.stop();
    await rx.close();
  }
});

async function fetchHealth(logFile: string): Promise<boolean> {
  const { readFileSync } = await import('node:fs');
  return /notifier started/.test(readFileSync(logFile, 'utf8'));
}
