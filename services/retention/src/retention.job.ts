import { randomUUID } from 'node:crypto';
import { dbIdent, ident, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Alert } from '@mcp-audit/schema';
import { POLICY_TABLES, type RetentionPolicy } from './config.js';
import { overlappingHolds, type LegalHolds } from './holds.js';
import { HOUR_MS, isoSecond, recordHash, type PublicKeys, type SigningKey } from './ledger/record.js';
import { loadTableRecords } from './ledger/store.js';
import { verifyRange, type VerifyOptions } from './ledger/verify.js';
import { singleServerPartitions, type Partitions } from './partitions.js';
import { retiredHours, writeReceipt } from './receipts.js';
import type { RowStream } from './ledger/stream.js';

const DAY_MS = 86_400_000;
/**
 * Tables whose day partitions go with an events day and never on their own (no policy of their own):
 * the ledger's leaves, the analyst API's time-ordered copy of events (008_events_by_time.sql) and the
 * ingester's index of stored event ids (009_event_ids.sql).
 */
export const WITH_EVENTS = ['integrity_leaves', 'events_by_time', 'event_ids'] as const;
const TABLES = new Set<string>([...POLICY_TABLES, ...WITH_EVENTS]);

export interface PartitionPlan {
  table: string;
  partition: string;
  rows: number;
  dayStart: string;
  action: 'remove' | 'keep';
  why: string;
  holds?: string[];
}

export interface RetentionDeps {
  ch: ClickHouse;
  database: string;
  /**
   * Where day partitions are listed and dropped: this server (default) or every shard of a cluster
   * (partitions.ts). Everything else (verify, receipts, holds, spans) reads through `ch`.
   */
  partitions?: Partitions | undefined;
  /** Streaming reads for verification (createRowStream); buffered queries without it. */
  stream?: RowStream | undefined;
  holds: LegalHolds;
  publicKeys: PublicKeys;
  ledgerDir?: string | undefined;
  verify: VerifyOptions;
  now?: () => number;
}

/** What the next run would do with every partition past its policy. */
export async function planRetention(deps: RetentionDeps, policy: RetentionPolicy): Promise<PartitionPlan[]> {
  const now = (deps.now ?? Date.now)();
  const parts = await partitionsOf(deps).list(POLICY_TABLES);
  const holds = await deps.holds.list({ activeOnly: true });
  const retired = await retiredHours(deps.ch, deps.database, deps.publicKeys);
  const plans: PartitionPlan[] = [];
  for (const p of parts) {
    const m = /^(\d{4})(\d{2})(\d{2})$/.exec(p.partition);
    if (!m) continue; // not a day partition: never ours to remove
    const day = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!);
    const days = policy[p.table as keyof RetentionPolicy];
    if (day + DAY_MS > now - days * DAY_MS) continue; // within policy
    const base = { table: p.table, partition: p.partition, rows: p.rows, dayStart: isoSecond(day) };
    const held = overlappingHolds(holds, day, day + DAY_MS);
    if (held.length > 0) {
      plans.push({
        ...base,
        action: 'keep',
        why: `legal hold: ${held.map((h) => `${h.case_id} (${h.hold_id})`).join(', ')}`,
        holds: held.map((h) => h.hold_id),
      });
      continue;
    }
    if (p.table === 'events') {
      const v = await verifyRange(
        {
          db: { ch: deps.ch, database: deps.database, stream: deps.stream, partitions: deps.partitions },
          publicKeys: deps.publicKeys,
          dir: deps.ledgerDir,
          now: () => now,
          retiredHours: retired,
        },
        day,
        day + DAY_MS,
        deps.verify,
      );
      const bad = v.failing.filter((f) => f.status !== 'retired');
      if (bad.length > 0 || v.chain.length > 0) {
        const what = bad
          .slice(0, 3)
          .map((f) => `${f.hour} ${f.problems.map((x) => x.kind).join('+')}`)
          .join('; ');
        plans.push({
          ...base,
          action: 'keep',
          why: `does not verify: ${bad.length} failing hours${v.chain.length ? `, ${v.chain.length} ledger problems` : ''} (${what})`,
        });
        continue;
      }
    }
    plans.push({ ...base, action: 'remove', why: `older than ${days} days` });
  }
  return plans;
}

export interface RetentionRunResult {
  removed: PartitionPlan[];
  kept: PartitionPlan[];
  alerts: Alert[];
}

