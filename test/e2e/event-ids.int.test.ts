/**
 * One event per event_id (issue 13 item 5), end to end on the tests' own stack: a real ingester process
 * (Kafka → ClickHouse) refuses a copy that reuses a stored id with other content (another hour, another
 * client, another day, or a second content in the same batch), dead-letters it with the reason and
 * records the conflict; the event_id_reuse detector raises its alert from that record; the hourly
 * rollup and the analyst API see the original only; an identical retry stays one event. And the race
 * (README "One event per event_id"): two ingester processes given the same id with two clients at
 * the same moment, 200 times, never both store their copy; every refused copy is dead-lettered.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KafkaMessage } from 'kafkajs';
import { createClickHouse, sql, tuple } from '@mcp-audit/clickhouse';
import { createKafka, createProducer, DLQ_HEADERS } from '@mcp-audit/kafka';
import { createLogger, generateKey, hashKey } from '@mcp-audit/service-kit';
import { buildApi, clickHouseAccessLog, defaultApiConfig, staticKeyRing } from '@mcp-audit/api';
import { DEFAULT_PERIODIC_CONFIG, eventIdReuseDetector } from '@mcp-audit/detector';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import {
  brokers,
  createTestTopics,
  env,
  ingesterEnv,
  kafka,
  need,
  produceEvents,
  startService,
  suffix,
  analyst,
  waitFor,
  type StackClients,
  type ServiceProcess,
} from '../lib/index.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const sfx = suffix();
const SOURCE = `ids-${sfx}`;
const CLIENT = `ids-client-${sfx}`;
const MALLORY = `ids-mallory-${sfx}`;
const SECRET = `sk-live-${sfx}-never-in-a-reason`;
// Three days back, ten past an hour: "another hour" and "another day" stay within the 30-day age limit.
const T = Math.floor((Date.now() - 3 * DAY) / HOUR) * HOUR + 10 * 60_000;

const c = {} as StackClients;
let ingester: ServiceProcess;
let topics: { events: string; dlq: string };
let dlq: Array<KafkaMessage & { partition: number }> = [];
const group = `e2e-ids-${sfx}`;

function event(id: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema_version: 1,
    event_id: id,
    ts: new Date(T).toISOString(),
    kind: 'tool_call',
    source: { type: 'gateway', id: SOURCE, version: '0.1.0' },
    client: { id: CLIENT },
    server: { name: 'filesystem', transport: 'stdio' },
    method: 'tools/call',
    tool: { name: 'read_file' },
    outcome: 'ok',
    duration_ms: 12,
    request_bytes: 100,
    response_bytes: 1000,
    args: { path: '/srv/a.txt', token: SECRET },
    ...over,
  };
}

const ids = {
  otherHour: randomUUID(),
  otherClient: randomUUID(),
  otherDay: randomUUID(),
  retried: randomUUID(),
  sameBatch: randomUUID(),
};
const originals = [ids.otherHour, ids.otherClient, ids.otherDay, ids.retried].map((id) => event(id));
const forged = {
  otherHour: event(ids.otherHour, { ts: new Date(T + HOUR).toISOString(), tool: { name: 'delete_all' } }),
  otherClient: event(ids.otherClient, { client: { id: MALLORY } }),
  otherDay: event(ids.otherDay, { ts: new Date(T - DAY).toISOString() }),
};

async function physical(id: string): Promise<number> {
  const [r] = await c.ch.query<{ n: string }>(
    sql`SELECT count() AS n FROM mcp_audit.events WHERE event_id = ${id}`,
  );
  return Number(r!.n);
}

async function readDlq(n: number, topic = topics.dlq): Promise<Array<KafkaMessage & { partition: number }>> {
  const out: Array<KafkaMessage & { partition: number }> = [];
  const consumer = kafka().consumer({ groupId: `e2e-ids-dlq-${suffix()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message, partition }) => void out.push({ ...message, partition }),
  });
  try {
    await waitFor(async () => (out.length >= n ? true : undefined), {
      timeoutMs: 90_000,
      intervalMs: 200,
      what: `${n} dead letters`,
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

before(async () => {
  const k = kafka();
  c.admin = k.admin();
  await c.admin.connect();
  c.producer = k.producer({ idempotent: true, allowAutoTopicCreation: false });
  await c.producer.connect();
  c.ch = analyst();
  topics = await createTestTopics(c.admin, 'ids');
  ingester = startService(
    'ingester',
    ingesterEnv(topics, group, { MCP_AUDIT_INGESTER_FLUSH_MS: '100' }),
    `ids-${sfx}`,
  );
  await produceEvents(c.producer, topics.events, originals);
  await drained(group);
  // The forged copies, a byte-identical retry, and a new id sent twice with two contents in one send.
  await produceEvents(c.producer, topics.events, [
    forged.otherHour,
    forged.otherClient,
    forged.otherDay,
    originals[3]!,
    event(ids.sameBatch),
    event(ids.sameBatch, { ts: new Date(T + HOUR).toISOString() }),
  ]);
  await drained(group);
  const [end] = await c.admin.fetchTopicOffsets(topics.dlq);
  dlq = Number(end!.high) > 0 ? await readDlq(Number(end!.high)) : [];
});

/** Until the ingester has committed every message of the events topic (stored or dead-lettered). */
async function drained(groupId: string, topic = topics.events): Promise<void> {
  await waitFor(
    async () => {
      const ends = await c.admin.fetchTopicOffsets(topic);
      const [committed] = await c.admin.fetchOffsets({ groupId, topics: [topic] });
      const at = new Map(committed!.partitions.map((p) => [p.partition, Number(p.offset)]));
      return ends.every((e) => (at.get(e.partition) ?? -1) >= Number(e.high) || Number(e.high) === 0)
        ? true
        : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 300, what: 'the ingester to commit the whole events topic' },
  );
}

