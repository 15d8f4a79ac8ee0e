import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alertMessageSchema } from '@mcp-audit/schema';
import { Lifecycle, stableUuid, type AlertSink, type Outputs } from '../src/alert.lifecycle.js';
import type { Finding } from '../src/model.js';
import { silent } from './engine.fixtures.js';

const T = Date.parse('2026-11-20T10:00:00Z');
const finding = (o: Partial<Finding> = {}): Finding => ({
  detector: 'volume',
  clientId: 'c1',
  dedupKey: 'volume:c1:1h',
  severity: 'medium',
  title: 'Unusual call volume for c1',
  summary: 's',
  windowStart: T,
  windowEnd: T + 3_600_000,
  observed: 500,
  expected: { low: 0, high: 120 },
  score: 12.5,
  baselineVersion: 'b1-20261120T00',
  contributors: { tools: [{ value: 'read_file', count: 500 }], addresses: [], sessions: [] },
  sampleEventIds: ['0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', 'not-a-uuid'],
  detectedAt: T + 600_000,
  ...o,
});

function recorder(): AlertSink & { writes: Outputs[]; fail: number } {
  const s = {
    writes: [] as Outputs[],
    fail: 0,
    async write(out: Outputs) {
      if (s.fail > 0) {
        s.fail--;
        throw new Error('ClickHouse down');
      }
      s.writes.push(out);
    },
  };
  return s;
}

test('raise opens once per dedup key; repeats are suppressed; resolve closes; a new window reopens', async () => {
  const sink = recorder();
  const suppressed: string[] = [];
  const lc = new Lifecycle({
    sink,
    log: silent,
    origin: 'live',
    metrics: { opened: () => {}, resolved: () => {}, suppressed: (d) => suppressed.push(d) },
  });
  assert.equal(lc.raiseNow(finding()), true);
  assert.equal(lc.raiseNow(finding({ windowStart: T + 3_600_000, windowEnd: T + 7_200_000 })), false);
  assert.deepEqual(suppressed, ['volume']);
  assert.equal(lc.resolveNow('volume:c1:1h', T + 7_200_000, 'back in band'), true);
  assert.equal(lc.resolveNow('volume:c1:1h', T + 7_200_000, 'again'), false, 'nothing open: no-op');
  assert.equal(lc.raiseNow(finding({ windowStart: T + 86_400_000, windowEnd: T + 90_000_000 })), true);
  await lc.flush();
  const [out] = sink.writes;
  assert.equal(out!.alerts.length, 2);
  assert.deepEqual(
    out!.transitions.map((t) => `${t.from_status}>${t.to_status}`),
    ['>open', 'open>resolved', '>open'],
  );
  for (const m of out!.messages) alertMessageSchema.parse(m);
  const first = out!.messages[0]!;
  assert.equal(
    first.type === 'alert' && first.sample_event_ids.length,
    1,
    'only UUIDs are carried as event ids',
  );
  assert.equal(first.type === 'alert' && first.created_at, new Date(T + 600_000).toISOString(), 'event time');
  const res = out!.messages[1]!;
  assert.equal(res.type === 'state_change' && res.alert_id, first.type === 'alert' && first.alert_id);
});

