// Issue 16: docker-compose runs ClickHouse 25.8; the tests run on Debian's 18.16. Every difference
// between the two that matters to this project is listed in the README (ClickHouse 25.8 and the
// tests' 18.16) and handled by the compose configuration (deploy/clickhouse/docker/users.xml and
// config.xml). There is no Docker engine on the project's machines, so this checks statically that
// each handling is in place, that the README names each difference, and that the code and migrations
// still avoid what would behave differently. The 25.8 defaults come from ClickHouse's settings changes
// history (the table behind its `compatibility` setting).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../lib/env.js';
import { at, child, parseXml, textAt, type XmlNode } from '../lib/xml.js';

const DOCKER_CH = join(REPO_ROOT, 'deploy/clickhouse/docker');
const usersXml = parseXml(readFileSync(join(DOCKER_CH, 'users.xml'), 'utf8'));
const serverXml = parseXml(readFileSync(join(DOCKER_CH, 'config.xml'), 'utf8'));
const compose = parseYaml(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, { environment?: Record<string, string | number>; volumes?: unknown[] }>;
};
const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const profiles = new Map(at(usersXml, 'clickhouse', 'profiles')!.children.map((p) => [p.name, p]));
const users = new Map(at(usersXml, 'clickhouse', 'users')!.children.map((u) => [u.name, u]));

/**
 * Session settings whose default changed after 18.16 in a way this project notices: the version
 * that changed it, and the 18.16 behaviour the default profile keeps (every profile inherits it).
 */
const PINNED: Record<string, { since: string; value: string }> = {
  input_format_skip_unknown_fields: { since: '22.6', value: '0' },
  input_format_null_as_default: { since: '21.1', value: '0' },
  optimize_on_insert: { since: '21.1', value: '0' },
  enable_positional_arguments: { since: '22.7', value: '0' },
  enable_analyzer: { since: '24.3', value: '0' },
  http_write_exception_in_output_format: { since: '23.9', value: '0' },
  async_insert: { since: 'new', value: '0' },
  wait_for_async_insert: { since: 'new', value: '1' },
  insert_deduplicate: { since: 'replicated tables', value: '1' },
};
/** Held by a constraint for every user that writes: an insert must fail loudly and be durable. */
const WRITE_CONST = [
  'input_format_skip_unknown_fields',
  'input_format_null_as_default',
  'async_insert',
  'wait_for_async_insert',
];
/** Server settings (config.d) and their values. */
const SERVER: Array<[string[], string]> = [
  [['access_control_improvements', 'select_from_system_db_requires_grant'], 'true'],
  [['access_control_improvements', 'select_from_information_schema_requires_grant'], 'true'],
  [['access_control_improvements', 'settings_constraints_replace_previous'], 'true'],
  [['merge_tree', 'non_replicated_deduplication_window'], '0'],
  [['timezone'], 'UTC'],
];
/** System tables every user may read without a grant on 25.8. */
const SYSTEM_EXEMPT = new Set(['one', 'tables', 'columns', 'databases']);
/** Users of the roles in packages/clickhouse (ClickHouseRole) unless compose names another. */
const DEFAULT_USER: Record<string, string> = {
  WRITER: 'mcp_writer',
  ANALYST: 'mcp_analyst',
  ADMIN: 'mcp_admin',
  API: 'mcp_api',
  API_READER: 'mcp_api_reader',
};

function tsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) tsFiles(p, out);
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}
const SERVICES = readdirSync(join(REPO_ROOT, 'services')).sort();
const sourceOf = (dir: string) => tsFiles(join(REPO_ROOT, dir, 'src')).map((f) => readFileSync(f, 'utf8'));

/** The ClickHouse users compose gives a service: one per MCP_AUDIT_CLICKHOUSE_<ROLE>_PASSWORD. */
function usersOf(service: string): string[] {
  const env = compose.services[service]?.environment ?? {};
  return Object.keys(env)
    .map((k) => /^MCP_AUDIT_CLICKHOUSE_(\w+)_PASSWORD$/.exec(k)?.[1])
    .filter((r): r is string => r !== undefined)
    .map((role) => String(env[`MCP_AUDIT_CLICKHOUSE_${role}_USER`] ?? DEFAULT_USER[role]));
}

const systemGrants = (u: XmlNode) =>
  (child(u, 'grants')?.children ?? [])
    .map((q) => /^GRANT SELECT(?:\(([\w, ]+)\))? ON system\.(\w+)$/.exec(q.text.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ table: m[2]!, columns: m[1]?.split(', ') }));

