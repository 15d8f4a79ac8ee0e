/**
 * npm run bench:compliance — seal and verify N events (BENCH_EVENTS, default 10,000,000) of one day
 * in a database of their own, beside clickhouse-client's own `SELECT … FORMAT JSONEachRow` of the
 * same rows to a file, then exports the day (NDJSON and OCSF bundles) and checks each bundle offline.
 * Prints rows/s and peak RSS (of the whole process, so cumulative); asserts nothing about speed.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { dbIdent, sql } from '@mcp-audit/clickhouse';
import { exportBundle, PRODUCT_VERSION } from '../src/export/bundle.js';
import { exportFiltersSchema } from '../src/export/filters.js';
import { verifyBundle } from '../src/export/verify-bundle.js';
import { createSigningKey, loadPublicKeys, loadSigningKey } from '../src/ledger/keys.js';
import { DEFAULT_SEALER, sealOnce } from '../src/ledger/sealer.js';
import { verifyRange } from '../src/ledger/verify.js';
import { tempDir, testDb } from './helpers.js';

const N = Number(process.env.BENCH_EVENTS ?? 10_000_000);
const DAY = Date.UTC(2026, 0, 5);
const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;
const peak = () => process.resourceUsage().maxRSS;

async function main() {
  const db = await testDb('bench_compliance');
  const dir = tempDir('bench-compliance-');
  try {
    const t0 = Date.now();
    // Generated server-side: one day, 500 clients, a few realistic strings.
    await db.ch.command(
      sql`INSERT INTO ${dbIdent(db.database)}.events
      SELECT generateUUIDv4(), toDateTime(${DAY / 1000} + intDiv(number * 86400, ${N}), 'UTC'), number % 1000,
        toDateTime(${DAY / 1000} + intDiv(number * 86400, ${N}) + 3, 'UTC'),
        4294967295 - (${DAY / 1000} + intDiv(number * 86400, ${N}) + 3), 1, 'tool_call', 'gateway', 'gw-1', '1.4.0',
        concat('client-', toString(number % 500)), 'Claude Desktop', concat('user', toString(number % 97), '@example.com'), '',
        '10.0.0.7', 'claude-desktop/1.0', concat('s-', toString(number % 5000)), 'files', '2.1', 'http', 'tools/call',
        concat('tool_', toString(number % 40)), 'abababababababababababababababababababababababababababababababab',
        if(number % 20 = 0, 'error', 'ok'), 200, if(number % 20 = 0, -32000, NULL), if(number % 20 = 0, 1, NULL), '',
        'api_key', 'success', '', '', if(number % 20 = 0, 'no such file', ''), number % 300, 200 + number % 1000, 1000 + number % 5000,
        concat('{"path":"/srv/data/', toString(number % 1000), '.txt","mode":"r"}'), '', ['env'], ['prod'],
        concat('{"event_id":"x","note":"redacted original ', toString(number), '"}'), 0, number
      FROM numbers(${N})`,
    );
    console.log(`loaded ${N} events in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    createSigningKey(join(dir, 'key'), join(dir, 'pub'));
    const key = loadSigningKey(join(dir, 'key'));
    const t1 = Date.now();
    const s = await sealOnce(
      { db, key, dir: join(dir, 'ledger'), now: () => DAY + 2 * 86_400_000 },
      { ...DEFAULT_SEALER, startMs: DAY, maxHoursPerRun: 24 },
    );
    const sealMs = Date.now() - t1;
    console.log(
      `seal:   ${s.rows} rows, ${s.records.length} records in ${(sealMs / 1000).toFixed(1)} s = ${Math.round((s.rows * 1000) / sealMs)} rows/s, peak RSS ${mb(peak())}`,
    );

    const t2 = Date.now();
    const v = await verifyRange(
      {
        db,
        publicKeys: loadPublicKeys(join(dir, 'pub')),
        dir: join(dir, 'ledger'),
        now: () => DAY + 2 * 86_400_000,
      },
      DAY,
      DAY + 86_400_000,
      { sealGraceMs: 3_600_000, addendumWindowMs: 3_600_000 },
    );
    const verifyMs = Date.now() - t2;
    console.log(
      `verify: ${v.rowsChecked} rows, ok=${v.ok} in ${(verifyMs / 1000).toFixed(1)} s = ${Math.round((v.rowsChecked * 1000) / verifyMs)} rows/s, peak RSS ${mb(peak())}`,
    );

    const out = join(dir, 'raw.ndjson');
    const t3 = Date.now();
    execFileSync('sh', ['-c', `clickhouse-client --user "$U" --password "$P" --query "$Q" > "${out}"`], {
      env: {
        ...process.env,
        U: process.env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER ?? 'mcp_admin',
        P: process.env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD ?? '',
        Q: `SELECT * FROM ${db.database}.events FORMAT JSONEachRow`,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const rawMs = Date.now() - t3;
    console.log(
      `raw clickhouse-client JSONEachRow dump: ${N} rows, ${(statSync(out).size / 1e9).toFixed(2)} GB in ${(rawMs / 1000).toFixed(1)} s = ${Math.round((N * 1000) / rawMs)} rows/s`,
    );

    for (const format of ['ndjson', 'ocsf'] as const) {
      const t4 = Date.now();
      const m = await exportBundle(
        { db, key, productVersion: PRODUCT_VERSION },
        {
          fromMs: DAY,
          toMs: DAY + 86_400_000,
          format,
          filters: exportFiltersSchema.parse({}),
          actor: 'bench',
        },
        join(dir, `bundle-${format}`),
      );
      const exportMs = Date.now() - t4;
      const gz = m.files.reduce((n, f) => n + f.bytes, 0);
      console.log(
        `export ${format}: ${m.rows} rows, ${m.files.length} gzip files ${(gz / 1e6).toFixed(0)} MB, ${m.complete_hours.length} complete hours in ${(exportMs / 1000).toFixed(1)} s = ${Math.round((m.rows * 1000) / exportMs)} rows/s (${((m.rows * 1000) / exportMs / ((N * 1000) / rawMs)).toFixed(2)}x the raw dump), peak RSS ${mb(peak())}`,
      );
      const t5 = Date.now();
      const vb = await verifyBundle(join(dir, `bundle-${format}`), loadPublicKeys(join(dir, 'pub')));
      const vbMs = Date.now() - t5;
      console.log(
        `verify-bundle ${format}: ok=${vb.ok}, ${vb.rows} rows, ${vb.hoursVerified} hours in ${(vbMs / 1000).toFixed(1)} s = ${Math.round((vb.rows * 1000) / vbMs)} rows/s, peak RSS ${mb(peak())}`,
      );
    }
  } finally {
    await db.drop();
    execFileSync('rm', ['-rf', dir]);
  }
}

await main();