after(async () => {
  if (ingester) assert.equal(await ingester.stop(), 0, 'graceful exit');
  await c.admin?.deleteTopics({ topics: [topics.events, topics.dlq] }).catch(() => undefined);
  await c.producer?.disconnect();
  await c.admin?.disconnect();
  await c.ch?.close();
});

const header = (m: KafkaMessage, h: string) => String(m.headers?.[h] ?? '');

test('a copy reusing a stored id with another hour, client or day is refused into the DLQ with the reason', () => {
  assert.equal(dlq.length, 4, 'exactly the three forgeries and the second same-batch content');
  const byId = new Map(
    dlq.map((m) => [/event_id ([0-9a-f-]{36})/.exec(header(m, DLQ_HEADERS.reason))?.[1], m] as const),
  );
  for (const [name, id] of Object.entries(ids)) {
    if (name === 'retried') {
      assert.ok(!byId.has(id), 'an identical retry is not refused');
      continue;
    }
    const m = byId.get(id);
    assert.ok(m, `${name}: dead-lettered`);
    assert.equal(header(m, DLQ_HEADERS.code), 'AUDIT_ERR_EVENT_ID_CONFLICT');
  }
  const reason = (id: string) => header(byId.get(id)!, DLQ_HEADERS.reason);
  assert.match(reason(ids.otherHour), /differing fields: ts, tool_name\)/);
  assert.match(reason(ids.otherClient), /differing fields: client_id\)/);
  assert.match(reason(ids.otherDay), /differing fields: ts\)/);
  assert.match(reason(ids.sameBatch), /differing fields: ts\)/);
  for (const m of dlq) {
    const all = Buffer.concat([
      m.value ?? Buffer.alloc(0),
      ...Object.values(m.headers ?? {}).map((v) => Buffer.from(String(v))),
    ]);
    assert.ok(!all.includes(SECRET), 'no argument value in a dead letter');
    assert.ok(!header(m, DLQ_HEADERS.reason).includes(MALLORY), 'the reason names fields, never values');
  }
});

test('one stored copy per id: forgeries never stored, an identical retry not written again', async () => {
  for (const [name, id] of Object.entries(ids)) assert.equal(await physical(id), 1, `${name}: one row`);
  const rows = await c.ch.query<{ id: string; ts: string; client_id: string; tool_name: string }>(sql`
    SELECT toString(event_id) AS id, toString(ts) AS ts, client_id, tool_name FROM mcp_audit.events FINAL
    WHERE event_id IN ${tuple(Object.values(ids))}`);
  for (const r of rows) {
    assert.equal(r.client_id, CLIENT);
    assert.equal(r.tool_name, 'read_file');
    assert.equal(
      Date.parse(`${r.ts.replace(' ', 'T')}Z`),
      Math.floor(T / 1000) * 1000,
      `${r.id}: original time`,
    );
  }
});

