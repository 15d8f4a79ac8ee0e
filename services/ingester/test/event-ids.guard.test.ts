import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { parseEvent, type AuditEventV1 } from '@mcp-audit/schema';
import { EventIdGuard, type EventIdStore, type StoredId } from '../src/event-ids.guard.js';
import { toEventRow, type EventRow } from '../src/events.row.js';

const T0 = Date.parse('2026-11-21T10:15:30.042Z');

function row(
  id: string,
  over: Record<string, unknown> = {},
  ingestedAtMs = T0 + 5_000,
  offset = '1',
): EventRow {
  const e = {
    schema_version: 1,
    event_id: id,
    ts: new Date(T0).toISOString(),
    kind: 'tool_call',
    source: { type: 'sdk', id: 'sdk-1', version: '0.1.0' },
    client: { id: 'client-a' },
    server: { name: 'filesystem', transport: 'stdio' },
    method: 'tools/call',
    tool: { name: 'read_file' },
    outcome: 'ok',
    duration_ms: 12,
    request_bytes: 10,
    response_bytes: 20,
    ...over,
  };
  const p = parseEvent(Buffer.from(JSON.stringify(e)), { now: T0 });
  assert.ok(p.ok, p.ok ? '' : p.reason);
  return toEventRow(p.event as AuditEventV1, p.raw, { partition: 0, offset, ingestedAtMs });
}

/**
 * event_ids and events held in memory with ClickHouse's answer shapes (64-bit integers as strings,
 * DateTime as the epoch seconds the store selects), so the guard's comparison of a stored row with a
 * new one is exercised as it runs against ClickHouse.
 */
function memoryStore(opts: { lookupDelayMs?: number } = {}) {
  const ids: StoredId[] = [];
  const events: Array<Record<string, unknown>> = [];
  let lookups = 0;
  const storedRowsIds: number[] = [];
  const store: EventIdStore = {
    async lookup(q) {
      lookups++;
      const snapshot = ids.filter((s) => q.includes(s.event_id));
      if (opts.lookupDelayMs) await new Promise((r) => setTimeout(r, opts.lookupDelayMs));
      return snapshot;
    },
    async storedRows(keys) {
      storedRowsIds.push(new Set(keys.map((k) => k.event_id)).size);
      return events.filter((e) => keys.some((k) => k.event_id === e.event_id && k.client_id === e.client_id));
    },
  };
  /** The reservation insert: acknowledged once visible to every later lookup. */
  const reserve = async (rows: StoredId[]) => {
    ids.push(...rows.map((r) => ({ ...r })));
  };
  const asStored = (r: EventRow) => ({
    ...r,
    request_bytes: String(r.request_bytes),
    response_bytes: String(r.response_bytes),
    kafka_offset: String(r.kafka_offset),
  });
  return {
    store,
    reserve,
    guard: () => new EventIdGuard(store, reserve),
    lookups: () => lookups,
    /** Ids per events-rows query. */
    storedRowsIds,
    /** What the ingester's insert does after the guard reserved the ids: the events rows. */
    write(rows: EventRow[]) {
      for (const r of rows) events.push(asStored(r));
    },
    /** A row stored before 009 (backfilled with digest ''). */
    backfilled(r: EventRow) {
      events.push(asStored(r));
      ids.push({
        event_id: r.event_id,
        digest: '',
        ts: r.ts,
        client_id: r.client_id,
        ver: r.ver,
        ingested_at: r.ingested_at,
      });
    },
  };
}

const kinds = (v: Array<{ kind: string }>) => v.map((x) => x.kind);

