import { readFileSync } from 'node:fs';
import cron from 'node-cron';
import { z } from 'zod';
import { envBool, envInt, opsEnv, serviceEnv } from '@mcp-audit/service-kit';
import { clickhouseEnv } from '@mcp-audit/clickhouse';
import { kafkaEnvSchema, TOPIC_ALERTS, TOPIC_EVENTS } from '@mcp-audit/kafka';
import { ToolClassOverrides } from './tool-inventory.js';

/*
 * The detector's configuration, all of it: the environment (read once by main.ts), the tuning file
 * (MCP_AUDIT_DETECTOR_CONFIG) and, inside it, the periodic detectors' settings.
 */

// ---- environment
/** The detector's environment (the tuning lives in the JSON file MCP_AUDIT_DETECTOR_CONFIG). */
export const detectorEnvSchema = kafkaEnvSchema.extend({
  ...serviceEnv('DETECTOR').shape,
  ...opsEnv('DETECTOR', 9474).shape,
  ...clickhouseEnv('WRITER', 'ANALYST').shape,
  MCP_AUDIT_DETECTOR_GROUP_ID: z.string().min(1).default('mcp-audit-detector'),
  MCP_AUDIT_EVENTS_TOPIC: z.string().min(1).default(TOPIC_EVENTS),
  MCP_AUDIT_ALERTS_TOPIC: z.string().min(1).default(TOPIC_ALERTS),
  /** JSON tuning file (the schema below); defaults when unset. */
  MCP_AUDIT_DETECTOR_CONFIG: z.string().optional(),
  /** Only one instance runs the periodic (ClickHouse-query) detectors. */
  MCP_AUDIT_DETECTOR_PERIODIC: envBool('true'),
  /** Run the baseline cron job in this instance (idempotent if several do). */
  MCP_AUDIT_DETECTOR_BASELINE_JOB: envBool('true'),
  /** A new consumer group starts at the beginning of the topic (true) or at its end. */
  MCP_AUDIT_DETECTOR_FROM_BEGINNING: envBool('true'),
  MCP_AUDIT_DETECTOR_PARTITIONS_CONCURRENTLY: envInt(2, 1, 64),
});

export type DetectorEnv = z.infer<typeof detectorEnvSchema>;

// ---- periodic detectors (`periodic` in the tuning file)
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/**
 * Window lengths: whole seconds (ClickHouse `ts` is a DateTime), from one minute to one day, and a
 * divisor of a day so windows line up with days in every time zone offset that is a whole hour.
 */
const windowMs = (dflt: number) =>
  z
    .number()
    .int()
    .min(MINUTE)
    .max(24 * HOUR)
    .refine((v) => v % 1000 === 0 && (24 * HOUR) % v === 0, {
      message: 'must be whole seconds and divide a day (e.g. 300000, 900000, 3600000)',
    })
    .default(dflt);

const share = z.number().gt(0).max(1);

/** How long an alert that no signal resolves stays open (event time), from 5 minutes to 90 days. */
const expireMs = (dflt: number) =>
  z
    .number()
    .int()
    .min(5 * MINUTE)
    .max(90 * 24 * HOUR)
    .default(dflt);

/** One address failing authentication against many clients (password / key spraying). */
const authSpray = z.object({
  enabled: z.boolean().default(true),
  windowMs: windowMs(15 * MINUTE),
  /** Distinct clients one address must fail against in a window to raise (>= this). */
  minClients: z.number().int().min(2).max(10_000).default(5),
  /** Severity is high from this many clients on, medium below. */
  highClients: z.number().int().min(2).max(100_000).default(10),
});

/** K failures from one address followed by a success from the same address: someone guessed it. */
const authFailThenSuccess = z.object({
  enabled: z.boolean().default(true),
  windowMs: windowMs(15 * MINUTE),
  /** Failures (distinct events) in the window before the success. */
  minFailures: z.number().int().min(1).max(100_000).default(5),
  /**
   * How long after the window a success still counts (event time). The runner waits this long past
   * the window end before evaluating it.
   */
  followMs: z
    .number()
    .int()
    .min(0)
    .max(6 * HOUR)
    .default(5 * MINUTE),
  /** The alert expires this long (event time) after it opened; the next success after failures then raises anew. */
  expireMs: expireMs(24 * HOUR),
});