test('events_hourly counts each id once, in the original hour and client only; bytes too', async () => {
  const rows = await c.ch.query<{ client_id: string; hour: string; calls: string; req: string }>(sql`
    SELECT client_id, toString(hour) AS hour, uniqExactMerge(calls) AS calls, sumMerge(request_bytes) AS req
    FROM mcp_audit.events_hourly WHERE client_id IN ${tuple([CLIENT, MALLORY])}
    GROUP BY client_id, hour ORDER BY hour`);
  assert.deepEqual(
    rows.map((r) => [
      r.client_id,
      Date.parse(`${r.hour.replace(' ', 'T')}Z`),
      Number(r.calls),
      Number(r.req),
    ]),
    [[CLIENT, T - 10 * 60_000, 5, 500]],
  );
});

test('the event_id_reuse alert is raised from the refusal record: high, names the id, both clients and sources, the fields', async () => {
  const recs = await c.ch.query<{ id: string; at: string }>(sql`
    SELECT toString(event_id) AS id, toUInt32(detected_at) AS at FROM mcp_audit.event_id_conflicts
    WHERE event_id IN ${tuple(Object.values(ids))}`);
  assert.equal(new Set(recs.map((r) => r.id)).size, 4);
  const cfg = DEFAULT_PERIODIC_CONFIG.eventIdReuse;
  const first = Math.min(...recs.map((r) => Number(r.at) * 1000));
  const last = Math.max(...recs.map((r) => Number(r.at) * 1000));
  const from = Math.floor(first / cfg.windowMs) * cfg.windowMs;
  const to = (Math.floor(last / cfg.windowMs) + 1) * cfg.windowMs;
  const d = eventIdReuseDetector(c.ch, cfg);
  const findings = (await d.evaluateRange!(from, to)).flatMap((e) => e.findings);
  const forId = (id: string) => findings.filter((f) => f.dedupKey.startsWith(`event_id_reuse:${id}:`));
  for (const id of [ids.otherHour, ids.otherClient, ids.otherDay, ids.sameBatch])
    assert.equal(forId(id).length, 1, `one alert for ${id}`);
  assert.equal(forId(ids.retried).length, 0, 'an identical retry raises nothing');
  const f = forId(ids.otherClient)[0]!;
  assert.equal(f.severity, 'high');
  assert.equal(f.clientId, CLIENT);
  assert.match(f.title, /client_id/);
  assert.ok(f.summary.includes(`client ${MALLORY}, source ${SOURCE}`), f.summary);
  assert.ok(f.summary.includes(`for client ${CLIENT}, source ${SOURCE}`), f.summary);
  assert.match(forId(ids.otherHour)[0]!.title, /\(ts, tool_name\)/);
  assert.ok(!JSON.stringify(findings).includes(SECRET));
});

