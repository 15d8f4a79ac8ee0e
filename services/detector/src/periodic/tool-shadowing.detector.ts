import { sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { PeriodicConfig } from '../config.js';
import type { Finding } from '../model.js';
import { LISTED_TOOL } from '../tool-inventory.js';
import { eventsTable, firstCopies, iso, makeFinding, num, T_MS, tsBetween } from './shared.js';
import type { Evaluation, PeriodicDetector } from './types.js';
import { sparseWindowByWindow } from './window-by-window.js';

/**
 * tool_shadowing: the same tool name offered to one client by two (or more) servers. A client that
 * calls `send_email` cannot tell which server answers, and a malicious server shadows a trusted
 * one's tool to intercept its calls. Read from the stored listings (one tool_list event per listed
 * tool, from every gateway and SDK source), so it sees a client's servers across gateways and SDK
 * sources, which no single instance does: periodic.
 *
 * A window raises for a (client, tool name) when a server lists the name to the client for the
 * first time ever (over all stored history) in the window while another server had listed it to the
 * client before or in the window. A server set that was already shadowed stays quiet (no new alert
 * for every relisting); a third server later is a new occurrence.
 *
 * It expires `expireMs` (24 h) of event time after it opened; a new server for the same name after
 * that raises anew.
 *
 * Over a range of windows only those holding a server's first listing ever of a tool name to a
 * client are evaluated: no other window can add a server.
 */
interface FirstListing {
  client: string;
  tool: string;
  server: string;
  first: number;
  sources: string[];
  id: string;
}

/** Pure core: the (client, tool) pairs with a server first listed in [start, end) beside another one. */
export function newShadowing(
  firsts: readonly FirstListing[],
  start: number,
  end: number,
): Array<{ client: string; tool: string; servers: FirstListing[]; added: FirstListing[] }> {
  const byPair = new Map<string, FirstListing[]>();
  for (const f of firsts) {
    const k = `${f.client}\u0000${f.tool}`;
    const list = byPair.get(k) ?? [];
    list.push(f);
    byPair.set(k, list);
  }
  const out: Array<{ client: string; tool: string; servers: FirstListing[]; added: FirstListing[] }> = [];
  for (const list of byPair.values()) {
    const earliest = new Map<string, FirstListing>();
    for (const f of list) {
      const p = earliest.get(f.server);
      if (f.first < end && (!p || f.first < p.first)) earliest.set(f.server, f);
    }
    const servers = [...earliest.values()].sort(
      (a, b) => a.first - b.first || (a.server < b.server ? -1 : 1),
    );
    if (servers.length < 2) continue;
    // The servers that joined in the window, once another server already offered the name.
    const added = servers.slice(1).filter((f) => f.first >= start);
    if (added.length > 0) out.push({ client: list[0]!.client, tool: list[0]!.tool, servers, added });
  }
  return out.sort((a, b) => (a.client < b.client ? -1 : a.client > b.client ? 1 : a.tool < b.tool ? -1 : 1));
}

export function toolShadowingDetector(
  ch: ClickHouse,
  cfg: PeriodicConfig['toolShadowing'],
): PeriodicDetector {
  const windowMs = cfg.windowMs;
  const detector: PeriodicDetector = {
    name: 'tool_shadowing',
    windowMs,
    expireMs: cfg.expireMs,
    async evaluate(start, end): Promise<Evaluation> {
      // The (client, tool name) pairs listed in the window, then their first listing per server ever.
      const pairs = await ch.query<{ k: string }>(sql`
        SELECT DISTINCT concat(client_id, '/', tool_name) AS k
        FROM ${eventsTable(ch)} WHERE ${firstCopies(ch, start, end)} AND ${LISTED_TOOL}`);
      if (pairs.length === 0) return { findings: [], resolved: [] };
      const rows = await ch.query<{
        client: string;
        tool: string;
        server: string;
        first: string;
        sources: string[];
        id: string;
      }>(sql`
        SELECT client_id AS client, tool_name AS tool, server_name AS server, min(${T_MS}) AS first,
               groupUniqArray(source_id) AS sources, toString(argMin(event_id, ${T_MS})) AS id
        FROM ${eventsTable(ch)}
        WHERE ts < ${new Date(end)} AND ${LISTED_TOOL}
          AND concat(client_id, '/', tool_name) IN ${tuple(pairs.map((p) => p.k))}
        GROUP BY client, tool, server`);
      const firsts = rows.map((r) => ({ ...r, first: num(r.first), sources: [...r.sources].sort() }));
      const findings: Finding[] = newShadowing(firsts, start, end).map((s) => {
        const servers = s.servers.map(
          (f) => `${f.server} (first listed ${iso(f.first)} via ${f.sources.join(', ')})`,
        );
        return makeFinding({
          detector: 'tool_shadowing',
          subject: `${s.client}/${s.tool}`,
          clientId: s.client,
          windowMs,
          windowStart: start,
          windowEnd: end,
          severity: 'medium',
          title: `Tool ${s.tool} offered to ${s.client} by ${s.servers.length} servers`,
          summary:
            `Tool name ${s.tool} is offered to client ${s.client} by ${s.servers.length} servers: ` +
            `${servers.join('; ')}. New in this window: ${s.added.map((f) => f.server).join(', ')}. ` +
            'A call to a shadowed name may reach the wrong server (a malicious one can intercept calls ' +
            'meant for a trusted one): check which servers should offer it, then acknowledge.',
          observed: s.servers.length,
          expected: { low: 1, high: 1 },
          score: s.servers.length,
          contributors: { tools: s.servers.map((f) => ({ value: `${f.server}/${s.tool}`, count: 1 })) },
          sampleEventIds: s.servers.map((f) => f.id),
          detectedAt: Math.max(...s.added.map((f) => f.first)),
        });
      });
      return { findings, resolved: [] };
    },
  };
  detector.evaluateRange = sparseWindowByWindow(
    windowMs,
    async (from, to) =>
      (
        await ch.query<{ first: string }>(sql`
          SELECT min(${T_MS}) AS first FROM ${eventsTable(ch)}
          WHERE ts < ${new Date(to)} AND ${LISTED_TOOL}
            AND (client_id, tool_name) IN (
              SELECT client_id, tool_name FROM ${eventsTable(ch)} WHERE ${tsBetween(from, to)} AND ${LISTED_TOOL})
          GROUP BY client_id, tool_name, server_name
          HAVING first >= ${from}`)
      ).map((r) => num(r.first)),
    (start, end) => detector.evaluate(start, end),
  );
  return detector;
}