/** A credential redaction replaced in a call's arguments or error text (periodic/secret-in-args.detector.ts). */
const secretInArgs = z.object({
  enabled: z.boolean().default(true),
  windowMs: windowMs(5 * MINUTE),
  /** The alert per client and fingerprint expires this long (event time) after it opened; the next use then raises anew. */
  expireMs: expireMs(7 * 24 * HOUR),
});

/** A tool definition hash that differs from the one last seen for the same server and tool. */
const toolDrift = z.object({
  enabled: z.boolean().default(true),
  windowMs: windowMs(5 * MINUTE),
  /** The alert expires this long (event time) after it opened; the next change of the tool then raises anew. */
  expireMs: expireMs(24 * HOUR),
});

/** A source that reported steadily and went quiet while the rest of the system kept reporting. */
const silentSource = z.object({
  enabled: z.boolean().default(true),
  /** How often (event time) the silence is checked. */
  windowMs: windowMs(15 * MINUTE),
  /** Silence (event time, no events at all from the source) that raises. */
  silenceMs: z
    .number()
    .int()
    .min(MINUTE)
    .max(7 * 24 * HOUR)
    .default(30 * MINUTE),
  bucketMs: windowMs(HOUR),
  /** Reference buckets: the most recent buckets (before the silence) in which anything reported. */
  steadyBuckets: z
    .number()
    .int()
    .min(2)
    .max(24 * 14)
    .default(24),
  /** A source is steady if it reported in at least this share of the reference buckets. */
  minShare: share.default(0.9),
  /**
   * A source's usual gap: this quantile (nearest rank) of its gaps between events over the reference
   * period. A silence raises only beyond gapFactor times it (and beyond silenceMs).
   */
  gapQuantile: share.default(0.95),
  gapFactor: z.number().min(1).max(100).default(3),
  /** How far back to look for reference buckets (bounds the scan). */
  lookbackMs: z
    .number()
    .int()
    .min(HOUR)
    .max(30 * 24 * HOUR)
    .default(72 * HOUR),
});

/** One session id used from more than one address, user or client in a window. */
const sessionMisuse = z.object({
  enabled: z.boolean().default(true),
  windowMs: windowMs(15 * MINUTE),
  /** Distinct addresses one session may use in a window (raise above). NAT or mobile users: raise it. */
  maxAddresses: z.number().int().min(1).max(1000).default(1),
  /** Distinct users (and, separately, client ids) one session may carry in a window. */
  maxUsers: z.number().int().min(1).max(1000).default(1),
  /**
   * How far back a session's earlier identity counts: its id seen from a new address (user, client)
   * while the old one was in use within this span is misuse even across windows.
   */
  lookbackMs: z
    .number()
    .int()
    .min(0)
    .max(7 * 24 * HOUR)
    .default(12 * HOUR),
});

/**
 * One event_id stored with different content (a forgery reusing an id, or a corrupted redelivery).
 * Its windows are INGESTION-time windows (`ingested_at`): it judges the copies stored in each window
 * against every copy of the same id whose event time is within `lookbackMs`.
 */
const eventIdReuse = z.object({
  enabled: z.boolean().default(true),
  windowMs: windowMs(5 * MINUTE),
  /** How far back (event time) older copies of an id are looked for: the ingester's age limit. */
  lookbackMs: z
    .number()
    .int()
    .min(HOUR)
    .max(90 * 24 * HOUR)
    .default(30 * 24 * HOUR),
  /** An alert resolves (expires) after this much ingestion time without another differing copy. */
  expireMs: z
    .number()
    .int()
    .min(HOUR)
    .max(90 * 24 * HOUR)
    .default(7 * 24 * HOUR),
  /** Ids reported one alert each per window; beyond it one summary alert lists the rest. */
  maxAlertsPerWindow: z.number().int().min(1).max(1000).default(50),
});

