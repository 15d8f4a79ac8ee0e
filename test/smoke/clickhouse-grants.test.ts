// Issue 13 items 1 and 8 for the production line: ClickHouse 25.8 in docker-compose.yml, users from
// deploy/clickhouse/docker/users.xml. There is no Docker on the project's machines, so this checks
// the configuration statically (it was never run against a 25.8 server):
//  - every service user has GRANTs (an XML user without <grants> gets every privilege), only
//    SELECT/INSERT on mcp_audit tables (retention: ALTER DELETE for partition drops), no table
//    function source, no grant option;
//  - each writing user's INSERT grants are exactly the tables its service's source inserts into
//    (derived from the code: a service that starts writing a new table fails here until granted),
//    or tables a materialized view fills from those;
//  - constraints pin readonly and allow_ddl and cap every reader limit at its value;
//  - compose gives each service the user and password the users file expects, and only those.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../lib/env.js';
import { at, child, parseXml, textAt, type XmlNode } from '../lib/xml.js';

const usersXml = parseXml(readFileSync(join(REPO_ROOT, 'deploy/clickhouse/docker/users.xml'), 'utf8'));
const compose = parseYaml(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, { environment?: Record<string, string | number>; command?: string[] }>;
};
const users = new Map(at(usersXml, 'clickhouse', 'users')!.children.map((u) => [u.name, u]));
const profiles = new Map(at(usersXml, 'clickhouse', 'profiles')!.children.map((p) => [p.name, p]));
const quotas = new Map(at(usersXml, 'clickhouse', 'quotas')!.children.map((q) => [q.name, q]));

/** Roles whose user only reads (packages/clickhouse ClickHouseRole). */
const READ_ROLES = new Set(['ANALYST', 'API_READER']);
const DEFAULT_USER: Record<string, string> = {
  WRITER: 'mcp_writer',
  ANALYST: 'mcp_analyst',
  ADMIN: 'mcp_admin',
  API: 'mcp_api',
  API_READER: 'mcp_api_reader',
};
/**
 * The tables retention may drop partitions of (services/retention POLICY_TABLES + WITH_EVENTS: the
 * leaf lists and the api's time-ordered copy of events, dropped with the events day).
 */
const DROPPABLE = [
  'events',
  'alerts',
  'alert_transitions',
  'alert_deliveries',
  'access_log',
  'incidents',
  'incident_transitions',
  'integrity_leaves',
  'events_by_time',
  'event_ids',
];
const READER_LIMITS = [
  'max_execution_time',
  'max_rows_to_read',
  'max_bytes_to_read',
  'max_result_rows',
  'max_memory_usage',
  'max_concurrent_queries_for_user',
];

interface Grant {
  privileges: string[];
  table: string;
}

function grantsOf(u: XmlNode): Grant[] {
  // Grants on system tables (25.8 requires them) are checked by clickhouse-25.8.test.ts.
  const queries = (child(u, 'grants')?.children ?? []).filter((q) => !/ ON system\./.test(q.text));
  return queries.map((q) => {
    const text = q.text.trim();
    const m =
      /^GRANT ((?:SELECT|INSERT|ALTER DELETE)(?:, (?:SELECT|INSERT|ALTER DELETE))*) ON mcp_audit\.(\w+|\*)$/.exec(
        text,
      );
    assert.ok(m, `${u.name}: "${text}" is not a SELECT/INSERT/ALTER DELETE grant on an mcp_audit table`);
    return { privileges: m[1]!.split(', '), table: m[2]! };
  });
}

const tablesWith = (grants: Grant[], privilege: string) =>
  new Set(grants.filter((g) => g.privileges.includes(privilege)).map((g) => g.table));

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/**
 * The mcp_audit tables a service's source inserts into: `.insert('table', …)`, `INSERT INTO
 * <db>.table`, and its ClickHouse clients' `insertTables` allowlists (literal or a named const).
 */
function insertedTables(serviceDir: string): Set<string> {
  const src = sourceFiles(join(REPO_ROOT, serviceDir, 'src'))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  const out = new Set<string>();
  const strings = (list: string) => [...list.matchAll(/'(\w+)'/g)].map((m) => m[1]!);
  for (const m of src.matchAll(/\.insert\(\s*'(\w+)'/g)) out.add(m[1]!);
  for (const m of src.matchAll(/INSERT INTO\s+(?:\$\{[^}]*\}|\w+)\.(\w+)/g)) out.add(m[1]!);
  // A value: a literal list, or a name followed by the end of the member (a type annotation such as
  // `insertTables: readonly string[]` or a pass-through `opts.insertTables` is not one).
  for (const m of src.matchAll(/insertTables:\s*(?:\[([^\]]*)\]|(\w+)(?=\s*[,}\n)]))/g)) {
    if (m[1] !== undefined) strings(m[1]).forEach((t) => out.add(t));
    else {
      const pattern = new RegExp('const ' + m[2] + ' = \\[([^\\]]*)\\]');
      const decl = pattern.exec(src);
      assert.ok(decl, `${serviceDir}: insertTables: ${m[2]} is not a const array in its source`);
      strings(decl[1]!).forEach((t) => out.add(t));
    }
  }
  return out;
}

