import { sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Contributor, Finding } from '../model.js';
import type { PeriodicConfig } from './periodic.config.js';
import {
  eventsTable,
  groupByWindow,
  iso,
  listText,
  makeFinding,
  num,
  sampleIds,
  topValues,
  tsBetween,
  windowKey,
  windowKeyOf,
} from './shared.js';
import { windowStarts, type Evaluation, type PeriodicDetector, type Resolution } from './types.js';
import { dedupKeyOf } from './windows.js';

interface SessionRow {
  s: string;
  w: number;
  ips: string;
  users: string;
  clients: string;
  n: string;
}

/**
 * session_misuse: one session id used from more addresses, users or client ids than allowed within a
 * window (a stolen session token replayed from elsewhere). Empty session ids are ignored. Like
 * auth_spray, the previous window is judged in the same query: a session that was misused and is
 * back to one identity (or gone) resolves.
 */
interface Details {
  addresses: Map<string, Contributor[]>;
  users: Map<string, Contributor[]>;
  clients: Map<string, Contributor[]>;
  tools: Map<string, Contributor[]>;
  samples: Map<string, string[]>;
}

export function sessionMisuseDetector(
  ch: ClickHouse,
  cfg: PeriodicConfig['sessionMisuse'],
): PeriodicDetector {
  const windowMs = cfg.windowMs;
  const detector: PeriodicDetector = {
    name: 'session_misuse',
    windowMs,
    async evaluate(start, end) {
      return (await detector.evaluateRange!(start, end))[0]!;
    },
    async evaluateRange(from, to) {
      const starts = windowStarts(from, to, windowMs);
      // One query for the whole range: offending (session, window) pairs, the window before `from` too.
      const rows = await ch.query<SessionRow>(sql`
        SELECT session_id AS s, intDiv(toUInt32(ts), ${windowMs / 1000}) AS w,
               uniqExactIf(client_ip, client_ip != '') AS ips,
               uniqExactIf(client_user, client_user != '') AS users,
               uniqExact(client_id) AS clients,
               uniqExact(event_id) AS n
        FROM ${eventsTable(ch)}
        WHERE ${tsBetween(from - windowMs, to)} AND session_id != ''
        GROUP BY s, w
        HAVING ips > ${cfg.maxAddresses} OR users > ${cfg.maxUsers} OR clients > ${cfg.maxUsers}
        ORDER BY w, s`);
      const byWindow = groupByWindow(rows, windowMs);
      // The contributors of every flagged (window, session) of the range, in one query each.
      const keys = rows.filter((r) => num(r.w) * windowMs >= from).map((r) => `${num(r.w)}:${r.s}`);
      const key = windowKey(windowMs, 'session');
      const none = () => new Map<string, Contributor[]>();
      const where = keys.length === 0 ? sql`0` : sql`${tsBetween(from, to)} AND ${key} IN ${tuple(keys)}`;
      const details: Details =
        keys.length === 0
          ? { addresses: none(), users: none(), clients: none(), tools: none(), samples: new Map() }
          : await Promise.all([
              topValues(ch, key, where, 'client_ip'),
              topValues(ch, key, where, 'client_user'),
              topValues(ch, key, where, 'client_id'),
              topValues(ch, key, where, 'tool_name'),
              sampleIds(ch, key, where),
            ]).then(([addresses, users, clients, tools, samples]) => ({
              addresses,
              users,
              clients,
              tools,
              samples,
            }));
      return starts.map((start) =>
        judge(
          start,
          start + windowMs,
          byWindow.get(start) ?? [],
          byWindow.get(start - windowMs) ?? [],
          details,
        ),
      );
    },
  };
  return detector;

  function judge(
    start: number,
    end: number,
    current: readonly SessionRow[],
    previous: readonly SessionRow[],
    details: Details,
  ): Evaluation {
    const flagged = new Set(current.map((r) => r.s));
    const resolved: Resolution[] = previous
      .filter((r) => !flagged.has(r.s))
      .map((r) => ({
        dedupKey: dedupKeyOf('session_misuse', r.s, windowMs),
        reason: `session ${r.s} used by a single identity (or not at all) in the window ending ${iso(end)}`,
      }));
    if (current.length === 0) return { findings: [], resolved };

    const { addresses, users, clients, tools, samples } = details;
    const findings: Finding[] = current.map((r) => {
      const k = windowKeyOf(start, windowMs, r.s);
      const ips = num(r.ips);
      const nUsers = num(r.users);
      const nClients = num(r.clients);
      const identityChanged = nUsers > cfg.maxUsers || nClients > cfg.maxUsers;
      const observed = identityChanged ? Math.max(nUsers, nClients) : ips;
      const high = identityChanged ? cfg.maxUsers : cfg.maxAddresses;
      const clientList = clients.get(k) ?? [];
      const parts = [
        `${ips} address(es): ${listText(addresses.get(k), ips)}`,
        nUsers > 0 ? `${nUsers} user(s): ${listText(users.get(k), nUsers)}` : '',
        `${nClients} client(s): ${listText(clientList, nClients)}`,
      ].filter(Boolean);
      return makeFinding({
        detector: 'session_misuse',
        subject: r.s,
        clientId: clientList[0]?.value ?? r.s,
        windowMs,
        windowStart: start,
        windowEnd: end,
        severity: identityChanged ? 'high' : 'medium',
        title: identityChanged
          ? `Session ${r.s} used by more than one identity`
          : `Session ${r.s} used from ${ips} addresses`,
        summary:
          `Session ${r.s} carried ${num(r.n)} events between ${iso(start)} and ${iso(end)} from ` +
          `${parts.join('; ')} (allowed: ${cfg.maxAddresses} address(es), ${cfg.maxUsers} user/client). ` +
          'A session id is a bearer secret: the same id from a second address or user suggests it was ' +
          'stolen and replayed. Revoke the session and compare what each address did.',
        observed,
        expected: { low: 1, high },
        score: observed / high,
        contributors: {
          addresses: addresses.get(k) ?? [],
          sessions: [{ value: r.s, count: num(r.n) }],
          tools: tools.get(k) ?? [],
        },
        sampleEventIds: samples.get(k) ?? [],
      });
    });
    return { findings, resolved };
  }
}
