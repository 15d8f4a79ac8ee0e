/**
 * SQL and finding helpers shared by the periodic detectors. Every query reads mcp_audit.events
 * (ReplacingMergeTree: a redelivered copy of an event may sit next to the original until a merge),
 * so counts are uniqExact(event_id) and samples are grouped by event_id.
 */
import type { AlertSeverity } from '@mcp-audit/schema';
import { dbIdent, ident, sql, type ClickHouse, type SqlFragment } from '@mcp-audit/clickhouse';
import type { Contributor, DetectorName, Finding } from '../model.js';
import { dedupKeyOf } from './windows.js';

export interface QueryDeps {
  /** Reader (analyst) client; its `database` is the one holding `events`. */
  ch: ClickHouse;
}

export const eventsTable = (ch: ClickHouse): SqlFragment => sql`${dbIdent(ch.database)}.events`;

/** Half-open event-time range; bounds are whole seconds (windows are), `ts` is a DateTime. */
export const tsBetween = (from: number, to: number): SqlFragment =>
  sql`ts >= ${new Date(from)} AND ts < ${new Date(to)}`;

/**
 * `tsBetween` restricted to the copies every query sees (README, "The event contract"): per event_id
 * the copy with the highest ver among its copies in the range (the first ingested). A redelivered copy
 * is identical and changes nothing, but a forged copy reusing an id with another client, address,
 * session or time would otherwise count as a second event. Copies of the id outside the range are not
 * compared (that needs a scan of every id in the lookback); event_id_reuse reports those. Two copies
 * ingested in the same second share a ver and both pass.
 */
export const firstCopies = (ch: ClickHouse, from: number, to: number): SqlFragment =>
  // The set holds only the copies to drop (ids with several versions), not every id of the range.
  sql`${tsBetween(from, to)} AND NOT ((event_id, ver) IN (
    SELECT event_id, v FROM (
      SELECT event_id, groupArray(ver) AS vs, max(ver) AS top FROM ${eventsTable(ch)}
      WHERE ${tsBetween(from, to)} GROUP BY event_id HAVING count() > 1)
    ARRAY JOIN vs AS v WHERE v < top))`;

/** Event time in epoch ms. */
export const T_MS = sql`(toUInt64(ts) * 1000 + ts_ms)`;

/** The same rule as the hourly rollup's auth_failures. */
export const AUTH_FAILED = sql`(outcome = 'auth_failed' OR auth_result = 'failure')`;
export const AUTH_OK = sql`(auth_result = 'success' AND outcome != 'auth_failed')`;

export const SUBJECT = {
  ip: sql`client_ip`,
  session: sql`session_id`,
  source: sql`source_id`,
  tool: sql`concat(server_name, '/', tool_name)`,
} as const;
export type SubjectKey = keyof typeof SUBJECT;

/**
 * `<window index>:<subject>`: a subject within one aligned window, so the follow-up queries of a whole
 * range of windows (top values, samples) run once for every flagged (window, subject) pair.
 */
export const windowKey = (windowMs: number, subject: SubjectKey): SqlFragment =>
  sql`concat(toString(intDiv(toUInt32(ts), ${windowMs / 1000})), ':', ${SUBJECT[subject]})`;
/** The `windowKey` value of a subject in the window starting at `start`. */
export const windowKeyOf = (start: number, windowMs: number, subject: string): string =>
  `${start / windowMs}:${subject}`;
const subjectExpr = (subject: SubjectKey | SqlFragment): SqlFragment =>
  typeof subject === 'string' ? SUBJECT[subject] : subject;

const VALUE_COLUMNS = [
  'client_ip',
  'session_id',
  'client_id',
  'client_user',
  'tool_name',
  'source_id',
] as const;
export type ValueColumn = (typeof VALUE_COLUMNS)[number];

export const MAX_CONTRIBUTORS = 20;
export const MAX_SAMPLES = 50;

/**
 * The most frequent non-empty values of `column` per subject among the events matching `where`
 * (distinct events counted), most frequent first, ties by value: deterministic.
 */
export async function topValues(
  ch: ClickHouse,
  subject: SubjectKey | SqlFragment,
  where: SqlFragment,
  column: ValueColumn,
  limit = MAX_CONTRIBUTORS,
): Promise<Map<string, Contributor[]>> {
  const rows = await ch.query<{ k: string; v: string; n: string | number }>(sql`
    SELECT k, v, uniqExact(event_id) AS n
    FROM (SELECT ${subjectExpr(subject)} AS k, ${ident(column, VALUE_COLUMNS)} AS v, event_id
          FROM ${eventsTable(ch)} WHERE ${where})
    WHERE v != ''
    GROUP BY k, v
    ORDER BY k, n DESC, v
    LIMIT ${limit} BY k`);
  const out = new Map<string, Contributor[]>();
  for (const r of rows) {
    const list = out.get(r.k) ?? [];
    list.push({ value: r.v, count: Number(r.n) });
    out.set(r.k, list);
  }
  return out;
}

