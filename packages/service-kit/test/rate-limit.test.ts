import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRateLimiter, perMinute } from '../src/index.js';

test('per-key limits override the defaults, and a key keeps its tokens when its limits change', () => {
  let t = 0;
  const rl = createRateLimiter({ perSecond: 1, burst: 2, now: () => t });
  assert.equal(rl.take('a'), 0);
  assert.equal(rl.take('a'), 0);
  assert.equal(rl.take('a'), 1000);
  for (let i = 0; i < 10; i++) assert.equal(rl.take('vip', { perSecond: 10, burst: 10 }), 0);
  assert.equal(rl.take('vip', { perSecond: 10, burst: 10 }), 100);
  t += 100;
  assert.equal(rl.take('vip', { perSecond: 10, burst: 10 }), 0);
});

test('perMinute: a minute of burst, refilled continuously', () => {
  let t = 0;
  const rl = createRateLimiter({ ...perMinute(60), now: () => t });
  for (let i = 0; i < 60; i++) assert.equal(rl.take('a'), 0);
  assert.equal(rl.take('a'), 1000);
  assert.equal(rl.peek('a'), 1000);
  t += 1000;
  assert.equal(rl.peek('a'), 0);
  assert.equal(rl.take('a'), 0);
});
