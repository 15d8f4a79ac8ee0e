import { MigrationError } from './errors.js';
import { lex } from './sql-lexer.js';

/**
 * Cluster layout of the migrations (issue 16), chosen by configuration (MCP_AUDIT_CLICKHOUSE_CLUSTER):
 * the files stay written for one server, and every statement is rewritten per node:
 *
 * - `CREATE TABLE mcp_audit.t (…) ENGINE = XMergeTree(args) …` becomes
 *     `mcp_audit.t_local` with `ReplicatedXMergeTree('/clickhouse/tables/{shard}/<db>/t_local', '{replica}', args)`
 *   (the same columns, partitions, order and settings), plus
 *     `mcp_audit.t AS mcp_audit.t_local ENGINE = Distributed('<cluster>', '<db>', 't_local', <key>)`,
 *   so every service keeps reading and writing `t`. Key: `cityHash64(client_id)` when the table has a
 *   client_id column (one client's rows on one shard: its FINAL, LIMIT 1 BY and rollups stay whole),
 *   else cityHash64 of the first ORDER BY column (rows a Replacing merge must fold meet on one shard).
 * - A materialized view reads and writes the LOCAL tables: it fires on the replica that takes the
 *   insert, per shard, and its target is itself replicated.
 * - `INSERT … SELECT` backfills copy local to local on every node.
 * - A column ALTER runs on the local table (18.16 and 25.8 replicate it to the shard's other
 *   replicas; on those the runner then skips "already exists") and on the Distributed table.
 *
 * The runner executes the result on every node itself (runClusterMigrations) rather than with
 * `ON CLUSTER`: the same statements on 18.16 and 25.8, no distributed DDL queue to configure, and a
 * node that was down is brought up to date by running the migrations again. Each node has its own
 * schema_migrations and lock.
 */

export interface ClusterLayout {
  /** The cluster's name in the servers' remote_servers (and their `{shard}` / `{replica}` macros). */
  cluster: string;
  /** Target database (the literal the Distributed tables and ZooKeeper paths name). */
  database: string;
}

export const LOCAL_SUFFIX = '_local';
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const CREATE_TABLE =
  /^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+mcp_audit\.([A-Za-z_]\w*)\s*\(([\s\S]*)\)\s*ENGINE\s*=\s*([A-Za-z]*)MergeTree\s*\(([^)]*)\)([\s\S]*)$/i;
const CREATE_MV =
  /^CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+mcp_audit\.([A-Za-z_]\w*)\s+TO\s+mcp_audit\.([A-Za-z_]\w*)\s+AS\s+([\s\S]*)$/i;
const INSERT_SELECT = /^INSERT\s+INTO\s+mcp_audit\.[A-Za-z_]\w*[\s\S]*\bSELECT\b/i;
const ALTER_COLUMN = /^ALTER\s+TABLE\s+mcp_audit\.([A-Za-z_]\w*)\s+(?:ADD|DROP|MODIFY)\s+COLUMN\b/i;

/** The statements one node runs for one statement of a migration file (still against `mcp_audit.`). */
export function clusterStatements(statement: string, layout: ClusterLayout, file = ''): string[] {
  checkName(layout.cluster, 'cluster name');
  checkName(layout.database, 'database');
  const code = codeOnly(statement);
  const fail = (why: string): never => {
    throw new MigrationError(
      'AUDIT_ERR_MIGRATION_FILE',
      `${file}: ${why} (cluster mode, packages/clickhouse/src/cluster.ts): ${statement.slice(0, 120)}`,
      { file },
    );
  };

  const table = CREATE_TABLE.exec(statement);
  if (table && CREATE_TABLE.test(code)) {
    const [, name, columns, variant, args, rest] = table as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (/^Replicated/i.test(variant)) fail('the table is already replicated');
    if (name.endsWith(LOCAL_SUFFIX))
      fail(`a table name ending in ${LOCAL_SUFFIX} is reserved for the local tables`);
    const local = `${name}${LOCAL_SUFFIX}`;
    const path = `/clickhouse/tables/{shard}/${layout.database}/${local}`;
    const engineArgs = [`'${path}'`, `'{replica}'`, ...(args.trim() ? [args.trim()] : [])].join(', ');
    return [
      `CREATE TABLE IF NOT EXISTS mcp_audit.${local}\n(${columns})\nENGINE = Replicated${variant}MergeTree(${engineArgs})${rest}`,
      `CREATE TABLE IF NOT EXISTS mcp_audit.${name} AS mcp_audit.${local}\n` +
        `ENGINE = Distributed('${layout.cluster}', '${layout.database}', '${local}', ${shardingKey(columns, rest, fail)})`,
    ];
  }
  if (/^\s*CREATE\s+TABLE\b/i.test(code)) fail('only MergeTree-family tables can be laid out on a cluster');

  const mv = CREATE_MV.exec(code);
  if (mv) return [localRefs(statement, mv[1]!)];
  if (/^\s*CREATE\s+MATERIALIZED\s+VIEW\b/i.test(code)) fail('a materialized view needs TO <table>');

  if (INSERT_SELECT.test(code)) return [localRefs(statement)];

  const alter = ALTER_COLUMN.exec(code);
  if (alter) return [localRefs(statement), statement];

  return fail('no cluster rule for this statement');
}

/** `cityHash64(client_id)` when the table has that column, else cityHash64 of the first sort column. */
function shardingKey(columns: string, rest: string, fail: (why: string) => never): string {
  if (/(?:^|,)\s*client_id\s/.test(columns)) return 'cityHash64(client_id)';
  const order = /\bORDER\s+BY\s*\(?\s*([A-Za-z_]\w*)/i.exec(rest);
  if (!order) return fail('no client_id column and no ORDER BY column to shard by');
  return `cityHash64(${order[1]})`;
}

/** Every `mcp_audit.x` in code (never in strings) becomes `mcp_audit.x_local`, except `keep`. */
function localRefs(statement: string, keep?: string): string {
  return lex(statement)
    .segments.map((s) =>
      s.kind === 'code'
        ? s.text.replace(/(?<![\w$`.])mcp_audit\.([A-Za-z_]\w*)/g, (m, t: string) =>
            t === keep ? m : `mcp_audit.${t}${LOCAL_SUFFIX}`,
          )
        : s.text,
    )
    .join('');
}

function codeOnly(statement: string): string {
  return lex(statement)
    .segments.map((s) => (s.kind === 'code' ? s.text : ' '.repeat(s.text.length)))
    .join('');
}

function checkName(value: string, what: string): void {
  if (!NAME.test(value)) {
    throw new MigrationError(
      'AUDIT_ERR_MIGRATION_CLUSTER',
      `${what} ${JSON.stringify(value)} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64)`,
    );
  }
}
