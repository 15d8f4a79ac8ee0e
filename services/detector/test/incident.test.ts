import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alertMessageSchema, type AlertMessage } from '@mcp-audit/schema';
import { Lifecycle, type AlertSink, type Outputs } from '../src/alert.lifecycle.js';
import {
  IncidentGrouper,
  incidentKeys,
  type GroupedAlert,
  type IncidentTransitionRow,
  type StoredTransition,
} from '../src/incident.grouper.js';
import type { Finding } from '../src/model.js';
import { silent } from './engine.fixtures.js';

const T0 = Date.UTC(2026, 10, 2, 4, 0, 0);
const MIN = 60_000;
const SPRAY_IP = '2001:db8::a1';

let n = 0;
function alert(p: Partial<GroupedAlert> & Pick<GroupedAlert, 'detector' | 'clientId'>): GroupedAlert {
  n++;
  return {
    alertId: `00000000-0000-8000-8000-${String(n).padStart(12, '0')}`,
    title: `${p.detector} ${p.clientId}`,
    severity: 'medium',
    windowStart: T0,
    windowEnd: T0 + 15 * MIN,
    detectedAt: T0 + 15 * MIN,
    contributors: { addresses: [], sessions: [] },
    ...p,
  };
}

/** A spray against 13 clients: the spray alert, one session_misuse per victim session, auth bursts. */
function sprayAlerts(at: number): GroupedAlert[] {
  const sessions = Array.from({ length: 13 }, (_, i) => ({ value: `s-spray-${i}-${at}`, count: 1 }));
  const win = { windowStart: at, windowEnd: at + 15 * MIN, detectedAt: at + 15 * MIN };
  return [
    ...sessions.map((s, i) =>
      alert({
        detector: 'session_misuse',
        clientId: `client-${i}`,
        ...win,
        contributors: { addresses: [{ value: SPRAY_IP, count: 1 }], sessions: [s] },
      }),
    ),
    alert({
      detector: 'auth_spray',
      clientId: SPRAY_IP,
      severity: 'high',
      ...win,
      contributors: { addresses: [{ value: SPRAY_IP, count: 13 }], sessions },
    }),
    alert({
      detector: 'auth_burst',
      clientId: 'client-3',
      ...win,
      contributors: { addresses: [{ value: SPRAY_IP, count: 1 }], sessions: [] },
    }),
  ];
}

test('incidentKeys: subject, authentication addresses, sessions; not a volume alert’s addresses', () => {
  assert.deepEqual(
    incidentKeys({
      detector: 'auth_spray',
      clientId: SPRAY_IP,
      contributors: { addresses: [{ value: SPRAY_IP, count: 3 }], sessions: [{ value: 's1', count: 1 }] },
    }),
    [`addr:${SPRAY_IP}`, 'session:s1'],
  );
  assert.deepEqual(
    incidentKeys({
      detector: 'volume',
      clientId: 'c1',
      contributors: { addresses: [{ value: '10.0.0.1', count: 300 }], sessions: [] },
    }),
    ['client:c1'],
  );
  assert.deepEqual(
    incidentKeys({
      detector: 'silent_source',
      clientId: 'gw-1',
      contributors: { addresses: [], sessions: [] },
    }),
    ['source:gw-1'],
  );
});