/** The first `limit` distinct event ids per subject in event-time order (ties by id): deterministic. */
export async function sampleIds(
  ch: ClickHouse,
  subject: SubjectKey | SqlFragment,
  where: SqlFragment,
  opts: { limit?: number; newest?: boolean } = {},
): Promise<Map<string, string[]>> {
  const order = opts.newest ? sql`ORDER BY k, t DESC, id DESC` : sql`ORDER BY k, t, id`;
  const rows = await ch.query<{ k: string; id: string }>(sql`
    SELECT k, id
    FROM (SELECT ${subjectExpr(subject)} AS k, toString(event_id) AS id, min(${T_MS}) AS t
          FROM ${eventsTable(ch)} WHERE ${where}
          GROUP BY k, id)
    ${order}
    LIMIT ${opts.limit ?? MAX_SAMPLES} BY k`);
  const out = new Map<string, string[]>();
  for (const r of rows) {
    const list = out.get(r.k) ?? [];
    list.push(r.id);
    out.set(r.k, list);
  }
  return out;
}

// eslint-disable-next-line no-control-regex -- alert ids and Slack text must not carry control characters
const CONTROL = /[\u0000-\u001f\u007f]/g;
/** Values end up in alerts (schema: no control characters, bounded lengths) and in Slack text. */
export const clean = (s: string, max: number): string => {
  const t = s.replace(CONTROL, '?');
  return t.length <= max ? t : `${t.slice(0, max - 1)}…`;
};

const contributorList = (list: readonly Contributor[] | undefined): Contributor[] =>
  (list ?? []).slice(0, MAX_CONTRIBUTORS).map((c) => ({ value: clean(c.value, 512), count: c.count }));

/** `a (3), b (2), … and 4 more`: a contributor list in a summary. */
export function listText(list: readonly Contributor[] | undefined, total?: number, max = 10): string {
  const shown = (list ?? []).slice(0, max).map((c) => `${c.value} (${c.count})`);
  const more = (total ?? list?.length ?? 0) - shown.length;
  return shown.join(', ') + (more > 0 ? ` and ${more} more` : '');
}

export const iso = (t: number): string => new Date(t).toISOString();
/** Rounds a score or observation to 3 decimals, so JSON output is stable across runs. */
export const round3 = (x: number): number => Math.round(x * 1000) / 1000;

// The alert contract's event id form (packages/schema alert.ts).
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export interface FindingInput {
  detector: DetectorName;
  /** Entity of the dedup key (address, session, source, server/tool). */
  subject: string;
  /** The client involved, when there is one; defaults to the subject. */
  clientId?: string;
  windowMs: number;
  windowStart: number;
  windowEnd: number;
  severity: AlertSeverity;
  title: string;
  summary: string;
  observed: number;
  expected: { low: number; high: number };
  score: number;
  contributors?: { tools?: Contributor[]; addresses?: Contributor[]; sessions?: Contributor[] };
  sampleEventIds?: readonly string[];
  detectedAt?: number;
}

/** A Finding with every field filled and every bound of the alert contract respected. */
export function makeFinding(f: FindingInput): Finding {
  const subject = clean(f.subject, 180);
  return {
    detector: f.detector,
    clientId: clean(f.clientId || subject, 256),
    dedupKey: dedupKeyOf(f.detector, subject, f.windowMs),
    severity: f.severity,
    title: clean(f.title, 200),
    summary: f.summary.length <= 2000 ? f.summary : `${f.summary.slice(0, 1999)}…`,
    windowStart: f.windowStart,
    windowEnd: f.windowEnd,
    observed: round3(f.observed),
    expected: { low: round3(f.expected.low), high: round3(f.expected.high) },
    score: round3(f.score),
    baselineVersion: '',
    contributors: {
      tools: contributorList(f.contributors?.tools),
      addresses: contributorList(f.contributors?.addresses),
      sessions: contributorList(f.contributors?.sessions),
    },
    sampleEventIds: [...new Set(f.sampleEventIds ?? [])].filter((id) => UUID.test(id)).slice(0, MAX_SAMPLES),
    detectedAt: f.detectedAt ?? f.windowEnd,
  };
}

export const num = (v: string | number | null | undefined): number => (v == null ? 0 : Number(v));

/** Rows with a window index `w` (intDiv(toUInt32(ts), window seconds)) by window start (ms), order kept. */
export function groupByWindow<R extends { w: number | string }>(
  rows: readonly R[],
  windowMs: number,
): Map<number, R[]> {
  const out = new Map<number, R[]>();
  for (const r of rows) {
    const start = num(r.w) * windowMs;
    const list = out.get(start) ?? [];
    list.push(r);
    out.set(start, list);
  }
  return out;
}