/** A private read then a send-out in one session (periodic/toxic-flow.detector.ts). */
const toxicFlow = z.object({
  enabled: z.boolean().default(true),
  windowMs: windowMs(5 * MINUTE),
  /** How long before a send a private read of the same session still makes a flow. */
  lookbackMs: z
    .number()
    .int()
    .min(MINUTE)
    .max(24 * HOUR)
    .default(HOUR),
  /** The alert per (client, session) expires this long (event time) after it opened. */
  expireMs: expireMs(24 * HOUR),
});

/** One tool name offered to a client by two servers (periodic/tool-shadowing.detector.ts). */
const toolShadowing = z.object({
  enabled: z.boolean().default(true),
  windowMs: windowMs(15 * MINUTE),
  /** The alert per (client, tool name) expires this long (event time) after it opened. */
  expireMs: expireMs(24 * HOUR),
});

/** A listed tool's annotations moving towards risk (periodic/annotation-drift.detector.ts). */
const annotationDrift = z.object({
  enabled: z.boolean().default(true),
  windowMs: windowMs(5 * MINUTE),
  /** The alert per server/tool expires this long (event time) after it opened. */
  expireMs: expireMs(24 * HOUR),
});

/** A client's first call of a tool classed destructive (periodic/first-destructive-use.detector.ts). */
const firstDestructiveUse = z.object({
  enabled: z.boolean().default(true),
  windowMs: windowMs(5 * MINUTE),
  /** The notice expires this long (event time) after it opened. */
  expireMs: expireMs(24 * HOUR),
});

/**
 * Thresholds of the periodic detectors (embedded as `periodic` in the detector config file).
 * Every field has a default: `PeriodicConfig.parse({})` is a working configuration.
 */
export const PeriodicConfig = z.object({
  /** Windows evaluated per runner tick at most, over all detectors (bounds catch-up after downtime). */
  maxWindowsPerTick: z.number().int().min(1).max(10_000).default(480),
  /** Wall-clock interval between runner ticks when nothing is pending. */
  tickMs: z.number().int().min(100).max(HOUR).default(30_000),
  authSpray: authSpray.prefault({}),
  authFailThenSuccess: authFailThenSuccess.prefault({}),
  toolDrift: toolDrift.prefault({}),
  silentSource: silentSource.prefault({}),
  sessionMisuse: sessionMisuse.prefault({}),
  eventIdReuse: eventIdReuse.prefault({}),
  secretInArgs: secretInArgs.prefault({}),
  toxicFlow: toxicFlow.prefault({}),
  toolShadowing: toolShadowing.prefault({}),
  annotationDrift: annotationDrift.prefault({}),
  firstDestructiveUse: firstDestructiveUse.prefault({}),
  /**
   * Tool inventory overrides (src/tool-inventory.ts): `{ server, tool, class }`, `*` for any; they
   * win over the tools' annotations, e.g. `{ "tool": "send_email", "class": "send_out" }` for a server
   * that does not annotate, or `{ "server": "files", "tool": "read_file", "class": "read_private" }`.
   */
  toolClasses: ToolClassOverrides,
});
export type PeriodicConfig = z.output<typeof PeriodicConfig>;
export type PeriodicConfigInput = z.input<typeof PeriodicConfig>;

export const DEFAULT_PERIODIC_CONFIG: PeriodicConfig = PeriodicConfig.parse({});

// ---- the wall-clock watchdog (`watchdog` in the tuning file)
const SECOND = 1000;
const DAY = 24 * HOUR;
const ms = (min: number, max: number, dflt: number) => z.number().int().min(min).max(max).default(dflt);

/**
 * The pipeline watchdog (services/detector/src/watchdog): wall-clock checks, outside the event-time
 * machinery, of what was stored recently per source and of the ingester's progress on Kafka.
 */
