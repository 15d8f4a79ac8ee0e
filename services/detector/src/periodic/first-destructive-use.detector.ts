import { sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { PeriodicConfig } from '../config.js';
import type { Finding } from '../model.js';
import { classifyCall, ListingInventory, toolKey } from '../tool-inventory.js';
import { eventsTable, firstCopies, iso, makeFinding, num, T_MS, tsBetween } from './shared.js';
import type { Evaluation, PeriodicDetector } from './types.js';
import { sparseWindowByWindow } from './window-by-window.js';

/**
 * first_destructive_use: the first call ever (over all stored history) by a client of a tool
 * classified destructive (tool inventory: the call's annotations, else the latest listing's, a
 * configured override over both). An agent that starts deleting is worth a look even when allowed.
 *
 * Periodic, for the same reason as toxic_flow (the class may come from a listing only the store
 * holds). "First" is judged against every stored call of that client to that server's tool before
 * the window, so it is the same live and in a replay.
 *
 * A one-off notice: it expires `expireMs` (24 h) of event time after it opened. Nothing repeats it
 * (the next call is no longer the first); the client's first call of another destructive tool is
 * another alert.
 *
 * Over a range of windows only those holding a client's first call ever of some server's tool are
 * evaluated: a window raises only there (its call has no call of the same tool by the client before).
 */
export function firstDestructiveUseDetector(
  ch: ClickHouse,
  cfg: PeriodicConfig['firstDestructiveUse'],
  toolClasses: PeriodicConfig['toolClasses'],
): PeriodicDetector {
  const windowMs = cfg.windowMs;
  const inventory = new ListingInventory(ch);
  const detector: PeriodicDetector = {
    name: 'first_destructive_use',
    windowMs,
    expireMs: cfg.expireMs,
    async evaluate(start, end): Promise<Evaluation> {
      const listed = await inventory.upTo(end);
      const rows = await ch.query<{
        client: string;
        server: string;
        tool: string;
        a: string;
        first: string;
        id: string;
        sessions: string[];
        n: string;
      }>(sql`
        SELECT client_id AS client, server_name AS server, tool_name AS tool, tool_annotations AS a,
               min(${T_MS}) AS first, toString(argMin(event_id, ${T_MS})) AS id,
               groupUniqArray(session_id) AS sessions, uniqExact(event_id) AS n
        FROM ${eventsTable(ch)} WHERE ${firstCopies(ch, start, end)} AND kind = 'tool_call'
        GROUP BY client, server, tool, a
        ORDER BY client, server, tool, first`);
      // Per client and tool, the earliest call the inventory classes destructive.
      const candidates = new Map<string, (typeof rows)[number] & { cls: ReturnType<typeof classifyCall> }>();
      for (const r of rows) {
        const cls = classifyCall(toolClasses, listed, { server: r.server, tool: r.tool, annotations: r.a });
        if (!cls.destructive) continue;
        const k = `${r.client}/${toolKey(r.server, r.tool)}`;
        const p = candidates.get(k);
        if (!p || num(r.first) < num(p.first)) candidates.set(k, { ...r, cls });
      }
      if (candidates.size === 0) return { findings: [], resolved: [] };
      const used = await ch.query<{ k: string }>(sql`
        SELECT DISTINCT concat(client_id, '/', server_name, '/', tool_name) AS k
        FROM ${eventsTable(ch)}
        WHERE ts < ${new Date(start)} AND kind = 'tool_call'
          AND client_id IN ${tuple([...new Set([...candidates.values()].map((c) => c.client))])}
          AND concat(client_id, '/', server_name, '/', tool_name) IN ${tuple([...candidates.keys()])}`);
      const before = new Set(used.map((u) => u.k));
      const findings: Finding[] = [];
      for (const [k, c] of [...candidates].sort(
        (a, b) => num(a[1].first) - num(b[1].first) || (a[0] < b[0] ? -1 : 1),
      )) {
        if (before.has(k)) continue;
        const name = toolKey(c.server, c.tool);
        const session = c.sessions.filter((s) => s !== '').sort()[0];
        findings.push(
          makeFinding({
            detector: 'first_destructive_use',
            subject: k,
            clientId: c.client,
            windowMs,
            windowStart: start,
            windowEnd: end,
            severity: 'medium',
            title: `First destructive call by ${c.client}: ${name}`,
            summary:
              `Client ${c.client} called ${name} for the first time at ${iso(num(c.first))} (event ${c.id}` +
              `${session ? `, session ${session}` : ''}); the tool is classed destructive ` +
              `(${c.cls.basis === 'override' ? 'configured override' : 'its annotations'}). ` +
              `${num(c.n)} call(s) of it in this window. Check that this client is meant to delete or ` +
              'overwrite with it, then acknowledge.',
            observed: num(c.n),
            expected: { low: 0, high: 0 },
            score: 1,
            contributors: {
              tools: [{ value: name, count: num(c.n) }],
              sessions: session ? [{ value: session, count: 1 }] : [],
            },
            sampleEventIds: [c.id],
            detectedAt: num(c.first),
          }),
        );
      }
      return { findings, resolved: [] };
    },
  };
  detector.evaluateRange = sparseWindowByWindow(
    windowMs,
    async (from, to) =>
      (
        await ch.query<{ first: string }>(sql`
          SELECT min(${T_MS}) AS first FROM ${eventsTable(ch)}
          WHERE ts < ${new Date(to)} AND kind = 'tool_call'
            AND (client_id, server_name, tool_name) IN (
              SELECT client_id, server_name, tool_name FROM ${eventsTable(ch)}
              WHERE ${tsBetween(from, to)} AND kind = 'tool_call')
          GROUP BY client_id, server_name, tool_name
          HAVING first >= ${from}`)
      ).map((r) => num(r.first)),
    (start, end) => detector.evaluate(start, end),
  );
  return detector;
}
