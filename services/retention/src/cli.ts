#!/usr/bin/env node
/**
 * retention <command>
 *   seal                                   seal every sealable hour now (and write addenda)
 *   verify --from ISO --to ISO [--json]    recompute hours from ClickHouse against the ledger
 *   keys                                   print the published public keys
 *   keygen [--rotate]                      create (or rotate) the signing key, publish its public key
 *   plan                                   what the next retention run would remove, and why the rest stays
 *   run                                    apply retention now (receipts, drops, alerts)
 *   holds list [--all] | holds create --case ID --reason TEXT --from ISO --to ISO [--client ID]... --actor WHO
 *   holds release HOLD_ID --actor WHO --note TEXT
 *   export --from ISO --to ISO --format ndjson|csv|ocsf [--client X]... [--label k=v]... --out DIR [--actor WHO]
 *   verify-bundle DIR [--public-keys DIR]   offline: files, signature, complete hours against the ledger
 * Environment as the service (README.md); verify/plan/keys need no signing key.
 */
import { readFileSync } from 'node:fs';
import { exportBundle, PRODUCT_VERSION } from './export/bundle.js';
import { exportFiltersSchema, FILTER_KEYS } from './export/filters.js';
import { FORMATS, type ExportFormat } from './export/formats.js';
import { verifyBundle } from './export/verify-bundle.js';
import { parseArgs } from 'node:util';
import { clickhouseFor } from '@mcp-audit/clickhouse';
import { parseConfig } from '@mcp-audit/service-kit';
import { cliEnvSchema } from './config.js';
import { createLegalHolds } from './holds.js';
import { createSigningKey, loadPublicKeys, loadSigningKey } from './ledger/keys.js';
import { HOUR_MS } from './ledger/record.js';
import { sealOnce, DEFAULT_SEALER } from './ledger/sealer.js';
import { createRowStream } from './ledger/stream.js';
import { verifyRange, type VerifyReport } from './ledger/verify.js';
import { configuredPartitions } from './partitions.js';
import { retiredHours } from './receipts.js';
import { planRetention, runRetention } from './retention.job.js';

const [cmd, ...rest] = process.argv.slice(2);

/** Offline: needs no ClickHouse and no configuration, only the bundle and the public keys. */
async function verifyBundleCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'public-keys': { type: 'string' }, json: { type: 'boolean' } },
  });
  const dir = positionals[0];
  const keys = values['public-keys'] ?? process.env.MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR;
  if (!dir || !keys) {
    console.error('usage: verify-bundle DIR --public-keys DIR');
    return 1;
  }
  const r = await verifyBundle(dir, loadPublicKeys(keys));
  if (values.json) console.log(JSON.stringify(r, null, 2));
  else {
    console.log(
      `verify-bundle: ${r.ok ? 'OK' : 'FAILED'} — ${r.files} files, ${r.rows} rows, ${r.hoursVerified} complete hours rebuilt their signed roots`,
    );
    for (const p of r.problems) console.log(`  ${p.kind}: ${p.detail}`);
  }
  return r.ok ? 0 : 2;
}
if (cmd === 'verify-bundle') {
  const code = await verifyBundleCommand(rest).catch((err: unknown) => {
    console.error(`retention verify-bundle: ${(err as Error).message}`);
    return 1;
  });
  process.exit(code);
}
const env = parseConfig(cliEnvSchema);
const ch = clickhouseFor(env, 'ADMIN', {
  insertTables: ['integrity_ledger', 'retention_receipts', 'legal_holds'],
  application: 'mcp-audit-retention-cli',
  requestTimeoutMs: 3_600_000,
});
const database = env.MCP_AUDIT_CLICKHOUSE_DATABASE;
const cluster = (() => {
  try {
    return configuredPartitions(env, ch, { application: 'mcp-audit-retention-cli' });
  } catch (err) {
    console.error(`retention: ${(err as Error).message}`);
    process.exit(1);
  }
})();
const db = {
  ch,
  database,
  stream: createRowStream({
    url: env.MCP_AUDIT_CLICKHOUSE_URL,
    username: env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER,
    password: env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD,
    database,
  }),
  partitions: cluster.partitions,
};
const need = (v: string | undefined, name: string): string => {
  if (!v) throw new Error(`${name} is required for this command`);
  return v;
};
const verifyOpts = {
  sealGraceMs: env.MCP_AUDIT_LEDGER_SEALING_DELAY_MS + 15 * 60_000,
  addendumWindowMs: env.MCP_AUDIT_LEDGER_ADDENDUM_WINDOW_MS,
};
const sealerCfg = {
  ...DEFAULT_SEALER,
  sealingDelayMs: env.MCP_AUDIT_LEDGER_SEALING_DELAY_MS,
  ingestMarginMs: env.MCP_AUDIT_LEDGER_INGEST_MARGIN_MS,
  addendumWindowMs: env.MCP_AUDIT_LEDGER_ADDENDUM_WINDOW_MS,
  startMs: env.MCP_AUDIT_LEDGER_START ? Date.parse(env.MCP_AUDIT_LEDGER_START) : undefined,
};

