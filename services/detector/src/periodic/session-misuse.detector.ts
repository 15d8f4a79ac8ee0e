import { sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Contributor, Finding } from '../model.js';
import type { PeriodicConfig } from '../config.js';
import {
  eventsTable,
  groupByWindow,
  iso,
  listText,
  makeFinding,
  num,
  sampleIds,
  T_MS,
  topValues,
  firstCopies,
  windowKey,
  windowKeyOf,
} from './shared.js';
import { windowStarts, type Evaluation, type PeriodicDetector, type Resolution } from './types.js';
import { dedupKeyOf } from './windows.js';

/** One (session, address, user, client) combination over the lookback: first and last use, events. */
interface HistoryRow {
  s: string;
  ips: string[];
  users: string[];
  clients: string[];
  firsts: string[];
  lasts: string[];
  ns: string[];
}

/** A session's identity changing against its own recent past, not only inside one window. */
interface Crossing {
  dimension: 'address' | 'user' | 'client';
  value: string;
  at: number;
  earlier: Contributor[];
}

interface SessionRow {
  s: string;
  w: number | string;
  ips: string;
  users: string;
  clients: string;
  n: string;
}

/**
 * session_misuse: one session id used from more addresses, users or client ids than allowed within a
 * window (a stolen session token replayed from elsewhere), or whose next event comes from a new
 * address, user or client while the old one was in use within `lookbackMs` (the usual replay: the
 * owner goes idle, the thief carries on minutes later; no single window holds both). Empty session
 * ids are ignored. Like auth_spray, the previous window is judged in the same query: a session that
 * was misused and is back to one identity (or gone) resolves.
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
        WHERE ${firstCopies(ch, from - windowMs, to)} AND session_id != ''
        GROUP BY s, w
        HAVING ips > ${cfg.maxAddresses} OR users > ${cfg.maxUsers} OR clients > ${cfg.maxUsers}
        ORDER BY w, s`);
      // Across windows: every session with more identities than allowed over the lookback, and the
      // moment each one crossed the limit (first use of the value that made one too many).
      const lookbackMs = cfg.lookbackMs;
      const history = await ch.query<HistoryRow>(sql`
        SELECT s, groupArray(ip) AS ips, groupArray(user) AS users, groupArray(client) AS clients,
               groupArray(first) AS firsts, groupArray(last) AS lasts, groupArray(n) AS ns
        FROM (
          SELECT session_id AS s, client_ip AS ip, client_user AS user, client_id AS client,
                 min(${T_MS}) AS first, max(${T_MS}) AS last, uniqExact(event_id) AS n
          FROM ${eventsTable(ch)}
          WHERE ${firstCopies(ch, from - windowMs - lookbackMs, to)} AND session_id != ''
          GROUP BY s, ip, user, client)
        GROUP BY s
        HAVING uniqExactIf(ip, ip != '') > ${cfg.maxAddresses}
            OR uniqExactIf(user, user != '') > ${cfg.maxUsers}
            OR uniqExact(client) > ${cfg.maxUsers}`);
      const crossed = new Map<string, Crossing>();
      for (const h of history)
        for (const c of crossingsOf(h, lookbackMs, {
          address: cfg.maxAddresses,
          user: cfg.maxUsers,
          client: cfg.maxUsers,
        })) {
          const start = Math.floor(c.at / windowMs) * windowMs;
          if (start < from - windowMs || start >= to) continue;
          const k = windowKeyOf(start, windowMs, h.s);
          const had = crossed.get(k);
          // A changed identity (user, client) outranks a changed address; else the earliest.
          const rank = (x: Crossing) => (x.dimension === 'address' ? 1 : 0);
          if (!had || rank(c) < rank(had) || (rank(c) === rank(had) && c.at < had.at)) crossed.set(k, c);
        }
      const inWindow = new Set(rows.map((r) => `${num(r.w) * windowMs}:${r.s}`));
      for (const [k, c] of crossed) {
        const i = k.indexOf(':');
        const start = Number(k.slice(0, i)) * windowMs;
        const sess = k.slice(i + 1);
        if (inWindow.has(`${start}:${sess}`)) continue;
        const live = c.earlier.length + 1;
        rows.push({
          s: sess,
          w: start / windowMs,
          ips: String(c.dimension === 'address' ? live : 1),
          users: String(c.dimension === 'user' ? live : 1),
          clients: String(c.dimension === 'client' ? live : 1),
          n: '0',
        });
      }
      rows.sort((a, b) => num(a.w) - num(b.w) || (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
      const byWindow = groupByWindow(rows, windowMs);
      // The contributors of every flagged (window, session) of the range, in one query each.
      const keys = rows.filter((r) => num(r.w) * windowMs >= from).map((r) => `${num(r.w)}:${r.s}`);
      const key = windowKey(windowMs, 'session');
      const none = () => new Map<string, Contributor[]>();
      const where =
        keys.length === 0 ? sql`0` : sql`${firstCopies(ch, from, to)} AND ${key} IN ${tuple(keys)}`;
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
          crossed,
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
    crossed: ReadonlyMap<string, Crossing>,
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
      const cross = crossed.get(k);
      const dim = cross?.dimension;
      const earlierText =
        cross && num(r.n) === 0
          ? `, first used from ${dim} ${cross.value} at ${iso(cross.at)} while it had been used by ` +
            `${listText(cross.earlier)} within the previous ${Math.round(cfg.lookbackMs / 60_000)} minutes`
          : '';
      const parts = [
        `${ips} address(es): ${listText(addresses.get(k), ips)}`,
        nUsers > 0 ? `${nUsers} user(s): ${listText(users.get(k), nUsers)}` : '',
        `${nClients} client(s): ${listText(clientList, nClients)}`,
      ].filter(Boolean);
      const inWindowAddresses = addresses.get(k) ?? [];
      const contributorAddresses =
        dim === 'address'
          ? [
              ...inWindowAddresses,
              ...cross!.earlier.filter((e) => !inWindowAddresses.some((a) => a.value === e.value)),
            ]
          : inWindowAddresses;
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
          (earlierText
            ? `Session ${r.s}${earlierText}; in the window ${iso(start)} to ${iso(end)}: ${parts.join('; ')} `
            : `Session ${r.s} carried ${num(r.n)} events between ${iso(start)} and ${iso(end)} from ` +
              `${parts.join('; ')} `) +
          `(allowed: ${cfg.maxAddresses} address(es), ${cfg.maxUsers} user/client). ` +
          'A session id is a bearer secret: the same id from a second address or user suggests it was ' +
          'stolen and replayed. Revoke the session and compare what each address did.',
        observed,
        expected: { low: 1, high },
        score: observed / high,
        contributors: {
          addresses: contributorAddresses,
          sessions: [{ value: r.s, count: num(r.n) }],
          tools: tools.get(k) ?? [],
        },
        sampleEventIds: samples.get(k) ?? [],
      });
    });
    return { findings, resolved };
  }
}

/**
 * The moments a session crossed its identity limit: per dimension, each value's first use, counted
 * against the other values first used before it and used again since `lookbackMs` before it.
 * NOTE: first/last are over the queried span; a value used long ago and again after the crossing
 * only (never in between) counts as recent. Sessions rarely live that long; the error errs to alert.
 */
