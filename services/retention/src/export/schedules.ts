import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import cron from 'node-cron';
import { z } from 'zod';
import type { ClickHouse } from '@mcp-audit/clickhouse';
import { Counter, Gauge, type Registry } from '@mcp-audit/service-kit';
import { HOUR_MS, isoSecond } from '../ledger/record.js';
import { exportBundle, type ExportDeps, type Manifest } from './bundle.js';
import { exportFiltersSchema } from './filters.js';
import { FORMATS } from './formats.js';

/**
 * Scheduled exports to a directory (for shipping to object storage): each schedule writes one
 * bundle per run, for the range before the run (`previous_hour` or `previous_day`, UTC), named
 * `<name>-<from>-<to>` (e.g. `daily-20260105T0000Z-20260106T0000Z`). A bundle is written under a
 * temporary name in the same directory and renamed when complete, so a shipper never sees half a
 * bundle; an existing bundle is never overwritten (the run is recorded as `skipped`).
 */
export const RANGES = ['previous_hour', 'previous_day'] as const;

export const exportScheduleSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,47}$/, '1-48 of a-z, 0-9 and -, starting with a letter or digit'),
    cron: z.string().refine((s) => cron.validate(s), 'not a valid cron expression'),
    format: z.enum(FORMATS),
    range: z.enum(RANGES),
    filters: exportFiltersSchema.default(exportFiltersSchema.parse({})),
    dir: z.string().refine(isAbsolute, 'must be an absolute path'),
  })
  .strict();
export type ExportSchedule = z.infer<typeof exportScheduleSchema>;

export const exportSchedulesSchema = z
  .array(exportScheduleSchema)
  .max(100)
  .refine((l) => new Set(l.map((s) => s.name)).size === l.length, 'schedule names must be unique');

/** [from, to) of a run at `nowMs`. */
export function scheduleRange(
  range: ExportSchedule['range'],
  nowMs: number,
): { fromMs: number; toMs: number } {
  const unit = range === 'previous_hour' ? HOUR_MS : 24 * HOUR_MS;
  const toMs = Math.floor(nowMs / unit) * unit;
  return { fromMs: toMs - unit, toMs };
}

const stamp = (ms: number) => isoSecond(ms).replace(/[-:]/g, '').replace(/00Z$/, 'Z');

export const bundleName = (s: ExportSchedule, fromMs: number, toMs: number) =>
  `${s.name}-${stamp(fromMs)}-${stamp(toMs)}`;

export interface ScheduleRun {
  schedule: string;
  result: 'ok' | 'skipped' | 'failed';
  /** The bundle's directory (ok, skipped). */
  bundle?: string;
  from: string;
  to: string;
  rows: number;
  complete_hours: number;
  ms: number;
  error?: string;
}

export interface ScheduleDeps extends Pick<ExportDeps, 'db' | 'key' | 'productVersion'> {
  /** The access log (mcp_audit.access_log): one row per run, beside the API's exports. */
  accessLog?: ClickHouse;
  registry?: Registry;
  log?: {
    info(o: object, m?: string): void;
    warn(o: object, m?: string): void;
    error(o: object, m?: string): void;
  };
  now?: () => number;
}

export interface ExportScheduler {
  /** Runs one schedule now (what its cron job does). */
  run(s: ExportSchedule): Promise<ScheduleRun>;
  stop(): void;
}

/**
 * Starts one node-cron job per schedule (UTC). Runs are serialised with `serial` (the service's
 * queue: one ClickHouse-heavy job at a time); every run is logged, counted
 * (mcp_audit_retention_export_runs_total{schedule,result}, and the last success time) and written
 * to the access log.
 */