test('a stored id: the identical copy is a duplicate, another time or client is a conflict naming the fields', async () => {
  const m = memoryStore();
  const guard = m.guard();
  const id = randomUUID();
  const original = row(id);
  const first = await guard.check([original]);
  assert.deepEqual(kinds(first.verdicts), ['new']);
  m.write([original]);
  first.release();

  const redelivered = row(id, {}, T0 + 60_000, '7');
  const otherHour = row(id, { ts: new Date(T0 - 3_600_000).toISOString() }, T0 + 60_000);
  const otherClient = row(id, { client: { id: 'client-b' } }, T0 + 60_000);
  const r = await guard.check([redelivered, otherHour, otherClient]);
  assert.equal(m.lookups(), 2, 'one read-back per batch');
  assert.deepEqual(kinds(r.verdicts), ['duplicate', 'conflict', 'conflict']);
  const [, h, c] = r.verdicts as Array<{ kind: 'conflict'; fields: string[]; stored: { clientId: string } }>;
  assert.deepEqual(h!.fields, ['ts']);
  assert.deepEqual(c!.fields, ['client_id']);
  assert.equal(c!.stored.clientId, 'client-a');
  r.release();
});

test('within one batch the first copy wins; an identical later copy is a duplicate', async () => {
  const m = memoryStore();
  const guard = m.guard();
  const id = randomUUID();
  const r = await guard.check([row(id), row(id, { duration_ms: 99 }), row(id), row(randomUUID())]);
  assert.deepEqual(kinds(r.verdicts), ['new', 'conflict', 'duplicate', 'new']);
  assert.deepEqual((r.verdicts[1] as { fields: string[] }).fields, ['duration_ms']);
});

test('two concurrent batches of one process: the one that reserved the id first wins', async () => {
  const m = memoryStore({ lookupDelayMs: 20 });
  const guard = m.guard();
  const id = randomUUID();
  const [a, b] = await Promise.all([guard.check([row(id)]), guard.check([row(id, { client: { id: 'x' } })])]);
  assert.deepEqual([kinds(a.verdicts), kinds(b.verdicts)], [['new'], ['conflict']]);
  // Once the winner is durable and released, a later batch finds it stored.
  m.write([row(id)]);
  a.release();
  b.release();
  const c = await guard.check([row(id, { client: { id: 'x' } }), row(id)]);
  assert.deepEqual(kinds(c.verdicts), ['conflict', 'duplicate']);
});

test('an id stored before event_ids existed (digest unknown) is compared column by column', async () => {
  const m = memoryStore();
  const guard = m.guard();
  const id = randomUUID();
  m.backfilled(row(id, {}, T0));
  const r = await guard.check([row(id), row(id, { tool: { name: 'write_file' } })]);
  assert.deepEqual(kinds(r.verdicts), ['duplicate', 'conflict']);
  assert.deepEqual((r.verdicts[1] as { fields: string[] }).fields, ['tool_name']);
});

test('a crash between the reservation and the events insert: the redelivered copy is still written', async () => {
  const m = memoryStore();
  const guard = m.guard();
  const id = randomUUID();
  const first = await guard.check([row(id)]);
  assert.deepEqual(kinds(first.verdicts), ['new']);
  first.release(); // ...and the process dies before its events insert
  const again = await m.guard().check([row(id)]);
  assert.deepEqual(kinds(again.verdicts), ['new'], 'reserved with this content but not stored: written');
  m.write([row(id)]);
  again.release();
  const third = await m.guard().check([row(id, {}, T0 + 90_000, '9')]);
  assert.deepEqual(
    kinds(third.verdicts),
    ['duplicate'],
    'stored: an identical redelivery is not written again',
  );
});

test('two processes racing with two contents for one id: never both written, the stored one stays accepted', async () => {
  for (let i = 0; i < 50; i++) {
    const m = memoryStore({ lookupDelayMs: i % 3 });
    const id = randomUUID();
    const [a, b] = await Promise.all([
      m.guard().check([row(id)]),
      m.guard().check([row(id, { client: { id: 'client-b' } })]),
    ]);
    const both = [...kinds(a.verdicts), ...kinds(b.verdicts)];
    assert.ok(both.filter((k) => k === 'new').length <= 1, `both written: ${both.join(', ')}`);
    assert.ok(
      both.every((k) => k === 'new' || k === 'conflict'),
      both.join(', '),
    );
    const wonA = a.verdicts[0]!.kind === 'new';
    if (wonA) m.write([row(id)]);
    // A redelivery of the written content is a duplicate although a losing reservation exists;
    // a copy of the loser is refused again.
    const later = await m
      .guard()
      .check([row(id, {}, T0 + 90_000, '9'), row(id, { client: { id: 'client-b' } })]);
    if (wonA) assert.deepEqual(kinds(later.verdicts), ['duplicate', 'conflict']);
  }
});

