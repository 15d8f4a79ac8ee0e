import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../src/index.js';
import { BatchWriter } from '../src/batch.writer.js';

const log = createLogger('test', { level: 'silent' });

class Transient extends Error {}
class Permanent extends Error {}

function writer(
  insert: (rows: number[]) => Promise<void>,
  over: Partial<{ maxRows: number; flushMs: number; maxBufferedRows: number }> = {},
) {
  return new BatchWriter<number>({
    name: 't',
    insert,
    isRetryable: (e) => e instanceof Transient,
    maxRows: over.maxRows ?? 100,
    flushMs: over.flushMs ?? 20,
    maxBufferedRows: over.maxBufferedRows ?? 1_000,
    log,
    backoff: { initialMs: 1, maxMs: 5 },
  });
}

test('flushes by row count and by age, one insert in flight, callers resolved after their rows are inserted', async () => {
  const inserts: number[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const w = writer(async (rows) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, 5));
    inserts.push(rows);
    inFlight--;
  });
  const a = w.add(Array.from({ length: 60 }, (_, i) => i));
  const b = w.add(Array.from({ length: 60 }, (_, i) => 100 + i));
  const c = w.add([999]);
  assert.deepEqual(await a, []);
  assert.deepEqual(await b, []);
  assert.deepEqual(await c, []);
  assert.equal(maxInFlight, 1);
  assert.equal(inserts.flat().length, 121);
  // Whole add() calls stay together and in order.
  assert.deepEqual(inserts.flat(), [
    ...Array.from({ length: 60 }, (_, i) => i),
    ...Array.from({ length: 60 }, (_, i) => 100 + i),
    999,
  ]);
});

test('transient errors are retried until they succeed: nothing dropped, order kept', async () => {
  let failures = 5;
  const stored: number[] = [];
  const w = writer(async (rows) => {
    if (failures-- > 0) throw new Transient('connection refused');
    stored.push(...rows);
  });
  const res = await Promise.all([w.add([1, 2, 3]), w.add([4, 5])]);
  assert.deepEqual(res, [[], []]);
  assert.deepEqual(stored, [1, 2, 3, 4, 5]);
});

test('a permanently refused row is isolated by splitting; the rest are stored', async () => {
  const stored: number[] = [];
  const w = writer(async (rows) => {
    if (rows.includes(13)) throw new Permanent('Cannot parse input');
    stored.push(...rows);
  });
  const failures = await w.add(Array.from({ length: 40 }, (_, i) => i));
  assert.equal(failures.length, 1);
  assert.equal(failures[0]!.index, 13);
  assert.match(failures[0]!.error.message, /Cannot parse/);
  assert.deepEqual(
    stored.sort((x, y) => x - y),
    Array.from({ length: 40 }, (_, i) => i).filter((i) => i !== 13),
  );
});

test('backpressure: add waits while the buffer is full', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const w = writer(
    async () => {
      await gate;
    },
    { maxRows: 10, maxBufferedRows: 20 },
  );
  const first = w.add(Array.from({ length: 10 }, (_, i) => i)); // in flight
  const second = w.add(Array.from({ length: 10 }, (_, i) => i)); // buffered: 20 held
  let thirdQueued = false;
  const third = w.add(Array.from({ length: 10 }, (_, i) => i)).then((r) => {
    thirdQueued = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(thirdQueued, false, 'third add is held back');
  assert.ok(w.bufferedRows <= 20);
  release();
  await Promise.all([first, second, third]);
  assert.equal(thirdQueued, true);
});

test('abort rejects pending adds instead of acknowledging them', async () => {
  const w = writer(async () => {
    throw new Transient('down');
  });
  const p = w.add([1]);
  await new Promise((r) => setTimeout(r, 20));
  w.abort('shutdown deadline');
  await assert.rejects(p);
});
