// Issue 13 item 9: a separate Kafka 3.9 broker with SASL/SCRAM-SHA-512 over TLS and StandardAuthorizer,
// started from the locally installed Kafka by the same deploy/kafka/broker.sh docker-compose runs
// (TLS material from deploy/kafka/tls.sh, as compose's kafka-tls job makes it),
// with the ACLs of deploy/kafka/acls.json applied by the same code (packages/kafka applyAcls).
// Checks what each service principal can and cannot do. Never touches the shared test stack.
//
// Ports: clients need the advertised port, so the broker cannot listen on port 0. Two random ports
// are written into its config and the broker binds them itself; if either is taken it exits with
// a BindException and the test starts it again on two others (no port is probed and handed over).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka as KafkaClient, logLevel, type Kafka, type SASLOptions } from 'kafkajs';
import {
  aclEntries,
  aclKey,
  applyAcls,
  createKafka,
  createLease,
  describeAllAcls,
  ensureTopics,
  kafkaConfigFromEnv,
  kafkaEnvSchema,
  loadAclSpec,
  loadTopicDefs,
  TOPIC_ALERTS,
  TOPIC_EVENTS,
  TOPIC_EVENTS_DLQ,
} from '@mcp-audit/kafka';
import { createLogger } from '@mcp-audit/service-kit';
import { REPO_ROOT, suffix } from '../lib/env.js';

const spec = loadAclSpec();
const PRINCIPALS = ['admin', ...Object.keys(spec.principals)];
const passwords = Object.fromEntries(PRINCIPALS.map((p) => [p, randomBytes(18).toString('base64url')]));
const log = createLogger('kafka-acls-test', { level: 'silent' });

const libsDir = [process.env.MCP_AUDIT_LOCAL_DIR, join(REPO_ROOT, '.local/test'), join(REPO_ROOT, '.local')]
  .filter((d): d is string => !!d)
  .map((d) => join(d, 'kafka/libs'))
  .find((d) => existsSync(d));

let dir = '';
let broker: ChildProcess | undefined;
let port = 0;

function startBroker(): Promise<'started' | 'port taken'> {
  port = randomInt(20_000, 60_000);
  const controllerPort = port + 1;
  rmSync(join(dir, 'data'), { recursive: true, force: true });
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    KAFKA_RUN: join(dir, 'kafka-run'),
    KAFKA_CONF_DIR: join(dir, 'conf'),
    KAFKA_DATA_DIR: join(dir, 'data'),
    KAFKA_LISTEN_HOST: '127.0.0.1',
    KAFKA_ADVERTISED_HOST: '127.0.0.1',
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(controllerPort),
    KAFKA_TLS_DIR: join(dir, 'tls'),
  };
  for (const p of PRINCIPALS)
    env[`MCP_AUDIT_KAFKA_PASSWORD_${p.toUpperCase().replace(/-/g, '_')}`] = passwords[p]!;
  const child = spawn('bash', [join(REPO_ROOT, 'deploy/kafka/broker.sh')], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  broker = child;
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const logFile = join(dir, 'log/server.log');
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const server = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      if (/Kafka Server started/.test(server)) done(() => resolve('started'));
    }, 250);
    const deadline = setTimeout(
      () => done(() => reject(new Error(`broker not started in 120 s:\n${output.slice(-2000)}`))),
      120_000,
    );
    const done = (f: () => void) => {
      clearInterval(timer);
      clearTimeout(deadline);
      child.removeAllListeners('exit');
      f();
    };
    child.on('exit', (code) => {
      const server = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      broker = undefined;
      if (/BindException|Address already in use/.test(output + server)) done(() => resolve('port taken'));
      else done(() => reject(new Error(`broker exited (${code}):\n${(output + server).slice(-3000)}`)));
    });
  });
}

type Transport = 'tls' | 'plaintext' | 'untrusted-tls';

