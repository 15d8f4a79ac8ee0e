import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaConfigFromEnv, kafkaEnvSchema, KafkaConfigError } from '../src/config.js';

const parse = (env: Record<string, string>) => kafkaEnvSchema.parse(env);
const config = (env: Record<string, string>) => kafkaConfigFromEnv(parse(env), 'test');
const refused = (env: Record<string, string>, names: RegExp) =>
  assert.throws(
    () => config(env),
    (err: unknown) => {
      assert.ok(err instanceof KafkaConfigError, String(err));
      assert.match(err.message, names);
      // Names the variables, never a password.
      const pw = env.MCP_AUDIT_KAFKA_SASL_PASSWORD;
      if (pw) assert.ok(!err.message.includes(pw), err.message);
      return true;
    },
  );

test('no SASL and no TLS is the local stack: plain Kafka', () => {
  const c = config({});
  assert.equal(c.ssl, false);
  assert.equal(c.sasl, undefined);
  assert.deepEqual(c.brokers, ['127.0.0.1:9092']);
});

test('SCRAM-SHA-512 from the environment reaches the kafkajs config', () => {
  const c = config({
    MCP_AUDIT_KAFKA_SASL_MECHANISM: 'scram-sha-512',
    MCP_AUDIT_KAFKA_SASL_USERNAME: 'ingester',
    MCP_AUDIT_KAFKA_SASL_PASSWORD: 'pw-from-env-123',
  });
  assert.deepEqual(c.sasl, { mechanism: 'scram-sha-512', username: 'ingester', password: 'pw-from-env-123' });
  assert.equal(c.ssl, false);
});

test('the password and TLS material can come from files (container secrets)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kafka-config-'));
  try {
    writeFileSync(join(dir, 'pw'), 'pw-from-file-456\n');
    writeFileSync(join(dir, 'ca.pem'), 'CA PEM');
    writeFileSync(join(dir, 'client.pem'), 'CERT PEM');
    writeFileSync(join(dir, 'client.key'), 'KEY PEM');
    const c = config({
      MCP_AUDIT_KAFKA_SSL: 'true',
      MCP_AUDIT_KAFKA_SSL_CA_FILE: join(dir, 'ca.pem'),
      MCP_AUDIT_KAFKA_SSL_CERT_FILE: join(dir, 'client.pem'),
      MCP_AUDIT_KAFKA_SSL_KEY_FILE: join(dir, 'client.key'),
      MCP_AUDIT_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      MCP_AUDIT_KAFKA_SASL_USERNAME: 'detector',
      MCP_AUDIT_KAFKA_SASL_PASSWORD_FILE: join(dir, 'pw'),
    });
    assert.equal(c.sasl?.password, 'pw-from-file-456', 'one trailing newline is not part of the secret');
    assert.deepEqual(c.ssl, { rejectUnauthorized: true, ca: ['CA PEM'], cert: 'CERT PEM', key: 'KEY PEM' });
    assert.equal(config({ MCP_AUDIT_KAFKA_SSL: 'true' }).ssl, true, 'TLS with the system CAs');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('incomplete or unsafe security settings are refused, naming the variables', () => {
  const mech = { MCP_AUDIT_KAFKA_SASL_MECHANISM: 'scram-sha-512' };
  refused(
    { ...mech, MCP_AUDIT_KAFKA_SASL_PASSWORD: 'secret-value-1' },
    /MCP_AUDIT_KAFKA_SASL_USERNAME is required/,
  );
  refused(
    { ...mech, MCP_AUDIT_KAFKA_SASL_USERNAME: 'ingester' },
    /exactly one of MCP_AUDIT_KAFKA_SASL_PASSWORD/,
  );
  refused(
    {
      ...mech,
      MCP_AUDIT_KAFKA_SASL_USERNAME: 'ingester',
      MCP_AUDIT_KAFKA_SASL_PASSWORD: 'secret-value-2',
      MCP_AUDIT_KAFKA_SASL_PASSWORD_FILE: '/nonexistent',
    },
    /exactly one of/,
  );
  refused(
    {
      ...mech,
      MCP_AUDIT_KAFKA_SASL_USERNAME: 'ingester',
      MCP_AUDIT_KAFKA_SASL_PASSWORD_FILE: '/nonexistent/pw',
    },
    /MCP_AUDIT_KAFKA_SASL_PASSWORD_FILE: cannot read \/nonexistent\/pw \(ENOENT\)/,
  );
  refused(
    { MCP_AUDIT_KAFKA_SASL_USERNAME: 'ingester', MCP_AUDIT_KAFKA_SASL_PASSWORD: 'secret-value-3' },
    /MECHANISM is not/,
  );
  refused(
    {
      MCP_AUDIT_KAFKA_SASL_MECHANISM: 'plain',
      MCP_AUDIT_KAFKA_SASL_USERNAME: 'ingester',
      MCP_AUDIT_KAFKA_SASL_PASSWORD: 'secret-value-4',
    },
    /SASL plain .* needs MCP_AUDIT_KAFKA_SSL=true/,
  );
  refused({ MCP_AUDIT_KAFKA_SSL: 'true', MCP_AUDIT_KAFKA_SSL_CERT_FILE: '/x.pem' }, /go together/);
  refused({ MCP_AUDIT_KAFKA_SSL_CA_FILE: '/ca.pem' }, /MCP_AUDIT_KAFKA_SSL is not true/);
  assert.throws(() => parse({ MCP_AUDIT_KAFKA_SASL_MECHANISM: 'gssapi' }), /MCP_AUDIT_KAFKA_SASL_MECHANISM/);
});
