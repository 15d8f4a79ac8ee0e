#!/usr/bin/env node
// What a suite run must leave unchanged on the stack `npm start` runs (not the tests' own stack):
// its ClickHouse databases and their tables' row counts, and its Kafka topics with their end offsets.
//   node scripts/stack-fingerprint.mjs <secrets.env>   → JSON on stdout, or {"absent":…} when that
//   stack is not running (nothing to protect).
//   … --against <before.json> [--counts]   → exit 1 naming what changed since `before`: tables and
//   topics always; with --counts also row counts and topic end offsets (only meaningful when none of
//   that stack's own services runs, since they write too).
import { readFileSync, existsSync } from 'node:fs';
import { createClient } from '@clickhouse/client';
import { Kafka, logLevel } from 'kafkajs';

const file = process.argv[2];
const againstAt = process.argv.indexOf('--against');
const against = againstAt > 0 ? process.argv[againstAt + 1] : undefined;
const counts = process.argv.includes('--counts');

function compare(before, now) {
  if (before.absent || now.absent) return [];
  const diff = [];
  const bt = new Set(before.tables);
  const nt = new Set(now.tables);
  for (const t of nt) if (!bt.has(t)) diff.push(`table ${t} was created`);
  for (const t of bt) if (!nt.has(t)) diff.push(`table ${t} was dropped`);
  for (const t of Object.keys(now.topics)) if (!(t in before.topics)) diff.push(`topic ${t} was created`);
  for (const t of Object.keys(before.topics)) if (!(t in now.topics)) diff.push(`topic ${t} was deleted`);
  if (counts) {
    const rows = new Map(before.rows.map((r) => [`${r.database}.${r.name}`, String(r.total_rows)]));
    for (const r of now.rows) {
      const k = `${r.database}.${r.name}`;
      // Only growth counts: a ReplacingMergeTree merge may drop duplicates without anyone writing.
      if (rows.has(k) && Number(r.total_rows) > Number(rows.get(k)))
        diff.push(`${k}: ${rows.get(k)} → ${r.total_rows} rows`);
    }
    for (const [t, n] of Object.entries(now.topics))
      if (t in before.topics && before.topics[t] !== n)
        diff.push(`topic ${t}: ${before.topics[t]} → ${n} messages`);
  }
  return diff;
}

function done(fp) {
  if (!against) {
    console.log(JSON.stringify(fp));
    process.exit(0);
  }
  const diff = compare(JSON.parse(readFileSync(against, 'utf8')), fp);
  if (diff.length === 0) {
    console.log(
      fp.absent ? `the npm start stack: ${fp.absent}` : 'the npm start stack is unchanged by the suite',
    );
    process.exit(0);
  }
  console.error(`the suite changed the npm start stack:\n  ${diff.join('\n  ')}`);
  process.exit(1);
}
if (!file || !existsSync(file)) {
  done({ absent: `no ${file}` });
}
const env = {};
for (const line of readFileSync(file, 'utf8').split('\n')) {
  const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
  if (m) env[m[1]] = m[2];
}
const ch = createClient({
  url: env.MCP_AUDIT_CLICKHOUSE_URL,
  username: env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER,
  password: env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD,
  request_timeout: 5_000,
});
try {
  await ch.ping().then((r) => {
    if (!r.success) throw r.error;
  });
} catch {
  done({ absent: 'its ClickHouse is not running' });
}
const rows = await (
  await ch.query({
    query: `SELECT database, name, total_rows FROM (
              SELECT database, name FROM system.tables WHERE database NOT IN ('system')
            ) ANY LEFT JOIN (
              SELECT database, table AS name, sum(rows) AS total_rows FROM system.parts WHERE active GROUP BY database, table
            ) USING (database, name) ORDER BY database, name`,
    format: 'JSONEachRow',
  })
).json();
await ch.close();
const kafka = new Kafka({
  brokers: env.MCP_AUDIT_KAFKA_BROKERS.split(','),
  logLevel: logLevel.NOTHING,
  connectionTimeout: 3_000,
});
const admin = kafka.admin();
const topics = {};
try {
  await admin.connect();
  for (const t of (await admin.listTopics()).filter((t) => !t.startsWith('__')).sort()) {
    const offsets = await admin.fetchTopicOffsets(t);
    topics[t] = offsets.reduce((n, o) => n + Number(o.high), 0);
  }
} finally {
  await admin.disconnect();
}
done({ tables: rows.map((r) => `${r.database}.${r.name}`), rows, topics });