test('a password spray, its session misuse and its victims’ bursts are one incident; others stay apart', () => {
  const g = new IncidentGrouper({ origin: 'replay', now: () => 0 });
  const refs = sprayAlerts(T0).map((a) => g.join(a));
  const ids = new Set(refs.map((r) => r.id));
  assert.equal(ids.size, 1, 'one incident for the whole attack');
  const last = refs.at(-1)!;
  assert.equal(last.alerts, 15);
  assert.equal(last.open_alerts, 15);
  assert.equal(last.severity, 'high', 'the highest of its alerts');
  assert.equal(refs[0]!.transition, 'opened');
  assert.ok(refs.slice(1).every((r) => r.transition === 'joined'));
  assert.match(last.title, /^auth_spray .* \(\+14 related\)$/);

  // A volume alert of an unrelated client at the same time, behind the same address: its own incident.
  const other = g.join(
    alert({
      detector: 'volume',
      clientId: 'client-x',
      contributors: { addresses: [{ value: SPRAY_IP, count: 5 }], sessions: [] },
    }),
  );
  assert.notEqual(other.id, last.id);
  // The same client's off-hours alert 20 minutes later: joins it. Two hours later: a new one.
  const near = g.join(
    alert({
      detector: 'off_hours',
      clientId: 'client-x',
      windowStart: T0 + 35 * MIN,
      windowEnd: T0 + 40 * MIN,
    }),
  );
  assert.equal(near.id, other.id);
  const far = g.join(
    alert({
      detector: 'off_hours',
      clientId: 'client-x',
      windowStart: T0 + 3 * 60 * MIN,
      windowEnd: T0 + 190 * MIN,
    }),
  );
  assert.notEqual(far.id, other.id);

  const rows = g.take();
  assert.equal(rows.incidents.length, 3, 'one incidents row per incident');
  assert.equal(rows.incidentTransitions.length, 18, 'one timeline row per alert joined');
  assert.deepEqual(g.take(), { incidents: [], incidentTransitions: [] });
});

test('an incident resolves when its last alert ends, reopens on a related alert within the window', () => {
  const g = new IncidentGrouper({ origin: 'replay', now: () => 0 });
  const a = alert({ detector: 'auth_burst', clientId: 'c1', severity: 'high' });
  const b = alert({ detector: 'volume', clientId: 'c1', severity: 'low' });
  const id = g.join(a).id;
  assert.equal(g.join(b).id, id);
  const r1 = g.alertEnded(a.alertId, T0 + 30 * MIN, 'back in band')!;
  assert.deepEqual(
    [r1.status, r1.transition, r1.open_alerts, r1.severity],
    ['open', 'alert_resolved', 1, 'high'],
  );
  assert.equal(g.alertEnded(a.alertId, T0 + 31 * MIN, 'again'), undefined, 'an alert ends once');
  const r2 = g.alertEnded(b.alertId, T0 + 45 * MIN, 'back in band')!;
  assert.deepEqual([r2.status, r2.transition, r2.open_alerts], ['resolved', 'resolved', 0]);
  const again = g.join(
    alert({ detector: 'off_hours', clientId: 'c1', windowStart: T0 + 60 * MIN, windowEnd: T0 + 70 * MIN }),
  );
  assert.deepEqual([again.id, again.transition, again.status], [id, 'reopened', 'open']);
  // Long after the window, the resolved incident is forgotten: a new one opens.
  g.alertEnded(g.take().incidentTransitions.at(-1)!.alert_id, T0 + 75 * MIN, 'done');
  const later = g.join(
    alert({ detector: 'volume', clientId: 'c1', windowStart: T0 + 300 * MIN, windowEnd: T0 + 360 * MIN }),
  );
  assert.notEqual(later.id, id);
  assert.equal(later.transition, 'opened');
});

test('a restarted grouper rebuilt from the stored timeline continues the same incidents', () => {
  const first = new IncidentGrouper({ origin: 'live', now: () => 0 });
  const [misuse, spray] = [sprayAlerts(T0)[0]!, sprayAlerts(T0).at(-2)!];
  const id = first.join(misuse).id;
  const stored: StoredTransition[] = first.take().incidentTransitions.map(toStored);

  const second = new IncidentGrouper({ origin: 'live', now: () => 0 });
  second.restore(stored);
  assert.equal(second.incidentOf(misuse.alertId), id);
  const joined = second.join(spray);
  assert.deepEqual([joined.id, joined.transition, joined.alerts], [id, 'joined', 2]);
  const row = second.take().incidentTransitions[0]!;
  assert.equal(row.seq, 2, 'the timeline continues after the stored rows');
  const ended = second.alertEnded(misuse.alertId, T0 + 20 * MIN, 'x')!;
  assert.deepEqual([ended.open_alerts, ended.status], [1, 'open']);
});

