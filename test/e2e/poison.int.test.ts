import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventKeyFor } from '@mcp-audit/schema';
import {
  analyst,
  createTestTopics,
  ingesterEnv,
  kafka,
  makeEvent,
  rng,
  startService,
  suffix,
  waitFor,
  waitForStored,
} from '../lib/index.js';

/** Ten kinds of poison, each with what the DLQ reason must mention. */
function poison(i: number, valid: Record<string, unknown>): { value: Buffer; expect: RegExp } {
  const clone = () => structuredClone(valid);
  switch (i % 10) {
    case 0:
      return { value: Buffer.from('{"schema_version":1,"event_id":'), expect: /JSON|malformed/i };
    case 1: {
      const e = clone();
      delete (e.client as Record<string, unknown>).id;
      return { value: Buffer.from(JSON.stringify(e)), expect: /client\.id/ };
    }
    case 2:
      return {
        value: Buffer.from(JSON.stringify({ ...clone(), schema_version: 2 })),
        expect: /schema_version/,
      };
    case 3:
      return { value: Buffer.from(JSON.stringify({ ...clone(), duration_ms: -5 })), expect: /duration_ms/ };
    case 4:
      return {
        value: Buffer.from(JSON.stringify({ ...clone(), args: { blob: 'x'.repeat(300 * 1024) } })),
        expect: /too large|size|bytes|args/i,
      };
    case 5:
      return { value: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), expect: /UTF-8|JSON|malformed/i };
    case 6:
      return {
        value: Buffer.from(
          JSON.stringify(clone()).replace('"args":{', '"args":{"__proto__":{"admin":true},'),
        ),
        expect: /__proto__/,
      };
    case 7:
      return {
        value: Buffer.from(JSON.stringify({ ...clone(), event_id: 'not-a-uuid' })),
        expect: /event_id/,
      };
    case 8:
      return {
        value: Buffer.from(JSON.stringify({ ...clone(), ts: '2999-01-01T00:00:00.000Z' })),
        expect: /ts/,
      };
    default:
      return { value: Buffer.from('[]'), expect: /object|expected/i };
  }
}

test('1,000 poison messages interleaved with valid ones: each in the DLQ with a reason, every valid one stored', async () => {
  const k = kafka();
  const admin = k.admin();
  await admin.connect();
  const producer = k.producer({ idempotent: true });
  await producer.connect();
  const ch = analyst();
  const tag = `poison-${suffix()}`;
  const topics = await createTestTopics(admin, 'poison');
  const r = rng(7);
  const valid = Array.from({ length: 5_000 }, (_, i) =>
    makeEvent(r, i, { sourceId: tag, clientPrefix: tag }),
  );
  const expected = new Map<string, RegExp>();
  const messages: Array<{ key: string; value: Buffer }> = [];
  let p = 0;
  valid.forEach((e, i) => {
    messages.push({
      key: eventKeyFor(String((e.client as { id: string }).id)),
      value: Buffer.from(JSON.stringify(e)),
    });
    if (i % 5 === 0) {
      const bad = poison(p, e);
      const key = `poison-${p++}`;
      expected.set(key, bad.expect);
      messages.push({ key, value: bad.value });
    }
  });
  assert.equal(expected.size, 1_000);

  const ing = startService('ingester', ingesterEnv(topics, `e2e-ingester-${suffix()}`), tag);
  const dead = new Map<string, { reason: string; code: string; partition: string; offset: string }>();
  const consumer = k.consumer({ groupId: `e2e-dlq-${suffix()}` });
  try {
    // Record batches stay under the broker's 1 MiB limit (an oversized poison is ~300 KiB).
    let chunk: typeof messages = [];
    let bytes = 0;
    for (const m of [...messages, null]) {
      if (m === null || bytes + m.value.length > 700_000) {
        if (chunk.length > 0) await producer.send({ topic: topics.events, acks: -1, messages: chunk });
        chunk = [];
        bytes = 0;
      }
      if (m) {
        chunk.push(m);
        bytes += m.value.length;
      }
    }
    await consumer.connect();
    await consumer.subscribe({ topic: topics.dlq, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const h = message.headers ?? {};
        dead.set(message.key?.toString() ?? '', {
          reason: String(h['mcp-audit-dlq-reason'] ?? ''),
          code: String(h['mcp-audit-dlq-code'] ?? ''),
          partition: String(h['mcp-audit-source-partition'] ?? ''),
          offset: String(h['mcp-audit-source-offset'] ?? ''),
        });
      },
    });
    const stored = await waitForStored(ch, tag, valid.length);
    assert.equal(stored.visible, valid.length, 'every valid event stored once');
    await waitFor(() => dead.size >= expected.size, { timeoutMs: 60_000, what: '1,000 dead letters' });
    assert.equal(dead.size, expected.size);
    for (const [key, pattern] of expected) {
      const d = dead.get(key);
      assert.ok(d, `${key} is in the DLQ`);
      assert.match(d.code, /^AUDIT_ERR_/, `${key} has a code`);
      assert.match(d.reason, pattern, `${key}: reason "${d.reason}" names the problem`);
      assert.match(d.partition, /^\d+$/);
      assert.match(d.offset, /^\d+$/);
    }
  } finally {
    await consumer.disconnect();
    assert.equal(await ing.stop(), 0);
    await producer.disconnect();
    await admin.disconnect();
    await ch.close();
  }
});