test('the analyst API over the forged hour, day or client finds nothing forged', async () => {
  const reader = createClickHouse({
    url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    username: need(env, 'MCP_AUDIT_CLICKHOUSE_API_READER_USER'),
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_API_READER_PASSWORD'),
    database: 'mcp_audit',
  });
  const writer = createClickHouse({
    url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    username: need(env, 'MCP_AUDIT_CLICKHOUSE_API_USER'),
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_API_PASSWORD'),
    database: 'mcp_audit',
    insertTables: ['access_log', 'alert_transitions'],
  });
  const key = generateKey('mcpa');
  const producer = createProducer(
    createKafka(
      {
        brokers,
        clientId: `e2e-ids-${sfx}`,
        ssl: false,
        replicationFactor: 1,
        connectionTimeoutMs: 3000,
        requestTimeoutMs: 10_000,
      },
      createLogger('e2e', { level: 'silent' }),
    ),
  );
  let app: FastifyInstance | undefined;
  try {
    app = await buildApi(defaultApiConfig(), {
      reader,
      writer,
      producer,
      keys: staticKeyRing([{ id: `e2e-ids-${sfx}`, sha256: hashKey(key), scopes: ['analyst'] }]),
      accessLog: clickHouseAccessLog(writer),
      log: createLogger('e2e-ids-api', { level: 'silent' }),
    });
    const search = async (q: Record<string, string>) => {
      const res = await app!.inject({
        url: `/api/v1/events?${new URLSearchParams({ source: SOURCE, ...q })}`,
        headers: { authorization: `Bearer ${key}` },
      });
      assert.equal(res.statusCode, 200, res.body);
      return (res.json() as { items: Array<{ event_id: string }> }).items.map((e) => e.event_id);
    };
    const iso = (ms: number) => new Date(ms).toISOString();
    const hourOf = Math.floor(T / HOUR) * HOUR;
    assert.deepEqual(
      await search({ from: iso(hourOf + HOUR), to: iso(hourOf + 2 * HOUR) }),
      [],
      'forged hour',
    );
    assert.deepEqual(
      await search({ from: iso(hourOf - DAY), to: iso(hourOf - DAY + HOUR) }),
      [],
      'forged day',
    );
    assert.deepEqual(
      await search({ client: MALLORY, from: iso(hourOf), to: iso(hourOf + HOUR) }),
      [],
      'forged client',
    );
    // Not vacuous: the originals are found in their own hour.
    assert.deepEqual(
      (await search({ from: iso(hourOf), to: iso(hourOf + HOUR) })).sort(),
      Object.values(ids).sort(),
    );
  } finally {
    await app?.close();
    await reader.close();
    await writer.close();
  }
});