test('25.8: every changed default the project depends on is pinned, for every user', () => {
  const base = profiles.get('default')!;
  for (const [name, { value }] of Object.entries(PINNED))
    assert.equal(textAt(base, name), value, `default profile: ${name}`);
  for (const [name, p] of profiles) {
    if (name === 'default') continue;
    assert.equal(p.children[0]?.name, 'profile', `${name}: inherits a profile first`);
    assert.equal(p.children[0]?.text, 'default', `${name}: inherits the default profile`);
    // A profile may override a pinned setting only with the same value.
    for (const [setting, { value }] of Object.entries(PINNED))
      if (textAt(p, setting) !== undefined) assert.equal(textAt(p, setting), value, `${name}: ${setting}`);
    if (textAt(p, 'readonly') === '0' && name !== 'admin')
      for (const setting of WRITE_CONST)
        assert.ok(at(p, 'constraints', setting, 'const'), `${name} writes: ${setting} is const`);
  }
  // 19.5: 100 partitions per insert block; the ingester's batches may span more (18.16: no limit).
  assert.deepEqual(usersOf('ingester'), ['mcp_writer']);
  const writer = profiles.get(textAt(users.get('mcp_writer'), 'profile')!);
  assert.equal(textAt(writer, 'max_partitions_per_insert_block'), '0', 'the ingester: no partition limit');
});

test('25.8: server config (system tables behind grants, no insert deduplication, UTC) is mounted', () => {
  for (const [path, value] of SERVER)
    assert.equal(textAt(serverXml, 'clickhouse', ...path), value, path.join('.'));
  const volumes = (compose.services.clickhouse!.volumes ?? []).map(String);
  assert.ok(
    volumes.includes(
      './deploy/clickhouse/docker/config.xml:/etc/clickhouse-server/config.d/mcp-audit.xml:ro',
    ),
    'compose mounts config.xml into config.d',
  );
  assert.ok(
    volumes.includes('./deploy/clickhouse/docker/users.xml:/etc/clickhouse-server/users.d/mcp-audit.xml:ro'),
    'compose mounts users.xml into users.d',
  );
});

test('25.8: each system table a service reads is granted to its users, columns included; no other system grant', () => {
  const granted = new Set<string>();
  for (const svc of SERVICES) {
    const mine = usersOf(svc).map((u) => users.get(u)!);
    const src = sourceOf(`services/${svc}`).join('\n');
    for (const m of src.matchAll(/\b(?:FROM|JOIN)\s+system\.(\w+)/g)) {
      const table = m[1]!;
      if (SYSTEM_EXEMPT.has(table)) continue;
      const grants = mine.flatMap(systemGrants).filter((g) => g.table === table);
      assert.ok(grants.length > 0, `${svc} reads system.${table}: no grant for ${usersOf(svc).join(', ')}`);
      for (const g of grants) granted.add(`${g.table}`);
    }
  }
  for (const [name, u] of users)
    for (const g of systemGrants(u))
      assert.ok(granted.has(g.table), `${name}: SELECT on system.${g.table}, which no service of it reads`);
  // retention's plan: the columns of the system tables it reads are exactly the granted ones (the
  // partition listing on one server and on every node of a cluster, the cluster's shape, the leader).
  const retentionGrants = systemGrants(users.get('mcp_retention')!);
  const columnsOf = (table: string) =>
    [...(retentionGrants.find((g) => g.table === table)?.columns ?? [])].sort();
  const plan = readFileSync(join(REPO_ROOT, 'services/retention/src/partitions.ts'), 'utf8');
  const queries: Array<[RegExp, string, string[]]> = [
    [
      /SELECT table, partition, sum\(rows\) AS rows FROM system\.parts\s+WHERE database = \$\{[^}]+\} AND active/,
      'parts',
      ['active', 'database', 'partition', 'rows', 'table'],
    ],
    [/anyIf\(substitution, macro = 'shard'\) FROM system\.macros/, 'macros', ['macro', 'substitution']],
    [/uniqExact\(shard_num\) FROM system\.clusters WHERE cluster = /, 'clusters', ['cluster', 'shard_num']],
    [
      /SELECT is_leader AS leader FROM system\.replicas\s+WHERE database = \$\{[^}]+\} AND table = /,
      'replicas',
      ['database', 'is_leader', 'table'],
    ],
  ];
  for (const [query, table, columns] of queries) {
    assert.match(plan, query, `retention's system.${table} query changed: review its grant`);
    assert.deepEqual(columnsOf(table), columns, `mcp_retention's columns of system.${table}`);
  }
  // Packages read system tables only in the migration runner (the admin, in the migrate job).
  for (const pkg of readdirSync(join(REPO_ROOT, 'packages')))
    for (const f of tsFiles(join(REPO_ROOT, 'packages', pkg, 'src'))) {
      const rel = f.slice(REPO_ROOT.length);
      for (const m of readFileSync(f, 'utf8').matchAll(/\b(?:FROM|JOIN)\s+system\.(\w+)/g))
        assert.ok(
          SYSTEM_EXEMPT.has(m[1]!) || /packages\/clickhouse\/src\/(cluster-)?migrations\.ts$/.test(rel),
          `${rel} reads system.${m[1]}: only migrations (the admin) may`,
        );
    }
});