export function crossingsOf(
  h: HistoryRow,
  lookbackMs: number,
  limits: { address: number; user: number; client: number },
): Crossing[] {
  const out: Crossing[] = [];
  const dims = [
    ['address', h.ips, limits.address],
    ['user', h.users, limits.user],
    ['client', h.clients, limits.client],
  ] as const;
  for (const [dimension, values, max] of dims) {
    const agg = new Map<string, { first: number; last: number; n: number }>();
    values.forEach((v, i) => {
      if (v === '') return;
      const first = num(h.firsts[i]);
      const last = num(h.lasts[i]);
      const n = num(h.ns[i]);
      const a = agg.get(v);
      if (!a) agg.set(v, { first, last, n });
      else {
        a.first = Math.min(a.first, first);
        a.last = Math.max(a.last, last);
        a.n += n;
      }
    });
    if (agg.size <= max) continue;
    const ordered = [...agg].sort((a, b) => a[1].first - b[1].first || (a[0] < b[0] ? -1 : 1));
    for (let i = 1; i < ordered.length; i++) {
      const [value, v] = ordered[i]!;
      const earlier = ordered
        .slice(0, i)
        .filter(([, u]) => u.first < v.first && u.last >= v.first - lookbackMs)
        .map(([value, u]) => ({ value, count: u.n }));
      if (earlier.length >= max) out.push({ dimension, value, at: v.first, earlier });
    }
  }
  return out;
}
