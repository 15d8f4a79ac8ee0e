import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRateLimiter, perMinute } from '../src/index.js';

test('a bucket holds a minute of tokens and refills continuously', () => {
  let t = 1_000_000;
  const rl = createRateLimiter({ ...perMinute(60), now: () => t });
  for (let i = 0; i < 60; i++) assert.equal(rl.take('a'), 0, `request ${i}`);
  assert.equal(rl.take('a'), 1000, 'one token a second');
  assert.equal(rl.take('b'), 0, 'keys are independent');
  t += 500;
  assert.equal(rl.take('a'), 500);
  t += 500;
  assert.equal(rl.take('a'), 0);
  assert.equal(rl.take('a'), 1000);
  t += 10 * 60_000;
  for (let i = 0; i < 60; i++) assert.equal(rl.take('a'), 0, 'refilled, but never beyond capacity');
  assert.ok(rl.take('a') > 0);
});

test('peek takes nothing', () => {
  const t = 0;
  const rl = createRateLimiter({ ...perMinute(2), now: () => t });
  assert.equal(rl.peek('a'), 0);
  assert.equal(rl.size(), 0, 'peeking an unknown key stores nothing');
  rl.take('a');
  rl.take('a');
  assert.equal(rl.peek('a'), 30_000);
  assert.equal(rl.peek('a'), 30_000);
  assert.equal(rl.take('a'), 30_000);
});

test('memory stays bounded under a flood of keys', () => {
  let t = 0;
  const rl = createRateLimiter({ ...perMinute(1), maxKeys: 1000, now: () => t });
  for (let i = 0; i < 50_000; i++) {
    rl.take(`addr-${i}`);
    t += 1;
    assert.ok(rl.size() <= 1000);
  }
});

test('full buckets are forgotten before throttled ones', () => {
  let t = 0;
  const rl = createRateLimiter({ ...perMinute(1), maxKeys: 1000, now: () => t });
  for (let i = 0; i < 999; i++) rl.take(`k-${i}`);
  t = 60_000; // those 999 are full again: forgetting them changes nothing
  rl.take('attacker');
  assert.ok(rl.take('attacker') > 0);
  rl.take('newcomer');
  assert.equal(rl.size(), 2);
  assert.ok(rl.peek('attacker') > 0, 'still throttled');
});