function clientConfig(
  principal: string | undefined,
  password = principal ? passwords[principal] : undefined,
  transport: Transport = 'tls',
) {
  const env = kafkaEnvSchema.parse({
    MCP_AUDIT_KAFKA_BROKERS: `127.0.0.1:${port}`,
    MCP_AUDIT_KAFKA_CONNECTION_TIMEOUT_MS: '3000',
    MCP_AUDIT_KAFKA_REQUEST_TIMEOUT_MS: '5000',
    // 'untrusted-tls': TLS with the system CAs only, which do not know the broker's private CA.
    ...(transport !== 'plaintext' ? { MCP_AUDIT_KAFKA_SSL: 'true' } : {}),
    ...(transport === 'tls' ? { MCP_AUDIT_KAFKA_SSL_CA_FILE: join(dir, 'public/ca.pem') } : {}),
    ...(principal
      ? {
          MCP_AUDIT_KAFKA_SASL_MECHANISM: 'scram-sha-512',
          MCP_AUDIT_KAFKA_SASL_USERNAME: principal,
          MCP_AUDIT_KAFKA_SASL_PASSWORD: password,
        }
      : {}),
  });
  return kafkaConfigFromEnv(env, `acl-test-${principal ?? 'anonymous'}`);
}

function client(
  principal: string | undefined,
  password = principal ? passwords[principal] : undefined,
  transport: Transport = 'tls',
): Kafka {
  return createKafka(clientConfig(principal, password, transport), log);
}

