import cron from 'node-cron';
import { clickhouseFor } from '@mcp-audit/clickhouse';
import {
  createKafka,
  createProducer,
  kafkaConfigFromEnv,
  leaseEnv,
  leaseFromEnv,
  type LeaseTerm,
} from '@mcp-audit/kafka';
import { boot, defineService, serviceOptionsFromEnv } from '@mcp-audit/service-kit';
import { retentionEnvSchema } from './config.js';
import { PRODUCT_VERSION } from './export/bundle.js';
import { startExportSchedules } from './export/schedules.js';
import { createLegalHolds } from './holds.js';
import { loadPublicKeys, loadSigningKey } from './ledger/keys.js';
import { DEFAULT_SEALER, sealOnce } from './ledger/sealer.js';
import { createRowStream } from './ledger/stream.js';
import { configuredPartitions } from './partitions.js';
import { runRetention } from './retention.job.js';

const { env, log, registry } = boot('retention', retentionEnvSchema.extend(leaseEnv('RETENTION').shape));
// The key is read once at boot; its file is readable by this service's account only.
const key = loadSigningKey(env.MCP_AUDIT_LEDGER_SIGNING_KEY_FILE);
const ch = clickhouseFor(env, 'ADMIN', {
  insertTables: ['integrity_ledger', 'retention_receipts', 'legal_holds', 'access_log'],
  application: 'mcp-audit-retention',
  requestTimeoutMs: 3_600_000,
  logger: log,
});
// Cluster layout: day partitions are listed and dropped on every node's local tables (partitions.ts).
const cluster = configuredPartitions(env, ch, { application: 'mcp-audit-retention', logger: log });
const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-retention'), log);
const producer = createProducer(kafka);
const db = {
  ch,
  database: env.MCP_AUDIT_CLICKHOUSE_DATABASE,
  stream: createRowStream({
    url: env.MCP_AUDIT_CLICKHOUSE_URL,
    username: env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER,
    password: env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD,
    database: env.MCP_AUDIT_CLICKHOUSE_DATABASE,
  }),
  partitions: cluster.partitions,
};
const sealer = {
  ...DEFAULT_SEALER,
  sealingDelayMs: env.MCP_AUDIT_LEDGER_SEALING_DELAY_MS,
  ingestMarginMs: env.MCP_AUDIT_LEDGER_INGEST_MARGIN_MS,
  addendumWindowMs: env.MCP_AUDIT_LEDGER_ADDENDUM_WINDOW_MS,
  startMs: env.MCP_AUDIT_LEDGER_START ? Date.parse(env.MCP_AUDIT_LEDGER_START) : undefined,
};
let busy: Promise<unknown> = Promise.resolve();
let lastError: string | undefined;
// Sealing, retention and scheduled exports run on the instance holding the lease (every instance
// when MCP_AUDIT_RETENTION_LEASE=false).
let term: LeaseTerm | undefined;
const lease = leaseFromEnv('RETENTION', env, {
  kafka,
  log,
  onAcquire: (t) => {
    term = t;
    void seal();
  },
  // The job in hand finishes (sealing re-checks the lease before its append) before the lease is left.
  onRelease: async () => {
    term = undefined;
    await busy;
  },
});
const holdsLease = () => !lease || (term?.valid() ?? false);
// One job at a time: sealing and retention both read the ledger's head (and exports are heavy).
const serial = (name: string, fn: () => Promise<unknown>) => () => {
  busy = busy
    .then(() => (holdsLease() ? fn() : undefined))
    .then(
      () => (lastError = undefined),
      (err: unknown) => {
        lastError = `${name}: ${(err as Error).message}`;
        log.error({ err, job: name }, 'job failed');
      },
    );
  return busy;
};
const seal = serial('seal', () =>
  sealOnce({ db, key, dir: env.MCP_AUDIT_LEDGER_DIR, log, holdsLease }, sealer),
);
const retain = serial('retention', async () => {
  const r = await runRetention(
    {
      ch,
      database: db.database,
      stream: db.stream,
      partitions: db.partitions,
      holds: createLegalHolds(db),
      publicKeys: loadPublicKeys(env.MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR),
      ledgerDir: env.MCP_AUDIT_LEDGER_DIR,
      verify: { sealGraceMs: sealer.sealingDelayMs + 15 * 60_000, addendumWindowMs: sealer.addendumWindowMs },
      key,
      receiptsDir: env.MCP_AUDIT_RETENTION_RECEIPTS_DIR,
      raiseAlerts: (alerts) =>
        producer.send(
          env.MCP_AUDIT_ALERTS_TOPIC,
          alerts.map((a) => ({ key: a.dedup_key, value: JSON.stringify(a) })),
        ),
    },
    env.MCP_AUDIT_RETENTION_POLICY,
  );
  log.info({ removed: r.removed.length, kept: r.kept.length, alerts: r.alerts.length }, 'retention run');
});
const exports = startExportSchedules(
  env.MCP_AUDIT_EXPORT_SCHEDULES,
  { db, key, productVersion: PRODUCT_VERSION, accessLog: ch, registry, log },
  (fn) => serial('export', fn)(),
);
const jobs = [
  cron.schedule(env.MCP_AUDIT_LEDGER_SEAL_CRON, seal, { timezone: 'UTC' }),
  cron.schedule(env.MCP_AUDIT_RETENTION_CRON, retain, { timezone: 'UTC' }),
  exports,
];

const service = defineService({
  name: 'retention',
  log,
  registry,
  ...serviceOptionsFromEnv(env, 'RETENTION'),
})
  .health(() => ({
    ok: true,
    details: { keyId: key.keyId, lastError, lease: lease?.health().details ?? null },
  }))
  .onStop('intake', 'stop cron jobs', () => jobs.forEach((j) => j.stop()))
  .onStop('drain', 'leave the lease', () => lease?.stop())
  .onStop('drain', 'finish the job in hand', () => busy)
  .onStop('commit', 'disconnect producer', () => producer.disconnect())
  .onStop('close', 'close clickhouse', () => Promise.all([ch.close(), cluster.close()]));

await service.run(async () => {
  await producer.connect();
  if (lease) await lease.start();
  else void seal();
});