test('a redelivered chunk of 2,500 stored ids: all duplicates, the events rows read 1,000 ids per query', async () => {
  const m = memoryStore();
  const rows = Array.from({ length: 2_500 }, (_, i) => row(randomUUID(), {}, T0 + 5_000, String(i)));
  const first = await m.guard().check(rows);
  assert.ok(first.verdicts.every((v) => v.kind === 'new'));
  assert.deepEqual(m.storedRowsIds, [], 'a new chunk reads no events rows');
  m.write(rows);
  const again = await m.guard().check(rows.map((r) => ({ ...r, ingested_at: r.ingested_at + 60 })));
  assert.ok(again.verdicts.every((v) => v.kind === 'duplicate'));
  assert.deepEqual(m.storedRowsIds, [1_000, 1_000, 500]);
});

test('an identical redelivery in a later chunk of the same ingestion second is a duplicate, not written again', async () => {
  const m = memoryStore();
  const g = m.guard();
  const id = randomUUID();
  // Both chunks are ingested in the same second: their reservations look alike (digest and second).
  const first = await g.check([row(id, {}, T0 + 5_000, '1')]);
  assert.deepEqual(kinds(first.verdicts), ['new']);
  m.write([row(id, {}, T0 + 5_000, '1')]);
  first.release();
  const again = await g.check([row(id, {}, T0 + 5_400, '2')]);
  assert.deepEqual(kinds(again.verdicts), ['duplicate']);
  again.release();
});

test('chunks that ask while a round is in flight share the next round; each frees only its own ids', async () => {
  const m = memoryStore({ lookupDelayMs: 30 });
  const g = m.guard();
  const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
  // The first chunk's round starts at once; the next three wait for it and go together.
  const first = g.check([row(a)]);
  const [r0, rb, rc, rdup] = await Promise.all([
    first,
    g.check([row(b)]),
    g.check([row(c), row(randomUUID())]),
    // another chunk of the same round holding c: c is this round's, in flight
    g.check([row(c)]),
  ]);
  assert.equal(m.lookups(), 2, 'two rounds for four chunks');
  assert.deepEqual(
    [kinds(r0.verdicts), kinds(rb.verdicts), kinds(rc.verdicts), kinds(rdup.verdicts)],
    [['new'], ['new'], ['new', 'new'], ['duplicate']],
  );
  // b is durable and freed; c is still on its way to events: an identical copy of c is a duplicate
  // (freeing the whole round with b would let it be written a second time).
  m.write([row(b)]);
  rb.release();
  const again = await g.check([row(c), row(b)]);
  assert.deepEqual(kinds(again.verdicts), ['duplicate', 'duplicate']);
  for (const r of [r0, rc, rdup, again]) r.release();
});

test('a failed round fails every chunk in it and frees their ids; the retry goes through', async () => {
  const m = memoryStore();
  let fail = true;
  const g = new EventIdGuard(
    {
      lookup: (q) => (fail ? Promise.reject(new Error('socket hang up')) : m.store.lookup(q)),
      storedRows: (k) => m.store.storedRows(k),
    },
    m.reserve,
  );
  const id = randomUUID();
  const results = await Promise.allSettled([g.check([row(id)]), g.check([row(randomUUID())])]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  fail = false;
  const retry = await g.check([row(id)]);
  assert.deepEqual(kinds(retry.verdicts), ['new']);
  retry.release();
});