/**
 * Tables fed by a materialized view from one of `sources` (schemas/clickhouse). On 25.8 a view runs
 * as its definer (mcp_admin), so a writer needs no grant on them; one is tolerated, not required.
 */
function mvTargets(sources: Set<string>): Set<string> {
  const dir = join(REPO_ROOT, 'schemas/clickhouse');
  const out = new Set<string>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.sql'))) {
    const text = readFileSync(join(dir, f), 'utf8');
    for (const m of text.matchAll(
      /CREATE MATERIALIZED VIEW[^;]*?\bTO mcp_audit\.(\w+)[^;]*?\bFROM mcp_audit\.(\w+)/g,
    ))
      if (sources.has(m[2]!)) out.add(m[1]!);
  }
  return out;
}

/** The ClickHouse roles a service's config asks for: `clickhouseEnv('WRITER', 'ANALYST')`. */
function rolesOf(serviceDir: string): string[] {
  const m = /clickhouseEnv\(([^)]*)\)/.exec(
    readFileSync(join(REPO_ROOT, serviceDir, 'src/config.ts'), 'utf8'),
  );
  return m ? [...m[1]!.matchAll(/'(\w+)'/g)].map((r) => r[1]!) : [];
}

/** `${NAME:?…}` → NAME */
const envRef = (v: unknown) => /^\$\{(\w+)(?::?[?-][^}]*)?\}$/.exec(String(v))?.[1];

/** Every compose service that runs one of services/* and talks to ClickHouse, with its role → user. */
const serviceUsers = Object.entries(compose.services).flatMap(([name, svc]) => {
  const dir = /^(services\/[\w-]+)\/dist\/src\/main\.js$/.exec(svc.command?.[1] ?? '')?.[1];
  if (!dir) return [];
  const roles = rolesOf(dir);
  if (roles.length === 0) return [];
  const env = svc.environment ?? {};
  const byRole = roles.map((role) => {
    const user = String(env[`MCP_AUDIT_CLICKHOUSE_${role}_USER`] ?? DEFAULT_USER[role]);
    return { role, user, passwordVar: envRef(env[`MCP_AUDIT_CLICKHOUSE_${role}_PASSWORD`]) };
  });
  return [{ name, dir, env, byRole }];
});

test('compose: every ClickHouse service is found (the mapping below is not vacuous)', () => {
  assert.deepEqual(serviceUsers.map((s) => s.name).sort(), [
    'api',
    'detector',
    'ingester',
    'notifier',
    'retention',
  ]);
});

test('users.xml (25.8): only the migrations user lacks grants; no grant reaches beyond mcp_audit tables', () => {
  for (const [name, u] of users) {
    if (u.attrs.remove === 'remove') continue;
    assert.equal(
      child(u, 'allow_databases'),
      undefined,
      `${name}: <allow_databases> cannot be combined with grants`,
    );
    assert.equal(child(u, 'access_management'), undefined, `${name}: access management`);
    if (name === 'mcp_admin') {
      assert.equal(child(u, 'grants'), undefined);
      continue;
    }
    const grants = grantsOf(u);
    assert.ok(grants.length > 0, `${name}: an XML user without <grants> holds every privilege`);
    for (const g of grants) {
      if (g.table === '*')
        assert.deepEqual(g.privileges, ['SELECT'], `${name}: only SELECT may cover mcp_audit.*`);
      if (g.privileges.includes('ALTER DELETE')) {
        assert.equal(name, 'mcp_retention', `${name}: ALTER DELETE (partition drops) is retention's alone`);
        assert.ok(DROPPABLE.includes(g.table), `${name}: ALTER DELETE on ${g.table}`);
      }
    }
  }
  assert.ok(users.get('default')?.attrs.remove === 'remove', 'the default user is removed');
  // Nothing can be read from outside (url(), remote(), file(), s3()...): that needs CREATE TEMPORARY
  // TABLE plus a source grant, and the grant pattern above admits neither. The admin is used by the
  // migrate job only.
  const adminVar = child(users.get('mcp_admin'), 'password')?.attrs.from_env;
  const adminHolders = Object.entries(compose.services)
    .filter(
      ([n, s]) =>
        n !== 'clickhouse' && Object.values(s.environment ?? {}).some((v) => envRef(v) === adminVar),
    )
    .map(([n]) => n);
  assert.deepEqual(adminHolders, ['migrate']);
});

