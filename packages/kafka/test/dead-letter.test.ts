import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chunkBySize, createDeadLetterBuilder, DLQ_HEADERS } from '../src/dead-letter.js';
const GH = 'ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8';
import { createOpener, createSealer, SealedBoxError } from '../src/sealed-box.js';

// A stand-in for @mcp-audit/redaction (not a dependency of this package): two known secrets.
const scrub = (s: string) =>
  s
    .replaceAll(GH, '[REDACTED:github_token:00000000]')
    .replaceAll('hunter2hunter2', '[REDACTED:password:00000000]');
const redactor = {
  redactString: (s: string) => ({ value: scrub(s) }),
  redactValue: (v: unknown) => ({ value: JSON.parse(scrub(JSON.stringify(v))) as unknown }),
  redactEvent: (e: object) => ({ raw: scrub(JSON.stringify(e)) }),
};
const keys = generateKeyPairSync('x25519');
const sealer = createSealer(keys.publicKey);
const opener = createOpener([keys.privateKey]);

test('a sealed box opens to the original bytes with the private key, and only with it', () => {
  for (const original of [
    Buffer.alloc(0),
    Buffer.from('{"a":1}'),
    randomBytes(300_000),
    Buffer.alloc(1 << 20, 'x'),
  ]) {
    const box = sealer.seal(original);
    assert.deepEqual(opener.open(box, sealer.keyId), original);
  }
  // Compressed before encryption: a megabyte of repetition seals small.
  assert.ok(sealer.seal(Buffer.alloc(1 << 20, 'x')).length < 10_000);
  // Two seals of the same bytes differ (fresh ephemeral key and nonce).
  assert.notDeepEqual(sealer.seal(Buffer.from('same')), sealer.seal(Buffer.from('same')));

  const box = sealer.seal(Buffer.from('secret original'));
  const other = createOpener([generateKeyPairSync('x25519').privateKey]);
  assert.throws(() => other.open(box, sealer.keyId), SealedBoxError);
  const otherUnderSameId = createOpener([generateKeyPairSync('x25519').privateKey]);
  assert.throws(() => otherUnderSameId.open(box, otherUnderSameId.keyIds[0]!), /another key|authenticate/);
  const tampered = Buffer.from(box);
  tampered[tampered.length - 20]! ^= 1;
  assert.throws(() => opener.open(tampered, sealer.keyId), /authenticate/);
  assert.throws(() => createSealer(generateKeyPairSync('ed25519').publicKey), /X25519/);
});

test('the dead-letter value is the redacted payload; headers and key are redacted; the original is sealed', () => {
  const b = createDeadLetterBuilder({
    redactor,
    sealer,
    previewBytes: 1024,
  });
  const original = Buffer.from(
    JSON.stringify({ client: { id: GH }, args: { password: 'hunter2hunter2', big: 'y'.repeat(4000) } }),
  );
  const m = b.build({
    original,
    key: GH,
    code: 'AUDIT_ERR_INVALID_EVENT',
    reason: `client.id "${GH}" is wrong`,
    context: { [DLQ_HEADERS.topic]: 'events' },
    atMs: 0,
  });
  const all = Buffer.concat([
    Buffer.from(m.key ?? ''),
    Buffer.from(m.value),
    ...Object.values(m.headers!).map((v) => Buffer.from(v)),
  ]);
  assert.equal(all.includes(GH), false);
  assert.equal(all.includes('hunter2hunter2'), false);
  assert.match(String(m.value), /^\{"client":\{"id":"\[REDACTED:github_token:0{8}\]"\}/);
  assert.equal(Buffer.byteLength(m.value), 1024);
  assert.equal(String(m.headers![DLQ_HEADERS.truncated]), String(original.length));
  assert.deepEqual(
    opener.open(m.headers![DLQ_HEADERS.sealed] as Buffer, String(m.headers![DLQ_HEADERS.keyId])),
    original,
  );
  // Without a sealer nothing but the preview is kept.
  const plain = createDeadLetterBuilder({ redactor });
  const p = plain.build({ original, key: null, code: 'X', reason: 'r', context: {}, atMs: 0 });
  assert.equal(p.headers![DLQ_HEADERS.sealed], undefined);
});

test('chunkBySize keeps sends under the budget, a large message alone', () => {
  const m = (n: number) => ({ key: null, value: Buffer.alloc(n) });
  const chunks = chunkBySize([m(400), m(400), m(400), m(2000), m(10)], 1000);
  assert.deepEqual(
    chunks.map((c) => c.map((x) => x.value.length)),
    [[400, 400], [400], [2000], [10]],
  );
});