test('two ingesters racing: the same id with two clients at the same moment, 200 times: never two contents stored, every refused copy dead-lettered', async (t) => {
  const ROUNDS = 40;
  const PER_ROUND = 5;
  const side = (tag: 'a' | 'b') => ({
    client: `ids-race-${tag}-${sfx}`,
    group: `e2e-ids-race-${tag}-${sfx}`,
  });
  const sides = { a: side('a'), b: side('b') };
  const raceTopics = {
    a: await createTestTopics(c.admin, 'idsrace'),
    b: await createTestTopics(c.admin, 'idsrace'),
  };
  const procs = (['a', 'b'] as const).map((k) =>
    startService(
      'ingester',
      ingesterEnv(raceTopics[k], sides[k].group, { MCP_AUDIT_INGESTER_FLUSH_MS: '100' }),
      `ids-race-${k}-${sfx}`,
    ),
  );
  const copy = (id: string, k: 'a' | 'b') => event(id, { client: { id: sides[k].client } });
  try {
    // Both consume before the race: one event each, committed.
    for (const k of ['a', 'b'] as const) {
      await produceEvents(c.producer, raceTopics[k].events, [copy(randomUUID(), k)]);
      await drained(sides[k].group, raceTopics[k].events);
    }
    const raced: string[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const round = Array.from({ length: PER_ROUND }, () => randomUUID());
      raced.push(...round);
      await Promise.all(
        (['a', 'b'] as const).map((k) =>
          produceEvents(
            c.producer,
            raceTopics[k].events,
            round.map((id) => copy(id, k)),
          ),
        ),
      );
      await new Promise((res) => setTimeout(res, 30));
    }
    for (const k of ['a', 'b'] as const) await drained(sides[k].group, raceTopics[k].events);

    const stored = await c.ch.query<{ id: string; client_id: string; n: string }>(sql`
      SELECT toString(event_id) AS id, client_id, count() AS n FROM mcp_audit.events
      WHERE event_id IN ${tuple(raced)} GROUP BY id, client_id`);
    const clientsOf = new Map<string, string[]>();
    for (const r of stored) clientsOf.set(r.id, [...(clientsOf.get(r.id) ?? []), r.client_id]);
    const twice = [...clientsOf].filter(([, cl]) => cl.length > 1).map(([id]) => id);
    assert.deepEqual(twice, [], `${twice.length} of ${raced.length} ids stored with two contents`);
    for (const r of stored) assert.equal(Number(r.n), 1, `${r.id}: written once`);

    const refusedBy = { a: new Set<string>(), b: new Set<string>() };
    for (const k of ['a', 'b'] as const) {
      const [end] = await c.admin.fetchTopicOffsets(raceTopics[k].dlq);
      const letters = Number(end!.high) > 0 ? await readDlq(Number(end!.high), raceTopics[k].dlq) : [];
      for (const m of letters) {
        assert.equal(header(m, DLQ_HEADERS.code), 'AUDIT_ERR_EVENT_ID_CONFLICT');
        refusedBy[k].add(/event_id ([0-9a-f-]{36})/.exec(header(m, DLQ_HEADERS.reason))![1]!);
      }
    }
    const tally = { a: 0, b: 0, bothRefused: 0 };
    for (const id of raced) {
      const won = clientsOf.get(id)?.[0];
      for (const k of ['a', 'b'] as const) {
        const mine = won === sides[k].client;
        assert.equal(refusedBy[k].has(id), !mine, `${id}: copy ${k} ${mine ? 'stored' : 'dead-lettered'}`);
      }
      if (won === sides.a.client) tally.a++;
      else if (won === sides.b.client) tally.b++;
      else tally.bothRefused++;
    }
    t.diagnostic(`stored a: ${tally.a}, stored b: ${tally.b}, both refused: ${tally.bothRefused}`);
    const records = await c.ch.query<{ n: string }>(sql`
      SELECT uniqExact(event_id, refused_client_id) AS n FROM mcp_audit.event_id_conflicts
      WHERE event_id IN ${tuple(raced)}`);
    assert.equal(Number(records[0]!.n), refusedBy.a.size + refusedBy.b.size, 'every refusal recorded');

    // A tie's recovery (README): an admin drops the reservation of the copy judged forged (b's, by its
    // refused_digest), then the legitimate one sent again (as `dlq replay` sends it) is stored.
    const tie = raced.find((id) => !clientsOf.has(id));
    if (tie) {
      const [rec] = await c.ch.query<{ digest: string }>(sql`
        SELECT any(refused_digest) AS digest FROM mcp_audit.event_id_conflicts
        WHERE event_id = ${tie} AND refused_client_id = ${sides.b.client}`);
      const admin = createClickHouse({
        url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
        username: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER'),
        password: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
        database: 'mcp_audit',
      });
      try {
        await admin.command(
          sql`ALTER TABLE mcp_audit.event_ids DELETE WHERE event_id = ${tie} AND digest = ${rec!.digest}`,
        );
        await waitFor(
          async () => {
            const [r] = await admin.query<{ n: string }>(
              sql`SELECT count() AS n FROM mcp_audit.event_ids WHERE event_id = ${tie} AND digest = ${rec!.digest}`,
            );
            return Number(r!.n) === 0 ? true : undefined;
          },
          { timeoutMs: 60_000, intervalMs: 200, what: "the losing reservation's delete" },
        );
      } finally {
        await admin.close();
      }
    }

    // An identical redelivery of a stored copy is accepted (not refused, not written again) although
    // the loser's reservation stays; a copy that lost is refused again.
    const [before] = await c.admin.fetchTopicOffsets(raceTopics.a.dlq);
    await produceEvents(
      c.producer,
      raceTopics.a.events,
      raced.map((id) => copy(id, 'a')),
    );
    await drained(sides.a.group, raceTopics.a.events);
    const [afterEnd] = await c.admin.fetchTopicOffsets(raceTopics.a.dlq);
    assert.equal(
      Number(afterEnd!.high) - Number(before!.high),
      raced.length - tally.a - (tie ? 1 : 0),
      'refused again: the copies that lost (the recovered tie aside)',
    );
    const [again] = await c.ch.query<{ n: string }>(sql`
      SELECT count() AS n FROM mcp_audit.events WHERE event_id IN ${tuple(raced)}`);
    assert.equal(Number(again!.n), stored.length + (tie ? 1 : 0), 'nothing written twice');
    if (tie) {
      const rows = await c.ch.query<{ client_id: string }>(
        sql`SELECT client_id FROM mcp_audit.events WHERE event_id = ${tie}`,
      );
      assert.deepEqual(
        rows.map((r) => r.client_id),
        [sides.a.client],
        'the tie recovered: the legitimate copy stored',
      );
    }
  } finally {
    for (const p of procs) assert.equal(await p.stop(), 0, 'graceful exit');
    await c.admin
      .deleteTopics({ topics: Object.values(raceTopics).flatMap((x) => [x.events, x.dlq]) })
      .catch(() => undefined);
  }
});
