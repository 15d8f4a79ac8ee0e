import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../src/logger.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { lines, log: createLogger('logger-test', { level: 'debug', destination, fingerprintKey: 'k' }) };
}

// Realistic secrets, assembled at run time so no scanner mistakes this file for a leak.
const AWS = ['AKIA', 'IOSFODNN7', 'EXAMPLE'].join('');
const GH = ['ghp_', 'R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s12'].join('');
const PG = ['postgres://audit:', 'S3cr3tPassw0rd', '@db.internal:5432/app'].join('');
const JWT = [
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9',
  'eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0',
  'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
].join('.');

test('log lines never carry secrets: message text, nested fields, error messages and stacks', () => {
  const { lines, log } = capture();
  const child = log.child({ component: 'kafka' });
  child.warn(
    { broker: PG, attempt: 2, nested: { header: `Bearer ${GH}`, list: [AWS] } },
    `connect to ${PG} failed`,
  );
  child.error({ err: new Error(`insert failed: token=${JWT}`) }, 'flush failed');
  log.info({ password: 'hunter2-but-longer', api_key: 'plain-looking-value' }, 'config loaded');
  log.error(new Error(`bare error with ${AWS}`));
  const all = lines.join('\n');
  for (const secret of [AWS, GH, 'S3cr3tPassw0rd', JWT, 'hunter2-but-longer', 'plain-looking-value'])
    assert.ok(!all.includes(secret), `log output leaked ${secret.slice(0, 6)}…:\n${all}`);
  const first = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(first.component, 'kafka');
  assert.equal(first.attempt, 2);
  assert.match(String(first.msg), /^connect to .*\[REDACTED:[a-z0-9_]+:[0-9a-f]{8}\].* failed$/);
  const second = JSON.parse(lines[1]!) as { err: { message: string; stack: string; type: string } };
  assert.equal(second.err.type, 'Error');
  assert.match(second.err.message, /^insert failed: /);
  assert.match(second.err.stack, /logger\.test/);
});

test('ordinary values are kept as they are: ids, digests, paths, numbers', () => {
  const { lines, log } = capture();
  const fields = {
    event_id: '0190a000-0000-7000-8000-000000000001',
    digest: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    path: '/var/lib/mcp-audit/data/events.bin',
    rows: 5000,
    ok: true,
  };
  log.info(fields, 'batch flushed');
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  for (const [k, v] of Object.entries(fields)) assert.deepEqual(line[k], v);
  assert.equal(line.msg, 'batch flushed');
});
