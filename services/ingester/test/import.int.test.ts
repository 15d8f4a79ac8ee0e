/**
 * The admin-only history import (import.cli.js) on the real ClickHouse, own database: 60 days of
 * events generated here go through validation and redaction into events, the hourly rollups equal a
 * recount of the imported events, the baseline backfill takes the clients out of `learning`, refused
 * lines are reported with their reasons, a second run imports nothing (duplicates), and a compliance
 * bundle's NDJSON rows import through their raw copies (a tampered data file is refused).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomInt, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { createClickHouse, dbIdent, runMigrations, sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import { parseEvent, reconstructEvent } from '@mcp-audit/schema';
import { createEventRedactor } from '@mcp-audit/redaction';
import { baselineRange, importRow, IMPORT_PARTITION, ORIGIN_LABEL } from '../src/history.import.js';
import { toEventRow } from '../src/events.row.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const CLI = `${REPO}services/ingester/dist/src/import.cli.js`;
const H = 3_600_000;
const DAY = 24 * H;

function stackEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  const file = `${process.env.MCP_AUDIT_LOCAL_DIR ?? `${REPO}.local`}/secrets.env`;
  if (existsSync(file))
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m) out[m[1]!] = m[2]!;
    }
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('MCP_AUDIT_') && v) out[k] = v;
  return out;
}
const env = stackEnv();
const sfx = randomBytes(4).toString('hex');
const DB = `mcp_audit_import_${sfx}`;
const dir = mkdtempSync(join(tmpdir(), 'mcp-audit-import-'));
const KEY = `import-test-redaction-key-${sfx}`;
let admin: ClickHouse;
let ch: ClickHouse;
let envFile: string;

/** Uniform in [0, 1): the assertions count what was generated, they need no fixed sequence. */
const rand = () => randomInt(0, 2 ** 30) / 2 ** 30;

function event(client: string, at: number, r: () => number, o: Record<string, unknown> = {}) {
  const err = r() < 0.03;
  return {
    schema_version: 1,
    event_id: randomUUID(),
    ts: new Date(at).toISOString(),
    kind: 'tool_call',
    source: { type: 'gateway', id: `gw-import-${sfx}`, version: '1.0.0' },
    client: { id: client, ip: '10.1.2.3', session_id: `${client}-s${Math.floor(at / DAY)}` },
    server: { name: 'postgres', transport: 'http' },
    method: 'tools/call',
    tool: { name: r() < 0.5 ? 'query' : 'list_tables' },
    outcome: err ? 'error' : 'ok',
    duration_ms: 20,
    request_bytes: 100,
    response_bytes: 1000 + Math.floor(r() * 1000),
    args: { sql: 'select 1' },
    ...o,
  };
}

const run = (args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });

before(async () => {
  const url = env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
  const user = env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER ?? 'mcp_admin';
  const password = env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD;
  if (!password)
    throw new Error('MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD is not set (source .local/test/secrets.env)');
  admin = createClickHouse({ url, username: user, password });
  await runMigrations({ client: admin, dir: `${REPO}schemas/clickhouse/`, database: DB });
  ch = createClickHouse({ url, username: user, password, database: DB });
  envFile = join(dir, 'import.env');
  writeFileSync(
    envFile,
    [
      '# the import tool own credentials (admin-only)',
      `MCP_AUDIT_CLICKHOUSE_URL=${url}`,
      `MCP_AUDIT_CLICKHOUSE_DATABASE=${DB}`,
      `MCP_AUDIT_CLICKHOUSE_ADMIN_USER=${user}`,
      `MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD=${password}`,
      `MCP_AUDIT_REDACTION_KEY=${KEY}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
});

after(async () => {
  await admin?.command(sql`DROP DATABASE IF EXISTS ${dbIdent(DB)}`);
  await admin?.close();
  await ch?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the live path keeps its 30-day limit; the import lifts only that bound', () => {
  const r = rand;
  const old = JSON.stringify(event('c', Date.now() - 45 * DAY, r));
  const live = parseEvent(old);
  assert.equal(live.ok, false);
  assert.match(!live.ok ? live.reason : '', /days behind the receiver's clock; the limit is 30 days/);
  const redactor = createEventRedactor({ fingerprintKey: KEY });
  const imp = importRow({ source: 'f', line: 3, text: old }, redactor, Date.now());
  assert.ok('row' in imp);
  assert.equal(imp.row.kafka_partition, IMPORT_PARTITION);
  assert.equal(imp.row.kafka_offset, 3);
  assert.ok(imp.row.label_keys.includes(ORIGIN_LABEL));
  const future = importRow(
    { source: 'f', line: 4, text: JSON.stringify(event('c', Date.now() + DAY, r)) },
    redactor,
    Date.now(),
  );
  assert.ok('code' in future && /ahead of the receiver's clock/.test(future.reason));
  assert.deepEqual(baselineRange(Date.UTC(2026, 0, 1, 5), Date.UTC(2026, 2, 1, 5), Date.UTC(2026, 5, 1)), {
    from: Date.UTC(2026, 0, 2),
    to: Date.UTC(2026, 2, 2),
  });
  assert.equal(baselineRange(Date.now() - H, Date.now(), Date.now()), undefined);
  // The last hour across midnight (what failed when the suite ran between 00:00 and 01:00 UTC).
  const midnight = Date.UTC(2026, 5, 1);
  assert.equal(baselineRange(midnight - H / 2, midnight + H / 2, midnight + H / 2), undefined);
  assert.deepEqual(baselineRange(midnight - H / 2, midnight + H / 2, midnight + DAY), {
    from: midnight,
    to: midnight + DAY,
  });
});

test('60 days of events: imported, rollups equal a recount, clients leave learning, refused lines reported, re-run is idempotent', async () => {
  const clients = [`imp-agent-${sfx}`, `imp-office-${sfx}`, `imp-batch-${sfx}`];
  const r = rand;
  const end = Math.floor(Date.now() / H) * H - H;
  const start = end - 60 * DAY;
  const lines: string[] = [];
  for (let t = start; t < end; t += H) {
    const hour = new Date(t).getUTCHours();
    const dow = new Date(t).getUTCDay();
    const per: Array<[string, number]> = [
      [clients[0]!, 3 + Math.floor(r() * 4)],
      [clients[1]!, dow >= 1 && dow <= 5 && hour >= 8 && hour < 17 ? 5 + Math.floor(r() * 6) : 0],
      [clients[2]!, hour === 2 ? 30 : 0],
    ];
    for (const [c, n] of per)
      for (let i = 0; i < n; i++) lines.push(JSON.stringify(event(c, t + Math.floor(r() * H), r)));
  }
  const good = lines.length;
  // A secret in arguments: redacted on the way in, like the live path.
  const token = `ghp_${randomBytes(18).toString('hex')}`;
  lines.push(JSON.stringify(event(clients[0]!, end - 5 * DAY, r, { args: { note: `use ${token}` } })));
  const dup = lines[10]!;
  const conflict = JSON.parse(lines[11]!) as Record<string, unknown>;
  conflict.outcome = 'denied';
  const bad = [
    '{"schema_version":1,',
    JSON.stringify({ ...event(clients[0]!, end - DAY, r), kind: 'teleport' }),
    JSON.stringify(event(clients[0]!, Date.now() + 2 * DAY, r)),
    JSON.stringify(event(clients[0]!, end - DAY, r, { labels: { [ORIGIN_LABEL]: 'import' } })),
    JSON.stringify(conflict),
  ];
  // Two files: the first half plain, the rest (with the refused lines and a repeat) gzipped.
  const half = Math.floor(lines.length / 2);
  const a = join(dir, 'a.ndjson');
  const b = join(dir, 'b.ndjson.gz');
  writeFileSync(a, `${lines.slice(0, half).join('\n')}\n`);
  writeFileSync(b, gzipSync(`${[...lines.slice(half), '', dup, ...bad].join('\n')}\n`));
  const rejects = join(dir, 'rejects.ndjson');

  const first = await run(['--env-file', envFile, '--file', a, '--file', b, '--rejects', rejects]);
  assert.equal(first.code, 1, first.stderr);
  const s = JSON.parse(first.stdout) as Record<string, number | string>;
  assert.equal(s.imported, good + 1);
  assert.equal(s.duplicates, 1);
  assert.equal(s.rejected, bad.length);
  assert.equal(s.clients, 3);
  const refused = readFileSync(rejects, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { source: string; line: number; code: string; reason: string });
  assert.deepEqual(
    refused.map((x) => x.code),
    [
      'AUDIT_ERR_MALFORMED_JSON',
      'AUDIT_ERR_INVALID_EVENT',
      'AUDIT_ERR_INVALID_EVENT',
      'AUDIT_ERR_RESERVED_LABEL',
      'AUDIT_ERR_EVENT_ID_CONFLICT',
    ],
  );
  assert.ok(refused.every((x) => x.source === b && x.line > 0));
  assert.match(refused[1]!.reason, /kind/);
  assert.match(refused[2]!.reason, /ahead of the receiver's clock/);
  assert.match(first.stderr, /refused .*b\.ndjson\.gz:\d+: AUDIT_ERR_MALFORMED_JSON/);

  const [n] = await ch.query<{ n: string; marked: string; leaked: string }>(sql`
    SELECT uniqExact(event_id) AS n, countIf(kafka_partition = ${IMPORT_PARTITION}
             AND has(label_keys, ${ORIGIN_LABEL})) AS marked,
           countIf(position(args, ${token}) > 0 OR position(raw, ${token}) > 0) AS leaked
    FROM events`);
  assert.equal(Number(n!.n), good + 1);
  assert.equal(Number(n!.marked), good + 1);
  assert.equal(Number(n!.leaked), 0);

  // events_hourly (filled by its materialized view on insert) equals a recount of the events.
  const rollup = await ch.query<{ k: string }>(sql`
    SELECT concat(client_id, ' ', toString(hour), ' ', toString(c), ' ', toString(e), ' ', toString(b)) AS k FROM (
      SELECT client_id, hour, uniqExactMerge(calls) AS c, uniqExactIfMerge(errors) AS e,
             sumMerge(response_bytes) AS b
      FROM events_hourly GROUP BY client_id, hour) ORDER BY k`);
  const recount = await ch.query<{ k: string }>(sql`
    SELECT concat(client_id, ' ', toString(hour), ' ', toString(c), ' ', toString(e), ' ', toString(b)) AS k FROM (
      SELECT client_id, toStartOfHour(ts) AS hour, uniqExact(event_id) AS c,
             uniqExactIf(event_id, outcome IN ('error', 'denied') OR ifNull(tool_is_error, 0) = 1) AS e,
             sum(response_bytes) AS b
      FROM events FINAL GROUP BY client_id, hour) ORDER BY k`);
  assert.ok(rollup.length > 60 * 24, `${rollup.length} client-hours`);
  assert.deepEqual(
    rollup.map((x) => x.k),
    recount.map((x) => x.k),
  );

  // The baseline backfill ran: the newest state of every client is active, as of today.
  const states = await ch.query<{ client_id: string; newest: string; latest: string; days: string }>(sql`
    SELECT client_id, argMax(state, as_of) AS newest, toString(max(as_of)) AS latest,
           argMax(active_days, as_of) AS days
    FROM client_state FINAL GROUP BY client_id ORDER BY client_id`);
  assert.deepEqual(
    states.map((x) => [x.client_id, x.newest]),
    [...clients].sort().map((c) => [c, 'active']),
  );
  const today = new Date(Math.floor(Date.now() / DAY) * DAY).toISOString().slice(0, 10);
  assert.ok(
    states.every((x) => x.latest.startsWith(today)),
    JSON.stringify(states),
  );
  const [versions] = await ch.query<{ n: string }>(sql`SELECT uniqExact(as_of) AS n FROM baselines`);
  assert.ok(Number(versions!.n) >= 59, `${versions!.n} daily versions`);

  // Again: every id is already stored, nothing is inserted twice.
  const again = await run(['--env-file', envFile, '--file', a, '--no-baselines']);
  assert.equal(again.code, 0, again.stderr);
  const s2 = JSON.parse(again.stdout) as Record<string, number>;
  assert.equal(s2.imported, 0);
  assert.equal(s2.duplicates, half);
  const [n2] = await ch.query<{ n: string }>(sql`SELECT count() AS n FROM events`);
  assert.equal(Number(n2!.n), good + 1);
});

test('a compliance bundle imports through its raw copies; a tampered data file is refused', async () => {
  const r = rand;
  const at = Date.now() - 40 * DAY;
  const events = Array.from({ length: 5 }, (_, i) => event(`imp-bundle-${sfx}`, at + i * 1000, r));
  // Rows stored before migration 013 carry the whole event in raw (only raw is read from them) …
  const rows = events.map(
    (e, i) => `${JSON.stringify({ event_id: e.event_id, raw: JSON.stringify(e), ingested_at: i })}`,
  );
  // … later rows only the remainder: the event is their columns plus it (as the NDJSON export writes them).
  const current = Array.from({ length: 3 }, (_, i) => ({
    ...event(`imp-bundle-${sfx}`, at + (10 + i) * 1000, r),
    vendor: { seq: i },
  }));
  for (const e of current) {
    const p = parseEvent(JSON.stringify(e), { now: Date.now(), maxAgeMs: Number.POSITIVE_INFINITY });
    assert.ok(p.ok, p.ok ? '' : p.reason);
    const row = toEventRow(p.event, p.raw, { partition: 0, offset: '0', ingestedAtMs: at });
    assert.equal(
      row.raw,
      JSON.stringify({ remainder: { vendor: e.vendor } }),
      'a remainder, not a full copy',
    );
    rows.push(JSON.stringify(row));
  }
  rows.push('{"event_id":"x"}');
  const data = gzipSync(`${rows.join('\n')}\n`);
  const bundle = join(dir, 'bundle');
  mkdirSync(bundle);
  writeFileSync(join(bundle, 'events-00001.ndjson.gz'), data);
  const manifest = (sha: string) =>
    JSON.stringify({
      bundle_version: 1,
      table: 'events',
      format: 'ndjson',
      files: [{ name: 'events-00001.ndjson.gz', rows: rows.length, bytes: data.length, sha256: sha }],
    });
  writeFileSync(join(bundle, 'manifest.json'), manifest('0'.repeat(64)));
  const tampered = await run(['--env-file', envFile, '--bundle', bundle, '--no-baselines']);
  assert.equal(tampered.code, 3);
  assert.match(tampered.stderr, /SHA-256 differs from the manifest/);

  writeFileSync(join(bundle, 'manifest.json'), manifest(createHash('sha256').update(data).digest('hex')));
  const ok = await run(['--env-file', envFile, '--bundle', bundle, '--no-baselines']);
  assert.equal(ok.code, 1, ok.stderr);
  const s = JSON.parse(ok.stdout) as Record<string, number>;
  assert.equal(s.imported, 8);
  assert.equal(s.rejected, 1);
  assert.match(ok.stderr, /events-00001\.ndjson\.gz:9: AUDIT_ERR_MALFORMED_JSON: not a bundle row/);
  const stored = await ch.query(
    sql`SELECT * FROM events WHERE event_id IN ${tuple(current.map((e) => sql`toUUID(${e.event_id})`))}`,
  );
  const back = new Map(stored.map((x) => [String(x.event_id), reconstructEvent(x)]));
  for (const e of current) {
    const b = back.get(e.event_id);
    assert.deepEqual(
      b?.vendor,
      e.vendor,
      `an unknown field of a remainder row is imported: ${JSON.stringify(stored.map((x) => x.raw))}`,
    );
    assert.deepEqual(b?.args, e.args);
  }

  chmodSync(envFile, 0o644);
  const open = await run(['--env-file', envFile, '--bundle', bundle]);
  chmodSync(envFile, 0o600);
  assert.equal(open.code, 2);
  assert.match(open.stderr, /readable by group or others .* chmod 600/);
});
