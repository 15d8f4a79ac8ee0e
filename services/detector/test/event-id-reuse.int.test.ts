/**
 * One event per event_id against the real ClickHouse (the tests' own stack): the event_id_reuse
 * detector (a copy of an id with other content is a possible forgery; an identical redelivery is not),
 * and the periodic detectors counting a forged copy as a second event. Rows go into the shared
 * mcp_audit.events on a random day years back; assertions look only at this run's ids and subjects.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dbIdent, sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Finding } from '../src/model.js';
import {
  BOOKKEEPING_COLUMNS,
  CONTENT_COLUMNS,
  DEFAULT_PERIODIC_CONFIG,
  authSprayDetector,
  eventIdReuseDetector,
  sessionMisuseDetector,
} from '../src/periodic/index.js';
import { parseDetectorConfig } from '../src/config.js';
import { memorySink, runReplay } from '../src/replay.js';
import { authFail, chClient, eventRow, randomPastDay, silentLog, suffix } from './periodic.fixtures.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const MAX_U32 = 4294967295;
const D = randomPastDay();
const at = (h: number, m = 0, s = 0) => D + h * HOUR + m * MIN + s * 1000;
const sfx = suffix();
// Ingestion-time window under test: [10:00, 10:05). Originals were ingested at 09:00-ish.
const W = [at(10), at(10, 5)] as const;
const cfg = { ...DEFAULT_PERIODIC_CONFIG.eventIdReuse, expireMs: HOUR };
const SECRET = `sk-live-${sfx}-do-not-print`;

let writer: ClickHouse;
let analyst: ClickHouse;

/** A later copy of `row` ingested at `ingestedMs`, with `changes` to its content. */
function copyOf(row: Record<string, unknown>, ingestedMs: number, changes: Record<string, unknown> = {}) {
  const ingested = Math.floor(ingestedMs / 1000);
  return {
    ...row,
    ingested_at: ingested,
    ver: MAX_U32 - ingested,
    kafka_partition: 3,
    kafka_offset: 9000 + Math.floor(Math.random() * 1000),
    ...changes,
  };
}

const base = (o: Record<string, unknown> = {}) =>
  eventRow(at(9), { client_id: `c-${sfx}`, args: `{"token":"${SECRET}"}`, ...o });
const original = {
  redelivered: base(),
  otherTs: base(),
  otherClient: base(),
  otherArgs: base(),
  untouched: base(),
};
const copies = [
  copyOf(original.redelivered, at(10, 1)),
  copyOf(original.redelivered, at(10, 2)),
  copyOf(original.otherTs, at(10, 2), { ts: Math.floor(at(9, 30) / 1000), ts_ms: 7 }),
  copyOf(original.otherClient, at(10, 3), { client_id: `mallory-${sfx}` }),
  copyOf(original.otherArgs, at(10, 4), { args: `{"token":"${SECRET}-2"}` }),
];
// auth_spray near miss: 4 clients fail from one address; a forged copy of one failure claims a 5th.
const IP = `10.77.${Math.floor(Math.random() * 250)}.9`;
const spray = [1, 2, 3, 4].map((i) => authFail(at(10, i), IP, `spn-${sfx}-${i}`));
const forgedSpray = copyOf(spray[0]!, at(10, 20), { client_id: `spn-${sfx}-forged` });
// session_misuse: one session from one address; a forged copy of one call claims a second address.
const SESSION = `sess-${sfx}`;
const calls = [1, 2, 3].map((i) => eventRow(at(10, i), { session_id: SESSION, client_ip: '192.0.2.3' }));
const forgedCall = copyOf(calls[1]!, at(10, 20), { client_ip: '203.0.113.99' });

// replay: 10 events of one client at 14:xx; a redelivery of one, forged copies of two in other hours.
const REPLAYED = `replayed-${sfx}`;
const replayRows = Array.from({ length: 10 }, (_, i) => eventRow(at(14, i), { client_id: REPLAYED }));
const replayCopies = [
  copyOf(replayRows[0]!, at(14, 30)),
  copyOf(replayRows[1]!, at(16), { ts: Math.floor(at(15, 10) / 1000) }),
  copyOf(replayRows[2]!, at(16), { ts: Math.floor(at(13, 10) / 1000), tool_name: 'delete_all' }),
];

// Stored once; the ingester refused a copy of it (event_id_conflicts) at 12:03 and again at 12:04.
const refusedOriginal = base();

