import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createClickHouse } from '@mcp-audit/clickhouse';
import { cliEnvSchema } from '../src/config.js';
import { configuredPartitions } from '../src/partitions.js';

// The cluster layout's configuration (the partitions themselves run against the real cluster in
// test/e2e/cluster-retention.int.test.ts, and against one server in retention.plan.test.ts).
describe('retention partitions: configuration', () => {
  const base = {
    MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD: 'x',
    MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR: '/tmp/keys',
  };
  const parse = (extra: Record<string, string>) => cliEnvSchema.safeParse({ ...base, ...extra });
  // NOTE: no request is sent by any case below (clients connect on first query).
  const ch = createClickHouse({ url: 'http://127.0.0.1:1', username: 'u', password: 'p' });
  after(() => ch.close());

  it('reads the cluster name and every node URL, as the migrations do', async () => {
    const r = parse({
      MCP_AUDIT_CLICKHOUSE_CLUSTER: 'mcp_audit',
      MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS: 'http://127.0.0.1:1, http://127.0.0.1:2,',
    });
    assert.ok(r.success, JSON.stringify(r.error?.issues));
    assert.deepEqual(r.data.MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS, ['http://127.0.0.1:1', 'http://127.0.0.1:2']);
    const p = configuredPartitions(r.data, ch, {});
    assert.equal(p.partitions.mode, 'cluster');
    await p.close();
  });

  it('without them: one server', () => {
    const r = parse({});
    assert.ok(r.success);
    assert.deepEqual(r.data.MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS, []);
    assert.equal(configuredPartitions(r.data, ch, {}).partitions.mode, 'single');
  });

  it('refuses a bad name, a bad URL, and one setting without the other, naming what is wrong', () => {
    const bad = parse({ MCP_AUDIT_CLICKHOUSE_CLUSTER: 'mcp-audit; DROP' });
    assert.ok(!bad.success);
    assert.deepEqual(bad.error.issues[0]!.path, ['MCP_AUDIT_CLICKHOUSE_CLUSTER']);
    const url = parse({ MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS: 'ftp://127.0.0.1:1' });
    assert.ok(!url.success);
    assert.equal(url.error.issues[0]!.path[0], 'MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS');

    const nameOnly = parse({ MCP_AUDIT_CLICKHOUSE_CLUSTER: 'mcp_audit' });
    assert.ok(nameOnly.success);
    assert.throws(
      () => configuredPartitions(nameOnly.data, ch, {}),
      /MCP_AUDIT_CLICKHOUSE_CLUSTER is set: MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS must list every node/,
    );
    const urlsOnly = parse({ MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS: 'http://127.0.0.1:1' });
    assert.ok(urlsOnly.success);
    assert.throws(
      () => configuredPartitions(urlsOnly.data, ch, {}),
      /MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS is set without MCP_AUDIT_CLICKHOUSE_CLUSTER/,
    );
  });
});
