/**
 * toxic_flow, tool_shadowing, annotation_drift and first_destructive_use on the real ClickHouse and
 * Kafka: what raises and what stays quiet, the alert's content, and the lifecycle across restarts
 * (open alerts reloaded, expiry after `expireMs` of event time, the next occurrence a new alert).
 * Own database (the repo migrations, 010 included) and alerts topic.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dbIdent, runMigrations, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { createProducer, type AuditProducer, type Kafka } from '@mcp-audit/kafka';
import { toolAnnotationsText, type ToolAnnotations } from '@mcp-audit/schema';
import { Lifecycle, liveSink, loadOpenAlerts } from '../src/alert.lifecycle.js';
import { readInventory } from '../src/tool-inventory.js';
import { DETECTOR_TABLES } from '../src/app.js';
import { parseDetectorConfig } from '../src/config.js';
import {
  annotationDriftDetector,
  clickHouseProgressStore,
  createPeriodicRunner,
  firstDestructiveUseDetector,
  toolShadowingDetector,
  toxicFlowDetector,
  type PeriodicDetector,
} from '../src/periodic/index.js';
import { chClient, eventRow, SCHEMAS_DIR, silentLog, suffix, testKafka } from './periodic.fixtures.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const sfx = suffix();
const DB = `mcp_audit_toolrisk_${sfx}`;
const ALERTS = `test.detector.toolrisk.${sfx}`;
const D = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 3 * 86_400_000;
const at = (h: number, m = 0, s = 0) => D + h * HOUR + m * MIN + s * 1000;
const C1 = `agent-${sfx}`;
const C2 = `other-${sfx}`;
const config = parseDetectorConfig({
  periodic: {
    toxicFlow: { expireMs: HOUR },
    toolShadowing: { expireMs: HOUR },
    annotationDrift: { expireMs: HOUR },
    firstDestructiveUse: { expireMs: HOUR },
    // `notify` is not annotated by its server: configured as a send-out tool.
    toolClasses: [{ server: 'chat', tool: 'notify', class: 'send_out' }],
  },
});
const KEYS = {
  flow: `toxic_flow:${C1}/s1:5m`,
  shadow: `tool_shadowing:${C1}/search:15m`,
  drift: `annotation_drift:ops/cleanup:5m`,
  first: `first_destructive_use:${C1}/files/delete_file:5m`,
  firstC2: `first_destructive_use:${C2}/files/delete_file:5m`,
};
const READ: ToolAnnotations = { readOnlyHint: true, openWorldHint: false };
const SEND: ToolAnnotations = { readOnlyHint: false, openWorldHint: true };
const DESTROY: ToolAnnotations = { readOnlyHint: false, destructiveHint: true, openWorldHint: false };
const log = silentLog();

let kafka: Kafka;
let producer: AuditProducer;
let admin: ClickHouse;
let ch: ClickHouse;
let wm = 0;

const listing = (t: number, server: string, tool: string, a: ToolAnnotations | undefined, client = C1) =>
  eventRow(t, {
    kind: 'tool_list',
    method: 'tools/list',
    client_id: client,
    server_name: server,
    tool_name: tool,
    tool_definition_hash: 'a'.repeat(64),
    tool_annotations: toolAnnotationsText(a),
    source_id: server === 'other-search' ? `sdk-${sfx}` : `gw-${sfx}`,
    source_type: server === 'other-search' ? 'sdk' : 'gateway',
  });
/** A call; its annotations are left to the inventory unless given. */
const call = (t: number, session: string, server: string, tool: string, o: Record<string, unknown> = {}) =>
  eventRow(t, { client_id: C1, session_id: session, server_name: server, tool_name: tool, ...o });

function detectors(): PeriodicDetector[] {
  const p = config.periodic;
  return [
    toxicFlowDetector(ch, p.toxicFlow, p.toolClasses),
    toolShadowingDetector(ch, p.toolShadowing),
    annotationDriftDetector(ch, p.annotationDrift),
    firstDestructiveUseDetector(ch, p.firstDestructiveUse, p.toolClasses),
  ];
}

async function startDetector() {
  const lifecycle = new Lifecycle({
    sink: liveSink({ writer: ch, producer, topic: ALERTS }),
    log,
    origin: 'live',
  });
  lifecycle.restore(await loadOpenAlerts(ch));
  const runner = createPeriodicRunner({
    detectors: detectors(),
    lifecycle,
    watermark: async () => wm,
    lateMs: 0,
    log,
    progress: clickHouseProgressStore({ reader: ch, writer: ch }),
    maxWindowsPerTick: 10_000,
  });
  return { lifecycle, runner };
}

async function advance(d: Awaited<ReturnType<typeof startDetector>>, t: number) {
  wm = t;
  while ((await d.runner.tick()).behind);
}

async function transitions(key: string) {
  return ch.query<{ alert_id: string; to_status: string; note: string }>(sql`
    SELECT alert_id, to_status, note FROM ${dbIdent(DB)}.alert_transitions
    WHERE dedup_key = ${key} ORDER BY changed_at_ms, to_status = 'resolved'`);
}