test('grouping is deterministic: the same alerts give the same incident ids and rows (replay = live)', () => {
  const run = () => {
    const g = new IncidentGrouper({ origin: 'replay', now: () => 0 });
    const alerts = sprayAlerts(T0 + 24 * 60 * MIN);
    for (const a of alerts) g.join(a);
    g.alertEnded(alerts[0]!.alertId, T0 + 25 * 60 * MIN, 'r');
    return g.take();
  };
  n = 1000;
  const x = run();
  n = 1000;
  assert.deepEqual(run(), x);
});

test('the lifecycle stamps incident_id on alert messages, rows and resolves, and flushes the incident rows', async () => {
  const writes: Outputs[] = [];
  const sink: AlertSink = { write: async (o) => void writes.push(o) };
  const lc = new Lifecycle({ sink, log: silent, origin: 'replay', now: () => 0 });
  const f = (detector: Finding['detector'], clientId: string, dedupKey: string): Finding => ({
    detector,
    clientId,
    dedupKey,
    severity: detector === 'auth_burst' ? 'high' : 'medium',
    title: `${detector} on ${clientId}`,
    summary: 's',
    windowStart: T0,
    windowEnd: T0 + 60 * MIN,
    observed: 10,
    expected: { low: 0, high: 1 },
    score: 5,
    baselineVersion: '',
    contributors: { tools: [], addresses: [], sessions: [] },
    sampleEventIds: [],
    detectedAt: T0 + 20 * MIN,
  });
  await lc.raise(f('auth_burst', 'c1', 'auth_burst:c1:1h'));
  await lc.raise(f('volume', 'c1', 'volume:c1:1h'));
  await lc.resolve('auth_burst:c1:1h', T0 + 2 * 60 * MIN, 'back');
  await lc.resolve('volume:c1:1h', T0 + 2 * 60 * MIN, 'back');
  const msgs: AlertMessage[] = writes.flatMap((w) => w.messages);
  for (const m of msgs) assert.ok(alertMessageSchema.safeParse(m).success, 'messages fit the contract');
  const ids = new Set(msgs.map((m) => m.incident_id));
  assert.equal(ids.size, 1);
  assert.ok([...ids][0]);
  assert.deepEqual(
    msgs.map((m) => [m.type, m.incident?.transition, m.incident?.status, m.incident?.severity]),
    [
      ['alert', 'opened', 'open', 'high'],
      ['alert', 'joined', 'open', 'high'],
      ['state_change', 'alert_resolved', 'open', 'high'],
      ['state_change', 'resolved', 'resolved', 'high'],
    ],
  );
  const alertRows = writes.flatMap((w) => w.alerts);
  assert.ok(alertRows.every((r) => r.incident_id === msgs[0]!.incident_id));
  assert.equal(writes.flatMap((w) => w.incidents).length, 1);
  assert.equal(writes.flatMap((w) => w.incidentTransitions).length, 4);
});

function toStored(r: IncidentTransitionRow): StoredTransition {
  return {
    incident_id: r.incident_id,
    seq: r.seq,
    kind: r.kind,
    alert_id: r.alert_id,
    detector: r.detector,
    client_id: r.client_id,
    alert_severity: r.alert_severity,
    alert_title: r.alert_title,
    status: r.status,
    keys: r.keys,
    window_start_ms: r.window_start_ms,
    window_end_ms: r.window_end_ms,
    at_ms: r.at_ms,
  };
}

test('a reload (new leader) adds what others stored and never rolls back what this process did', () => {
  const g = new IncidentGrouper({ origin: 'live', now: () => 0 });
  const a = alert({ detector: 'auth_burst', clientId: 'c9' });
  const ref = g.join(a);
  const mine = g.take().incidentTransitions.map(toStored);
  g.alertEnded(a.alertId, T0 + 20 * MIN, 'back'); // seq 2 in memory, not stored yet
  // The stored timeline has only seq 1 of this incident, plus another process's incident.
  const other = new IncidentGrouper({ origin: 'live', now: () => 0 });
  const b = alert({
    detector: 'auth_spray',
    clientId: '2001:db8::b',
    contributors: { addresses: [], sessions: [] },
  });
  other.join(b);
  g.restore([...mine, ...other.take().incidentTransitions.map(toStored)]);
  const again = g.join(
    alert({ detector: 'volume', clientId: 'c9', windowStart: T0 + 25 * MIN, windowEnd: T0 + 30 * MIN }),
  );
  assert.deepEqual([again.id, again.transition], [ref.id, 'reopened'], 'still resolved in memory: reopened');
  assert.equal(g.incidentOf(b.alertId) !== undefined, true, 'the other process’s incident is known now');
});

