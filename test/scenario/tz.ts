/** IANA time-zone arithmetic on Intl only (no dependency), for placing habits in local time. */

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  /** 0 = Sunday … 6 = Saturday */
  weekday: number;
  /** YYYY-MM-DD in the zone */
  date: string;
}

const formats = new Map<string, Intl.DateTimeFormat>();
const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

function format(tz: string): Intl.DateTimeFormat {
  let f = formats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'short',
    });
    formats.set(tz, f);
  }
  return f;
}

export function localParts(tz: string, ms: number): LocalParts {
  const p: Record<string, string> = {};
  for (const part of format(tz).formatToParts(new Date(ms))) p[part.type] = part.value;
  const year = Number(p.year);
  const month = Number(p.month);
  const day = Number(p.day);
  return {
    year,
    month,
    day,
    hour: Number(p.hour),
    minute: Number(p.minute),
    weekday: WEEKDAYS[p.weekday!]!,
    date: `${p.year}-${p.month}-${p.day}`,
  };
}

const dayCache = new Map<string, LocalParts>();

/**
 * localParts without the minute, memoized per 15-minute bucket (every zone's offset is a multiple
 * of 15 minutes, so hour, weekday and date are constant inside a bucket).
 */
export function localHour(tz: string, ms: number): LocalParts {
  const bucket = Math.floor(ms / 900_000);
  const key = `${tz}|${bucket}`;
  let v = dayCache.get(key);
  if (!v) {
    if (dayCache.size > 500_000) dayCache.clear();
    v = localParts(tz, bucket * 900_000);
    dayCache.set(key, v);
  }
  return v;
}

/** Offset of the zone from UTC at instant `ms`, in ms (positive east of Greenwich). */
export function tzOffset(tz: string, ms: number): number {
  const l = localParts(tz, ms);
  const asUtc = Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute);
  return asUtc - Math.floor(ms / 60_000) * 60_000;
}

/** The UTC instant of a local wall-clock time (for a skipped DST hour: the instant after the gap). */
export function localToUtc(tz: string, date: string, hour: number, minute = 0): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const guess = Date.UTC(y, m - 1, d, hour, minute);
  let t = guess - tzOffset(tz, guess);
  t = guess - tzOffset(tz, t);
  return t;
}

/** A zone among `candidates` whose UTC offset changes inside [from + margin, to - margin], if any. */
export function zoneWithTransition(
  candidates: readonly string[],
  from: number,
  to: number,
  marginMs = 2 * DAY,
): { tz: string; at: number } | undefined {
  for (const tz of candidates) {
    let prev = tzOffset(tz, from + marginMs);
    for (let t = from + marginMs + HOUR; t <= to - marginMs; t += HOUR) {
      const off = tzOffset(tz, t);
      if (off !== prev) return { tz, at: t };
      prev = off;
    }
  }
  return undefined;
}