for (const svc of serviceUsers) {
  test(`${svc.name}: its ClickHouse users are granted exactly what its source writes`, () => {
    const clickhouse = compose.services.clickhouse!.environment ?? {};
    const written = insertedTables(svc.dir);
    const writers = svc.byRole.filter((r) => !READ_ROLES.has(r.role));
    for (const { role, user, passwordVar } of svc.byRole) {
      const u = users.get(user);
      assert.ok(u, `${svc.name}: ${role} user ${user} is not in users.xml`);
      // The password the service is given is the one ClickHouse checks for that user.
      const chVar = child(u, 'password')?.attrs.from_env;
      assert.ok(chVar && passwordVar, `${svc.name}: ${user}'s password comes from the environment`);
      assert.equal(envRef(clickhouse[chVar]), passwordVar, `${svc.name}: ${user}'s password variable`);
      const grants = grantsOf(u);
      if (READ_ROLES.has(role)) {
        assert.deepEqual(
          grants,
          [{ privileges: ['SELECT'], table: '*' }],
          `${user}: SELECT on mcp_audit only`,
        );
        continue;
      }
      // The service's tables that this user writes: a service with two writing roles splits them
      // by its insertTables; here each service has one writing role.
      assert.equal(writers.length, 1, `${svc.name}: one writing role`);
      const inserts = tablesWith(grants, 'INSERT');
      for (const t of written)
        assert.ok(inserts.has(t), `${user}: ${svc.dir} inserts into ${t}: no INSERT grant`);
      const viaViews = mvTargets(written);
      for (const t of inserts)
        assert.ok(
          written.has(t) || viaViews.has(t),
          `${user}: INSERT on ${t}, which ${svc.dir} never writes`,
        );
      for (const t of tablesWith(grants, 'SELECT'))
        if (t !== '*') assert.ok(written.has(t), `${user}: SELECT on ${t}, a table it does not write`);
    }
    // No two services share a writing user (one service's password must not write another's tables).
    const others = serviceUsers
      .filter((o) => o !== svc)
      .flatMap((o) => o.byRole.filter((r) => !READ_ROLES.has(r.role)));
    for (const w of writers)
      assert.ok(
        !others.some((o) => o.user === w.user),
        `${svc.name}: writing user ${w.user} shared with another service`,
      );
    assert.ok(written.size > 0, `${svc.name}: no insert found in its source (the derivation broke)`);
  });
}

test('users.xml (25.8): constraints pin readonly and allow_ddl; readers cannot raise a limit and have a quota', () => {
  for (const [name, u] of users) {
    if (u.attrs.remove === 'remove' || name === 'mcp_admin') continue;
    const profileName = textAt(u, 'profile')!;
    const p = profiles.get(profileName);
    assert.ok(p, `${name}: profile ${profileName}`);
    const constraints = child(p, 'constraints');
    for (const s of ['readonly', 'allow_ddl']) {
      assert.ok(textAt(p, s) !== undefined, `${profileName}: ${s} is set`);
      assert.ok(
        at(constraints, s, 'const') ?? at(constraints, s, 'readonly'),
        `${profileName}: ${s} is const`,
      );
    }
    const reader = textAt(p, 'readonly') === '1';
    assert.equal(textAt(p, 'allow_ddl'), name === 'mcp_retention' ? '1' : '0', `${profileName}: allow_ddl`);
    if (!reader) continue;
    for (const limit of READER_LIMITS) {
      const value: number = Number(textAt(p, limit));
      assert.ok(value > 0, `${profileName}: ${limit} is set`);
      assert.equal(
        Number(textAt(constraints, limit, 'max')),
        value,
        `${profileName}: ${limit} capped at its value`,
      );
    }
    for (const mode of ['read_overflow_mode', 'result_overflow_mode', 'timeout_overflow_mode']) {
      assert.equal(textAt(p, mode), 'throw', `${profileName}: ${mode}`);
      assert.ok(at(constraints, mode, 'const'), `${profileName}: ${mode} is const`);
    }
    const q = quotas.get(textAt(u, 'quota')!);
    for (const k of ['queries', 'errors', 'result_rows', 'read_rows', 'execution_time'])
      assert.ok(Number(textAt(q, 'interval', k)) > 0, `${name}: quota ${k}`);
  }
});

test('local users.xml.tmpl (18.16) and 25.8 give the reading users the same limits and quotas', () => {
  const local = parseXml(readFileSync(join(REPO_ROOT, 'deploy/clickhouse/users.xml.tmpl'), 'utf8'));
  for (const p of ['analyst', 'api_reader']) {
    for (const s of [...READER_LIMITS, 'read_overflow_mode', 'result_overflow_mode', 'readonly'])
      assert.equal(textAt(local, 'yandex', 'profiles', p, s), textAt(profiles.get(p), s), `${p}: ${s}`);
    const q25 = quotas.get(p);
    for (const k of ['duration', 'queries', 'errors', 'result_rows', 'read_rows', 'execution_time'])
      assert.equal(
        textAt(local, 'yandex', 'quotas', p, 'interval', k),
        textAt(q25, 'interval', k),
        `quota ${p}: ${k}`,
      );
  }
});