test('a spray links its address for 24 h: the victims’ session misuse seen hours later joins it, reopening it; not after', () => {
  const g = new IncidentGrouper({ origin: 'live', now: () => T0 });
  const spray = alert({
    detector: 'auth_spray',
    clientId: SPRAY_IP,
    severity: 'high',
    contributors: { addresses: [{ value: SPRAY_IP, count: 10 }], sessions: [] },
  });
  const first = g.join(spray);
  assert.equal(first.transition, 'opened');
  // The spray's window falls back: the incident resolves.
  assert.equal(g.alertEnded(spray.alertId, T0 + 30 * MIN, 'window fell back')?.status, 'resolved');
  // Three hours later the victim is back on its own address: its session was used from two addresses.
  const at = T0 + 3 * 60 * MIN;
  const misuse = alert({
    detector: 'session_misuse',
    clientId: 'victim-1',
    windowStart: at,
    windowEnd: at + 15 * MIN,
    detectedAt: at + 15 * MIN,
    contributors: {
      addresses: [
        { value: '10.1.1.1', count: 5 },
        { value: SPRAY_IP, count: 1 },
      ],
      sessions: [{ value: 'victim-session', count: 6 }],
    },
  });
  const joined = g.join(misuse);
  assert.equal(joined.id, first.id, 'one incident for the attack');
  assert.equal(joined.transition, 'reopened');
  // A misuse naming another address in the same hour is another incident.
  const other = g.join(
    alert({
      detector: 'session_misuse',
      clientId: 'victim-2',
      windowStart: at,
      windowEnd: at + 15 * MIN,
      detectedAt: at + 15 * MIN,
      contributors: { addresses: [{ value: '10.9.9.9', count: 2 }], sessions: [{ value: 's2', count: 2 }] },
    }),
  );
  assert.notEqual(other.id, first.id);
  // More than 24 h after the spray's window the address no longer links.
  const late = T0 + 15 * MIN + 25 * 60 * MIN;
  const after = g.join(
    alert({
      detector: 'session_misuse',
      clientId: 'victim-3',
      windowStart: late,
      windowEnd: late + 15 * MIN,
      detectedAt: late + 15 * MIN,
      contributors: { addresses: [{ value: SPRAY_IP, count: 1 }], sessions: [{ value: 's3', count: 2 }] },
    }),
  );
  assert.notEqual(after.id, first.id);
});

test('the spray link survives a restart (restored from the stored timeline)', () => {
  const g = new IncidentGrouper({ origin: 'live', now: () => T0 });
  const spray = alert({
    detector: 'auth_spray',
    clientId: SPRAY_IP,
    contributors: { addresses: [{ value: SPRAY_IP, count: 10 }], sessions: [] },
  });
  const first = g.join(spray);
  g.alertEnded(spray.alertId, T0 + 30 * MIN, 'window fell back');
  const rows = g.take().incidentTransitions;
  const restarted = new IncidentGrouper({ origin: 'live', now: () => T0 });
  restarted.restore(rows.map(toStored));
  const at = T0 + 5 * 60 * MIN;
  const joined = restarted.join(
    alert({
      detector: 'session_misuse',
      clientId: 'victim-1',
      windowStart: at,
      windowEnd: at + 15 * MIN,
      detectedAt: at + 15 * MIN,
      contributors: { addresses: [{ value: SPRAY_IP, count: 1 }], sessions: [{ value: 'v', count: 3 }] },
    }),
  );
  assert.equal(joined.id, first.id);
});
