import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createRegistry, defineService, SHUTDOWN_PHASES } from '../src/index.js';

const quiet = () => pino({ level: 'silent' });

test('shutdown runs the phases in their fixed order, whatever the registration order', async () => {
  const order: string[] = [];
  let exitCode: number | undefined;
  const svc = defineService({
    name: 't',
    log: quiet(),
    registry: createRegistry('t', { defaultMetrics: false }),
    signals: false,
    exit: (c) => void (exitCode = c),
  });
  svc.onStop('close', 'close clickhouse', () => void order.push('close:clickhouse'));
  svc.onStop('commit', 'disconnect producer', () => void order.push('commit:producer'));
  svc.onStop('flush', 'flush writer', async () => {
    await new Promise((r) => setImmediate(r));
    order.push('flush:writer');
  });
  svc.onStop('drain', 'stop consumer', () => void order.push('drain:consumer'));
  svc.onStop('intake', 'close http', () => void order.push('intake:http'));
  svc.onStop('intake', 'stop cron', () => void order.push('intake:cron'));
  await svc.run();
  const code = await svc.stop('SIGTERM');
  assert.deepEqual(order, [
    'intake:http',
    'intake:cron',
    'drain:consumer',
    'flush:writer',
    'commit:producer',
    'close:clickhouse',
  ]);
  assert.equal(code, 0);
  assert.equal(exitCode, undefined, 'stop() returns the code; only a signal exits');
  assert.deepEqual([...SHUTDOWN_PHASES], ['intake', 'drain', 'flush', 'commit', 'close']);
});

test('shutdown runs once, a failed step does not stop the next, and the code says it failed', async () => {
  let flushed = 0;
  const svc = defineService({
    name: 't',
    log: quiet(),
    registry: createRegistry('t', { defaultMetrics: false }),
    signals: false,
  });
  svc.onStop('drain', 'stop consumer', () => {
    throw new Error('broker gone');
  });
  svc.onStop('flush', 'flush', () => void flushed++);
  const [a, b] = await Promise.all([svc.stop('SIGTERM'), svc.stop('SIGINT')]);
  assert.equal(a, 1);
  assert.equal(b, 1);
  assert.equal(flushed, 1);
});

test('ops server: /healthz, /readyz, /metrics; unready before start and while stopping', async () => {
  const registry = createRegistry('t', { defaultMetrics: false });
  let partsOk = true;
  const svc = defineService({ name: 't', log: quiet(), registry, signals: false });
  svc.health(() => ({ ok: partsOk, details: { consumer: partsOk } }));
  let res = await svc.ops.inject('/readyz');
  assert.equal(res.statusCode, 503, 'not ready before start');
  assert.equal((await svc.ops.inject('/healthz')).statusCode, 200);
  await svc.run();
  res = await svc.ops.inject('/readyz');
  assert.equal(res.statusCode, 200);
  assert.equal(res.json().started, true);
  partsOk = false;
  res = await svc.ops.inject('/healthz');
  assert.equal(res.statusCode, 503);
  assert.equal(res.json().consumer, false);
  assert.equal((await svc.ops.inject('/health')).statusCode, 503, '/health is an alias');
  partsOk = true;
  res = await svc.ops.inject('/metrics');
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /text\/plain/);
  let readyWhileStopping: number | undefined;
  svc.onStop('intake', 'probe', async () => {
    readyWhileStopping = (await svc.ops.inject('/readyz')).statusCode;
  });
  await svc.stop('test');
  assert.equal(readyWhileStopping, 503);
});

test('a start-up failure shuts down what was registered and exits 1', async () => {
  let exitCode: number | undefined;
  let closed = false;
  const svc = defineService({
    name: 't',
    log: quiet(),
    registry: createRegistry('t', { defaultMetrics: false }),
    signals: false,
    exit: (c) => void (exitCode = c),
  });
  svc.onStop('close', 'close clickhouse', () => void (closed = true));
  await svc.run(async () => {
    throw new Error('kafka unreachable');
  });
  assert.equal(exitCode, 1);
  assert.equal(closed, true);
});

test('parts: started after the start-up step in order, stopped in their phase, health combined', async () => {
  const order: string[] = [];
  const part = (name: string, ok: () => boolean) => ({
    start: async () => void order.push(`start ${name}`),
    stop: async () => void order.push(`stop ${name}`),
    health: () => ({ ok: ok(), details: { name } }),
  });
  let bOk = true;
  const svc = defineService({
    name: 't',
    log: quiet(),
    registry: createRegistry('t', { defaultMetrics: false }),
    signals: false,
  })
    .part(
      'a',
      part('a', () => true),
    )
    .part(
      'b',
      part('b', () => bOk),
      'intake',
    )
    .onStop('close', 'close db', () => void order.push('close db'));
  await svc.run(() => void order.push('topics'));
  assert.deepEqual(order, ['topics', 'start a', 'start b']);
  let res = await svc.ops.inject('/healthz');
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ok', a: { name: 'a' }, b: { name: 'b' } });
  bOk = false;
  res = await svc.ops.inject('/healthz');
  assert.equal(res.statusCode, 503);
  order.length = 0;
  await svc.stop('test');
  assert.deepEqual(order, ['stop b', 'stop a', 'close db'], 'intake before drain before close');
});
