import { z } from 'zod';

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
});

/** A tool definition hash that differs from the one last seen for the same server and tool. */
const toolDrift = z.object({
  enabled: z.boolean().default(true),
  windowMs: windowMs(5 * MINUTE),
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
});
export type PeriodicConfig = z.output<typeof PeriodicConfig>;
export type PeriodicConfigInput = z.input<typeof PeriodicConfig>;

export const DEFAULT_PERIODIC_CONFIG: PeriodicConfig = PeriodicConfig.parse({});
