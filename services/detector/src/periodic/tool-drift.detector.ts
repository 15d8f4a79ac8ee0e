import { sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Finding } from '../model.js';
import type { PeriodicConfig } from '../config.js';
import {
  eventsTable,
  groupByWindow,
  iso,
  listText,
  makeFinding,
  num,
  sampleIds,
  SUBJECT,
  T_MS,
  topValues,
  firstCopies,
} from './shared.js';
import { windowStarts, type Evaluation, type PeriodicDetector } from './types.js';

const HASHED = sql`tool_definition_hash != '' AND tool_name != ''`;

interface HashSeen {
  hash: string;
  first: number;
  events: number;
}

/**
 * Pure core of tool_drift: given the hash last seen before the window (if any) and the hashes seen in
 * the window, the hashes that are a change. With no history, the first hash of the window is the
 * reference (a first listing is not drift); A→B→A inside one window is drift.
 */
export function driftedHashes(previous: string | undefined, inWindow: readonly HashSeen[]): HashSeen[] {
  const ordered = [...inWindow].sort((a, b) => a.first - b.first || (a.hash < b.hash ? -1 : 1));
  const reference = previous ?? ordered[0]?.hash;
  return ordered.filter((h) => h.hash !== reference);
}

/**
 * tool_drift: the definition hash (name, description, input schema) of a server's tool differs from
 * the hash last seen for that server and tool before the window, over all stored history. Read from
 * every event that carries tool.definition_hash (gateways' `tool_list` events, and explicit
 * "definition changed" events, which carry the new hash too).
 *
 * No window is "back in band" (a hash that changes back is no proof of innocence), so the alert
 * expires `expireMs` (24 h) of event time after it opened (the runner does it): further changes of
 * the tool within that time are part of it, the first change after it opens a new alert.
 */