test('25.8: no setting a service sends per query is held by a constraint of its users', () => {
  // 18.16 has no constraints: a setting the code sends is refused only on 25.8.
  for (const svc of SERVICES) {
    const sent = new Set<string>();
    for (const src of sourceOf(`services/${svc}`))
      for (const m of src.matchAll(/\bsettings:\s*\{([^}]*)\}/g))
        for (const k of m[1]!.matchAll(/(\w+)\s*:/g)) sent.add(k[1]!);
    for (const user of usersOf(svc)) {
      const p = profiles.get(textAt(users.get(user), 'profile')!)!;
      for (const s of sent)
        assert.ok(!child(child(p, 'constraints'), s), `${svc} sends ${s}, which ${user} may not change`);
    }
  }
});

test('25.8: the migrations mean the same on both (syntax, types, defaults, engines)', () => {
  const dir = join(REPO_ROOT, 'schemas/clickhouse');
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql'));
  assert.ok(files.length > 0);
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8').replace(/--.*$/gm, '');
    for (const stmt of text.split(';').filter((s) => /\bENGINE\s*=/.test(s))) {
      const engine = /\bENGINE\s*=\s*(\w+)(?:\(([^)]*)\))?/.exec(stmt)!;
      // Deprecated MergeTree(date, key, granularity) needs allow_deprecated_syntax_for_merge_tree on 25.8.
      if (engine[1]!.endsWith('MergeTree')) {
        assert.ok(
          (engine[2] ?? '').split(',').filter((a) => a.trim()).length <= 1,
          `${f}: old MergeTree syntax`,
        );
        assert.match(stmt, /\bORDER BY\b/, `${f}: MergeTree without ORDER BY`);
      }
      // No Kafka engine: the ingester consumes Kafka; 25.8's Kafka engine settings do not apply.
      assert.notEqual(engine[1], 'Kafka', `${f}: a Kafka engine table`);
    }
    // Types both versions read the same way (25.3 made JSON/Variant/Dynamic production types).
    assert.doesNotMatch(
      text,
      /\b(DateTime64|JSON|Object|Variant|Dynamic|Bool)\b/,
      `${f}: a type 18.16 lacks`,
    );
    // 19.12 (input_format_defaults_for_omitted_fields): an omitted field gets the column's DEFAULT on
    // 25.8 and the type's default on 18.16; the same only while every DEFAULT is the type's default.
    for (const m of text.matchAll(/\bDEFAULT\s+([^,;\n)]+)/g))
      assert.match(m[1]!.trim(), /^(''|0)$/, `${f}: DEFAULT ${m[1]} differs from the type's default`);
    assert.doesNotMatch(text, /\ballow_experimental_\w+/, `${f}: an experimental setting`);
  }
  // ANY RIGHT/FULL/INNER JOIN changed meaning in 19.14 (any_join_distinct_right_table_keys).
  for (const svc of SERVICES)
    for (const src of sourceOf(`services/${svc}`))
      assert.doesNotMatch(src, /\bANY\s+(RIGHT|FULL|INNER)\s+JOIN\b/i, `${svc}: ANY RIGHT/FULL/INNER JOIN`);
});

test('25.8: the README lists every difference and its handling', () => {
  const start = readme.indexOf("ClickHouse 25.8 and the tests' 18.16");
  assert.ok(start >= 0, "README section: ClickHouse 25.8 and the tests' 18.16");
  const section = readme.slice(start, readme.indexOf('\n## ', start));
  for (const [name, { since }] of Object.entries(PINNED)) {
    assert.ok(section.includes(`\`${name}\``), `README: ${name}`);
    if (/^\d/.test(since)) assert.ok(section.includes(since), `README: ${name} changed in ${since}`);
  }
  for (const [path] of SERVER) assert.ok(section.includes(`\`${path.at(-1)}\``), `README: ${path.join('.')}`);
  for (const word of [
    'max_partitions_per_insert_block',
    'input_format_defaults_for_omitted_fields',
    'any_join_distinct_right_table_keys',
    'allow_deprecated_syntax_for_merge_tree',
    'system.parts',
    'GRANT',
    'readonly',
    'allow_ddl',
    'DateTime64',
    'JSON',
    'Kafka',
    'default_materialized_view_sql_security',
  ])
    assert.ok(section.includes(word), `README section names ${word}`);
});
