#!/usr/bin/env node
/**
 * Admin-only history import (issue 14 item 9). See USAGE and the README (*Importing history*).
 * Exit codes: 0 everything imported (duplicates skipped), 1 some lines refused, 2 usage or
 * configuration, 3 the import or the baseline backfill failed.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { clickhouseEnv, clickhouseFor, sql, tuple } from '@mcp-audit/clickhouse';
import { createEventRedactor } from '@mcp-audit/redaction';
import { parseConfig } from '@mcp-audit/service-kit';
import {
  baselineRange,
  bundleLines,
  importEvents,
  ndjsonLines,
  type ImportLine,
  type ImportSummary,
  type Rejected,
} from './history.import.js';
import { eventIdRow } from './event-ids.guard.js';

const USAGE = `usage: import.cli.js --env-file FILE (--file EVENTS.ndjson[.gz] | --bundle EXPORT_DIR)... [options]

Loads audit events of any age through the ingester's validation and redaction into mcp_audit.events,
marked as imported (label mcp_audit.origin=import, kafka_partition -1); events_hourly fills from
them; then computes the daily baselines for the imported range so detection starts on day one.

  --env-file FILE   the import's own credentials (mode 0600; see README): MCP_AUDIT_CLICKHOUSE_URL,
                    MCP_AUDIT_CLICKHOUSE_DATABASE, MCP_AUDIT_CLICKHOUSE_ADMIN_USER/_PASSWORD,
                    MCP_AUDIT_REDACTION_KEY (the ingester's, so fingerprints correlate), and for the
                    baselines step optionally the detector's WRITER/ANALYST users and
                    MCP_AUDIT_DETECTOR_CONFIG (default: the admin user, the detector's defaults)
  --file FILE       an NDJSON file of events (one per line; .gz is gunzipped); repeatable
  --bundle DIR      a compliance export bundle (NDJSON format): its manifest's files, SHA-256 checked
  --rejects FILE    write every refused line as NDJSON {source, line, code, reason}
  --no-baselines    skip the baseline backfill
  --batch-rows N    rows per insert (default 10000)`;

const fail = (msg: string, code = 2): never => {
  process.stderr.write(`import: ${msg}\n`);
  process.exit(code);
};

const { values } = parseArgs({
  options: {
    'env-file': { type: 'string' },
    file: { type: 'string', multiple: true, default: [] },
    bundle: { type: 'string', multiple: true, default: [] },
    rejects: { type: 'string' },
    'no-baselines': { type: 'boolean', default: false },
    'batch-rows': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (!values['env-file']) fail(`--env-file is required\n${USAGE}`);
if (values.file.length + values.bundle.length === 0) fail(`give at least one --file or --bundle\n${USAGE}`);
const batchRows = values['batch-rows'] === undefined ? 10_000 : Number(values['batch-rows']);
if (!Number.isInteger(batchRows) || batchRows < 1 || batchRows > 1_000_000)
  fail('--batch-rows must be an integer from 1 to 1000000');

/** KEY=VALUE lines; the file must not be readable by group or others (it holds the admin password). */
function readEnvFile(path: string): Record<string, string> {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    return fail(`--env-file ${path}: ${(err as Error).message}`);
  }
  if (mode & 0o077)
    fail(
      `--env-file ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}): chmod 600 it`,
    );
  const out: Record<string, string> = {};
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      const t = line.trim();
      if (t === '' || t.startsWith('#')) return;
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(t);
      if (!m) fail(`--env-file ${path}:${i + 1}: not KEY=VALUE`);
      out[m![1]!] = m![2]!.replace(/^(["'])(.*)\1$/, '$2');
    });
  return out;
}

const fileEnv = readEnvFile(values['env-file']!);
let env: z.infer<ReturnType<typeof importEnvSchema>>;
function importEnvSchema() {
  return clickhouseEnv('ADMIN').extend({
    MCP_AUDIT_REDACTION_KEY: z.string().min(16, 'MCP_AUDIT_REDACTION_KEY must be at least 16 characters'),
  });
}
try {
  env = parseConfig(importEnvSchema(), fileEnv);
} catch (err) {
  fail(`--env-file ${values['env-file']}: ${(err as Error).message}`);
}

