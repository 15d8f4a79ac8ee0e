import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRedactor, DEFAULT_MAX_DEPTH, DEPTH_MARKER } from '../src/index.js';

const redactor = createRedactor({ fingerprintKey: 'test-redaction-key-0123456789' });
const GH = `ghp_${'Qw7'.repeat(12)}`;

function depthOf(v: unknown): number {
  let d = 0;
  let cur = v;
  while (cur !== null && typeof cur === 'object') {
    cur = Array.isArray(cur) ? cur[0] : (cur as { next?: unknown }).next;
    d++;
  }
  return d;
}

describe('limits', () => {
  it('caps very deep input with a marker instead of overflowing the stack', () => {
    let deep: unknown = { password: 'deep-secret-value', token: GH };
    for (let i = 0; i < 100_000; i++) deep = i % 2 ? [deep] : { next: deep };
    const r = redactor.redactValue(deep);
    const json = JSON.stringify(r.value);
    assert.ok(json.includes(DEPTH_MARKER));
    assert.ok(!json.includes(GH) && !json.includes('deep-secret-value'));
    assert.ok(r.kinds.includes('max_depth'));
    assert.ok(depthOf(r.value) <= DEFAULT_MAX_DEPTH);
  });

  it('honours a custom depth', () => {
    const shallow = createRedactor({ fingerprintKey: 'k-0123456789abcdef', maxDepth: 2 });
    assert.deepEqual(shallow.redactValue({ a: { b: { c: 1 } }, x: 1 }).value, {
      a: { b: DEPTH_MARKER },
      x: 1,
    });
    assert.deepEqual(shallow.redactValue({ a: { b: 'ok' } }).value, { a: { b: 'ok' } });
  });

  it('handles wide input', () => {
    const wide: Record<string, unknown> = {};
    for (let i = 0; i < 100_000; i++) wide[`k${i}`] = i % 1000 === 0 ? `leak ${GH}` : `value ${i}`;
    const arr = Array.from({ length: 100_000 }, (_, i) => (i % 1000 === 0 ? { api_key: `k${i}` } : i));
    const r = redactor.redactValue({ wide, arr });
    assert.equal(r.redactions, 200);
    assert.ok(!JSON.stringify(r.value).includes(GH));
  });

  it('survives cycles (they end at the depth cap)', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    const r = redactor.redactValue(a);
    assert.ok(JSON.stringify(r.value).includes(DEPTH_MARKER));
  });

  it('scans adversarial strings in linear-ish time', () => {
    const n = 200_000;
    const inputs = [
      'a'.repeat(n),
      'a:'.repeat(n / 2),
      'password='.repeat(n / 9),
      'x://'.repeat(n / 4),
      'postgres://u:' + 'p'.repeat(n) + ' @',
      'http://' + 'u:'.repeat(n / 2),
      '-----BEGIN RSA PRIVATE KEY-----' + 'A'.repeat(n),
      '-----BEGIN PRIVATE KEY-----\n'.repeat(n / 30),
      'eyJ' + 'a'.repeat(n) + '.',
      'eyJaaaaaaaaa.'.repeat(n / 13),
      'Bearer '.repeat(n / 7),
      'Basic AAAA'.repeat(n / 10),
      'ghp_' + 'a'.repeat(n),
      'sk-' + 'a-'.repeat(n / 2),
      'AKIA'.repeat(n / 4),
      '"password": "' + '\\"'.repeat(n / 2),
      'Cookie: ' + 'x'.repeat(n),
      'M'.repeat(n) + '.abcdef.' + 'a'.repeat(40),
      ('token' + ' '.repeat(3) + '=').repeat(n / 9),
    ];
    for (const s of inputs) {
      const t0 = process.hrtime.bigint();
      redactor.redactString(s);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      assert.ok(ms < 2000, `${JSON.stringify(s.slice(0, 30))}… took ${ms.toFixed(0)} ms`);
    }
  });

  it('is fast on ordinary payloads', () => {
    const args = {
      query: 'SELECT * FROM orders WHERE id = 42',
      path: '/home/user/project/src/index.ts',
      items: Array.from({ length: 50 }, (_, i) => ({ id: `item-${i}`, note: 'nothing to see here', n: i })),
    };
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 2000; i++) redactor.redactValue(args);
    const perCall = Number(process.hrtime.bigint() - t0) / 1e6 / 2000;
    assert.ok(perCall < 5, `${perCall.toFixed(3)} ms per call`);
  });
});
