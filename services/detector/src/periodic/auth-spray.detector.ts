import { sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Contributor, Finding } from '../model.js';
import type { PeriodicConfig } from '../config.js';
import {
  AUTH_FAILED,
  eventsTable,
  groupByWindow,
  iso,
  listText,
  makeFinding,
  num,
  sampleIds,
  topValues,
  firstCopies,
  windowKey,
  windowKeyOf,
} from './shared.js';
import { windowStarts, type Evaluation, type PeriodicDetector, type Resolution } from './types.js';
import { dedupKeyOf } from './windows.js';

/**
 * auth_spray: one address failing authentication against many distinct clients in a window (one
 * password or key tried across accounts). The previous window is judged in the same query, so an
 * address that was spraying and is now below the threshold resolves without any stored state.
 */
interface Details {
  clients: Map<string, Contributor[]>;
  sessions: Map<string, Contributor[]>;
  users: Map<string, Contributor[]>;
  samples: Map<string, string[]>;
}

export function authSprayDetector(ch: ClickHouse, cfg: PeriodicConfig['authSpray']): PeriodicDetector {
  const windowMs = cfg.windowMs;
  const detector: PeriodicDetector = {
    name: 'auth_spray',
    windowMs,
    async evaluate(start, end) {
      return (await detector.evaluateRange!(start, end))[0]!;
    },
    async evaluateRange(from, to) {
      const starts = windowStarts(from, to, windowMs);
      // One query for the whole range: flagged (address, window) pairs, the window before `from` too.
      const rows = await ch.query<{ ip: string; w: number; clients: string; failures: string }>(sql`
        SELECT client_ip AS ip, intDiv(toUInt32(ts), ${windowMs / 1000}) AS w,
               uniqExact(client_id) AS clients, uniqExact(event_id) AS failures
        FROM ${eventsTable(ch)}
        WHERE ${firstCopies(ch, from - windowMs, to)} AND client_ip != '' AND ${AUTH_FAILED}
        GROUP BY ip, w
        HAVING clients >= ${cfg.minClients}
        ORDER BY w, ip`);
      const byWindow = groupByWindow(rows, windowMs);
      // The contributors of every flagged (window, address) of the range, in one query each.
      const keys = rows.filter((r) => num(r.w) * windowMs >= from).map((r) => `${num(r.w)}:${r.ip}`);
      const key = windowKey(windowMs, 'ip');
      const where =
        keys.length === 0
          ? sql`0`
          : sql`${firstCopies(ch, from, to)} AND ${AUTH_FAILED} AND ${key} IN ${tuple(keys)}`;
      const details: Details =
        keys.length === 0
          ? { clients: new Map(), sessions: new Map(), users: new Map(), samples: new Map() }
          : await Promise.all([
              topValues(ch, key, where, 'client_id'),
              topValues(ch, key, where, 'session_id'),
              topValues(ch, key, where, 'client_user'),
              sampleIds(ch, key, where),
            ]).then(([clients, sessions, users, samples]) => ({ clients, sessions, users, samples }));
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
    current: ReadonlyArray<{ ip: string; clients: string; failures: string }>,
    previous: ReadonlyArray<{ ip: string }>,
    details: Details,
  ): Evaluation {
    const flagged = new Set(current.map((r) => r.ip));
    const resolved: Resolution[] = previous
      .filter((r) => !flagged.has(r.ip))
      .map((r) => ({
        dedupKey: dedupKeyOf('auth_spray', r.ip, windowMs),
        reason: `fewer than ${cfg.minClients} clients with failed authentication from ${r.ip} in the window ending ${iso(end)}`,
      }));
    if (current.length === 0) return { findings: [], resolved };

    const { clients, sessions, users, samples } = details;
    const findings: Finding[] = current.map((r) => {
      const k = windowKeyOf(start, windowMs, r.ip);
      const n = num(r.clients);
      const failures = num(r.failures);
      const users_ = users.get(k);
      return makeFinding({
        detector: 'auth_spray',
        subject: r.ip,
        windowMs,
        windowStart: start,
        windowEnd: end,
        severity: n >= cfg.highClients ? 'high' : 'medium',
        title: `Authentication spraying from ${r.ip}: ${n} clients`,
        summary:
          `${r.ip} failed authentication ${failures} times against ${n} distinct clients between ` +
          `${iso(start)} and ${iso(end)} (raises at ${cfg.minClients}). Targeted clients: ` +
          `${listText(clients.get(k), n, 20)}.` +
          (users_?.length ? ` Users tried: ${listText(users_)}.` : '') +
          ' One address trying many accounts is password or key spraying; block the address and check' +
          ' whether any of these clients authenticated from it afterwards.',
        observed: n,
        expected: { low: 0, high: cfg.minClients - 1 },
        score: n / cfg.minClients,
        contributors: {
          addresses: [{ value: r.ip, count: failures }],
          sessions: sessions.get(k) ?? [],
        },
        sampleEventIds: samples.get(k) ?? [],
      });
    });
    return { findings, resolved };
  }
}