before(async () => {
  writer = chClient('WRITER');
  analyst = chClient('ANALYST');
  await writer.insert('events', [
    ...Object.values(original),
    refusedOriginal,
    ...spray,
    ...calls,
    ...replayRows,
  ]);
  await writer.insert('events', [...copies, forgedSpray, forgedCall, ...replayCopies]);
});

after(async () => {
  await writer?.close();
  await analyst?.close();
});

const idOf = (r: Record<string, unknown>) => r.event_id as string;
const keyOf = (r: Record<string, unknown>) => `event_id_reuse:${idOf(r)}:5m`;
const ours = new Set(Object.values(original).map(keyOf));
const mine = (fs: Finding[]) => fs.filter((f) => ours.has(f.dedupKey));

test('event_id_reuse: content columns are every stored column but the id and the bookkeeping', async () => {
  const cols = await analyst.query<{ name: string }>(sql`
    SELECT name FROM system.columns WHERE database = ${analyst.database} AND table = 'events'`);
  assert.deepEqual(
    cols
      .map((c) => c.name)
      .filter((c) => c !== 'event_id' && !(BOOKKEEPING_COLUMNS as readonly string[]).includes(c)),
    [...CONTENT_COLUMNS],
  );
});

test('event_id_reuse: other ts, other client, other args raise (high); identical redeliveries do not', async () => {
  const d = eventIdReuseDetector(analyst, cfg);
  const { findings } = await d.evaluate(...W);
  const byKey = new Map(mine(findings).map((f) => [f.dedupKey, f]));
  assert.ok(!byKey.has(keyOf(original.redelivered)), 'an identical redelivery is not a forgery');
  assert.ok(!byKey.has(keyOf(original.untouched)));
  assert.deepEqual(
    [...byKey.keys()].sort(),
    [original.otherTs, original.otherClient, original.otherArgs].map(keyOf).sort(),
  );

  const ts = byKey.get(keyOf(original.otherTs))!;
  assert.equal(ts.severity, 'high');
  assert.match(ts.title, /stored with different content \(ts, ts_ms\)$/);
  assert.equal(ts.clientId, `c-${sfx}`);
  assert.deepEqual(ts.sampleEventIds, [idOf(original.otherTs)]);
  assert.equal(ts.observed, 2);
  // both copies' ingestion times
  assert.ok(ts.summary.includes(new Date(at(9, 0, 5)).toISOString()), ts.summary);
  assert.ok(ts.summary.includes(new Date(at(10, 2)).toISOString()), ts.summary);

  const client = byKey.get(keyOf(original.otherClient))!;
  assert.match(client.summary, /differs in client_id:/);
  assert.ok(client.summary.includes(`client mallory-${sfx}`), 'names the claimed client');

  const args = byKey.get(keyOf(original.otherArgs))!;
  assert.match(args.summary, /differs in args:/);
  for (const f of byKey.values()) {
    assert.ok(!JSON.stringify(f).includes(SECRET), 'never an argument value');
    assert.ok(!JSON.stringify(f).includes('token'), 'never an argument key either');
  }
});

test('event_id_reuse: a window of other ids is quiet, and the alert expires expireMs after the last differing copy', async () => {
  const d = eventIdReuseDetector(analyst, cfg);
  const before_ = await d.evaluate(at(9, 55), at(10));
  assert.deepEqual(mine(before_.findings), []);
  // The otherTs copy was ingested at 10:02: expiry (1 h) falls in [11:00, 11:05).
  const [quiet, expired, later] = await d.evaluateRange!(at(10, 55), at(11, 10));
  const k = keyOf(original.otherTs);
  assert.ok(!quiet!.resolved.some((r) => r.dedupKey === k));
  assert.ok(expired!.resolved.some((r) => r.dedupKey === k && /no further differing copy/.test(r.reason)));
  assert.ok(!later!.resolved.some((r) => r.dedupKey === k));
  assert.ok(!expired!.resolved.some((r) => r.dedupKey === keyOf(original.redelivered)));
});

test('event_id_reuse: evaluateRange equals evaluate window by window', async () => {
  const d = eventIdReuseDetector(analyst, cfg);
  const range = await d.evaluateRange!(at(9, 50), at(10, 25));
  for (let i = 0; i < range.length; i++) {
    const one = await d.evaluate(at(9, 50) + i * 5 * MIN, at(9, 55) + i * 5 * MIN);
    assert.deepEqual(mine(range[i]!.findings), mine(one.findings), `window ${i}`);
  }
  assert.ok(range.some((e) => mine(e.findings).length > 0));
});

