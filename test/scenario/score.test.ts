import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Label, Manifest } from './generate.js';
import {
  dedupSubject,
  formatReport,
  parseAlertsJsonl,
  score,
  type AlertLike,
  type CollectedAlert,
} from './score.js';

const H = 3_600_000;
const T0 = Date.UTC(2026, 10, 14);
const iso = (ms: number) => new Date(ms).toISOString();

const manifest = {
  prefix: 'scnx',
  addressPrefix: '2001:db8:8001:8002:',
  start: iso(T0 - 21 * 24 * H),
  evalStart: iso(T0),
  end: iso(T0 + 7 * 24 * H),
  normalClientDays: { history: 1500, eval: 1000 },
} as unknown as Manifest;

const label = (
  id: string,
  detector: Label['detector'],
  client: string,
  start: number,
  end: number,
  extra: Partial<Label> = {},
): Label => ({
  id,
  detector,
  client_id: client,
  subjects: [client],
  clients: [client],
  start: iso(start),
  end: iso(end),
  first_event_id: null,
  cold_start: false,
  description: id,
  ...extra,
});

const labels: Label[] = [
  label('volume-1', 'volume', 'scnx-01', T0 + 10 * H + 600_000, T0 + 11 * H),
  label('auth_spray-1', 'auth_spray', '2001:db8:8001:8002:fee::a1', T0 + 30 * H, T0 + 30 * H + 900_000, {
    clients: ['scnx-01', 'scnx-02', 'scnx-03'],
  }),
  label('silent_source-1', 'silent_source', 'scnx-gw-core', T0 + 50 * H, T0 + 55 * H),
];

let n = 0;
const alert = (detector: string, subject: string, ws: number, we: number, client = subject): AlertLike => ({
  type: 'alert',
  alert_id: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
  dedup_key: `${detector}:${subject}:1h`,
  detector,
  client_id: client,
  severity: 'high',
  title: `${detector} on ${subject}`,
  window: { start: iso(ws), end: iso(we) },
});
const SPRAY_INCIDENT = '00000000-0000-8000-8000-00000000a1a1';
const wrap = (a: AlertLike, receivedAt?: number): CollectedAlert => ({
  alert: a,
  ...(receivedAt ? { receivedAt } : {}),
});

test('dedupSubject keeps IPv6 subjects whole', () => {
  assert.equal(dedupSubject('auth_spray:2001:db8::1:15m'), '2001:db8::1');
  assert.equal(dedupSubject('volume:client-a:1h'), 'client-a');
});

test('every label caught, no false alarms: pass, with event-time and wall-clock delays', () => {
  const r = score({
    labels,
    manifest,
    alerts: [
      wrap(alert('volume', 'scnx-01', T0 + 10 * H, T0 + 11 * H), 5_000),
      wrap(alert('auth_spray', '2001:db8:8001:8002:fee::a1', T0 + 30 * H, T0 + 30 * H + 900_000)),
      wrap(alert('silent_source', 'scnx-gw-core', T0 + 51 * H, T0 + 51 * H + 900_000)),
    ],
    producedAt: { 'volume-1': 1_000 },
  });
  assert.equal(r.pass, true, r.failures.join('; '));
  const vol = r.labels.find((l) => l.label.id === 'volume-1')!;
  assert.equal(vol.eventDelayMs, 50 * 60_000); // window end 11:00 - first event 10:10
  assert.equal(vol.wallDelayMs, 4_000);
  assert.equal(r.labels.find((l) => l.label.id === 'silent_source-1')!.eventDelayMs, H + 900_000);
});

test('a missed label and false alarms fail acceptance; the rate is per 500 client-days', () => {
  const r = score({
    labels,
    manifest,
    alerts: [
      wrap(alert('volume', 'scnx-01', T0 + 10 * H, T0 + 11 * H)),
      wrap(alert('silent_source', 'scnx-gw-core', T0 + 51 * H, T0 + 52 * H)),
      // false: other clients, or the same client far from its anomaly
      wrap(alert('off_hours', 'scnx-07', T0 + 80 * H, T0 + 81 * H)),
      wrap(alert('volume', 'scnx-01', T0 + 100 * H, T0 + 101 * H)),
      wrap(alert('volume', 'scnx-09', T0 + 120 * H, T0 + 121 * H)),
    ],
  });
  assert.equal(r.pass, false);
  assert.deepEqual(r.rows.find((x) => x.detector === 'auth_spray')!.missed, ['auth_spray-1']);
  assert.equal(r.falseAlarms.length, 3);
  assert.equal(r.clientDays, 1000);
  assert.equal(r.falseAlarmsPer500ClientDays, 1.5);
  assert.equal(r.failures.length, 2);
});

