import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Producer } from 'kafkajs';
import type { ClickHouse } from '@mcp-audit/clickhouse';
import { startService, suffix, waitFor, type ServiceProcess, useStackClients } from '../lib/index.js';
import {
  createAlertTopics,
  deliveryRows,
  makeAlert,
  makeStateChange,
  notifierEnv,
  produceAlerts,
  slackNames,
  startReceivers,
  writeRoutes,
  ROUTING_KEY,
  WEBHOOK_SECRET,
  type Receivers,
} from '../lib/receivers/index.js';

let admin: Admin;
let producer: Producer;
let ch: ClickHouse;
useStackClients((c) => ({ admin, producer, ch } = c));

async function setup(
  tag: string,
  extra: Record<string, string> = {},
  slackRate?: { per_second: number; burst: number },
) {
  const rx = await startReceivers({ routingKey: ROUTING_KEY, webhookSecret: WEBHOOK_SECRET });
  const topics = await createAlertTopics(admin, tag);
  const group = `e2e-notifier-${suffix()}`;
  const routes = writeRoutes({ base: rx.base, ...(slackRate ? { slackRate } : {}) });
  const svc = startService('notifier', notifierEnv(rx, topics, group, routes, extra), `${tag}-${suffix()}`);
  return { rx, topics, group, svc };
}

async function teardown(svc: ServiceProcess, rx: Receivers) {
  await svc.stop();
  await rx.close();
}

const noViolations = (rx: Receivers) => {
  for (const name of ['slack', 'pagerduty', 'webhook'] as const)
    assert.deepEqual(rx[name].violations, [], `${name} payloads follow the documented format`);
};

test('an alert reaches Slack, PagerDuty and the webhook once each, and its resolve follows', async () => {
  const tag = `one-${suffix()}`;
  const { rx, topics, group, svc } = await setup(tag);
  try {
    const alert = makeAlert(1, tag, { severity: 'critical' });
    await produceAlerts(producer, topics.alerts, [alert]);
    await waitFor(
      () =>
        rx.slack.accepted.length >= 1 && rx.pagerduty.accepted.length >= 1 && rx.webhook.accepted.length >= 1,
      {
        timeoutMs: 60_000,
        what: 'the alert at every destination',
      },
    );
    const resolve = makeStateChange(alert, 'resolved');
    await produceAlerts(producer, topics.alerts, [resolve]);
    await waitFor(
      () =>
        rx.slack.accepted.length >= 2 && rx.pagerduty.accepted.length >= 2 && rx.webhook.accepted.length >= 2,
      {
        timeoutMs: 30_000,
        what: 'the resolve at every destination',
      },
    );
    noViolations(rx);
    assert.equal(rx.slack.accepted.length, 2);
    assert.equal(rx.pagerduty.accepted.length, 2);
    assert.equal(rx.webhook.accepted.length, 2);

    const [pdTrigger, pdResolve] = rx.pagerduty.accepted.map((r) => r.body);
    assert.equal(pdTrigger!.event_action, 'trigger');
    assert.equal(pdTrigger!.dedup_key, alert.dedup_key);
    assert.equal((pdTrigger!.payload as { severity: string }).severity, 'critical');
    const details = (pdTrigger!.payload as { custom_details: Record<string, unknown> }).custom_details;
    assert.equal(details.observed, 412);
    assert.deepEqual(details.expected, { low: 10, high: 40 });
    assert.equal(pdResolve!.event_action, 'resolve');
    assert.equal(pdResolve!.dedup_key, alert.dedup_key);

    const [slackAlert, slackResolve] = rx.slack.accepted.map((r) => r.body);
    assert.deepEqual(slackNames(slackAlert!).ids, [alert.alert_id]);
    const blocks = slackAlert!.blocks as Array<{ type: string; elements?: Array<{ url?: string }> }>;
    assert.equal(blocks[0]!.type, 'header');
    const button = blocks.find((b) => b.type === 'actions')!.elements![0]!;
    assert.equal(button.url, `https://console.example.test/alerts/${alert.alert_id}`);
    assert.ok(JSON.stringify(slackAlert).includes('412'), 'observed value shown');
    assert.ok(slackNames(slackResolve!).resolved, 'a follow-up resolve message');

    const [whAlert, whResolve] = rx.webhook.accepted.map((r) => r.body);
    assert.equal(whAlert!.type, 'alert');
    assert.equal((whAlert!.alert as { alert_id: string }).alert_id, alert.alert_id);
    assert.equal(whResolve!.type, 'state_change');

    // Every attempt is on record in ClickHouse, naming destinations by id, never by URL or key.
    const rows = await waitFor(
      async () => {
        const r = await deliveryRows(ch, group);
        return r.filter((x) => x.status === 'delivered').length >= 6 ? r : undefined;
      },
      { timeoutMs: 30_000, what: 'alert_deliveries rows' },
    );
    const delivered = rows.filter((r) => r.status === 'delivered');
    assert.deepEqual(delivered.map((r) => `${r.destination_id}:${r.action}`).sort(), [
      'pd-oncall:resolve',
      'pd-oncall:trigger',
      'siem:resolve',
      'siem:trigger',
      'slack-secops:resolve',
      'slack-secops:trigger',
    ]);
    const text = JSON.stringify(rows);
    assert.ok(
      !text.includes(rx.base) && !text.includes(ROUTING_KEY) && !text.includes(WEBHOOK_SECRET),
      'no secret in rows',
    );
  } finally {
    await teardown(svc, rx);
  }
});