export function toolDriftDetector(ch: ClickHouse, cfg: PeriodicConfig['toolDrift']): PeriodicDetector {
  const windowMs = cfg.windowMs;
  // The hash last seen per server/tool before `until` (undefined: none), carried from one range to
  // the next when they are contiguous (the live runner's order), so history is read once per tool.
  let cache: { until: number; last: Map<string, { hash: string; last: number } | undefined> } = {
    until: Number.NaN,
    last: new Map(),
  };
  const detector: PeriodicDetector = {
    name: 'tool_drift',
    windowMs,
    expireMs: cfg.expireMs,
    async evaluate(start, end) {
      return (await detector.evaluateRange!(start, end))[0]!;
    },
    async evaluateRange(from, to) {
      const starts = windowStarts(from, to, windowMs);
      // One query for the whole range: the hashes seen per server/tool and window.
      const seen = await ch.query<{
        k: string;
        server: string;
        tool: string;
        w: number;
        hash: string;
        first: string;
        last: string;
        n: string;
      }>(sql`
        SELECT ${SUBJECT.tool} AS k, server_name AS server, tool_name AS tool,
               intDiv(toUInt32(ts), ${windowMs / 1000}) AS w, tool_definition_hash AS hash,
               min(${T_MS}) AS first, max(${T_MS}) AS last, uniqExact(event_id) AS n
        FROM ${eventsTable(ch)} WHERE ${firstCopies(ch, from, to)} AND ${HASHED}
        GROUP BY k, server, tool, w, hash
        ORDER BY w, server, tool, first, hash`);
      if (cache.until !== from) cache = { until: from, last: new Map() };
      const state = cache.last;
      // The hash last seen before `from`, only for the server/tools listed in the range and not known
      // from the previous range (ties at the same ms: smallest hash).
      const unknown = [...new Set(seen.map((r) => r.k))].filter((k) => !state.has(k));
      if (unknown.length > 0) {
        for (const k of unknown) state.set(k, undefined);
        const history = await ch.query<{ k: string; hash: string; last: string }>(sql`
          SELECT ${SUBJECT.tool} AS k, tool_definition_hash AS hash, max(${T_MS}) AS last
          FROM ${eventsTable(ch)}
          WHERE ts < ${new Date(from)} AND ${HASHED} AND ${SUBJECT.tool} IN ${tuple(unknown)}
          GROUP BY k, hash`);
        for (const r of history) note(state, r.k, r.hash, num(r.last));
      }
      const byWindow = groupByWindow(seen, windowMs);
      const out: Evaluation[] = [];
      for (const start of starts) {
        const rows = byWindow.get(start);
        if (!rows) {
          out.push({ findings: [], resolved: [] });
          continue;
        }
        const bySubject = new Map<string, { server: string; tool: string; hashes: HashSeen[] }>();
        for (const r of rows) {
          const s = bySubject.get(r.k) ?? { server: r.server, tool: r.tool, hashes: [] };
          s.hashes.push({ hash: r.hash, first: num(r.first), events: num(r.n) });
          bySubject.set(r.k, s);
        }
        const previous = new Map<string, { hash: string; last: number }>();
        for (const k of bySubject.keys()) {
          const p = state.get(k);
          if (p) previous.set(k, { ...p });
        }
        out.push(await judge(start, start + windowMs, bySubject, previous));
        for (const r of rows) note(state, r.k, r.hash, num(r.last));
      }
      cache.until = to;
      if (state.size > MAX_CACHED) cache = { until: Number.NaN, last: new Map() };
      return out;
    },
  };
  return detector;

  async function judge(
    start: number,
    end: number,
    bySubject: Map<string, { server: string; tool: string; hashes: HashSeen[] }>,
    previous: Map<string, { hash: string; last: number }>,
  ): Promise<Evaluation> {
    const subjects = [...bySubject.keys()]; // query order: server, tool
    const drifted = subjects
      .map((k) => ({
        k,
        s: bySubject.get(k)!,
        changed: driftedHashes(previous.get(k)?.hash, bySubject.get(k)!.hashes),
      }))
      .filter((d) => d.changed.length > 0);
    if (drifted.length === 0) return { findings: [], resolved: [] };

    const newHashes = [...new Set(drifted.flatMap((d) => d.changed.map((h) => h.hash)))];
    const where = sql`${firstCopies(ch, start, end)} AND tool_definition_hash IN ${tuple(newHashes)}
        AND ${SUBJECT.tool} IN ${tuple(drifted.map((d) => d.k))}`;
    const [addresses, sessions, sources, samples] = await Promise.all([
      topValues(ch, 'tool', where, 'client_ip'),
      topValues(ch, 'tool', where, 'session_id'),
      topValues(ch, 'tool', where, 'source_id'),
      sampleIds(ch, 'tool', where),
    ]);
    const findings: Finding[] = drifted.map(({ k, s, changed }) => {
      const prev = previous.get(k);
      const reference = prev?.hash ?? s.hashes.slice().sort((a, b) => a.first - b.first)[0]!.hash;
      const events = changed.reduce((a, h) => a + h.events, 0);
      const short = (h: string) => h.slice(0, 16);
      return makeFinding({
        detector: 'tool_drift',
        subject: k,
        windowMs,
        windowStart: start,
        windowEnd: end,
        severity: 'high',
        title: `Tool definition changed: ${s.tool} on ${s.server}`,
        summary:
          `The definition of tool ${s.tool} on server ${s.server} changed: hash ${short(reference)}… ` +
          (prev ? `(last seen ${iso(prev.last)}) ` : '(first seen earlier in this window) ') +
          `became ${changed.map((h) => `${short(h.hash)}… (first seen ${iso(h.first)})`).join(', ')} ` +
          `between ${iso(start)} and ${iso(end)}. Reported by ${listText(sources.get(k))}. ` +
          'A tool whose description or input schema changes after approval can instruct agents to do ' +
          'something else (a rug pull): diff the definition against the approved one, then acknowledge.',
        observed: changed.length,
        expected: { low: 0, high: 0 },
        score: changed.length,
        contributors: {
          tools: [{ value: k, count: events }],
          addresses: addresses.get(k) ?? [],
          sessions: sessions.get(k) ?? [],
        },
        sampleEventIds: samples.get(k) ?? [],
        detectedAt: end,
      });
    });
    return { findings, resolved: [] };
  }
}

/** Server/tools kept in a detector's "last hash seen" cache at most (it is rebuilt when dropped). */
const MAX_CACHED = 100_000;

/** Folds one (hash, last seen) into the last-seen state: the latest wins, ties: the smallest hash. */
function note(
  state: Map<string, { hash: string; last: number } | undefined>,
  k: string,
  hash: string,
  last: number,
) {
  const p = state.get(k);
  if (!p || last > p.last || (last === p.last && hash < p.hash)) state.set(k, { hash, last });
}