test('ids are derived from the dedup key and window: the same finding gives the same alert id', () => {
  const a = new Lifecycle({ sink: recorder(), log: silent, origin: 'live' });
  const b = new Lifecycle({ sink: recorder(), log: silent, origin: 'replay' });
  a.raiseNow(finding());
  b.raiseNow(finding({ detectedAt: T + 1 }));
  assert.equal(a.openAlert('volume:c1:1h')?.alertId, b.openAlert('volume:c1:1h')?.alertId);
  assert.match(stableUuid('x'), /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(stableUuid('x'), stableUuid('y'));
});

test('a failed flush keeps the outputs queued, in order, for the retry', async () => {
  const sink = recorder();
  sink.fail = 1;
  const lc = new Lifecycle({ sink, log: silent, origin: 'live' });
  lc.raiseNow(finding());
  await assert.rejects(lc.flush(), /ClickHouse down/);
  lc.resolveNow('volume:c1:1h', T + 7_200_000, 'back in band');
  await lc.flush();
  assert.equal(sink.writes.length, 1);
  assert.deepEqual(
    sink.writes[0]!.messages.map((m) => m.type),
    ['alert', 'state_change'],
  );
  assert.equal(lc.pendingCount, 0);
});

test('restore: reloaded open alerts suppress and can be resolved', async () => {
  const sink = recorder();
  const lc = new Lifecycle({ sink, log: silent, origin: 'live' });
  lc.restore([
    {
      alertId: stableUuid('old'),
      dedupKey: 'volume:c1:1h',
      detector: 'volume',
      clientId: 'c1',
      title: 't',
      severity: 'high',
      windowStart: T - 3_600_000,
      windowEnd: T,
      openedAt: T - 1,
    },
  ]);
  assert.equal(lc.raiseNow(finding()), false);
  assert.equal(lc.resolveNow('volume:c1:1h', T + 3_600_000, 'ok'), true);
  await lc.flush();
  const m = sink.writes[0]!.messages[0]!;
  assert.equal(m.type === 'state_change' && m.alert_id, stableUuid('old'));
});

test('a finding that does not fit the alert contract is refused, not published', () => {
  const lc = new Lifecycle({ sink: recorder(), log: silent, origin: 'live' });
  assert.equal(lc.raiseNow(finding({ observed: Number.NaN })), false);
  assert.equal(lc.pendingCount, 0);
});

test('a human resolve is final: no detector resolve for it, and the next anomaly opens a NEW alert', async () => {
  const sink = recorder();
  const lc = new Lifecycle({ sink, log: silent, origin: 'live' });
  assert.equal(lc.raiseNow(finding()), true);
  const first = lc.openAlert('volume:c1:1h')!.alertId;
  assert.equal(lc.closeByHuman(first), true);
  assert.equal(lc.isOpen('volume:c1:1h'), false);
  assert.equal(lc.resolveNow('volume:c1:1h', T + 7_200_000, 'back in band'), false, 'not resolved again');
  assert.equal(lc.raiseNow(finding()), false, 'the same window is the anomaly the human judged');
  assert.equal(lc.raiseNow(finding({ windowStart: T + 7_200_000, windowEnd: T + 10_800_000 })), true);
  const second = lc.openAlert('volume:c1:1h')!.alertId;
  assert.notEqual(second, first);
  await lc.flush();
  const msgs = sink.writes.flatMap((w) => w.messages);
  assert.deepEqual(
    msgs.map((m) => m.type),
    ['alert', 'alert'],
    'no state_change from the detector',
  );
});

test('the human triage watcher closes open alerts a human resolved', async () => {
  const { createHumanTriageWatcher } = await import('../src/human-triage.watcher.js');
  const lc = new Lifecycle({ sink: recorder(), log: silent, origin: 'live' });
  lc.raiseNow(finding());
  lc.raiseNow(finding({ dedupKey: 'volume:c2:1h', clientId: 'c2' }));
  const human = lc.openAlert('volume:c1:1h')!.alertId;
  const queries: string[] = [];
  const { toSql } = await import('@mcp-audit/clickhouse');
  const reader = {
    database: 'mcp_audit',
    query: async (q: Parameters<typeof toSql>[0]) => {
      queries.push(toSql(q));
      return [{ alert_id: human }] as never[];
    },
  } as unknown as import('@mcp-audit/clickhouse').ClickHouse;
  const w = createHumanTriageWatcher({ reader, lifecycle: lc, log: silent });
  assert.equal(await w.poll(), 1);
  assert.equal(lc.isOpen('volume:c1:1h'), false);
  assert.equal(lc.isOpen('volume:c2:1h'), true);
  assert.match(queries[0]!, /actor NOT IN \('detector', 'replay'\)/);
});
