import { sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import { toolAnnotationsFromText } from '@mcp-audit/schema';
import type { PeriodicConfig } from '../config.js';
import type { Finding } from '../model.js';
import { classifyAnnotations, LISTED_TOOL, riskierAnnotations, toolKey } from '../tool-inventory.js';
import { eventsTable, firstCopies, iso, makeFinding, num, T_MS, tsBetween } from './shared.js';
import type { Evaluation, PeriodicDetector } from './types.js';
import { sparseWindowByWindow } from './window-by-window.js';

/**
 * annotation_drift: a listed tool's annotations moved towards risk (a read-only claim withdrawn, a
 * destructive hint raised, a closed world opened) compared with the last listing before. Separate from
 * tool_drift on purpose: annotations are not part of the definition hash (name, description, input
 * schema), so a tool whose hash is pinned and approved can still turn from read-only to destructive.
 * Changes towards safety and title changes are not drift; an unannotated listing before is no claim.
 *
 * Periodic (a server's tool is listed to many clients, through every gateway and SDK source). Like
 * tool_drift it expires `expireMs` (24 h) of event time after it opened; a later change then raises anew.
 *
 * Over a range of windows only those where a tool's annotations may have changed are evaluated: a
 * window listing it with two texts, or with another text than its last listing before, and its
 * first window in the range (what came before the range is not read).
 */
interface Seen {
  k: string;
  server: string;
  tool: string;
  a: string;
  first: number;
  id: string;
}

export function annotationDriftDetector(
  ch: ClickHouse,
  cfg: PeriodicConfig['annotationDrift'],
): PeriodicDetector {
  const windowMs = cfg.windowMs;
  const detector: PeriodicDetector = {
    name: 'annotation_drift',
    windowMs,
    expireMs: cfg.expireMs,
    async evaluate(start, end): Promise<Evaluation> {
      const rows = await ch.query<Omit<Seen, 'first'> & { first: string }>(sql`
        SELECT concat(server_name, '/', tool_name) AS k, server_name AS server, tool_name AS tool,
               tool_annotations AS a, min(${T_MS}) AS first, toString(argMin(event_id, ${T_MS})) AS id
        FROM ${eventsTable(ch)} WHERE ${firstCopies(ch, start, end)} AND ${LISTED_TOOL}
        GROUP BY k, server, tool, a
        ORDER BY k, first, a`);
      if (rows.length === 0) return { findings: [], resolved: [] };
      const seen: Seen[] = rows.map((r) => ({ ...r, first: num(r.first) }));
      const keys = [...new Set(seen.map((r) => r.k))];
      const before = await ch.query<{ k: string; a: string; last: string }>(sql`
        SELECT k, argMax(a, t) AS a, max(t) AS last FROM (
          SELECT concat(server_name, '/', tool_name) AS k, tool_annotations AS a, ${T_MS} AS t
          FROM ${eventsTable(ch)}
          WHERE ts < ${new Date(start)} AND ${LISTED_TOOL} AND concat(server_name, '/', tool_name) IN ${tuple(keys)})
        GROUP BY k`);
      const previous = new Map(before.map((b) => [b.k, { a: b.a, last: num(b.last) }]));
      const findings: Finding[] = [];
      for (const k of keys) {
        const list = seen.filter((r) => r.k === k);
        let ref = previous.get(k)?.a ?? list[0]!.a;
        const changes: Array<{ from: string; to: Seen; what: string[] }> = [];
        for (const r of list) {
          const what = riskierAnnotations(ref, r.a);
          if (what.length > 0) changes.push({ from: ref, to: r, what });
          ref = r.a;
        }
        if (changes.length === 0) continue;
        const { server, tool } = list[0]!;
        const text = (a: string) => {
          const x = toolAnnotationsFromText(a);
          return x ? `${JSON.stringify(x)} (${classifyAnnotations(x).class})` : 'none';
        };
        const first = changes[0]!;
        findings.push(
          makeFinding({
            detector: 'annotation_drift',
            subject: toolKey(server, tool),
            windowMs,
            windowStart: start,
            windowEnd: end,
            severity: first.what.includes('now destructive') ? 'high' : 'medium',
            title: `Tool annotations changed towards risk: ${tool} on ${server}`,
            summary:
              `The annotations of tool ${tool} on server ${server} changed: ${text(first.from)} became ` +
              `${text(first.to.a)} at ${iso(first.to.first)} (${first.what.join(', ')})` +
              (previous.has(k) ? `; the previous listing was at ${iso(previous.get(k)!.last)}. ` : '. ') +
              'Annotations are not part of the definition hash, so a pinned, approved tool can change them: ' +
              'calls now judged by the new hints (toxic flows, destructive use) deserve a look.',
            observed: changes.length,
            expected: { low: 0, high: 0 },
            score: changes.length,
            contributors: { tools: [{ value: toolKey(server, tool), count: changes.length }] },
            sampleEventIds: changes.map((c) => c.to.id),
            detectedAt: first.to.first,
          }),
        );
      }
      return { findings, resolved: [] };
    },
  };
  detector.evaluateRange = sparseWindowByWindow(windowMs, mayChange, (start, end) =>
    detector.evaluate(start, end),
  );
  return detector;

  /** Per tool, its windows in [from, to) listing two texts or another than the window before. */
  async function mayChange(from: number, to: number): Promise<number[]> {
    const rows = await ch.query<{ k: string; times: string[]; texts: string[] }>(sql`
      SELECT concat(server_name, '/', tool_name) AS k, intDiv(${T_MS}, ${windowMs}) AS w,
             groupArray(${T_MS}) AS times, groupArray(tool_annotations) AS texts
      FROM ${eventsTable(ch)} WHERE ${tsBetween(from, to)} AND ${LISTED_TOOL}
      GROUP BY k, w
      ORDER BY k, w`);
    const out: number[] = [];
    // The texts the tool may have had at the end of its previous window (ties on time: any of them).
    let key = '';
    let ends: string[] = [];
    for (const r of rows) {
      const ts = r.times.map(num);
      const last = ts.reduce((m, t) => (t > m ? t : m), Number.NEGATIVE_INFINITY);
      const texts = new Set(r.texts);
      const [only] = texts;
      if (r.k !== key || texts.size > 1 || ends.length > 1 || only !== ends[0]) out.push(last);
      key = r.k;
      ends = [...new Set(r.texts.filter((_, i) => ts[i] === last))];
    }
    return out;
  }
}