/**
 * Applies the plan: drops each removable day partition (as the admin), writes its signed receipt
 * first, and raises one critical alert per events partition kept because it does not verify.
 */
export async function runRetention(
  deps: RetentionDeps & {
    key: SigningKey;
    receiptsDir: string;
    raiseAlerts: (alerts: Alert[]) => Promise<void>;
  },
  policy: RetentionPolicy,
): Promise<RetentionRunResult> {
  const now = (deps.now ?? Date.now)();
  const plans = await planRetention(deps, policy);
  const removed: PartitionPlan[] = [];
  const kept = plans.filter((p) => p.action === 'keep');
  const records = await loadTableRecords({ ch: deps.ch, database: deps.database });
  const db = dbIdent(deps.database);
  const partitions = partitionsOf(deps);
  for (const p of plans.filter((x) => x.action === 'remove')) {
    const day = Date.parse(p.dayStart);
    const span = await deps.ch.query<{ a: number; b: number }>(sql`
      SELECT toUInt32(min(${ident(timeColumn(p.table), TIME_COLUMNS)})) AS a, toUInt32(max(${ident(timeColumn(p.table), TIME_COLUMNS)})) AS b
      FROM ${db}.${ident(p.table, TABLES)} WHERE toYYYYMMDD(${ident(timeColumn(p.table), TIME_COLUMNS)}) = ${Number(p.partition)}`);
    const covered =
      p.table === 'events'
        ? records
            .filter(
              (r) => r.record && Date.parse(r.record.hour) >= day && Date.parse(r.record.hour) < day + DAY_MS,
            )
            .map((r) => ({ seq: r.seq, hash: recordHash(r.record!) }))
        : [];
    await writeReceipt(
      { ch: deps.ch, dir: deps.receiptsDir, key: deps.key },
      {
        v: 1,
        receipt_id: randomUUID(),
        table: p.table,
        partition: p.partition,
        rows: p.rows,
        first_ts: isoSecond(Number(span[0]?.a ?? day / 1000) * 1000),
        last_ts: isoSecond(Number(span[0]?.b ?? day / 1000) * 1000),
        records: covered,
        policy: { days: policy[p.table as keyof RetentionPolicy] },
        at: isoSecond(now),
        key_id: deps.key.keyId,
      },
    );
    await partitions.drop(p.table, p.partition);
    if (p.table === 'events') for (const t of WITH_EVENTS) await partitions.drop(t, p.partition);
    removed.push(p);
  }
  const alerts = kept
    .filter((p) => p.table === 'events' && p.why.startsWith('does not verify'))
    .map((p) => integrityAlert(p, now));
  if (alerts.length > 0) await deps.raiseAlerts(alerts);
  return { removed, kept, alerts };
}

const partitionsOf = (deps: RetentionDeps): Partitions =>
  deps.partitions ?? singleServerPartitions(deps.ch, deps.database);

const TIME_COLUMNS = ['ts', 'created_at', 'changed_at', 'opened_at', 'at'];
function timeColumn(table: string): string {
  switch (table) {
    case 'events':
      return 'ts';
    case 'alerts':
      return 'created_at';
    case 'alert_transitions':
      return 'changed_at';
    case 'incidents':
      return 'opened_at';
    default:
      return 'at';
  }
}

/** A critical alert in the detector's alert contract (packages/schema alert.ts). */
export function integrityAlert(p: PartitionPlan, nowMs: number): Alert {
  const day = Date.parse(p.dayStart);
  return {
    schema_version: 1,
    type: 'alert',
    alert_id: randomUUID(),
    dedup_key: `ledger-integrity:${p.table}:${p.partition}`,
    detector: 'ledger_integrity',
    client_id: '*',
    title: `Audit log partition ${p.partition} fails integrity verification`,
    summary: `Retention kept ${p.table} partition ${p.partition} (${p.rows} rows) because it ${p.why}. Run \`retention verify --from ${p.dayStart}\`.`,
    severity: 'critical',
    status: 'open',
    window: { start: new Date(day).toISOString(), end: new Date(day + DAY_MS).toISOString() },
    observed: 1,
    expected: { low: 0, high: 0 },
    score: 100,
    baseline_version: '',
    contributors: { tools: [], addresses: [], sessions: [] },
    sample_event_ids: [],
    created_at: new Date(nowMs).toISOString(),
  };
}

export const HOURS_PER_DAY = DAY_MS / HOUR_MS;
