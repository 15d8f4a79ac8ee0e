import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashKey, createLogger } from '@mcp-audit/service-kit';
import { fileKeyRing } from '../src/api-keys.js';
import { runKeysCli } from '../src/keys.cli.js';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) } };
}

test('keys CLI: create prints the key once and stores only its hash (0600); list; revoke takes effect in a running ring', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'api-keys-'));
  const file = join(dir, 'keys.json');
  const env = { MCP_AUDIT_API_KEYS_FILE: file };
  const c = io();
  assert.equal(
    runKeysCli(
      ['create', '--id', 'alice', '--scopes', 'analyst,admin', '--description', 'SOC lead'],
      env,
      c.io,
    ),
    0,
  );
  const key = c.out.join('').trim();
  assert.match(key, /^mcpa_[A-Za-z0-9_-]{43}$/);
  const text = readFileSync(file, 'utf8');
  assert.ok(!text.includes(key), 'the plain key is never written');
  const stored = JSON.parse(text);
  assert.equal(stored[0].sha256, hashKey(key));
  assert.deepEqual(stored[0].scopes, ['analyst', 'admin']);
  assert.equal(statSync(file).mode & 0o777, 0o600);

  assert.equal(
    runKeysCli(['create', '--id', 'alice', '--scopes', 'analyst'], env, io().io),
    1,
    'duplicate id',
  );
  const bad = io();
  assert.equal(runKeysCli(['create', '--id', 'bob', '--scopes', 'root'], env, bad.io), 2);
  assert.match(bad.err.join(''), /scopes/);

  const ring = fileKeyRing(file, createLogger('t', { level: 'silent' }), { checkMs: 0 });
  assert.equal(ring.verify(key).ok, true);
  const l = io();
  runKeysCli(['list'], env, l.io);
  assert.match(l.out.join(''), /^alice\tanalyst,admin\tactive\t/);
  assert.equal(runKeysCli(['revoke', '--id', 'alice'], env, io().io), 0);
  // mtime may not move within the same millisecond on some filesystems; size does (disabled: true)
  assert.equal(ring.verify(key).ok, false, 'revoked without restart');
  assert.equal(ring.byId('alice'), undefined);
  const l2 = io();
  runKeysCli(['list'], env, l2.io);
  assert.match(l2.out.join(''), /revoked/);
  assert.equal(runKeysCli(['revoke', '--id', 'nobody'], env, io().io), 1);
});