async function alertsOf(detector: string) {
  return ch.query<{ dedup_key: string; summary: string; sample_event_ids: string[]; title: string }>(sql`
    SELECT dedup_key, summary, sample_event_ids, title FROM ${dbIdent(DB)}.alerts
    WHERE detector = ${detector} ORDER BY created_at_ms`);
}

before(async () => {
  kafka = testKafka('detector-toolrisk-test', log);
  const ka = kafka.admin();
  await ka.connect();
  await ka.createTopics({ waitForLeaders: true, topics: [{ topic: ALERTS, numPartitions: 1 }] });
  await ka.disconnect();
  producer = createProducer(kafka);
  await producer.connect();
  admin = chClient('ADMIN');
  await runMigrations({ client: admin, dir: SCHEMAS_DIR, database: DB });
  ch = chClient('ADMIN', { database: DB, insertTables: ['events', ...DETECTOR_TABLES] });
  // History, two days before: the inventory's listings, and C1's earlier use of a read tool.
  await ch.insert('events', [
    listing(at(-48), 'files', 'read_file', READ),
    listing(at(-48), 'files', 'delete_file', DESTROY),
    listing(at(-48), 'mail', 'send_email', SEND),
    listing(at(-48), 'chat', 'notify', undefined),
    listing(at(-48), 'ops', 'cleanup', { readOnlyHint: true }),
    listing(at(-48), 'web', 'search', { readOnlyHint: true, openWorldHint: true }),
    call(at(-47), 'old', 'files', 'read_file'),
  ]);
  const start = [
    ['toxic_flow', 5],
    ['tool_shadowing', 15],
    ['annotation_drift', 5],
    ['first_destructive_use', 5],
  ] as const;
  await clickHouseProgressStore({ reader: ch, writer: ch }).save(
    start.map(([detector, m]) => ({ detector, windowMs: m * MIN, lastEnd: at(10) })),
  );
});

after(async () => {
  await producer?.disconnect();
  const ka = kafka.admin();
  await ka.connect();
  await ka.deleteTopics({ topics: [ALERTS] }).catch(() => undefined);
  await ka.disconnect();
  await ch?.close();
  await admin?.command(sql`DROP DATABASE IF EXISTS ${dbIdent(DB)}`);
  await admin?.close();
});

