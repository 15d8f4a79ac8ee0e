/**
 * npm run bench:compliance — seal and verify N events (BENCH_EVENTS, default 10,000,000) of one day
 * in a database of their own, beside clickhouse-client's own `SELECT … FORMAT JSONEachRow` of the
 * same rows to a file, then exports the day (NDJSON, CSV and OCSF bundles) and checks each bundle
 * offline. Also the floor under verify: ClickHouse's raw RowBinary read of the same rows (nothing
 * done with them), ClickHouse reading them without sending, Node's SHA-256 over rows of the same
 * size and over Merkle nodes, verify's Node CPU time a row and its events_by_time check alone
 * (copy.ts). Prints rows/s and each step's peak
 * RSS (sampled every 50 ms); asserts nothing about speed. BENCH_FORMATS picks the export formats.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, statSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { createHash, hash } from 'node:crypto';
import os from 'node:os';
import { join } from 'node:path';
import { dbIdent, ident, join as joinSql, sql, type SqlFragment } from '@mcp-audit/clickhouse';
import { exportBundle, GZIP_LEVEL, PRODUCT_VERSION } from '../src/export/bundle.js';
import { CANONICAL_COLUMN_NAMES, CANONICAL_COLUMNS } from '../src/ledger/canonical.js';
import { exportFiltersSchema } from '../src/export/filters.js';
import { FORMATS, type ExportFormat } from '../src/export/formats.js';
import { verifyBundle } from '../src/export/verify-bundle.js';
import { createSigningKey, loadPublicKeys, loadSigningKey } from '../src/ledger/keys.js';
import { DEFAULT_SEALER, sealOnce } from '../src/ledger/sealer.js';
import { copyDigests } from '../src/ledger/copy.js';
import { nodeHash } from '../src/ledger/merkle.js';
import { verifyRange } from '../src/ledger/verify.js';
import { tempDir, testDb } from './helpers.js';

const N = Number(process.env.BENCH_EVENTS ?? 10_000_000);
const DAY = Date.UTC(2026, 0, 5);
const LOAD_CHUNK = 1_000_000;
const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;
const peak = () => process.resourceUsage().maxRSS;
const loadavg = () =>
  `load ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`;

/** Runs fn, sampling RSS: its result, ms and peak RSS (KiB) during the step. */
async function step<T>(fn: () => Promise<T>): Promise<{ r: T; ms: number; rss: string }> {
  let max = process.memoryUsage.rss();
  const timer = setInterval(() => (max = Math.max(max, process.memoryUsage.rss())), 50);
  const t = Date.now();
  try {
    const r = await fn();
    return { r, ms: Date.now() - t, rss: `${(max / 2 ** 20).toFixed(0)} MiB` };
  } finally {
    clearInterval(timer);
  }
}
const rate = (n: number, ms: number) => Math.round((n * 1000) / ms);

const COLUMNS = new Set(CANONICAL_COLUMN_NAMES);
/** A canonical column as the NDJSON export writes it (ts as epoch seconds). */
function ndjsonColumn({ name, type }: { name: string; type: string }): SqlFragment {
  const x = ident(name, COLUMNS);
  return type === 'datetime' ? sql`toUInt32(${x}) AS ${x}` : x;
}

function exportFormats(v: string): ExportFormat[] {
  const got = v.split(',').filter(Boolean);
  for (const f of got)
    if (!(FORMATS as readonly string[]).includes(f)) throw new Error(`BENCH_FORMATS: unknown format ${f}`);
  return got as ExportFormat[];
}

