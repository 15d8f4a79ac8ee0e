import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AlertMessage, AlertStateChange, IncidentRef } from '@mcp-audit/schema';
import { parseRoutes, routeAlert } from '../src/alerts.router.js';
import { IncidentBook } from '../src/incident.book.js';
import { buildPagerDutyEvent, incidentDedupKey } from '../src/pagerduty.payload.js';
import { parseSlackAnswer, slackApiRequest } from '../src/slack-threads.js';
import { buildWebhookBody } from '../src/webhook.payload.js';
import { sampleAlert } from './fixtures.js';

const INC = '0190b000-0000-7000-8000-00000000a1a1';
const ref = (transition: IncidentRef['transition'], alerts: number, open: number): IncidentRef => ({
  id: INC,
  title: 'Authentication spraying from 203.0.113.9',
  severity: 'high',
  status: open === 0 ? 'resolved' : 'open',
  transition,
  alerts,
  open_alerts: open,
});
const a1 = sampleAlert(1, { incident_id: INC, incident: ref('opened', 1, 1) }, '0190b001');
const a2 = sampleAlert(2, { severity: 'low', incident_id: INC, incident: ref('joined', 2, 2) }, '0190b001');
const change = (a: typeof a1, over: Partial<AlertStateChange>): AlertStateChange => ({
  schema_version: 1,
  type: 'state_change',
  transition_id: `0190b002-0000-7000-8000-${a.alert_id.slice(-12)}`,
  alert_id: a.alert_id,
  dedup_key: a.dedup_key,
  detector: a.detector,
  client_id: a.client_id,
  title: a.title,
  severity: a.severity,
  from: 'open',
  status: 'resolved',
  changed_at: '2024-01-01T02:00:00.000Z',
  ...over,
});

test('PagerDuty: one dedup_key per incident; a human resolve of one of two alerts acknowledges, of the last resolves', () => {
  const book = new IncidentBook();
  const ev = (m: AlertMessage) => buildPagerDutyEvent(m, 'rk', 'https://c.example', book);
  const key = incidentDedupKey(INC);
  const t1 = ev(a1);
  assert.deepEqual([t1.event_action, t1.dedup_key], ['trigger', key]);
  assert.equal((t1.payload as { severity: string }).severity, 'error', 'the incident severity (high)');
  assert.deepEqual([ev(a2).event_action, ev(a2).dedup_key], ['trigger', key], 'a joined alert: same key');
  // A human resolves the first alert (the message names only the alert): the incident stays open.
  const h1 = ev(change(a1, { actor: 'analyst', action: 'resolve', resolution: 'true_positive' }));
  assert.deepEqual([h1.event_action, h1.dedup_key], ['acknowledge', key]);
  const h2 = ev(change(a2, { actor: 'analyst', action: 'resolve', resolution: 'true_positive' }));
  assert.deepEqual([h2.event_action, h2.dedup_key], ['resolve', key]);
  // Without incident (an older detector): the alert's own key, as before.
  const plain = sampleAlert(3, {}, '0190b001');
  assert.equal(buildPagerDutyEvent(plain, 'rk', 'https://c.example', book).dedup_key, plain.dedup_key);
});

test('routing: the end of one alert of an open incident pages nobody; the incident’s end goes where its page went', () => {
  const routes = parseRoutes({
    destinations: [
      { id: 'pd', kind: 'pagerduty', routing_key: { env: 'PD' }, min_severity: 'high' },
      { id: 'chat', kind: 'slack_api', token: { env: 'T' }, channel: 'C0SEC' },
    ],
    rules: [{ name: 'all', match: {}, destinations: ['pd', 'chat'] }],
  });
  const partial = change(a2, { actor: 'detector', incident_id: INC, incident: ref('alert_resolved', 2, 1) });
  assert.deepEqual(routeAlert(routes, partial), [
    { destinationId: 'pd', suppressed: 'not_paged' },
    { destinationId: 'chat' },
  ]);
  // The last alert to end is low, the incident high: judged at the incident's severity.
  const end = change(a2, { actor: 'detector', incident_id: INC, incident: ref('resolved', 2, 0) });
  assert.deepEqual(routeAlert(routes, end), [{ destinationId: 'pd' }, { destinationId: 'chat' }]);
});

test('Slack threads: parent without thread_ts, replies in the thread, the end broadcast; answers parsed', () => {
  const parent = slackApiRequest(a1, 'C0SEC', 'https://c.example', INC, undefined);
  assert.equal(parent.startsThread, true);
  assert.equal(parent.body.thread_ts, undefined);
  const reply = slackApiRequest(a2, 'C0SEC', 'https://c.example', INC, '1700000000.000100');
  assert.deepEqual(
    [reply.startsThread, reply.body.thread_ts, reply.body.reply_broadcast],
    [false, '1700000000.000100', undefined],
  );
  const end = change(a2, { actor: 'detector', incident_id: INC, incident: ref('resolved', 2, 0) });
  assert.equal(
    slackApiRequest(end, 'C0SEC', 'https://c.example', INC, '1700000000.000100').body.reply_broadcast,
    true,
  );
  const r = (body: string) => parseSlackAnswer({ status: 200, headers: {}, body, latencyMs: 1 });
  assert.deepEqual(r('{"ok":true,"channel":"C0SEC","ts":"1700000000.000200"}'), {
    ok: true,
    ts: '1700000000.000200',
  });
  assert.deepEqual(r('{"ok":false,"error":"channel_not_found"}'), {
    ok: false,
    error: 'channel_not_found',
    retryable: false,
  });
  assert.deepEqual(r('{"ok":false,"error":"ratelimited"}'), {
    ok: false,
    error: 'ratelimited',
    retryable: true,
  });
  assert.deepEqual(r('{"ok":false,"error":"<script>"}'), {
    ok: false,
    error: 'invalid_response',
    retryable: false,
  });
  assert.equal(r('not json').ok, false);
});

test('webhooks carry the incident id, a human change included once the book saw its alert', () => {
  const book = new IncidentBook();
  book.note(a1);
  const human = change(a1, { actor: 'analyst', action: 'acknowledge', status: 'acknowledged' });
  const body = JSON.parse(
    buildWebhookBody(human, 'd1', 'https://c.example', new Date(), book.note(human)),
  ) as {
    incident_id?: string;
  };
  assert.equal(body.incident_id, INC);
  assert.equal(
    (JSON.parse(buildWebhookBody(sampleAlert(4), 'd2', 'https://c.example')) as { incident_id?: string })
      .incident_id,
    undefined,
  );
});