export function startExportSchedules(
  schedules: readonly ExportSchedule[],
  deps: ScheduleDeps,
  serial: (fn: () => Promise<unknown>) => Promise<unknown> = (fn) => fn(),
): ExportScheduler {
  const runs = deps.registry
    ? new Counter({
        name: 'mcp_audit_retention_export_runs_total',
        help: 'Scheduled export runs, by schedule and result (ok, skipped: the bundle existed, failed)',
        labelNames: ['schedule', 'result'],
        registers: [deps.registry],
      })
    : undefined;
  const lastOk = deps.registry
    ? new Gauge({
        name: 'mcp_audit_retention_export_last_success_seconds',
        help: 'End of the last successful scheduled export run (epoch seconds)',
        labelNames: ['schedule'],
        registers: [deps.registry],
      })
    : undefined;

  const run = async (s: ExportSchedule): Promise<ScheduleRun> => {
    const t0 = Date.now();
    const { fromMs, toMs } = scheduleRange(s.range, (deps.now ?? Date.now)());
    const out: ScheduleRun = {
      schedule: s.name,
      result: 'ok',
      from: isoSecond(fromMs),
      to: isoSecond(toMs),
      rows: 0,
      complete_hours: 0,
      ms: 0,
    };
    try {
      const name = bundleName(s, fromMs, toMs);
      const final = join(s.dir, name);
      out.bundle = final;
      if (existsSync(final)) out.result = 'skipped';
      else {
        const m = await writeBundle(deps, s, fromMs, toMs, final);
        out.rows = m.rows;
        out.complete_hours = m.complete_hours.length;
      }
    } catch (err) {
      out.result = 'failed';
      out.error = (err as Error).message;
    }
    out.ms = Date.now() - t0;
    await record(out, s);
    return out;
  };

  const record = async (r: ScheduleRun, s: ExportSchedule) => {
    runs?.inc({ schedule: r.schedule, result: r.result });
    if (r.result === 'ok') lastOk?.set({ schedule: r.schedule }, Date.now() / 1000);
    if (r.result === 'failed') deps.log?.error(r, 'scheduled export failed');
    else if (r.result === 'skipped')
      deps.log?.warn(r, 'scheduled export skipped: the bundle exists (never overwritten)');
    else deps.log?.info(r, 'scheduled export written');
    if (!deps.accessLog) return;
    const at = Date.now();
    try {
      await deps.accessLog.insert('access_log', [
        {
          at: isoSecond(at).replace('T', ' ').replace('Z', ''),
          at_ms: at,
          request_id: randomUUID(),
          key_id: `schedule:${s.name}`,
          scopes: ['compliance'],
          auth: 'schedule',
          route: 'scheduled-export',
          method: 'CRON',
          filters: JSON.stringify({
            format: s.format,
            range: s.range,
            filters: s.filters,
            dir: s.dir,
            bundle: r.bundle,
            error: r.error,
          }),
          from_ms: Date.parse(r.from),
          to_ms: Date.parse(r.to),
          rows: r.rows,
          status: r.result === 'ok' ? 200 : r.result === 'skipped' ? 409 : 500,
          duration_ms: r.ms,
          ip: '',
          user_agent: 'mcp-audit-retention',
          phase:
            r.result === 'ok'
              ? 'export_complete'
              : r.result === 'skipped'
                ? 'export_skipped'
                : 'export_failed',
        },
      ]);
    } catch (err) {
      deps.log?.error({ err, schedule: s.name }, 'scheduled export: access log row not written');
    }
  };

  const tasks = schedules.map((s) =>
    cron.schedule(s.cron, () => void serial(() => run(s)), { timezone: 'UTC', name: `export-${s.name}` }),
  );
  return {
    run: (s) => run(s),
    stop: () => tasks.forEach((t) => t.stop()),
  };
}

/** The bundle under a temporary name beside `final`, renamed once complete. */
async function writeBundle(
  deps: ScheduleDeps,
  s: ExportSchedule,
  fromMs: number,
  toMs: number,
  final: string,
): Promise<Manifest> {
  mkdirSync(s.dir, { recursive: true });
  const tmp = join(s.dir, `.tmp-${randomBytes(6).toString('hex')}`);
  try {
    const m = await exportBundle(
      {
        db: deps.db,
        key: deps.key,
        productVersion: deps.productVersion,
        ...(deps.now ? { now: deps.now } : {}),
      },
      { fromMs, toMs, format: s.format, filters: s.filters, actor: `schedule:${s.name}` },
      tmp,
    );
    // NOTE: rename(2) replaces an empty directory of the same name; runs are serialised, so the
    // check just before it is the only writer's.
    if (existsSync(final)) throw new Error(`${final} appeared during the export; not overwritten`);
    renameSync(tmp, final);
    return m;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