function printReport(r: VerifyReport) {
  console.log(
    `verify ${r.from} .. ${r.to}: ${r.ok ? 'OK' : 'FAILED'} — ${r.hoursChecked} hours, ${r.rowsChecked} rows in ${r.ms} ms (${r.rowsPerSecond} rows/s)`,
  );
  for (const p of r.chain)
    console.log(`  ledger: ${p.kind}${p.seq === undefined ? '' : ` seq ${p.seq}`}: ${p.detail}`);
  for (const h of r.failing) {
    console.log(`  ${h.hour} ${h.status} (${h.rows} rows, records ${h.seqs.join(',') || '-'})`);
    for (const p of h.problems) {
      const n = p.count === undefined ? '' : ` ${p.count}`;
      const s = p.sample?.length ? ` e.g. ${p.sample.slice(0, 5).join(' ')}` : '';
      console.log(`    ${p.kind}${n}: ${p.detail}${s}`);
    }
  }
}

async function main(): Promise<number> {
  switch (cmd) {
    case 'keygen': {
      const { values } = parseArgs({ args: rest, options: { rotate: { type: 'boolean' } } });
      const { key, replaced } = createSigningKey(
        need(env.MCP_AUDIT_LEDGER_SIGNING_KEY_FILE, 'MCP_AUDIT_LEDGER_SIGNING_KEY_FILE'),
        env.MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR,
        { rotate: values.rotate ?? false },
      );
      console.log(
        `signing key ${key.keyId}${replaced ? ` (replaces ${replaced})` : ''}; public key published`,
      );
      return 0;
    }
    case 'keys': {
      for (const [id, k] of loadPublicKeys(env.MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR)) {
        console.log(`${id}\n${k.export({ type: 'spki', format: 'pem' }).toString()}`);
      }
      return 0;
    }
    case 'seal': {
      const key = loadSigningKey(
        need(env.MCP_AUDIT_LEDGER_SIGNING_KEY_FILE, 'MCP_AUDIT_LEDGER_SIGNING_KEY_FILE'),
      );
      const r = await sealOnce(
        { db, key, dir: need(env.MCP_AUDIT_LEDGER_DIR, 'MCP_AUDIT_LEDGER_DIR') },
        sealerCfg,
      );
      console.log(`sealed ${r.records.length} records, ${r.rows} rows in ${r.ms} ms`);
      for (const x of r.records) console.log(`  #${x.seq} ${x.kind} ${x.hour} rows=${x.rows} root=${x.root}`);
      return 0;
    }
    case 'verify': {
      const { values } = parseArgs({
        args: rest,
        options: { from: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' } },
      });
      const from = Date.parse(need(values.from, '--from'));
      const to = values.to ? Date.parse(values.to) : Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
      if (Number.isNaN(from) || Number.isNaN(to)) throw new Error('--from/--to must be ISO-8601 times');
      const publicKeys = loadPublicKeys(env.MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR);
      const r = await verifyRange(
        {
          db,
          publicKeys,
          dir: env.MCP_AUDIT_LEDGER_DIR,
          retiredHours: await retiredHours(ch, database, publicKeys),
        },
        from,
        to,
        verifyOpts,
      );
      if (values.json) console.log(JSON.stringify(r, null, 2));
      else printReport(r);
      return r.ok ? 0 : 2;
    }
    case 'plan':
    case 'run': {
      const deps = {
        ch,
        database,
        stream: db.stream,
        partitions: db.partitions,
        holds: createLegalHolds({ ch, database }),
        publicKeys: loadPublicKeys(env.MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR),
        ledgerDir: env.MCP_AUDIT_LEDGER_DIR,
        verify: verifyOpts,
      };
      if (cmd === 'plan') {
        const plans = await planRetention(deps, env.MCP_AUDIT_RETENTION_POLICY);
        if (plans.length === 0) console.log('nothing is past its retention policy');
        for (const p of plans)
          console.log(`${p.action.padEnd(6)} ${p.table} ${p.partition} (${p.rows} rows): ${p.why}`);
        return 0;
      }
      const r = await runRetention(
        {
          ...deps,
          key: loadSigningKey(
            need(env.MCP_AUDIT_LEDGER_SIGNING_KEY_FILE, 'MCP_AUDIT_LEDGER_SIGNING_KEY_FILE'),
          ),
          receiptsDir: need(env.MCP_AUDIT_RETENTION_RECEIPTS_DIR, 'MCP_AUDIT_RETENTION_RECEIPTS_DIR'),
          raiseAlerts: async (alerts) => {
            for (const a of alerts) console.error(`CRITICAL ${a.title}: ${a.summary}`);
          },
        },
        env.MCP_AUDIT_RETENTION_POLICY,
      );
      for (const p of r.removed) console.log(`removed ${p.table} ${p.partition} (${p.rows} rows)`);
      for (const p of r.kept) console.log(`kept    ${p.table} ${p.partition}: ${p.why}`);
      return 0;
    }
    case 'export': {
      const { values } = parseArgs({
        args: rest,
        options: {
          from: { type: 'string' },
          to: { type: 'string' },
          format: { type: 'string' },
          out: { type: 'string' },
          actor: { type: 'string' },
          ...Object.fromEntries(FILTER_KEYS.map((k) => [k, { type: 'string', multiple: true }])),
        },
      });
      const from = Date.parse(need(values.from as string | undefined, '--from'));
      const to = Date.parse(need(values.to as string | undefined, '--to'));
      if (Number.isNaN(from) || Number.isNaN(to)) throw new Error('--from/--to must be ISO-8601 times');
      const format = need(values.format as string | undefined, '--format');
      if (!(FORMATS as readonly string[]).includes(format))
        throw new Error(`--format must be one of ${FORMATS.join(', ')}`);
      const filters = exportFiltersSchema.parse(
        Object.fromEntries(FILTER_KEYS.map((k) => [k, (values as Record<string, unknown>)[k] ?? []])),
      );
      const key = loadSigningKey(
        need(env.MCP_AUDIT_LEDGER_SIGNING_KEY_FILE, 'MCP_AUDIT_LEDGER_SIGNING_KEY_FILE'),
      );
      const t0 = Date.now();
      const tty = process.stderr.isTTY;
      const m = await exportBundle(
        {
          db,
          key,
          productVersion: PRODUCT_VERSION,
          onProgress: (p) => {
            const s = Math.max(1, (Date.now() - t0) / 1000);
            const line = `export: hour ${p.hoursDone}/${p.hoursTotal}, ${p.rows} rows, ${(p.bytes / 1e6).toFixed(1)} MB, ${Math.round(p.rows / s)} rows/s`;
            process.stderr.write(tty ? `\r${line}` : `${line}\n`);
          },
        },
        {
          fromMs: from,
          toMs: to,
          format: format as ExportFormat,
          filters,
          actor: (values.actor as string | undefined) ?? process.env.USER ?? 'cli',
        },
        need(values.out as string | undefined, '--out'),
      );
      if (tty) process.stderr.write('\n');
      console.log(
        `exported ${m.rows} rows into ${m.files.length} files in ${Date.now() - t0} ms; ${m.complete_hours.length} complete hours, ${m.partial_hours.length} partial`,
      );
      return 0;
    }
    case 'holds': {
      const holds = createLegalHolds({ ch, database });
      const [sub, ...args] = rest;
      const { values, positionals } = parseArgs({
        args,
        allowPositionals: true,
        options: {
          case: { type: 'string' },
          reason: { type: 'string' },
          from: { type: 'string' },
          to: { type: 'string' },
          client: { type: 'string', multiple: true },
          actor: { type: 'string' },
          note: { type: 'string' },
          all: { type: 'boolean' },
        },
      });
      if (sub === 'create') {
        const h = await holds.create({
          case_id: need(values.case, '--case'),
          reason: need(values.reason, '--reason'),
          from: need(values.from, '--from'),
          to: need(values.to, '--to'),
          clients: values.client ?? [],
          actor: need(values.actor, '--actor'),
        });
        console.log(JSON.stringify(h));
      } else if (sub === 'release') {
        console.log(
          JSON.stringify(
            await holds.release(
              need(positionals[0], 'HOLD_ID'),
              need(values.actor, '--actor'),
              need(values.note, '--note'),
            ),
          ),
        );
      } else {
        for (const h of await holds.list({ activeOnly: !values.all })) console.log(JSON.stringify(h));
      }
      return 0;
    }
    default:
      console.error(
        readFileSync(new URL(import.meta.url), 'utf8')
          .split('\n')
          .slice(1, 16)
          .join('\n'),
      );
      return 1;
  }
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(`retention ${cmd ?? ''}: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await Promise.all([ch.close(), cluster.close()]);
}
