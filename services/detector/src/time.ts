import type { BusinessHours } from './config.js';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export interface LocalTime {
  /** ISO weekday, 1 = Monday … 7 = Sunday. */
  isoDow: number;
  hour: number;
  minute: number;
  /** Local calendar date, YYYY-MM-DD. */
  date: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAY: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    });
    formatters.set(tz, f);
  }
  return f;
}

// Intl is slow (microseconds per call); windows and profiles ask for the same minutes again and again.
const cache = new Map<string, LocalTime>();

/** Wall-clock time of an instant in an IANA time zone (daylight saving included). */
export function localTime(epochMs: number, tz: string): LocalTime {
  const minute = Math.floor(epochMs / 60_000);
  const key = `${tz}|${minute}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const parts: Record<string, string> = {};
  for (const p of formatter(tz).formatToParts(new Date(minute * 60_000))) parts[p.type] = p.value;
  const lt: LocalTime = {
    isoDow: WEEKDAY[parts.weekday!]!,
    hour: Number(parts.hour) % 24,
    minute: Number(parts.minute),
    date: `${parts.year}-${parts.month}-${parts.day}`,
  };
  if (cache.size > 200_000) cache.clear();
  cache.set(key, lt);
  return lt;
}

/** 0 = Monday–Friday, 1 = Saturday–Sunday. */
export const dayType = (isoDow: number): number => (isoDow >= 6 ? 1 : 0);

/** Index into the 48 pooled cells: day type × 24 + local hour. */
export const pooledCell = (lt: LocalTime): number => dayType(lt.isoDow) * 24 + lt.hour;

/** Index into the 168 hour-of-week cells: (ISO weekday − 1) × 24 + local hour. */
export const weekCell = (lt: LocalTime): number => (lt.isoDow - 1) * 24 + lt.hour;

/** Start of the window of length `ms` holding `t` (windows are aligned to multiples of `ms`). */
export const windowStartOf = (t: number, ms: number): number => Math.floor(t / ms) * ms;

/** Whether a local time is inside the configured business hours (holidays are outside). */
export function inBusinessHours(lt: LocalTime, bh: BusinessHours): boolean {
  if (!bh.days.includes(lt.isoDow)) return false;
  if (bh.holidays.includes(lt.date)) return false;
  const m = lt.hour * 60 + lt.minute;
  return m >= bh.start && m < bh.end;
}

/** Compact window length for dedup keys: 3600000 → '1h', 300000 → '5m'. */
export function windowLabel(ms: number): string {
  if (ms % DAY_MS === 0) return `${ms / DAY_MS}d`;
  if (ms % HOUR_MS === 0) return `${ms / HOUR_MS}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

export const iso = (ms: number): string => new Date(ms).toISOString();