/** 'ok', or the Kafka error type (TOPIC_AUTHORIZATION_FAILED, …) / kafkajs error name. */
async function produce(principal: string, topic: string): Promise<string> {
  const producer = client(principal).producer({
    idempotent: true,
    allowAutoTopicCreation: false,
    retry: { retries: 1 },
  });
  try {
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: `from ${principal}` }] });
    return 'ok';
  } catch (err) {
    return errorType(err);
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

function errorType(err: unknown): string {
  const e = err as { type?: string; name?: string; cause?: unknown; errors?: unknown[]; message?: string };
  if (e.type) return e.type;
  if (e.cause) return errorType(e.cause);
  if (e.errors?.[0]) return errorType(e.errors[0]);
  return `${e.name ?? 'Error'}: ${e.message ?? ''}`;
}

/**
 * Reads one message of `topic` in consumer group `group`: 'ok' or the error type. NOTE: kafkajs
 * reports a group it may not use as "Failed to find group coordinator" and drops the broker's
 * GROUP_AUTHORIZATION_FAILED, which only its debug log carries: that log is read here.
 */
async function consume(principal: string, topic: string, group: string): Promise<string> {
  const cfg = clientConfig(principal);
  const coordinatorErrors: string[] = [];
  const kafka = new KafkaClient({
    clientId: cfg.clientId,
    brokers: cfg.brokers,
    ssl: cfg.ssl,
    ...(cfg.sasl ? { sasl: cfg.sasl as SASLOptions } : {}),
    connectionTimeout: cfg.connectionTimeoutMs,
    requestTimeout: cfg.requestTimeoutMs,
    logLevel: logLevel.DEBUG,
    logCreator: () => (entry) => {
      const e = entry.log as { message?: string; error?: { type?: string } };
      if (e.message === 'Tried to find group coordinator' && e.error?.type)
        coordinatorErrors.push(e.error.type);
    },
  });
  // Retries: a fresh broker creates __consumer_offsets on the first group lookup (NOT_COORDINATOR
  // meanwhile); authorization errors are not retriable and come back at once.
  const consumer = kafka.consumer({ groupId: group, retry: { retries: 8 } });
  const outcome = (err: unknown) =>
    (err as Error).name === 'KafkaJSGroupCoordinatorNotFound' && coordinatorErrors.length > 0
      ? coordinatorErrors[coordinatorErrors.length - 1]!
      : errorType(err);
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    return await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('timeout: nothing read in 30 s'), 30_000);
      consumer.on(consumer.events.CRASH, (e) => {
        if (e.payload.restart) return;
        clearTimeout(timer);
        resolve(outcome(e.payload.error));
      });
      void consumer
        .run({
          eachMessage: async () => {
            clearTimeout(timer);
            resolve('ok');
          },
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          resolve(outcome(err));
        });
    });
  } catch (err) {
    return outcome(err);
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

before(async () => {
  assert.ok(libsDir, 'the local Kafka is not installed: run `bash deploy/local/stack.sh up` (npm test does)');
  dir = mkdtempSync(join(tmpdir(), 'mcp-audit-kafka-sasl-'));
  writeFileSync(
    join(dir, 'kafka-run'),
    [
      '#!/bin/sh',
      `exec java -Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true -Dkafka.logs.dir='${dir}/log' \\`,
      `  -Dlog4j.configuration='file:${REPO_ROOT}deploy/local/log4j.properties' -cp '${libsDir}/*' "$@"`,
      '',
    ].join('\n'),
    { mode: 0o700 },
  );
  const tls = spawnSync(
    'bash',
    [join(REPO_ROOT, 'deploy/kafka/tls.sh'), join(dir, 'tls'), join(dir, 'public'), 'localhost'],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(tls.status, 0, `deploy/kafka/tls.sh: ${tls.stderr}`);
  for (let attempt = 1; ; attempt++) {
    if ((await startBroker()) === 'started') break;
    assert.ok(attempt < 5, 'five random port pairs were all taken');
  }
  const admin = client('admin');
  await applyAcls(admin, spec, log);
  await ensureTopics(admin, loadTopicDefs(), { maxReplicationFactor: 1 });
});

after(() => {
  // Only the broker this test started, by its pid.
  if (broker?.pid) broker.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the ACLs on the broker are exactly deploy/kafka/acls.json, and applying again changes nothing', async () => {
  const admin = client('admin');
  const onBroker = (await describeAllAcls(admin)).map(aclKey).sort();
  assert.deepEqual(onBroker, aclEntries(spec).map(aclKey).sort());
  assert.deepEqual(await applyAcls(admin, spec, log), { created: 0, deleted: 0, total: onBroker.length });
});

test('authentication: a wrong password, an unknown user, plain TCP or an untrusted certificate get nothing', async () => {
  const wrong = client('collector', 'not-the-password-0000');
  await assert.rejects(wrong.admin().connect(), /SASL SCRAM SHA512 authentication failed|authentication/i);
  const unknown = client('mallory', 'whatever-password-1111');
  await assert.rejects(unknown.admin().connect(), /authentication/i);
  // The right password, but plain TCP to the TLS listener, or TLS that does not trust the broker's CA.
  for (const transport of ['plaintext', 'untrusted-tls'] as const) {
    const other = client('collector', undefined, transport).admin();
    try {
      await assert.rejects(
        (async () => {
          await other.connect();
          await other.listTopics();
        })(),
        transport,
      );
    } finally {
      await other.disconnect().catch(() => undefined);
    }
  }
});

test('producers write only what they produce; nobody but the admin creates topics', async () => {
  // Every principal against every declared topic: WRITE exactly where acls.json says produce.
  const topics = loadTopicDefs().map((t) => t.name);
  const outcomes: Record<string, Record<string, string>> = {};
  for (const [name, p] of Object.entries(spec.principals)) {
    outcomes[name] = {};
    for (const t of topics) outcomes[name][t] = await produce(name, t);
    const expected = Object.fromEntries(
      topics.map((t) => [t, p.produce.includes(t) ? 'ok' : 'TOPIC_AUTHORIZATION_FAILED']),
    );
    assert.deepEqual(outcomes[name], expected, name);
  }
  // What the issue asks for, stated on its own (the table above follows the file, this the intent).
  assert.equal(
    outcomes.ingester![TOPIC_EVENTS],
    'TOPIC_AUTHORIZATION_FAILED',
    'the ingester cannot forge events',
  );
  assert.equal(
    outcomes.notifier![TOPIC_ALERTS],
    'TOPIC_AUTHORIZATION_FAILED',
    'the notifier cannot forge alerts',
  );
  assert.equal(
    outcomes.collector![TOPIC_ALERTS],
    'TOPIC_AUTHORIZATION_FAILED',
    'event sources cannot raise alerts',
  );
  assert.equal(outcomes.gateway![TOPIC_EVENTS_DLQ], 'TOPIC_AUTHORIZATION_FAILED');
  assert.equal(outcomes.detector![TOPIC_ALERTS], 'ok');
  const admin = client('collector').admin();
  await admin.connect();
  try {
    await assert.rejects(
      admin.createTopics({
        topics: [{ topic: `mcp.audit.rogue-${suffix()}`, numPartitions: 1, replicationFactor: 1 }],
      }),
      (err: unknown) => {
        assert.match(errorType(err), /^(TOPIC|CLUSTER)_AUTHORIZATION_FAILED$/);
        return true;
      },
    );
  } finally {
    await admin.disconnect();
  }
});

test('consumers read only their topics, in their own group; producers read nothing', async () => {
  assert.equal(await consume('ingester', TOPIC_EVENTS, 'mcp-audit-ingester'), 'ok');
  assert.equal(await consume('detector', TOPIC_EVENTS, 'mcp-audit-detector'), 'ok');
  assert.equal(await consume('notifier', TOPIC_ALERTS, 'mcp-audit-notifier'), 'ok');
  // Someone else's group, a topic not theirs, or any read at all for a producer-only principal.
  assert.equal(await consume('ingester', TOPIC_EVENTS, 'mcp-audit-detector'), 'GROUP_AUTHORIZATION_FAILED');
  assert.equal(
    await consume('ingester', TOPIC_EVENTS_DLQ, 'mcp-audit-ingester'),
    'TOPIC_AUTHORIZATION_FAILED',
  );
  assert.equal(await consume('notifier', TOPIC_EVENTS, 'mcp-audit-notifier'), 'TOPIC_AUTHORIZATION_FAILED');
  assert.equal(await consume('collector', TOPIC_EVENTS, 'mcp-audit-collector'), 'GROUP_AUTHORIZATION_FAILED');
  assert.equal(await consume('api', TOPIC_ALERTS, 'mcp-audit-api'), 'GROUP_AUTHORIZATION_FAILED');
  // The replay command: the dead-letter topic in a one-off group under its prefix.
  assert.equal(await consume('dlq-replay', TOPIC_EVENTS_DLQ, `mcp-audit-dlq-cli-${suffix()}`), 'ok');
});

test("the detector's watchdog reads the ingester group's committed offsets, and may not join it", async () => {
  // The ingester group exists (the test above consumed in it).
  const offsets = async (principal: string): Promise<string> => {
    const admin = client(principal).admin();
    await admin.connect();
    try {
      await admin.fetchOffsets({ groupId: 'mcp-audit-ingester', topics: [TOPIC_EVENTS] });
      return 'ok';
    } catch (err) {
      return errorType(err);
    } finally {
      await admin.disconnect();
    }
  };
  assert.equal(await offsets('detector'), 'ok');
  // kafkajs's admin reports a refused FindCoordinator as "Failed to find group coordinator"; the
  // detector's success on the same group and broker just above makes authorization the difference.
  assert.match(await offsets('notifier'), /GROUP_AUTHORIZATION_FAILED|Failed to find group coordinator/);
  assert.equal(await consume('detector', TOPIC_EVENTS, 'mcp-audit-ingester'), 'GROUP_AUTHORIZATION_FAILED');
});

test('leases: the detector and retention lead their own lease groups (READ on topic and group), not each other’s', async () => {
  const lead = async (principal: string, duty: string): Promise<string> => {
    const lease = createLease({
      kafka: client(principal),
      topic: `mcp.audit.lease.${duty}`,
      groupId: `mcp-audit-${duty}-lease`,
      duty,
      log,
      sessionTimeoutMs: 6_000,
      takeoverDelayMs: 0,
      onAcquire: () => undefined,
      onRelease: () => undefined,
    });
    try {
      await lease.start();
      for (let i = 0; i < 100 && !lease.isLeader(); i++) await new Promise((r) => setTimeout(r, 200));
      return lease.isLeader() ? 'ok' : `not leader: ${JSON.stringify(lease.health().details)}`;
    } catch (err) {
      return errorType(err);
    } finally {
      await lease.stop().catch(() => undefined);
    }
  };
  assert.equal(await lead('detector', 'detector'), 'ok');
  assert.equal(await lead('retention', 'retention'), 'ok');
  assert.notEqual(await lead('retention', 'detector'), 'ok');
  assert.notEqual(await lead('notifier', 'retention'), 'ok');
});

test("a service's start-up topic check (ensureDeclaredTopics) sees every declared topic and creates none", async () => {
  for (const p of Object.keys(spec.principals)) {
    const created = await ensureTopics(client(p), loadTopicDefs(), { maxReplicationFactor: 1 });
    assert.deepEqual(created, [], p);
  }
});