async function main() {
  const db = await testDb('bench_compliance');
  const dir = tempDir('bench-compliance-');
  try {
    const t0 = Date.now();
    // Generated server-side: one day, 500 clients, a few realistic strings. NOTE: in INSERTs of at
    // most 1M rows: one INSERT … SELECT of 10M rows outlived the client's 300 s request timeout at
    // load 15-18 on the shared 2-core box.
    for (let at = 0; at < N; at += LOAD_CHUNK) {
      const count = Math.min(LOAD_CHUNK, N - at);
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
        concat('{"event_id":"x","note":"redacted original ', toString(number), '"}'), 0, number, ''
      FROM numbers(${at}, ${count})`,
      );
    }
    console.log(
      `loaded ${N} events in ${((Date.now() - t0) / 1000).toFixed(1)} s (${os.cpus().length} CPUs, ${loadavg()})`,
    );

    createSigningKey(join(dir, 'key'), join(dir, 'pub'));
    const key = loadSigningKey(join(dir, 'key'));
    const sealed = await step(() =>
      sealOnce(
        { db, key, dir: join(dir, 'ledger'), now: () => DAY + 2 * 86_400_000 },
        { ...DEFAULT_SEALER, startMs: DAY, maxHoursPerRun: 24 },
      ),
    );
    const s = sealed.r;
    console.log(
      `seal:   ${s.rows} rows, ${s.records.length} records in ${(sealed.ms / 1000).toFixed(1)} s = ${rate(s.rows, sealed.ms)} rows/s, peak RSS ${sealed.rss} (${loadavg()})`,
    );

    const cpu0 = process.cpuUsage();
    const verified = await step(() =>
      verifyRange(
        {
          db,
          publicKeys: loadPublicKeys(join(dir, 'pub')),
          dir: join(dir, 'ledger'),
          now: () => DAY + 2 * 86_400_000,
        },
        DAY,
        DAY + 86_400_000,
        { sealGraceMs: 3_600_000, addendumWindowMs: 3_600_000 },
      ),
    );
    const v = verified.r;
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `verify: ${v.rowsChecked} rows, ok=${v.ok} in ${(verified.ms / 1000).toFixed(1)} s = ${rate(v.rowsChecked, verified.ms)} rows/s, Node CPU ${((cpu.user + cpu.system) / v.rowsChecked).toFixed(2)} µs a row, peak RSS ${verified.rss} (${loadavg()})`,
    );
    // Part of verify: events_by_time against events (ClickHouse only), timed alone.
    const copies = await step(() => copyDigests(db, DAY, DAY + 86_400_000));
    console.log(
      `  of which copy check alone (events_by_time vs events, ClickHouse): ${copies.r.length} hours in ${(copies.ms / 1000).toFixed(1)} s = ${rate(N, copies.ms)} rows/s (${loadavg()})`,
    );
    // ClickHouse reading and decompressing every column without sending anything.
    const chRead = await step(() =>
      db.ch.query(sql`SELECT count() AS n FROM ${dbIdent(db.database)}.events WHERE NOT ignore(*)`),
    );
    console.log(
      `ClickHouse read of all columns, nothing sent (count() WHERE NOT ignore(*)): ${N} rows in ${(chRead.ms / 1000).toFixed(1)} s = ${rate(N, chRead.ms)} rows/s (${loadavg()})`,
    );

    // The floor under verify: ClickHouse reading and sending the same rows (RowBinary, all columns,
    // unsorted, nothing done with them), and Node hashing rows of the same size.
    const rb = await step(async () => {
      let bytes = 0;
      for await (const c of db.stream(sql`SELECT * FROM ${dbIdent(db.database)}.events FORMAT RowBinary`))
        bytes += c.length;
      return bytes;
    });
    console.log(
      `raw RowBinary read (Node, bytes counted only): ${N} rows, ${(rb.r / 1e9).toFixed(2)} GB in ${(rb.ms / 1000).toFixed(1)} s = ${rate(N, rb.ms)} rows/s (${loadavg()})`,
    );
    const rowBytes = Math.round(rb.r / N);
    const sample = Buffer.alloc(rowBytes + 40, 0x61);
    const hashed = await step(async () => {
      for (let i = 0; i < 1_000_000; i++) hash('sha256', sample, 'buffer');
      return createHash('sha256').digest();
    });
    console.log(
      `SHA-256 in Node, ${sample.length}-byte rows, one thread: ${rate(1_000_000, hashed.ms)} rows/s (${loadavg()})`,
    );
    // A Merkle node: SHA-256 of 65 bytes. Each verified row costs one leaf hash and one node hash.
    const nodes = await step(async () => {
      const l = hash('sha256', 'l', 'buffer');
      for (let i = 0; i < 1_000_000; i++) nodeHash(l, l);
      return 0;
    });
    const both = 1e9 / (1e6 / rate(1_000_000, hashed.ms) + 1e6 / rate(1_000_000, nodes.ms)) / 1e3;
    console.log(
      `SHA-256 in Node, 65-byte Merkle nodes, one thread: ${rate(1_000_000, nodes.ms)} nodes/s; leaf + node hashing alone caps one thread at ${Math.round(both)} rows/s (${loadavg()})`,
    );

    const out = join(dir, 'raw.ndjson');
    const t3 = Date.now();
    execFileSync(
      'sh',
      ['-c', `clickhouse-client --port "$PORT" --user "$U" --password "$P" --query "$Q" > "${out}"`],
      {
        env: {
          ...process.env,
          PORT: process.env.MCP_AUDIT_STACK_CLICKHOUSE_TCP_PORT ?? '9000',
          U: process.env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER ?? 'mcp_admin',
          P: process.env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD ?? '',
          Q: `SELECT * FROM ${db.database}.events FORMAT JSONEachRow`,
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const rawMs = Date.now() - t3;
    console.log(
      `raw clickhouse-client JSONEachRow dump: ${N} rows, ${(statSync(out).size / 1e9).toFixed(2)} GB in ${(rawMs / 1000).toFixed(1)} s = ${Math.round((N * 1000) / rawMs)} rows/s (${loadavg()})`,
    );
    execFileSync('rm', ['-f', out]);

    // The ceiling of an export that lets ClickHouse write the NDJSON (the export's shape:
    // canonical values then ingested_at) and Node only gzips (level 1), hashes and writes it: no id
    // order, no one-copy-per-event_id, no leaves for complete_hours. Not a valid bundle either:
    // ClickHouse 18.16 escapes U+2028/U+2029 and writes `\u001F` where the contract has raw bytes and
    // `\u001f` (LEDGER.md §2), so a real export would also need a fix-up pass.
    const chJson = await step(async () => {
      const gz = createGzip({ level: GZIP_LEVEL, chunkSize: 1 << 18 });
      const sha = createHash('sha256');
      let bytes = 0;
      gz.on('data', (c: Buffer) => {
        sha.update(c);
        bytes += c.length;
      });
      const done = finished(gz.pipe(createWriteStream(out)));
      let pending: Uint8Array[] = [];
      let size = 0;
      const write = async () => {
        const b = Buffer.concat(pending, size);
        pending = [];
        size = 0;
        if (!gz.write(b)) await once(gz, 'drain');
      };
      for await (const c of db.stream(
        sql`SELECT ${joinSql(CANONICAL_COLUMNS.map(ndjsonColumn))}, toUInt32(ingested_at) AS ingested_at
          FROM ${dbIdent(db.database)}.events FORMAT JSONEachRow`,
        { output_format_json_quote_64bit_integers: 0, output_format_json_escape_forward_slashes: 0 },
      )) {
        // Handed to gzip in ~1 MiB pieces, as the export's DataFile does: a drain wait per ~16 KiB
        // HTTP chunk costs a thread-pool round trip each (112 s for 20k rows at load 40).
        pending.push(c);
        size += c.length;
        if (size >= 1 << 20) await write();
      }
      await write();
      gz.end();
      await done;
      return { bytes, sha: sha.digest('hex') };
    });
    console.log(
      `ceiling of a ClickHouse-formatted export (JSONEachRow of the NDJSON columns, unsorted, Node gzip level ${GZIP_LEVEL} + SHA-256 + file, no dedup/order/leaves): ${N} rows, ${(chJson.r.bytes / 1e6).toFixed(0)} MB gzip in ${(chJson.ms / 1000).toFixed(1)} s = ${rate(N, chJson.ms)} rows/s (${(rate(N, chJson.ms) / rate(N, rawMs)).toFixed(2)}x the raw dump), peak RSS ${chJson.rss} (${loadavg()})`,
    );
    execFileSync('rm', ['-f', out]);

    const formats = exportFormats(process.env.BENCH_FORMATS ?? 'ndjson,csv,ocsf');
    for (const format of formats) {
      const exported = await step(() =>
        exportBundle(
          { db, key, productVersion: PRODUCT_VERSION },
          {
            fromMs: DAY,
            toMs: DAY + 86_400_000,
            format,
            filters: exportFiltersSchema.parse({}),
            actor: 'bench',
          },
          join(dir, `bundle-${format}`),
        ),
      );
      const m = exported.r;
      const gz = m.files.reduce((n, f) => n + f.bytes, 0);
      console.log(
        `export ${format}: ${m.rows} rows, ${m.files.length} gzip files ${(gz / 1e6).toFixed(0)} MB, ${m.complete_hours.length} complete hours in ${(exported.ms / 1000).toFixed(1)} s = ${rate(m.rows, exported.ms)} rows/s (${(rate(m.rows, exported.ms) / rate(N, rawMs)).toFixed(2)}x the raw dump), peak RSS ${exported.rss} (${loadavg()})`,
      );
      const checked = await step(() =>
        verifyBundle(join(dir, `bundle-${format}`), loadPublicKeys(join(dir, 'pub'))),
      );
      const vb = checked.r;
      console.log(
        `verify-bundle ${format}: ok=${vb.ok}, ${vb.rows} rows, ${vb.hoursVerified} hours in ${(checked.ms / 1000).toFixed(1)} s = ${rate(vb.rows, checked.ms)} rows/s, peak RSS ${checked.rss} (${loadavg()})`,
      );
      execFileSync('rm', ['-rf', join(dir, `bundle-${format}`)]);
    }
    console.log(`process peak RSS ${mb(peak())}`);
  } finally {
    await db.drop();
    execFileSync('rm', ['-rf', dir]);
  }
}

await main();
