import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from '@mcp-audit/clickhouse';
import { fromEventRow, reconstructEvent } from '@mcp-audit/ingester';
import {
  analyst,
  createTestTopics,
  ingesterEnv,
  kafka,
  listeningPort,
  makeEvent,
  produceEvents,
  rng,
  startService,
  suffix,
  waitFor,
  waitForStored,
  writeTokensFile,
} from '../lib/index.js';

test('100,000 events through Kafka and 10,000 through the collector: each stored exactly once, every field round-trips', async () => {
  const k = kafka();
  const admin = k.admin();
  await admin.connect();
  const producer = k.producer({ idempotent: true });
  await producer.connect();
  const ch = analyst();
  const tag = `volume-${suffix()}`;
  const viaCollector = `${tag}-http`;
  const topics = await createTestTopics(admin, 'volume');
  const r = rng(11);
  const kafkaEvents = Array.from({ length: 100_000 }, (_, i) =>
    makeEvent(r, i, { sourceId: tag, clientPrefix: tag, clients: 200, sourceType: 'sdk' }),
  );
  const httpEvents = Array.from({ length: 10_000 }, (_, i) =>
    makeEvent(r, i, { sourceId: viaCollector, clientPrefix: viaCollector, clients: 20 }),
  );
  const { file, tokens } = writeTokensFile([{ sourceId: viaCollector, scopes: ['ingest'] }]);
  const ing = startService('ingester', ingesterEnv(topics, `e2e-ingester-${suffix()}`), tag);
  const col = startService(
    'collector',
    {
      ...ingesterEnv(topics, 'unused'),
      MCP_AUDIT_COLLECTOR_PORT: '0',
      MCP_AUDIT_COLLECTOR_TOKENS_FILE: file,
      MCP_AUDIT_COLLECTOR_RATE_LIMIT_PER_MINUTE: '1000',
    },
    tag,
  );
  try {
    await produceEvents(producer, topics.events, kafkaEvents, 2_000);
    const port = await listeningPort(col, 'collector');
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok, {
      timeoutMs: 60_000,
      what: 'collector health',
    });
    for (let i = 0; i < httpEvents.length; i += 1_000) {
      const body = httpEvents
        .slice(i, i + 1_000)
        .map((e) => JSON.stringify(e))
        .join('\n');
      const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens[0]!.token}`, 'content-type': 'application/x-ndjson' },
        body,
      });
      const json = (await res.json()) as { accepted: number; rejected: number };
      assert.equal(res.status, 200, JSON.stringify(json).slice(0, 500));
      assert.equal(json.accepted, 1_000);
    }

    for (const [source, events] of [
      [tag, kafkaEvents],
      [viaCollector, httpEvents],
    ] as const) {
      const c = await waitForStored(ch, source, events.length, 300_000);
      assert.equal(c.distinct, events.length, `${source}: every event stored`);
      assert.equal(c.visible, events.length, `${source}: each event_id visible exactly once`);
      const byId = new Map(events.map((e) => [e.event_id as string, e]));
      // Page through the stored rows and rebuild each event from its columns.
      let checked = 0;
      for (let page = 0; ; page++) {
        const rows = await ch.query<Record<string, unknown>>(
          sql`SELECT * FROM mcp_audit.events FINAL WHERE source_id = ${source} ORDER BY event_id LIMIT 20000 OFFSET ${page * 20_000}`,
        );
        if (rows.length === 0) break;
        for (const row of rows) {
          const original = byId.get(String(row.event_id));
          assert.ok(original, `stored an event that was never sent: ${String(row.event_id)}`);
          assert.deepEqual(fromEventRow(row), original);
          // raw holds only the remainder (migration 013): columns plus raw give what was sent
          assert.deepEqual(reconstructEvent(row), original, 'the stored event equals what was sent');
          checked++;
        }
      }
      assert.equal(checked, events.length);
    }
  } finally {
    assert.equal(await col.stop(), 0);
    assert.equal(await ing.stop(), 0);
    await producer.disconnect();
    await admin.disconnect();
    await ch.close();
  }
});