export const WatchdogConfig = z
  .object({
    enabled: z.boolean().default(true),
    /** Wall-clock interval between checks. */
    intervalMs: ms(SECOND, HOUR, MINUTE),
    /** A busy source raises when nothing from it was stored (ingested_at) in this much wall-clock time. */
    windowMs: ms(10 * SECOND, 6 * HOUR, 10 * MINUTE),
    /**
     * What a source normally sends at this time is read `periods` times, `periodMs` apart, back from
     * now (7 days x 4: the same hour of the week in each of the last 4 weeks; 1 day for daily habits).
     */
    periodMs: ms(HOUR, 28 * DAY, 7 * DAY),
    periods: z.number().int().min(1).max(12).default(4),
    /** Each reference sample counts the source's events in this span of event time around then. */
    referenceSpanMs: ms(MINUTE, 6 * HOUR, HOUR),
    /**
     * Busy: the median of the reference samples, scaled to windowMs, is at least this many events.
     * Sources below it (quiet at this hour of the week) are never paged for silence.
     */
    minExpected: z.number().min(1).max(1e9).default(20),
    /** Events stamped more than this before now are not looked at (bounds the scan of events). */
    arrivalSlackMs: ms(MINUTE, 7 * DAY, 6 * HOUR),
    stall: z
      .object({
        enabled: z.boolean().default(true),
        /** The ingester's consumer group and topic whose committed offsets are watched. */
        groupId: z.string().min(1).default('mcp-audit-ingester'),
        /** Default: the detector's events topic (MCP_AUDIT_EVENTS_TOPIC). */
        topic: z.string().min(1).optional(),
        /** The group's committed offsets unchanged this long while messages wait, nothing stored: stall. */
        stallMs: ms(10 * SECOND, 6 * HOUR, 5 * MINUTE),
        /** Messages waiting (end offset minus committed, summed over partitions) that count as a backlog. */
        minLag: z.number().int().min(1).max(1e12).default(1),
      })
      .prefault({}),
  })
  .refine((w) => w.referenceSpanMs <= w.periodMs, {
    message: 'referenceSpanMs must not exceed periodMs',
    path: ['referenceSpanMs'],
  });
export type WatchdogConfig = z.output<typeof WatchdogConfig>;
export const DEFAULT_WATCHDOG_CONFIG: WatchdogConfig = WatchdogConfig.parse({});

// ---- the tuning file
/**
 * The detector's tuning file (JSON, path in MCP_AUDIT_DETECTOR_CONFIG; every field optional).
 *
 *   {
 *     "timeZone": "UTC",
 *     "baseline": { "windowDays": 28, "learningActiveDays": 7 },
 *     "detectors": { "volume": { "k": 6 }, "off_hours": { "minCalls": 5 } },
 *     "clients": {
 *       "office-*": { "timeZone": "Europe/Berlin",
 *                     "businessHours": { "days": [1,2,3,4,5], "start": "08:00", "end": "18:00",
 *                                        "holidays": ["2026-10-03"] } },
 *       "ci-runner": { "detectors": { "volume": { "k": 10 } } }
 *     },
 *     "labels": { "team=finance": { "detectors": { "new_tool": { "enabled": false } } } }
 *   }
 *
 * Resolution for one client: defaults, then every matching `labels` entry (key=value of the event's
 * labels, in sorted order), then every matching `clients` pattern (exact ids last, `*` globs first,
 * longer patterns later). NOTE: the baseline job has no labels (events_hourly holds none), so the
 * time zone that shapes the hour-of-week profile comes from `clients` patterns or the default only;
 * a label may still set business hours and thresholds for the streaming detectors.
 */

const hhmm = z
  .string()
  .regex(/^([01]\d|2[0-4]):[0-5]\d$/, 'must be HH:MM (24h)')
  .transform((s) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3)));

export const timeZoneSchema = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone, e.g. Europe/Berlin');

