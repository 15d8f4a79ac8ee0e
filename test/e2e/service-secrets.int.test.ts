import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { REPO_ROOT, stackEnv, suffix } from '../lib/env.js';
import { kafka } from '../lib/pipeline.js';

/**
 * Least privilege (security issue, item 2): every service started by `scripts/services.sh` gets only
 * the credentials it uses. Each service is started with exactly the environment services.sh builds
 * for it (`services.sh env <service>`, the function `start` uses), on port 0 and on topics and
 * consumer groups of its own, then its /proc/<pid>/environ is read once it is up: any credential of
 * .local/secrets.env it should not have fails the test, and so does a service that cannot start
 * with what it was given.
 */

// What each service may hold. The admin password belongs to migrations and retention only.
const ALLOWED: Record<string, string[]> = {
  receiver: [],
  ingester: ['MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD', 'MCP_AUDIT_REDACTION_KEY'],
  collector: ['MCP_AUDIT_REDACTION_KEY'],
  notifier: ['MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD'],
  gateway: ['MCP_AUDIT_REDACTION_KEY'],
  detector: ['MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD', 'MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD'],
  api: ['MCP_AUDIT_CLICKHOUSE_API_PASSWORD', 'MCP_AUDIT_CLICKHOUSE_API_READER_PASSWORD'],
  retention: ['MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'],
};

const MAIN: Record<string, string> = {
  receiver: 'services/notifier/dist/src/local-receiver.js',
  ingester: 'services/ingester/dist/src/main.js',
  collector: 'services/collector/dist/src/main.js',
  notifier: 'services/notifier/dist/src/main.js',
  gateway: 'services/gateway/dist/src/main.js',
  detector: 'services/detector/dist/src/main.js',
  api: 'services/api/dist/src/main.js',
  retention: 'services/retention/dist/src/main.js',
};

const CREDENTIAL = /(PASSWORD|TOKEN|API_KEY|REDACTION_KEY|SECRET)$/;

function envOf(service: string): Record<string, string> {
  const out = execFileSync('bash', [`${REPO_ROOT}scripts/services.sh`, 'env', service], {
    encoding: 'utf8',
    // Only where the stack lives (npm test: the tests' own, .local/test): services.sh reads its secrets.env.
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      ...(process.env.MCP_AUDIT_LOCAL_DIR ? { MCP_AUDIT_LOCAL_DIR: process.env.MCP_AUDIT_LOCAL_DIR } : {}),
    },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const env: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) env[line.slice(0, i)] = line.slice(i + 1);
  }
  return env;
}

/** Port 0, and topics and groups of the test's own, so nothing of the running stack is touched. */
function isolate(env: Record<string, string>, tag: string): Record<string, string> {
  return {
    ...env,
    MCP_AUDIT_LOG_LEVEL: 'info',
    MCP_AUDIT_RECEIVER_PORT: '0',
    MCP_AUDIT_INGESTER_PORT: '0',
    MCP_AUDIT_COLLECTOR_PORT: '0',
    MCP_AUDIT_NOTIFIER_PORT: '0',
    MCP_AUDIT_DETECTOR_PORT: '0',
    MCP_AUDIT_GATEWAY_PORT: '0',
    MCP_AUDIT_GATEWAY_OPS_PORT: '0',
    MCP_AUDIT_API_PORT: '0',
    MCP_AUDIT_API_OPS_PORT: '0',
    MCP_AUDIT_RETENTION_PORT: '0',
    MCP_AUDIT_EVENTS_TOPIC: `test.secrets.${tag}.events`,
    MCP_AUDIT_DLQ_TOPIC: `test.secrets.${tag}.dlq`,
    MCP_AUDIT_ALERTS_TOPIC: `test.secrets.${tag}.alerts`,
    MCP_AUDIT_NOTIFIER_DLQ_TOPIC: `test.secrets.${tag}.alerts-dlq`,
    MCP_AUDIT_INGESTER_GROUP_ID: `test-secrets-${tag}-ingester`,
    MCP_AUDIT_NOTIFIER_GROUP_ID: `test-secrets-${tag}-notifier`,
    MCP_AUDIT_DETECTOR_GROUP_ID: `test-secrets-${tag}-detector`,
    MCP_AUDIT_DETECTOR_PERIODIC: 'false',
    MCP_AUDIT_DETECTOR_BASELINE_JOB: 'false',
  };
}

/** Starts the service and resolves with its environ once it says it is up. */
async function environOfRunning(service: string, env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [`${REPO_ROOT}${MAIN[service]}`], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (b: Buffer) => {
        output += b.toString('utf8');
        if (/"msg":"started"|local webhook receiver on/.test(output)) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) =>
        reject(
          new Error(`${service} exited (${code}) with the environment services.sh gives it:\n${output}`),
        ),
      );
      setTimeout(() => reject(new Error(`${service} not up after 90 s:\n${output}`)), 90_000).unref();
    });
    return readFileSync(`/proc/${child.pid}/environ`, 'utf8');
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
  }
}

test('every service holds only the credentials it uses', { timeout: 600_000 }, async () => {
  const stack = stackEnv();
  // Every credential the local stack has, by name (values are what we look for in each environ).
  const credentials = Object.entries(stack).filter(([k, v]) => CREDENTIAL.test(k) && v.length >= 8);
  assert.ok(
    credentials.some(([k]) => k === 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
    'the stack has an admin password to look for',
  );
  const tag = suffix();
  const names = isolate({}, tag);
  const topics = [
    names.MCP_AUDIT_EVENTS_TOPIC!,
    names.MCP_AUDIT_DLQ_TOPIC!,
    names.MCP_AUDIT_ALERTS_TOPIC!,
    names.MCP_AUDIT_NOTIFIER_DLQ_TOPIC!,
  ];
  const admin = kafka().admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: topics.map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })),
  });
  const leaks: string[] = [];
  try {
    for (const service of Object.keys(ALLOWED)) {
      const given = envOf(service);
      for (const k of Object.keys(given))
        if (CREDENTIAL.test(k) && !ALLOWED[service]!.includes(k))
          leaks.push(`${service}: services.sh passes ${k}`);
      const environ = await environOfRunning(service, isolate(given, tag));
      for (const [name, value] of credentials) {
        if (ALLOWED[service]!.includes(name)) continue;
        if (environ.includes(value)) leaks.push(`${service}: its environment holds ${name}`);
      }
      for (const name of ALLOWED[service]!)
        assert.ok(environ.includes(`${name}=`), `${service} is given ${name}, which it needs`);
    }
  } finally {
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
  }
  assert.deepEqual(leaks, []);
});