test('429 with Retry-After, then 500s, then timeouts, then recovery: every alert arrives once, in order per dedup key', async () => {
  const tag = `faults-${suffix()}`;
  const { rx, topics, group, svc } = await setup(
    tag,
    { MCP_AUDIT_NOTIFIER_TIMEOUT_MS: '600', MCP_AUDIT_NOTIFIER_MAX_ATTEMPTS: '30' },
    { per_second: 100, burst: 100 },
  );
  try {
    const script = () => [
      { status: 429, retryAfter: '1' },
      { status: 500 },
      { status: 503 },
      { status: 500 },
      { hang: true as const },
      { hang: true as const },
    ];
    rx.slack.faults.push(...script());
    rx.pagerduty.faults.push(...script());
    rx.webhook.faults.push(...script());
    const alerts = Array.from({ length: 8 }, (_, i) => makeAlert(i, tag));
    const msgs = alerts.flatMap((a) => [
      a,
      makeStateChange(a, 'acknowledged'),
      makeStateChange(a, 'resolved', 'acknowledged'),
    ]);
    // One send: the open, acknowledge and resolve of a key land in one partition, in this order.
    await produceAlerts(producer, topics.alerts, msgs);
    const n = msgs.length;
    await waitFor(
      () =>
        rx.webhook.accepted.length >= n && rx.pagerduty.accepted.length >= n && rx.slack.accepted.length >= n,
      {
        timeoutMs: 90_000,
        what: `${n} deliveries at each destination`,
      },
    );
    // Let any stray retry arrive before counting duplicates (polled: the queues drain to zero).
    await waitFor(
      async () => {
        const rows = await deliveryRows(ch, group);
        return rows.filter((r) => r.final === 1).length >= 3 * n;
      },
      { timeoutMs: 30_000, what: 'final rows' },
    );
    noViolations(rx);
    for (const name of ['slack', 'pagerduty', 'webhook'] as const) {
      assert.equal(rx[name].faults.length, 0, `${name}: every fault was exercised`);
      assert.equal(rx[name].accepted.length, n, `${name}: none twice after recovery`);
    }
    const whIds = rx.webhook.accepted.map((r) => String(r.body.delivery_id));
    assert.equal(new Set(whIds).size, n, 'webhook: each delivery once');
    const order = ['alert', 'acknowledged', 'resolved'];
    for (const a of alerts) {
      const wh = rx.webhook.accepted
        .map((r) => r.body)
        .filter((b) => ((b.alert ?? b.state_change) as { dedup_key: string }).dedup_key === a.dedup_key)
        .map((b) => (b.type === 'alert' ? 'alert' : (b.state_change as { status: string }).status));
      assert.deepEqual(wh, order, `webhook order for ${a.dedup_key}`);
      const pd = rx.pagerduty.accepted
        .filter((r) => r.body.dedup_key === a.dedup_key)
        .map((r) => r.body.event_action);
      assert.deepEqual(pd, ['trigger', 'acknowledge', 'resolve'], `pagerduty order for ${a.dedup_key}`);
      const sl = rx.slack.accepted
        .map((r) => r.body)
        .filter((b) => slackNames(b).ids.includes(a.alert_id))
        .map((b) => String(b.text).split(':')[0]);
      assert.equal(sl.length, 3, `slack messages for ${a.alert_id}`);
      assert.ok(
        !/^(Resolved|Acknowledged)/.test(sl[0]!) && sl[1] === 'Acknowledged' && sl[2] === 'Resolved',
        `slack order ${sl}`,
      );
    }
    const rows = await deliveryRows(ch, group);
    const failed = rows.filter((r) => r.status === 'failed');
    assert.ok(
      failed.some((r) => r.http_status === 429),
      'the 429 is on record',
    );
    assert.ok(
      failed.some((r) => r.http_status === 500),
      'the 500s are on record',
    );
    assert.ok(
      failed.some((r) => r.http_status === 0 && /timed out/.test(r.error)),
      'the timeouts are on record',
    );
  } finally {
    await teardown(svc, rx);
  }
});

test('the webhook receiver verifies signatures and rejects a tampered body and a replayed timestamp', async () => {
  const tag = `sig-${suffix()}`;
  const { rx, topics, svc } = await setup(tag);
  try {
    const alert = makeAlert(7, tag);
    await produceAlerts(producer, topics.alerts, [alert]);
    const got = await waitFor(() => rx.webhook.accepted[0], { timeoutMs: 60_000, what: 'a signed webhook' });
    assert.equal(rx.webhook.rejected.length, 0, 'the genuine delivery verifies');
    const replay = (body: string, headers: Record<string, string>) =>
      fetch(`${rx.base}/webhook`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', ...headers },
      });
    const headers = {
      'x-mcp-audit-timestamp': String(got.headers['x-mcp-audit-timestamp']),
      'x-mcp-audit-signature': String(got.headers['x-mcp-audit-signature']),
    };
    const tampered = got.raw.replace('"severity":"high"', '"severity":"info"');
    assert.notEqual(tampered, got.raw);
    assert.equal((await replay(tampered, headers)).status, 401, 'tampered body rejected');
    assert.equal(rx.webhook.rejected.at(-1)!.reason, 'bad_signature');
    // The same request 6 minutes later: the signature is genuine but the timestamp is stale.
    rx.clockSkewSeconds = 360;
    assert.equal((await replay(got.raw, headers)).status, 401, 'replay rejected');
    assert.equal(rx.webhook.rejected.at(-1)!.reason, 'stale');
    rx.clockSkewSeconds = 0;
    assert.equal(
      (await replay(got.raw, { ...headers, 'x-mcp-audit-signature': `v1=${'0'.repeat(64)}` })).status,
      401,
    );
    assert.equal(
      (await replay(got.raw, headers)).status,
      200,
      'the untouched request within 5 minutes verifies',
    );
  } finally {
    await teardown(svc, rx);
  }
});
