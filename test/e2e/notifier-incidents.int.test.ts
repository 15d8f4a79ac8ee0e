/**
 * One page per incident (issue 14 item 1), through the real notifier process and the local receivers
 * that check every payload against the documented formats: PagerDuty gets one dedup_key per incident
 * (trigger, the same key for a joined alert, acknowledge for a human's change, resolve when the
 * incident ends; the end of one alert of several pages nobody); Slack (chat.postMessage with a bot
 * token) gets one thread per incident; webhooks carry incident_id, a human's change included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Producer } from 'kafkajs';
import type { ClickHouse } from '@mcp-audit/clickhouse';
import { startService, suffix, waitFor, useStackClients } from '../lib/index.js';
import {
  createAlertTopics,
  makeAlert,
  makeStateChange,
  notifierEnv,
  produceAlerts,
  startReceivers,
  writeRoutesFile,
  ROUTING_KEY,
  WEBHOOK_SECRET,
} from '../lib/receivers/index.js';
import { v7 } from '../lib/receivers/uuid7.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let admin: Admin;
let producer: Producer;
let ch: ClickHouse;
useStackClients((c) => ({ admin, producer, ch } = c));

const SLACK_TOKEN = 'xoxb-test-0000000000-notarealtoken';

test('an incident pages once: one PagerDuty dedup_key, one Slack thread, incident_id on webhooks', async () => {
  void ch;
  const rx = await startReceivers({
    routingKey: ROUTING_KEY,
    webhookSecret: WEBHOOK_SECRET,
    slackToken: SLACK_TOKEN,
  });
  const topics = await createAlertTopics(admin, 'incidents');
  const group = `e2e-notifier-incidents-${suffix()}`;
  const dir = mkdtempSync(join(tmpdir(), 'notifier-incidents-'));
  writeFileSync(join(dir, 'webhook-secret'), `${WEBHOOK_SECRET}\n`, { mode: 0o600 });
  const local = { allow_http: true, allow_networks: ['127.0.0.1/32'] };
  const routes = writeRoutesFile({
    destinations: [
      {
        id: 'slack-threads',
        kind: 'slack_api',
        token: { env: 'E2E_SLACK_TOKEN' },
        channel: 'C0SECOPS',
        endpoint: `${rx.base}/slackApi`,
        ...local,
        rate: { per_second: 50, burst: 50 },
      },
      {
        id: 'pd-oncall',
        kind: 'pagerduty',
        routing_key: { env: 'E2E_PD_ROUTING_KEY' },
        endpoint: `${rx.base}/pagerduty`,
        ...local,
        rate: { per_second: 50, burst: 50 },
      },
      {
        id: 'siem',
        kind: 'webhook',
        url: { env: 'E2E_WEBHOOK_URL' },
        secret: { file: join(dir, 'webhook-secret') },
        ...local,
      },
    ],
    rules: [{ name: 'everything', match: {}, destinations: ['slack-threads', 'pd-oncall', 'siem'] }],
  });
  const svc = startService(
    'notifier',
    notifierEnv(rx, topics, group, routes, { E2E_SLACK_TOKEN: SLACK_TOKEN }),
    `incidents-${suffix()}`,
  );
  try {
    const incidentId = v7();
    const ref = (transition: string, alerts: number, open: number, status = 'open') => ({
      id: incidentId,
      title: 'Authentication spraying from 203.0.113.9: 13 clients',
      severity: 'high',
      status,
      transition,
      alerts,
      open_alerts: open,
    });
    const tag = `inc${suffix()}`;
    const spray = makeAlert(1, tag, {
      detector: 'auth_spray',
      incident_id: incidentId,
      incident: ref('opened', 1, 1),
    });
    const misuse = makeAlert(2, tag, {
      detector: 'session_misuse',
      severity: 'medium',
      incident_id: incidentId,
      incident: ref('joined', 2, 2),
    });
    // An unrelated alert without an incident (older detector) still goes out on its own.
    const steps: Array<{
      msg: { dedup_key: string } & Record<string, unknown>;
      pd: number;
      slack: number;
      hook: number;
    }> = [
      { msg: spray, pd: 1, slack: 1, hook: 1 },
      { msg: misuse, pd: 2, slack: 2, hook: 2 },
      // A human acknowledges the spray through the API: the message names only the alert.
      { msg: makeStateChange(spray, 'acknowledged'), pd: 3, slack: 3, hook: 3 },
      // The detector resolves the spray; the misuse is still open: no PagerDuty event.
      {
        msg: {
          ...makeStateChange(spray, 'resolved', 'acknowledged'),
          actor: 'detector',
          incident_id: incidentId,
          incident: ref('alert_resolved', 2, 1),
        },
        pd: 3,
        slack: 4,
        hook: 4,
      },
      {
        msg: {
          ...makeStateChange(misuse, 'resolved'),
          actor: 'detector',
          incident_id: incidentId,
          incident: ref('resolved', 2, 0, 'resolved'),
        },
        pd: 4,
        slack: 5,
        hook: 5,
      },
    ];
    for (const s of steps) {
      await produceAlerts(producer, topics.alerts, [s.msg]);
      await waitFor(
        () =>
          rx.pagerduty.accepted.length >= s.pd &&
          rx.slackApi.accepted.length >= s.slack &&
          rx.webhook.accepted.length >= s.hook,
        { timeoutMs: 30_000, what: `deliveries ${JSON.stringify(s)}` },
      );
    }
    // Nothing more arrives for the suppressed PagerDuty step (give it a moment past the last one).
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual([rx.pagerduty.violations, rx.slackApi.violations, rx.webhook.violations], [[], [], []]);
    assert.deepEqual(rx.slackApi.rejected, []);

    const pd = rx.pagerduty.accepted.map((r) => [r.body.event_action, r.body.dedup_key]);
    const key = `mcp-audit-incident:${incidentId}`;
    assert.deepEqual(pd, [
      ['trigger', key],
      ['trigger', key],
      ['acknowledge', key],
      ['resolve', key],
    ]);
    const first = rx.pagerduty.accepted[0]!.body.payload as Record<string, unknown>;
    assert.equal(first.severity, 'error', 'the incident severity (high)');
    assert.match(String(first.summary), /Authentication spraying/);

    const slack = rx.slackApi.accepted.map((r) => r.body);
    assert.equal(slack[0]!.thread_ts, undefined, 'the first message starts the thread');
    assert.equal(slack[0]!.channel, 'C0SECOPS');
    assert.match(JSON.stringify(slack[0]!.blocks), /Incident · HIGH/);
    for (const b of slack.slice(1)) assert.equal(b.thread_ts, slack[0]!.ts, 'every update in the thread');
    assert.equal(slack.at(-1)!.reply_broadcast, true, 'the end of the incident is broadcast');
    assert.match(JSON.stringify(slack.at(-1)!.blocks), /Incident resolved/);
    assert.ok(rx.slackApi.accepted.every((r) => r.headers.authorization === `Bearer ${SLACK_TOKEN}`));

    assert.deepEqual(
      rx.webhook.accepted.map((r) => r.body.incident_id),
      steps.map(() => incidentId),
    );
  } finally {
    await svc.stop();
    await rx.close();
  }
});