export const businessHoursSchema = z.object({
  /** ISO weekdays (1 = Monday … 7 = Sunday) that are working days. */
  days: z.array(z.number().int().min(1).max(7)).min(1).default([1, 2, 3, 4, 5]),
  /** Local time, inclusive start, exclusive end (minutes after midnight once parsed). */
  start: hhmm.default(9 * 60),
  end: hhmm.default(17 * 60),
  /** Local dates (YYYY-MM-DD) that are not working days (public holidays). */
  holidays: z.array(z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be YYYY-MM-DD')).default([]),
});
export type BusinessHours = z.infer<typeof businessHoursSchema>;

/** Common to the banded detectors (volume, tool breadth, error rate). */
const band = {
  enabled: z.boolean().default(true),
  /** Robust deviations above the median that still count as normal (larger = fewer alerts). */
  k: z.number().positive().max(100),
  /** The band is at least this many times the pooled 95th percentile. */
  q95Multiplier: z.number().min(1).max(100).default(1.5),
  /** … and at least this many times the largest value seen in the exact hour of week. */
  cellMaxMultiplier: z.number().min(1).max(100).default(1.25),
  /**
   * … and at least this many times the busiest hour of the client's whole baseline window. Noisy
   * clients burst at random hours to many times their median, so the hour-of-week profile alone
   * cannot hold them; twice anything seen in four weeks can. (In the scenario data, regular clients
   * stayed within 1.4× their four-week maximum, while a retry loop reached 2.9× and bulk scripting
   * 3.1×.)
   */
  maxMultiplier: z.number().min(0).max(100).default(2),
};

export const detectorSettingsSchema = z.object({
  volume: z
    .object({
      ...band,
      k: band.k.default(6),
      /**
       * Calls: 2.5× the busiest hour of the baseline window (the band's 2× let a noisy client's
       * ordinary week raise an alert one call over it in the scenario: observed 353, band 0..352; the
       * labelled retry loops and bulk scripting reach 2.9× and more).
       */
      maxMultiplier: z.number().min(0).max(100).default(2.5),
      /** A window with fewer calls than this never alerts on calls. */
      minCalls: z.number().int().min(1).default(30),
      /** Calls must exceed the median by at least this many. */
      minDeltaCalls: z.number().min(0).default(20),
      /** A window with fewer bytes (request + response) than this never alerts on bytes. */
      minBytes: z.number().int().min(1).default(1_000_000),
      minDeltaBytes: z.number().min(0).default(500_000),
      /**
       * Bytes are heavier-tailed than calls: one large response (a file, a screenshot) decides an
       * hour, and a week adds record hours to a fortnight's history. 3× the busiest hour.
       */
      bytesMaxMultiplier: z.number().min(0).max(100).default(3),
    })
    .prefault({}),
  tool_breadth: z
    .object({
      ...band,
      k: band.k.default(4),
      /** Distinct tools (or servers) in a window below this never alert. */
      minDistinct: z.number().int().min(1).default(6),
      minDelta: z.number().min(0).default(4),
    })
    .prefault({}),
  new_tool: z
    .object({
      enabled: z.boolean().default(true),
      /** Calls of the never-used tool in the window before it alerts (1 = the first call). */
      minCalls: z.number().int().min(1).default(1),
      /**
       * A tool used by more than this share of all clients is "common": a client trying it for the
       * first time raises only an `info` finding, which is not published unless `includeCommon`.
       */
      commonShare: z.number().min(0).max(1).default(0.2),
      includeCommon: z.boolean().default(false),
    })
    .prefault({}),
  off_hours: z
    .object({
      enabled: z.boolean().default(true),
      /** Calls in the window before off-hours activity counts (one stray call is not activity). */
      minCalls: z.number().int().min(1).default(5),
      /** An hour is "rare" when the client was active in at most this share of its pooled samples. */
      rareShare: z.number().min(0).max(1).default(0.02),
      /**
       * With business hours configured: 'habitual' alerts outside them only in hours the client is
       * also rarely active; 'strict' alerts on any activity outside them.
       */
      businessHoursMode: z.enum(['habitual', 'strict']).default('habitual'),
    })
    .prefault({}),
  auth_burst: z
    .object({
      enabled: z.boolean().default(true),
      /** Burst window (tumbling, aligned to multiples of it). */
      windowMs: z.number().int().min(10_000).max(3_600_000).default(300_000),
      /** Failures in one burst window that always alert (no history needed). */
      minFailures: z.number().int().min(1).default(10),
    })
    .prefault({}),
  error_rate: z
    .object({
      ...band,
      k: band.k.default(6),
      /** 10 calls is about an hour of a quiet client; the binomial floor keeps small hours honest. */
      minCalls: z.number().int().min(1).default(10),
      minErrors: z.number().int().min(1).default(5),
      /** The share must exceed the median share by at least this (0.25 = 25 percentage points). */
      minDeltaShare: z.number().min(0).max(1).default(0.25),
    })
    .prefault({}),
  /** Sub-hour error spikes over a sliding window (src/error-burst.detector.ts). */
  error_burst: z
    .object({
      enabled: z.boolean().default(true),
      /** Sliding window, in whole minutes (one-minute buckets). */
      windowMs: z
        .number()
        .int()
        .min(300_000)
        .max(3_600_000)
        .refine((v) => v % 60_000 === 0, 'must be whole minutes')
        .default(1_800_000),
      minCalls: z.number().int().min(1).default(10),
      minErrors: z.number().int().min(1).default(6),
      /** The window's share must exceed the usual rate by at least this (0.15 = 15 points). */
      minDeltaShare: z.number().min(0).max(1).default(0.15),
      /** Usual error rate assumed when the baseline's median is lower (or there is no baseline). */
      priorShare: z.number().min(0).max(0.5).default(0.02),
      /** Binomial tail probability below which the window's failures are not chance. */
      alpha: z.number().positive().max(0.1).default(1e-5),
    })
    .prefault({}),
});
export type DetectorSettings = z.infer<typeof detectorSettingsSchema>;

/** Partial overrides: every leaf optional. */
const overrideSchema = z.object({
  timeZone: timeZoneSchema.optional(),
  businessHours: businessHoursSchema.nullable().optional(),
  detectors: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
});
export type Override = z.infer<typeof overrideSchema>;

export const detectorConfigSchema = z.object({
  /** Default time zone of clients' hour-of-week profiles and business hours. */
  timeZone: timeZoneSchema.default('UTC'),
  businessHours: businessHoursSchema.nullable().default(null),
  /** Event-time lateness accepted after a window's end before it closes (ms). */
  allowedLatenessMs: z.number().int().min(0).max(86_400_000).default(120_000),
  baseline: z
    .object({
      windowDays: z.number().int().min(1).max(90).default(28),
      /** Days with activity in the window before a client leaves `learning`. */
      learningActiveDays: z.number().int().min(1).max(90).default(7),
      /**
       * Cron expression (node-cron, UTC) of the baseline job, which computes the version as of the
       * start of the current UTC day: by default daily at 00:05.
       */
      cron: z
        .string()
        .refine((c) => cron.validate(c), 'must be a cron expression, e.g. "5 0 * * *"')
        .default('5 0 * * *'),
      /**
       * Cron expression (node-cron, UTC) of the finalizer (hourly.finalizer.ts), which turns the closed
       * hours touched since its last run into plain counts for the baseline job: by default hourly at :02.
       * The baseline job also runs it before reading, so this only keeps that step short.
       */
      finalizeCron: z
        .string()
        .refine((c) => cron.validate(c), 'must be a cron expression, e.g. "2 * * * *"')
        .default('2 * * * *'),
      /**
       * Heap limit (MB) of the worker thread the service runs the baseline job in
       * (baselines.worker.ts); 0 runs it in the service's own thread. 10,000 clients × 28 days need
       * under 400 (measured); the clients' baselines are kept for the aggregates, so it grows with them.
       * At least 64: V8 aborts the whole process when a worker's isolate cannot even start.
       */
      workerHeapMb: z
        .number()
        .int()
        .refine((n) => n === 0 || (n >= 64 && n <= 65_536), 'must be 0 (in process) or 64–65536 (MB)')
        .default(512),
    })
    .prefault({}),
  /** While learning: most severe level a history-based detector may raise ('suppress' = none). */
  learningSeverityCap: z.enum(['suppress', 'info', 'low', 'medium']).default('low'),
  detectors: detectorSettingsSchema.prefault({}),
  /** Settings of the periodic detectors (services/detector/src/periodic). */
  periodic: PeriodicConfig.prefault({}),
  /** The wall-clock watchdog: silence of busy sources, a stalled ingester (services/detector/src/watchdog). */
  watchdog: WatchdogConfig.prefault({}),
  clients: z.record(z.string().min(1), overrideSchema).default({}),
  labels: z.record(z.string().regex(/^[^=]+=.*$/, 'label keys are "key=value"'), overrideSchema).default({}),
});
export type DetectorConfig = z.infer<typeof detectorConfigSchema>;

export interface ResolvedClientConfig {
  timeZone: string;
  businessHours: BusinessHours | null;
  detectors: DetectorSettings;
}

export class DetectorConfigError extends Error {
  readonly code = 'AUDIT_ERR_CONFIG';
}

export function parseDetectorConfig(input: unknown): DetectorConfig {
  const r = detectorConfigSchema.safeParse(input);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new DetectorConfigError(`invalid detector config:\n${lines.join('\n')}`);
  }
  // Overrides are partial: check each against the full schema now, so a typo fails at boot.
  for (const [section, entries] of [
    ['clients', r.data.clients],
    ['labels', r.data.labels],
  ] as const) {
    for (const [key, o] of Object.entries(entries)) {
      if (!o.detectors) continue;
      const merged = detectorSettingsSchema.safeParse(mergeDetectors(r.data.detectors, o.detectors));
      if (!merged.success) {
        const lines = merged.error.issues.map(
          (i) => `  ${section}.${key}.detectors.${i.path.join('.')}: ${i.message}`,
        );
        throw new DetectorConfigError(`invalid detector config:\n${lines.join('\n')}`);
      }
      for (const name of Object.keys(o.detectors)) {
        if (!(name in r.data.detectors))
          throw new DetectorConfigError(
            `invalid detector config:\n  ${section}.${key}.detectors.${name}: unknown detector`,
          );
      }
    }
  }
  return r.data;
}

