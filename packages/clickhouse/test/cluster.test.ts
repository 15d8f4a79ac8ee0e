import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterStatements, loadMigrations, MigrationError } from '../src/index.js';
import { SCHEMAS_DIR } from './helpers.js';

const layout = { cluster: 'mcp_audit', database: 'mcp_audit_t1' };

test('cluster layout: a table becomes a replicated local table and a Distributed table by client', () => {
  const [local, dist] = clusterStatements(
    "CREATE TABLE IF NOT EXISTS mcp_audit.events\n(\n    event_id UUID,\n    client_id String,\n    s String DEFAULT 'a)b'\n)\nENGINE = ReplacingMergeTree(ver)\nPARTITION BY toYYYYMMDD(ts)\nORDER BY (client_id, ts, event_id)",
    layout,
  );
  assert.equal(
    local,
    "CREATE TABLE IF NOT EXISTS mcp_audit.events_local\n(\n    event_id UUID,\n    client_id String,\n    s String DEFAULT 'a)b'\n)\n" +
      "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/mcp_audit_t1/events_local', '{replica}', ver)\n" +
      'PARTITION BY toYYYYMMDD(ts)\nORDER BY (client_id, ts, event_id)',
  );
  assert.equal(
    dist,
    'CREATE TABLE IF NOT EXISTS mcp_audit.events AS mcp_audit.events_local\n' +
      "ENGINE = Distributed('mcp_audit', 'mcp_audit_t1', 'events_local', cityHash64(client_id))",
  );
});

test('cluster layout: no client_id shards by the first sort column; plain MergeTree keeps no args', () => {
  const [local, dist] = clusterStatements(
    'CREATE TABLE IF NOT EXISTS mcp_audit.integrity_ledger\n(\n    seq UInt64,\n    record String\n)\nENGINE = MergeTree()\nORDER BY seq',
    layout,
  );
  assert.match(
    local!,
    /ENGINE = ReplicatedMergeTree\('\/clickhouse\/tables\/\{shard\}\/mcp_audit_t1\/integrity_ledger_local', '\{replica\}'\)\nORDER BY seq$/,
  );
  assert.match(dist!, /'integrity_ledger_local', cityHash64\(seq\)\)$/);
});

test('cluster layout: views, backfills and ALTERs work on the local tables', () => {
  assert.deepEqual(
    clusterStatements(
      "CREATE MATERIALIZED VIEW IF NOT EXISTS mcp_audit.h_mv TO mcp_audit.h AS SELECT 'mcp_audit.x' AS s FROM mcp_audit.events",
      layout,
    ),
    [
      "CREATE MATERIALIZED VIEW IF NOT EXISTS mcp_audit.h_mv TO mcp_audit.h_local AS SELECT 'mcp_audit.x' AS s FROM mcp_audit.events_local",
    ],
  );
  assert.deepEqual(clusterStatements('INSERT INTO mcp_audit.a SELECT x FROM mcp_audit.events', layout), [
    'INSERT INTO mcp_audit.a_local SELECT x FROM mcp_audit.events_local',
  ]);
  assert.deepEqual(clusterStatements("ALTER TABLE mcp_audit.events ADD COLUMN t String DEFAULT ''", layout), [
    "ALTER TABLE mcp_audit.events_local ADD COLUMN t String DEFAULT ''",
    "ALTER TABLE mcp_audit.events ADD COLUMN t String DEFAULT ''",
  ]);
});

test('cluster layout: what has no rule is refused with a reason, bad names too', () => {
  const refused = (s: string, why: RegExp) =>
    assert.throws(
      () => clusterStatements(s, layout, '099_x.sql'),
      (e: unknown) => e instanceof MigrationError && why.test(e.message) && e.message.includes('099_x.sql'),
    );
  refused('CREATE TABLE IF NOT EXISTS mcp_audit.l (x String) ENGINE = Log', /only MergeTree-family/);
  refused(
    'CREATE TABLE IF NOT EXISTS mcp_audit.x_local (x String) ENGINE = MergeTree() ORDER BY x',
    /reserved/,
  );
  refused(
    "CREATE TABLE IF NOT EXISTS mcp_audit.r (x String) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY x",
    /already replicated/,
  );
  refused('CREATE MATERIALIZED VIEW IF NOT EXISTS mcp_audit.v ENGINE = Log AS SELECT 1', /needs TO/);
  refused('ALTER TABLE mcp_audit.events DROP PARTITION 20260101', /no cluster rule/);
  assert.throws(
    () => clusterStatements('SELECT 1', { cluster: 'bad-name', database: 'd' }),
    /cluster name "bad-name" is not a plain identifier/,
  );
});

test("cluster layout: every statement of the repo's migrations has a rule", () => {
  let tables = 0;
  for (const f of loadMigrations(SCHEMAS_DIR)) {
    for (const s of f.statements) {
      const out = clusterStatements(s, layout, f.file);
      if (/^CREATE TABLE/.test(s)) {
        tables++;
        assert.match(out[0]!, /ENGINE = Replicated\w*MergeTree\('\/clickhouse\/tables\/\{shard\}\//, f.file);
        assert.match(
          out[1]!,
          /ENGINE = Distributed\('mcp_audit', 'mcp_audit_t1', '\w+_local', cityHash64\(\w+\)\)$/,
        );
      }
    }
  }
  assert.ok(tables >= 19, `${tables} tables`);
});
