// Issue 13 item 9, the docker-compose side (test/smoke/kafka-acls.int.test.ts runs the broker and
// ACLs for real): the broker config authenticates and authorises, every Kafka client in compose
// speaks as its own principal with its own password, only the admin jobs hold the admin password,
// and the ACL file covers every declared topic and each consumer's group id from its code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadAclSpec, loadTopicDefs } from '@mcp-audit/kafka';
import { REPO_ROOT } from '../lib/env.js';

type Service = { environment?: Record<string, string | number>; command?: string[]; entrypoint?: string[] };
const compose = parseYaml(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const spec = loadAclSpec();
const envRef = (v: unknown) => /^\$\{(\w+)(?::?[?-][^}]*)?\}$/.exec(String(v))?.[1];
const upper = (principal: string) => principal.toUpperCase().replace(/-/g, '_');
const kafkaEnv = compose.services.kafka!.environment ?? {};
/** principal → the .env variable its password comes from, as the broker sees it. */
const brokerPasswordVar = (principal: string) =>
  envRef(kafkaEnv[`MCP_AUDIT_KAFKA_PASSWORD_${upper(principal)}`]);

test('broker config: SASL/SCRAM over TLS only, StandardAuthorizer, deny by default, the admin the only super user', () => {
  const props = Object.fromEntries(
    readFileSync(join(REPO_ROOT, 'deploy/kafka/server.properties.tmpl'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  assert.equal(props['authorizer.class.name'], 'org.apache.kafka.metadata.authorizer.StandardAuthorizer');
  assert.equal(props['allow.everyone.if.no.acl.found'], 'false');
  assert.equal(props['super.users'], spec.superUsers.map((u) => `User:${u}`).join(';'));
  assert.deepEqual(spec.superUsers, ['admin']);
  assert.equal(props['sasl.enabled.mechanisms'], 'SCRAM-SHA-512');
  // No listener without authentication, and TLS whenever broker.sh is given its TLS material, as
  // compose does.
  for (const entry of props['listener.security.protocol.map']!.split(','))
    assert.match(entry, /:@PROTOCOL@$/, entry);
  const brokerSh = readFileSync(join(REPO_ROOT, 'deploy/kafka/broker.sh'), 'utf8');
  assert.deepEqual(
    [...brokerSh.matchAll(/protocol=(\w+)/g)].map((m) => m[1]),
    ['SASL_PLAINTEXT', 'SASL_SSL'],
  );
  assert.ok(kafkaEnv.KAFKA_TLS_DIR, 'compose: the broker gets TLS material (SASL_SSL)');
  assert.deepEqual(compose.services.kafka!.entrypoint, ['bash', '/mcp-audit/kafka/broker.sh']);
});

test('compose: the broker has a SCRAM user for the admin and every principal of acls.json, each its own password', () => {
  const principals = ['admin', ...Object.keys(spec.principals)];
  const vars = principals.map((p) => brokerPasswordVar(p));
  vars.forEach((v, i) => assert.ok(v, `kafka: MCP_AUDIT_KAFKA_PASSWORD_${upper(principals[i]!)}`));
  assert.equal(new Set(vars).size, vars.length, 'no two principals share a password');
  const declared = Object.keys(kafkaEnv).filter((k) => k.startsWith('MCP_AUDIT_KAFKA_PASSWORD_'));
  assert.equal(declared.length, principals.length, 'no SCRAM user outside acls.json');
});

test('compose: every Kafka client speaks as its own principal; only the admin jobs hold the admin password', () => {
  const adminVar = brokerPasswordVar('admin');
  let clients = 0;
  for (const [name, svc] of Object.entries(compose.services)) {
    if (name === 'kafka') continue;
    const env = svc.environment ?? {};
    const user = env.MCP_AUDIT_KAFKA_SASL_USERNAME;
    const pwVar = envRef(env.MCP_AUDIT_KAFKA_SASL_PASSWORD);
    const holdsAdmin = Object.values(env).some((v) => envRef(v) === adminVar);
    if (['kafka-acls', 'topics'].includes(name)) {
      assert.equal(user, 'admin', name);
      assert.equal(pwVar, adminVar, name);
      continue;
    }
    assert.ok(!holdsAdmin, `${name} holds the Kafka admin password`);
    const usesKafka =
      /^services\/(collector|ingester|detector|notifier|api|retention|gateway)\/dist\/src\/main\.js$/.test(
        svc.command?.[1] ?? '',
      );
    if (!usesKafka) {
      assert.equal(user, undefined, `${name} does not use Kafka`);
      continue;
    }
    clients++;
    assert.equal(env.MCP_AUDIT_KAFKA_SASL_MECHANISM, 'scram-sha-512', name);
    assert.equal(env.MCP_AUDIT_KAFKA_SSL, 'true', `${name}: TLS to the brokers`);
    // The SDK's sink (the gateway) takes the private CA through Node's own variable.
    assert.ok(
      env.MCP_AUDIT_KAFKA_SSL_CA_FILE &&
        (name !== 'gateway' || env.NODE_EXTRA_CA_CERTS === env.MCP_AUDIT_KAFKA_SSL_CA_FILE),
      `${name}: trusts the broker's CA`,
    );
    assert.equal(user, name, `${name}: its principal is its own name`);
    assert.ok(spec.principals[name], `${name}: a principal in acls.json`);
    assert.equal(pwVar, brokerPasswordVar(name), `${name}: the password the broker has for ${name}`);
  }
  assert.equal(clients, 7);
});

test('acls.json: every declared topic is produced by someone; consumers use the group ids their code defaults to', () => {
  const produced = new Set(Object.values(spec.principals).flatMap((p) => p.produce));
  for (const t of loadTopicDefs()) {
    // A lease topic (leader election, packages/kafka lease.ts) is only joined, by its own service.
    const lease = /^mcp\.audit\.lease\.([a-z-]+)$/.exec(t.name);
    if (lease) {
      assert.ok(!produced.has(t.name), `${t.name}: nobody produces to a lease topic`);
      assert.deepEqual(spec.principals[lease[1]!]?.consume, [
        ...(lease[1] === 'detector' ? ['mcp.audit.events.v1'] : []),
        t.name,
      ]);
      assert.ok(spec.principals[lease[1]!]!.groups.includes(`mcp-audit-${lease[1]}-lease`), t.name);
      continue;
    }
    assert.ok(produced.has(t.name), `${t.name} has no producer`);
  }
  const declared = new Set(loadTopicDefs().map((t) => t.name));
  for (const [name, p] of Object.entries(spec.principals))
    for (const t of [...p.produce, ...p.consume])
      assert.ok(declared.has(t), `${name}: ${t} is not in topics.json`);
  for (const svc of ['ingester', 'detector', 'notifier']) {
    const config = readFileSync(join(REPO_ROOT, `services/${svc}/src/config.ts`), 'utf8');
    const groupLine = config.split('\n').find((l) => l.includes(`MCP_AUDIT_${svc.toUpperCase()}_GROUP_ID:`));
    const m = /default\('([^']+)'\)/.exec(groupLine ?? '');
    assert.ok(m, `${svc}: its group id default`);
    const leaseGroup = svc === 'detector' ? ['mcp-audit-detector-lease'] : [];
    assert.deepEqual(spec.principals[svc]!.groups, [m[1], ...leaseGroup], `${svc}: consumer group`);
  }
  const replay = readFileSync(join(REPO_ROOT, 'services/ingester/src/dlq.replay.ts'), 'utf8');
  const prefix = spec.principals['dlq-replay']!.groupPrefixes[0]!;
  assert.ok(replay.includes(`groupId = \`${prefix}`), `dlq replay's one-off groups start with ${prefix}`);
});
