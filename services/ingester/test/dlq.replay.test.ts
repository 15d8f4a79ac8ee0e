import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createDeadLetterBuilder, createOpener, createSealer, DLQ_HEADERS } from '@mcp-audit/kafka';
import { createEventRedactor } from '@mcp-audit/redaction';
import { eventKeyFor } from '@mcp-audit/schema';
import {
  applyFixups,
  parseSet,
  parseUnset,
  prepareReplay,
  type DeadLetterRecord,
} from '../src/dlq.replay.js';

const GH = 'ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8';
const redactor = createEventRedactor({ fingerprintKey: 'ingester-unit-key-0123456789' });
const keys = generateKeyPairSync('x25519');
const builder = createDeadLetterBuilder({ redactor, sealer: createSealer(keys.publicKey) });
const opener = createOpener([keys.privateKey]);

function letter(original: string): DeadLetterRecord {
  const m = builder.build({
    original: Buffer.from(original),
    key: null,
    code: 'X',
    reason: 'r',
    context: {},
    atMs: 0,
  });
  return {
    topic: 'dlq',
    partition: 0,
    offset: '7',
    key: null,
    value: Buffer.from(m.value),
    headers: Object.fromEntries(Object.entries(m.headers!).map(([k, v]) => [k, Buffer.from(v)])),
  };
}

const event = {
  schema_version: 1,
  event_id: randomUUID(),
  ts: new Date().toISOString(),
  kind: 'tool_call',
  source: { type: 'gateway', id: 'gw-1', version: '1' },
  client: { id: `c ${GH}` },
  server: { name: 's', transport: 'stdio' },
  method: 'tools/call',
  tool: { name: 't' },
  outcome: 'ok',
  duration_ms: -5,
  request_bytes: 1,
  response_bytes: 1,
};

test('fix-ups: --set parses JSON values (else text), --unset removes, merge patches follow RFC 7396', () => {
  assert.deepEqual(parseSet('duration_ms=0'), { op: 'set', path: ['duration_ms'], value: 0 });
  assert.deepEqual(parseSet('client.id=acme'), { op: 'set', path: ['client', 'id'], value: 'acme' });
  assert.throws(() => parseSet('__proto__.x=1'), /invalid path/);
  assert.throws(() => parseSet('novalue'), /path=value/);
  const doc = applyFixups({ a: { b: 1, c: 2 }, d: 3 }, [
    parseSet('a.b=5'),
    parseUnset('d'),
    { op: 'merge', patch: { a: { c: null, e: [1] } } },
  ]);
  assert.deepEqual(doc, { a: { b: 5, e: [1] } });
});

test('replay opens the original, applies the fix and sends it redacted, keyed like the collector', () => {
  const r = letter(JSON.stringify(event));
  const unfixed = prepareReplay(r, [], { opener, redactor, now: Date.now() });
  assert.equal(unfixed.ok, false);
  assert.match(!unfixed.ok ? unfixed.error : '', /still invalid.*duration_ms/);

  const fixed = prepareReplay(r, [parseSet('duration_ms=0')], { opener, redactor, now: Date.now() });
  assert.ok(fixed.ok);
  if (!fixed.ok) return;
  assert.equal(fixed.eventId, event.event_id);
  const sent = JSON.parse(String(fixed.message.value)) as { duration_ms: number; client: { id: string } };
  assert.equal(sent.duration_ms, 0);
  assert.equal(String(fixed.message.value).includes(GH), false);
  assert.equal(fixed.message.key, eventKeyFor(sent.client.id));
  assert.equal(String(fixed.message.headers![DLQ_HEADERS.replayedFrom]), 'dlq:0:7');

  const other = createOpener([generateKeyPairSync('x25519').privateKey]);
  const refused = prepareReplay(r, [parseSet('duration_ms=0')], { opener: other, redactor, now: Date.now() });
  assert.equal(refused.ok, false);
  assert.match(!refused.ok ? refused.error : '', /sealed under key/);
});