test('auth_spray counts a forged copy with another client once: 4 clients stay below the threshold', async () => {
  const d = authSprayDetector(analyst, DEFAULT_PERIODIC_CONFIG.authSpray);
  const { findings } = await d.evaluate(at(10), at(10, 15));
  assert.equal(
    findings.find((f) => f.dedupKey === `auth_spray:${IP}:15m`),
    undefined,
  );
});

test('session_misuse: a forged copy of a call with another address is not a second address', async () => {
  const d = sessionMisuseDetector(analyst, DEFAULT_PERIODIC_CONFIG.sessionMisuse);
  const { findings } = await d.evaluate(at(10), at(10, 15));
  assert.deepEqual(
    findings.filter((f) => f.dedupKey.includes(SESSION)),
    [],
  );
});

test('the copies are really stored next to the originals (the cases above are not vacuous)', async () => {
  const ids = [original.redelivered, original.otherTs, spray[0]!, calls[1]!].map(idOf);
  const rows = await analyst.query<{ id: string; n: string }>(sql`
    SELECT toString(event_id) AS id, count() AS n FROM ${dbIdent(analyst.database)}.events
    WHERE ts >= ${new Date(at(8))} AND ts < ${new Date(at(11))} AND toString(event_id) IN ${tuple(ids)}
    GROUP BY id`);
  const n = new Map(rows.map((r) => [r.id, Number(r.n)]));
  assert.deepEqual(
    ids.map((id) => n.get(id)),
    [3, 2, 2, 2],
  );
});

test('replay feeds one event per id: the first ingested copy, wherever the other copies sit in time', async () => {
  const r = await runReplay({
    reader: analyst,
    config: parseDetectorConfig({}),
    log: silentLog(),
    from: at(12),
    to: at(18),
    sink: memorySink(),
    clientIds: [REPLAYED],
  });
  assert.equal(r.events, 10);
});

test('event_id_reuse: a copy the ingester refused (event_id_conflicts) raises the alert, and expires', async () => {
  // The ingester stored the original at 09:00 and refused a copy claiming another client at 12:03
  // (recorded twice: the refused message was redelivered at 12:04).
  const o = refusedOriginal;
  const id = o.event_id as string;
  const ingester = chClient('WRITER', { insertTables: ['event_id_conflicts'] });
  const refusal = (at_: number) => ({
    event_id: id,
    detected_at: Math.floor(at_ / 1000),
    fields: ['client_id', 'raw'],
    stored_ts: o.ts,
    stored_client_id: `c-${sfx}`,
    stored_source_id: 'gw-original',
    stored_ingested_at: o.ingested_at,
    stored_kafka_partition: 1,
    stored_kafka_offset: 17,
    refused_ts: o.ts,
    refused_client_id: `mallory-${sfx}`,
    refused_source_id: 'gw-forger',
    refused_digest: 'f'.repeat(64),
    refused_kafka_partition: 4,
    refused_kafka_offset: 99,
  });
  try {
    await ingester.insert('event_id_conflicts', [refusal(at(12, 3)), refusal(at(12, 4))]);
  } finally {
    await ingester.close();
  }
  const d = eventIdReuseDetector(analyst, cfg);
  const k = keyOf(o);
  const f = (await d.evaluate(at(12), at(12, 5))).findings.find((x) => x.dedupKey === k);
  assert.ok(f, 'raised from the refusal record');
  assert.equal(f.severity, 'high');
  assert.equal(f.clientId, `c-${sfx}`);
  assert.match(f.title, /^Event id \S+ reused with different content \(client_id, raw\)$/);
  assert.ok(f.summary.includes(`for client c-${sfx}, source gw-original`), f.summary);
  assert.ok(f.summary.includes(`client mallory-${sfx}, source gw-forger`), f.summary);
  assert.match(f.summary, /refused 2 copies/);
  assert.equal(f.observed, 2, 'two contents: the stored one and the refused one');
  // Expiry (1 h) after the last refusal, 12:04: in the window [13:00, 13:05), not before nor after.
  const [quiet, expired, later] = await d.evaluateRange!(at(12, 55), at(13, 10));
  assert.ok(!quiet!.resolved.some((r) => r.dedupKey === k));
  assert.ok(expired!.resolved.some((r) => r.dedupKey === k && /no further copy/.test(r.reason)));
  assert.ok(!later!.resolved.some((r) => r.dedupKey === k));
});