test('secondary alerts of a labelled anomaly are related, not false; foreign and out-of-range alerts are ignored', () => {
  const r = score({
    labels,
    manifest,
    alerts: [
      wrap(alert('volume', 'scnx-01', T0 + 10 * H, T0 + 11 * H)),
      wrap({
        ...alert('auth_spray', '2001:db8:8001:8002:fee::a1', T0 + 30 * H, T0 + 31 * H),
        incident_id: SPRAY_INCIDENT,
      }),
      wrap(alert('silent_source', 'scnx-gw-core', T0 + 50 * H, T0 + 51 * H)),
      // the spray's victims get auth_burst alerts: related (and in the spray's incident)
      wrap({
        ...alert('auth_burst', 'scnx-02', T0 + 30 * H, T0 + 30 * H + 300_000),
        incident_id: SPRAY_INCIDENT,
      }),
      // the volume anomaly also trips tool_breadth on the same client: related
      wrap(alert('tool_breadth', 'scnx-01', T0 + 10 * H, T0 + 11 * H)),
      // another run's client and the history period: not scored
      wrap(alert('volume', 'other-01', T0 + 10 * H, T0 + 11 * H)),
      wrap(alert('volume', 'scnx-05', T0 - 5 * H, T0 - 4 * H)),
    ],
  });
  assert.equal(r.pass, true, r.failures.join('; '));
  assert.equal(r.related.length, 2);
  assert.equal(r.outOfRange.length, 1);
  assert.equal(r.falseAlarms.length, 0);
  // 5 scored alerts; the spray and its victim's burst share an incident, the others are their own.
  assert.deepEqual([r.incidents.alerts, r.incidents.incidents], [5, 4]);
  assert.deepEqual(
    r.incidents.labels.find((x) => x.detector === 'auth_spray'),
    {
      id: 'auth_spray-1',
      detector: 'auth_spray',
      alerts: 2,
      incidents: 1,
    },
  );
  assert.match(formatReport(r), /5 alerts in 4 incidents = 1\.25 alerts per incident/);
});

test('a spray whose alerts fall into two incidents fails acceptance (one attack, one page)', () => {
  const r = score({
    labels,
    manifest,
    alerts: [
      wrap(alert('volume', 'scnx-01', T0 + 10 * H, T0 + 11 * H)),
      wrap({
        ...alert('auth_spray', '2001:db8:8001:8002:fee::a1', T0 + 30 * H, T0 + 31 * H),
        incident_id: SPRAY_INCIDENT,
      }),
      wrap(alert('silent_source', 'scnx-gw-core', T0 + 50 * H, T0 + 51 * H)),
      wrap(alert('session_misuse', 'scnx-s-spray-2', T0 + 30 * H, T0 + 31 * H, 'scnx-02')),
    ],
  });
  assert.equal(r.pass, false);
  assert.match(r.failures.join('; '), /attacks split across incidents: auth_spray-1 \(2\)/);
});

test('an alert hours after an attack, grouped into its incident, is related, not a false alarm', () => {
  const victimBack = alert('session_misuse', 'scnx-s-victim', T0 + 40 * H, T0 + 40 * H + 900_000, 'scnx-03');
  const alone = alert('session_misuse', 'scnx-s-other', T0 + 40 * H, T0 + 40 * H + 900_000, 'scnx-04');
  const r = score({
    labels,
    manifest,
    alerts: [
      wrap(alert('volume', 'scnx-01', T0 + 10 * H, T0 + 11 * H)),
      wrap({
        ...alert('auth_spray', '2001:db8:8001:8002:fee::a1', T0 + 30 * H, T0 + 31 * H),
        incident_id: SPRAY_INCIDENT,
      }),
      wrap(alert('silent_source', 'scnx-gw-core', T0 + 50 * H, T0 + 51 * H)),
      // ten hours later, outside every label's tolerance: in the spray's incident → related
      wrap({ ...victimBack, incident_id: SPRAY_INCIDENT }),
      // the same, in an incident of its own → a false alarm
      wrap({ ...alone, incident_id: '00000000-0000-8000-8000-00000000b2b2' }),
    ],
  });
  assert.deepEqual(
    r.falseAlarms.map((a) => a.client_id),
    ['scnx-04'],
  );
  assert.ok(r.related.some((a) => a.client_id === 'scnx-03'));
  assert.equal(r.incidents.labels.find((x) => x.detector === 'auth_spray')?.incidents, 1);
});

test('an alert of the wrong detector or outside the tolerance does not catch', () => {
  const r = score({
    labels: [labels[0]!],
    manifest,
    toleranceMs: H,
    alerts: [
      wrap(alert('error_rate', 'scnx-01', T0 + 10 * H, T0 + 11 * H)),
      wrap(alert('volume', 'scnx-01', T0 + 13 * H, T0 + 14 * H)),
    ],
  });
  assert.equal(r.labels[0]!.caught, false);
  assert.equal(r.related.length, 1);
  assert.equal(r.falseAlarms.length, 1);
});

test('alerts JSONL: collected and bare lines, state changes tallied, bad lines named', () => {
  const a = alert('volume', 'scnx-01', T0, T0 + H);
  const text = [
    JSON.stringify({ received_at: 42, message: a }),
    JSON.stringify(a),
    JSON.stringify({ type: 'state_change', dedup_key: a.dedup_key }),
    '',
  ].join('\n');
  const { alerts, stateChanges } = parseAlertsJsonl(text);
  assert.equal(alerts.length, 2);
  assert.equal(alerts[0]!.receivedAt, 42);
  assert.equal(stateChanges, 1);
  assert.throws(() => parseAlertsJsonl('{"type":"alert"}'), /line 1 has no dedup_key/);
  assert.throws(() => parseAlertsJsonl('nope'), /line 1 is not JSON/);
});
