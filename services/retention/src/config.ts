import cron from 'node-cron';
import { z } from 'zod';
import { clickhouseEnv } from '@mcp-audit/clickhouse';
import { kafkaEnvSchema, TOPIC_ALERTS } from '@mcp-audit/kafka';
import { envInt, opsEnv, serviceEnv } from '@mcp-audit/service-kit';
import { exportSchedulesSchema } from './export/schedules.js';

const cronExpr = (def: string) =>
  z
    .string()
    .default(def)
    .refine((s) => cron.validate(s), 'not a valid cron expression');

/** A JSON-valued variable parsed by `schema`; a bad value names each wrong field. */
function jsonEnv<T extends z.ZodType>(def: string, schema: T, what: string) {
  return z
    .string()
    .default(def)
    .transform((s, ctx): z.infer<T> => {
      try {
        return schema.parse(JSON.parse(s));
      } catch (err) {
        const msg =
          err instanceof z.ZodError
            ? err.issues.map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ')
            : (err as Error).message;
        ctx.addIssue({ code: 'custom', message: `invalid ${what}: ${msg}` });
        return z.NEVER;
      }
    });
}

/**
 * Days each table keeps its day partitions. integrity_ledger, integrity_leaves (dropped with their
 * events' day) and retention_receipts are not in the policy: they are kept forever.
 */
export const retentionPolicySchema = z
  .object({
    events: z.number().int().min(1).max(36_500).default(90),
    alerts: z.number().int().min(1).max(36_500).default(400),
    alert_transitions: z.number().int().min(1).max(36_500).default(400),
    alert_deliveries: z.number().int().min(1).max(36_500).default(400),
    incidents: z.number().int().min(1).max(36_500).default(400),
    incident_transitions: z.number().int().min(1).max(36_500).default(400),
    access_log: z.number().int().min(1).max(36_500).default(400),
  })
  .strict();
export type RetentionPolicy = z.infer<typeof retentionPolicySchema>;
export const POLICY_TABLES = Object.keys(retentionPolicySchema.shape) as Array<keyof RetentionPolicy>;

export const retentionEnvSchema = kafkaEnvSchema.extend({
  ...serviceEnv('RETENTION').shape,
  ...opsEnv('RETENTION', 9477).shape,
  ...clickhouseEnv('ADMIN').shape,
  /** Ed25519 private key (PKCS#8 PEM, mode 0600). No other service's environment names it. */
  MCP_AUDIT_LEDGER_SIGNING_KEY_FILE: z.string().min(1),
  /** Published public keys, `<key_id>.pub`. */
  MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR: z.string().min(1),
  /** One file per ledger record (ship it to WORM storage). */
  MCP_AUDIT_LEDGER_DIR: z.string().min(1),
  /** One file per deletion receipt. */
  MCP_AUDIT_RETENTION_RECEIPTS_DIR: z.string().min(1),
  /** At least the detector's allowed lateness (2 min by default). */
  MCP_AUDIT_LEDGER_SEALING_DELAY_MS: envInt(600_000, 120_000, 86_400_000),
  MCP_AUDIT_LEDGER_INGEST_MARGIN_MS: envInt(300_000, 0, 3_600_000),
  MCP_AUDIT_LEDGER_ADDENDUM_WINDOW_MS: envInt(7 * 86_400_000, 3_600_000, 90 * 86_400_000),
  MCP_AUDIT_LEDGER_START: z.iso.datetime().optional(),
  MCP_AUDIT_LEDGER_SEAL_CRON: cronExpr('*/5 * * * *'),
  MCP_AUDIT_RETENTION_CRON: cronExpr('30 3 * * *'),
  /** JSON object of days per table, e.g. {"events":90}; defaults as in retentionPolicySchema. */
  MCP_AUDIT_RETENTION_POLICY: jsonEnv('{}', retentionPolicySchema, 'retention policy'),
  MCP_AUDIT_ALERTS_TOPIC: z.string().default(TOPIC_ALERTS),
  /**
   * Cluster layout, as for the migrations (packages/clickhouse/src/migrate.ts): the cluster's name in
   * remote_servers and every node's HTTP URL (comma-separated). Day partitions are then listed and
   * dropped on every shard's local tables (partitions.ts); everything else reads MCP_AUDIT_CLICKHOUSE_URL.
   */
  MCP_AUDIT_CLICKHOUSE_CLUSTER: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'not a plain identifier')
    .optional(),
  MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((u) => u.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.url({ protocol: /^https?$/ }))),
  /**
   * Scheduled exports (export/schedules.ts): a JSON array of {name, cron, format, range, filters?,
   * dir}, e.g. [{"name":"daily","cron":"30 1 * * *","format":"ndjson","range":"previous_day",
   * "dir":"/var/lib/mcp-audit/exports"}].
   */
  MCP_AUDIT_EXPORT_SCHEDULES: jsonEnv('[]', exportSchedulesSchema, 'export schedules'),
});
export type RetentionEnv = z.infer<typeof retentionEnvSchema>;

/** The CLI reads the same variables, but Kafka and the signing key only for the commands that need them. */
export const cliEnvSchema = retentionEnvSchema.partial({
  MCP_AUDIT_LEDGER_SIGNING_KEY_FILE: true,
  MCP_AUDIT_LEDGER_DIR: true,
  MCP_AUDIT_RETENTION_RECEIPTS_DIR: true,
});