const ch = clickhouseFor(env!, 'ADMIN', {
  insertTables: ['events', 'event_ids'],
  requestTimeoutMs: 300_000,
  application: 'mcp-audit-import',
});

async function* sources(): AsyncGenerator<ImportLine> {
  for (const f of values.file) yield* ndjsonLines(f);
  for (const d of values.bundle) yield* bundleLines(d);
}

const rejectsOut = values.rejects
  ? createWriteStream(values.rejects, { flags: 'wx', mode: 0o600 })
  : undefined;
let shown = 0;
const onReject = (r: Rejected) => {
  rejectsOut?.write(`${JSON.stringify(r)}\n`);
  if (shown++ < 20) process.stderr.write(`refused ${r.source}:${r.line}: ${r.code}: ${r.reason}\n`);
};

let summary: ImportSummary;
try {
  summary = await importEvents(sources(), {
    redactor: createEventRedactor({ fingerprintKey: env!.MCP_AUDIT_REDACTION_KEY }),
    batchRows,
    onReject,
    async storedIds(ids, fromSec, toSec) {
      const out = new Set<string>();
      // NOTE: 4,000 quoted ids are ~160 kB of SQL, under ClickHouse's 256 kB max_query_size.
      for (let i = 0; i < ids.length; i += 4_000) {
        const rows = await ch.query<{ id: string }>(sql`
          SELECT DISTINCT toString(event_id) AS id FROM events
          WHERE ts >= ${new Date(fromSec * 1000)} AND ts <= ${new Date(toSec * 1000)}
            AND toString(event_id) IN ${tuple(ids.slice(i, i + 4_000))}`);
        for (const r of rows) out.add(r.id);
      }
      return out;
    },
    // The ids too, after their rows (as the live ingester does), so a live copy of an imported id
    // with other content is refused.
    insert: async (rows) => {
      await ch.insert('events', rows);
      await ch.insert(
        'event_ids',
        rows.map((r) => eventIdRow(r)),
      );
    },
  });
} catch (err) {
  await ch.close();
  fail(`import failed: ${(err as Error).message}`, 3);
}
await new Promise<void>((resolve) => (rejectsOut ? rejectsOut.end(resolve) : resolve()));
await ch.close();
const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
process.stdout.write(
  `${JSON.stringify({ ...summary!, from: iso(summary!.from), to: iso(summary!.to), rejects: values.rejects ?? null })}\n`,
);
if (summary!.rejected > 0 && shown > 20) process.stderr.write(`… and ${shown - 20} more refused lines\n`);

if (!values['no-baselines'] && summary!.imported > 0) {
  const range = baselineRange(summary!.from!, summary!.to!, Date.now());
  if (range) {
    const cli = fileURLToPath(new URL('../../../detector/dist/src/cli.js', import.meta.url));
    const admin = {
      user: env!.MCP_AUDIT_CLICKHOUSE_ADMIN_USER,
      password: env!.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD,
    };
    const childEnv: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      MCP_AUDIT_CLICKHOUSE_WRITER_USER: admin.user,
      MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD: admin.password,
      MCP_AUDIT_CLICKHOUSE_ANALYST_USER: admin.user,
      MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD: admin.password,
      ...fileEnv,
    };
    const args = [cli, 'baselines', '--from', iso(range.from)!, '--to', iso(range.to)!];
    process.stderr.write(`baselines ${iso(range.from)} .. ${iso(range.to)} (daily versions)\n`);
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, args, { env: childEnv, stdio: ['ignore', 'ignore', 'inherit'] });
      child.on('exit', resolve);
      child.on('error', () => resolve(-1));
    });
    if (code !== 0) fail(`the baseline backfill failed (exit ${code}); rerun: node ${args.join(' ')}`, 3);
  }
}
process.exit(summary!.rejected > 0 ? 1 : 0);
