import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKeyStore, generateKey, hashKey, presentedCredential } from '../src/index.js';

test('key store: verifies by hash, refuses unknown, malformed, missing and disabled keys', () => {
  const good = generateKey('mcpa');
  const off = generateKey('mcpa');
  assert.match(good, /^mcpa_[A-Za-z0-9_-]{43}$/);
  const store = createKeyStore([
    { id: 'a', sha256: hashKey(good), scopes: ['analyst'], extra: 1 },
    { id: 'b', sha256: hashKey(off), scopes: ['admin'], disabled: true },
  ]);
  const ok = store.verify(good);
  assert.ok(ok.ok && ok.credential.id === 'a' && ok.credential.extra === 1);
  assert.deepEqual(store.verify(off), { ok: false, reason: 'unknown_key' });
  assert.deepEqual(store.verify(generateKey('mcpa')), { ok: false, reason: 'unknown_key' });
  assert.deepEqual(store.verify(undefined), { ok: false, reason: 'missing_credential' });
  assert.deepEqual(store.verify('short'), { ok: false, reason: 'malformed_credential' });
  assert.deepEqual(store.verify(`${good} x`), { ok: false, reason: 'malformed_credential' });
  assert.equal(store.size(), 1);
});

test('presented credential: Bearer or X-API-Key; other Authorization schemes are malformed', () => {
  assert.deepEqual(presentedCredential({ authorization: 'Bearer abc' }), { key: 'abc' });
  assert.deepEqual(presentedCredential({ authorization: 'Basic abc' }), { malformed: true });
  assert.deepEqual(presentedCredential({ 'x-api-key': ' k ' }), { key: 'k' });
  assert.deepEqual(presentedCredential({}), {});
});