test('raise what the tool inventory says is risky, stay quiet on the rest; alerts end by expiry and the next occurrence is new, across restarts', async () => {
  const read = call(at(10, 1), 's1', 'files', 'read_file');
  // The send carries its annotations itself (what a gateway adds from the session's last listing).
  const send = call(at(10, 3), 's1', 'mail', 'send_email', { tool_annotations: toolAnnotationsText(SEND) });
  await ch.insert('events', [
    read,
    send,
    call(at(10, 8), 's1', 'mail', 'send_email'), // the same flow, later: part of the open alert
    // Only reads; only sends; an unannotated tool before a send: all quiet.
    call(at(10, 1), 's2', 'files', 'read_file'),
    call(at(10, 2), 's2', 'files', 'read_file'),
    call(at(10, 1), 's3', 'mail', 'send_email'),
    call(at(10, 1), 's4', 'ops', 'cleanup', { tool_annotations: '', tool_name: 'unlisted' }),
    call(at(10, 2), 's4', 'mail', 'send_email'),
    // The overridden tool makes a flow of its own in s5 (a read-only open-world search does not).
    call(at(10, 1), 's5', 'web', 'search'),
    call(at(10, 2), 's5', 'mail', 'send_email'),
    call(at(10, 3), 's6', 'files', 'read_file', { client_id: C2 }),
    call(at(10, 4), 's6', 'chat', 'notify', { client_id: C2 }),
    // search offered to C1 by a second server, through an SDK source.
    listing(at(10, 2), 'web', 'search', { readOnlyHint: true, openWorldHint: true }),
    listing(at(10, 2), 'other-search', 'search', { readOnlyHint: true }),
    // ops/cleanup turns destructive, its definition hash unchanged.
    listing(at(10, 4), 'ops', 'cleanup', DESTROY),
    // C1's first delete, then another one.
    call(at(10, 6), 's7', 'files', 'delete_file'),
    call(at(10, 21), 's7', 'files', 'delete_file'),
  ]);
  let d = await startDetector();
  await advance(d, at(10, 50));

  for (const k of [KEYS.flow, KEYS.shadow, KEYS.drift, KEYS.first])
    assert.deepEqual(
      (await transitions(k)).map((t) => t.to_status),
      ['open'],
      k,
    );
  const flows = await alertsOf('toxic_flow');
  assert.deepEqual(
    flows.map((f) => f.dedup_key).sort(),
    [KEYS.flow, `toxic_flow:${C2}/s6:5m`].sort(),
    'only the sessions that read then sent',
  );
  const flow = flows.find((f) => f.dedup_key === KEYS.flow)!;
  assert.match(flow.summary, new RegExp(`files/read_file \\(read_private, event ${read.event_id as string}`));
  assert.match(flow.summary, new RegExp(`mail/send_email \\(send_out, event ${send.event_id as string}`));
  assert.match(flow.summary, /The data's path: files\/read_file → mail\/send_email/);
  assert.deepEqual(flow.sample_event_ids.slice(0, 2), [read.event_id, send.event_id]);
  assert.match(flows.find((f) => f.dedup_key !== KEYS.flow)!.summary, /chat\/notify \(send_out/);
  const shadow = (await alertsOf('tool_shadowing'))[0]!;
  assert.match(shadow.summary, /offered to client .* by 2 servers: web .*; other-search .*via sdk-/);
  assert.match((await alertsOf('annotation_drift'))[0]!.summary, /no longer read-only, now destructive/);
  assert.deepEqual(
    (await alertsOf('first_destructive_use')).map((a) => a.dedup_key),
    [KEYS.first],
    'the second delete is not a first',
  );

  // Restart: reloaded open; event time passes the hour of expiry.
  d = await startDetector();
  for (const k of [KEYS.flow, KEYS.shadow, KEYS.drift, KEYS.first]) assert.ok(d.lifecycle.isOpen(k), k);
  await advance(d, at(11, 30));
  for (const k of [KEYS.flow, KEYS.shadow, KEYS.drift, KEYS.first]) {
    const tr = await transitions(k);
    assert.deepEqual(
      tr.map((t) => t.to_status),
      ['open', 'resolved'],
      k,
    );
    assert.match(tr[1]!.note, /^expired: 1 hours of event time since it opened/);
  }

  // Restart again: nothing reloaded; the next occurrences are new alerts.
  d = await startDetector();
  for (const k of [KEYS.flow, KEYS.shadow, KEYS.drift, KEYS.first]) assert.ok(!d.lifecycle.isOpen(k), k);
  await ch.insert('events', [
    call(at(11, 31), 's1', 'files', 'read_file'),
    call(at(11, 32), 's1', 'mail', 'send_email'),
    listing(at(11, 31), 'third-search', 'search', { readOnlyHint: true }),
    listing(at(11, 31), 'ops', 'cleanup', { readOnlyHint: true }),
    listing(at(11, 33), 'ops', 'cleanup', DESTROY),
    call(at(11, 34), 's7', 'files', 'delete_file'), // C1's again: no first
    call(at(11, 34), 's8', 'files', 'delete_file', { client_id: C2 }),
  ]);
  await advance(d, at(12));
  for (const k of [KEYS.flow, KEYS.shadow, KEYS.drift]) {
    const tr = await transitions(k);
    assert.deepEqual(
      tr.map((t) => t.to_status),
      ['open', 'resolved', 'open'],
      k,
    );
    assert.notEqual(tr[2]!.alert_id, tr[0]!.alert_id, `${k}: a new alert`);
  }
  assert.deepEqual(
    (await transitions(KEYS.first)).map((t) => t.to_status),
    ['open', 'resolved'],
  );
  assert.deepEqual(
    (await transitions(KEYS.firstC2)).map((t) => t.to_status),
    ['open'],
  );
});

test('the tool inventory: annotations seen per server and tool, the current class, overrides applied', async () => {
  const inv = await readInventory(ch, config.periodic.toolClasses, { from: at(-49), to: at(13) });
  const entry = (server: string, tool: string) => inv.find((e) => e.server === server && e.tool === tool);
  assert.deepEqual(entry('files', 'read_file')?.current, READ);
  assert.equal(entry('files', 'read_file')?.classification.class, 'read_private');
  assert.equal(entry('mail', 'send_email')?.classification.class, 'send_out');
  assert.equal(entry('files', 'delete_file')?.classification.class, 'destructive');
  const notify = entry('chat', 'notify')!;
  assert.equal(notify.current, null, 'listed without annotations');
  assert.deepEqual([notify.classification.class, notify.classification.basis], ['send_out', 'override']);
  const cleanup = entry('ops', 'cleanup')!;
  assert.deepEqual(
    cleanup.annotationsSeen.map((a) => a.annotations),
    [{ readOnlyHint: true }, DESTROY],
    'every distinct annotations text, oldest first',
  );
  assert.equal(cleanup.classification.class, 'destructive', 'judged by the latest listing');
  assert.equal(cleanup.definitionHashes, 1, 'its definition hash never changed');
  const search = inv.filter((e) => e.tool === 'search').map((e) => e.server);
  assert.deepEqual(search.sort(), ['other-search', 'third-search', 'web']);
});

test('over a range, evaluating only the windows that may raise gives what every window gives on its own', async () => {
  // After the test above: flows, shadowing, drift (twice) and first uses between 10:00 and 11:35.
  for (const d of detectors()) {
    const from = at(9);
    const to = at(12);
    const ranged = await d.evaluateRange!(from, to);
    const one = [];
    for (let s = from; s < to; s += d.windowMs) {
      const fresh = detectors().find((x) => x.name === d.name)!;
      one.push(await fresh.evaluate(s, s + d.windowMs));
    }
    assert.equal(ranged.length, (to - from) / d.windowMs, d.name);
    assert.deepEqual(ranged, one, d.name);
    assert.ok(
      one.some((e) => e.findings.length > 0),
      `${d.name}: the range holds findings`,
    );
  }
});