/** Reads the file (or the defaults when `path` is undefined). */
export function loadDetectorConfig(path: string | undefined): DetectorConfig {
  if (!path) return parseDetectorConfig({});
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new DetectorConfigError(`cannot read detector config ${path}: ${(err as Error).message}`);
  }
  return parseDetectorConfig(json);
}

function mergeDetectors(
  base: DetectorSettings,
  over: Record<string, Record<string, unknown>>,
): DetectorSettings {
  const out: Record<string, unknown> = { ...base };
  for (const [name, fields] of Object.entries(over)) {
    out[name] = { ...(base as Record<string, object>)[name], ...fields };
  }
  return out as DetectorSettings;
}

/** `*` matches any run of characters; everything else literally. */
function globMatch(pattern: string, id: string): boolean {
  if (!pattern.includes('*')) return pattern === id;
  const re = new RegExp(`^${pattern.split('*').map(escapeRe).join('.*')}$`);
  return re.test(id);
}
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Matching override entries in precedence order (later wins). */
function matches(
  cfg: DetectorConfig,
  clientId: string,
  labels: Record<string, string> | undefined,
): Override[] {
  const out: Override[] = [];
  if (labels) {
    for (const key of Object.keys(cfg.labels).sort()) {
      const eq = key.indexOf('=');
      if (labels[key.slice(0, eq)] === key.slice(eq + 1)) out.push(cfg.labels[key]!);
    }
  }
  const pats = Object.keys(cfg.clients).filter((p) => globMatch(p, clientId));
  // Globs before exact ids, shorter (more general) globs first.
  pats.sort(
    (a, b) => Number(!a.includes('*')) - Number(!b.includes('*')) || a.length - b.length || (a < b ? -1 : 1),
  );
  for (const p of pats) out.push(cfg.clients[p]!);
  return out;
}

/** The effective settings for one client (labels as carried by its events, if known). */
export function resolveClientConfig(
  cfg: DetectorConfig,
  clientId: string,
  labels?: Record<string, string>,
): ResolvedClientConfig {
  let timeZone = cfg.timeZone;
  let businessHours = cfg.businessHours;
  let detectors = cfg.detectors;
  for (const o of matches(cfg, clientId, labels)) {
    if (o.timeZone) timeZone = o.timeZone;
    if (o.businessHours !== undefined) businessHours = o.businessHours;
    if (o.detectors) detectors = detectorSettingsSchema.parse(mergeDetectors(detectors, o.detectors));
  }
  return { timeZone, businessHours, detectors };
}

/** The time zone of a client's profile: `clients` patterns and the default only (see above). */
export function profileTimeZone(cfg: DetectorConfig, clientId: string): string {
  return resolveClientConfig(cfg, clientId).timeZone;
}
