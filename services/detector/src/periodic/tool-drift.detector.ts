import { sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Finding } from '../model.js';
import type { PeriodicConfig } from './periodic.config.js';
import {
  eventsTable,
  iso,
  listText,
  makeFinding,
  num,
  sampleIds,
  SUBJECT,
  T_MS,
  topValues,
  tsBetween,
} from './shared.js';
import type { PeriodicDetector } from './types.js';

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
 * It never resolves by itself: a changed definition is either an upgrade someone should confirm or a
 * rug pull, and a hash that changes back is no proof of innocence. Acknowledge it once verified.
 */
export function toolDriftDetector(ch: ClickHouse, cfg: PeriodicConfig['toolDrift']): PeriodicDetector {
  const windowMs = cfg.windowMs;
  return {
    name: 'tool_drift',
    windowMs,
    async evaluate(start, end) {
      const hashed = sql`tool_definition_hash != '' AND tool_name != ''`;
      const seen = await ch.query<{
        server: string;
        tool: string;
        hash: string;
        first: string;
        n: string;
      }>(sql`
        SELECT server_name AS server, tool_name AS tool, tool_definition_hash AS hash,
               min(${T_MS}) AS first, uniqExact(event_id) AS n
        FROM ${eventsTable(ch)} WHERE ${tsBetween(start, end)} AND ${hashed}
        GROUP BY server, tool, hash
        ORDER BY server, tool, first, hash`);
      if (seen.length === 0) return { findings: [], resolved: [] };

      const bySubject = new Map<string, { server: string; tool: string; hashes: HashSeen[] }>();
      for (const r of seen) {
        const key = `${r.server}/${r.tool}`;
        const s = bySubject.get(key) ?? { server: r.server, tool: r.tool, hashes: [] };
        s.hashes.push({ hash: r.hash, first: num(r.first), events: num(r.n) });
        bySubject.set(key, s);
      }
      const subjects = [...bySubject.keys()];

      // The hash last seen before the window, per server/tool (ties at the same ms: smallest hash).
      const history = await ch.query<{ k: string; hash: string; last: string }>(sql`
        SELECT ${SUBJECT.tool} AS k, tool_definition_hash AS hash, max(${T_MS}) AS last
        FROM ${eventsTable(ch)}
        WHERE ts < ${new Date(start)} AND ${hashed} AND ${SUBJECT.tool} IN ${tuple(subjects)}
        GROUP BY k, hash`);
      const previous = new Map<string, { hash: string; last: number }>();
      for (const r of history) {
        const p = previous.get(r.k);
        const last = num(r.last);
        if (!p || last > p.last || (last === p.last && r.hash < p.hash))
          previous.set(r.k, { hash: r.hash, last });
      }

      const drifted = subjects
        .map((k) => ({
          k,
          s: bySubject.get(k)!,
          changed: driftedHashes(previous.get(k)?.hash, bySubject.get(k)!.hashes),
        }))
        .filter((d) => d.changed.length > 0);
      if (drifted.length === 0) return { findings: [], resolved: [] };

      const newHashes = [...new Set(drifted.flatMap((d) => d.changed.map((h) => h.hash)))];
      const where = sql`${tsBetween(start, end)} AND tool_definition_hash IN ${tuple(newHashes)}
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
    },
  };
}
