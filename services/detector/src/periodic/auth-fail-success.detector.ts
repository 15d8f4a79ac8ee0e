import { array, sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Finding } from '../model.js';
import type { PeriodicConfig } from '../config.js';
import {
  AUTH_FAILED,
  AUTH_OK,
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
} from './shared.js';
import { windowStarts, type Evaluation, type PeriodicDetector } from './types.js';

/**
 * auth_fail_then_success: from one address, at least K failed authentications in the window, then a
 * successful one from the same address for one of the clients it had failed against, within the
 * window or `followMs` after it. "Someone guessed it": severity high.
 *
 * No window is "back in band" (a quiet next window does not make the guessed credential safe again),
 * so the alert expires `expireMs` (24 h) of event time after it opened (the runner does it): later
 * guesses from the address within that time are part of it, the first one after it opens a new alert.
 */
export function authFailThenSuccessDetector(
  ch: ClickHouse,
  cfg: PeriodicConfig['authFailThenSuccess'],
): PeriodicDetector {
  const windowMs = cfg.windowMs;
  const K = cfg.minFailures;
  const detector: PeriodicDetector = {
    name: 'auth_fail_then_success',
    windowMs,
    expireMs: cfg.expireMs,
    lookaheadMs: cfg.followMs,
    async evaluate(start, end) {
      return (await detector.evaluateRange!(start, end))[0]!;
    },
    async evaluateRange(from, to) {
      const starts = windowStarts(from, to, windowMs);
      // One query for the whole range: (address, window) pairs with at least K failures. Only windows
      // with a candidate need the follow-up queries (the rest are empty by definition).
      const rows = await ch.query<{ ip: string; w: number; failures: string }>(sql`
        SELECT client_ip AS ip, intDiv(toUInt32(ts), ${windowMs / 1000}) AS w, uniqExact(event_id) AS failures
        FROM ${eventsTable(ch)}
        WHERE ${firstCopies(ch, from, to)} AND client_ip != '' AND ${AUTH_FAILED}
        GROUP BY ip, w HAVING failures >= ${K} ORDER BY w, ip`);
      const byWindow = groupByWindow(rows, windowMs);
      const out: Evaluation[] = [];
      for (const start of starts) {
        const candidates = byWindow.get(start);
        out.push(
          candidates ? await judge(start, start + windowMs, candidates) : { findings: [], resolved: [] },
        );
      }
      return out;
    },
  };
  return detector;

  async function judge(
    start: number,
    end: number,
    candidates: ReadonlyArray<{ ip: string; failures: string }>,
  ): Promise<Evaluation> {
    const failedWhere = sql`${firstCopies(ch, start, end)} AND client_ip != '' AND ${AUTH_FAILED}`;
    const ips = candidates.map((c) => c.ip);

    // The time of the K-th failure per address: the success must come after it.
    const firstK = await ch.query<{ ip: string; t: string }>(sql`
        SELECT ip, t FROM (
          SELECT client_ip AS ip, event_id, min(${T_MS}) AS t
          FROM ${eventsTable(ch)} WHERE ${failedWhere} AND client_ip IN ${tuple(ips)}
          GROUP BY ip, event_id)
        ORDER BY ip, t, event_id
        LIMIT ${K} BY ip`);
    const kth = new Map<string, number>();
    for (const r of firstK) kth.set(r.ip, num(r.t)); // ascending: the last one per ip is the K-th

    // The first success per address after its K-th failure, for a client it failed against.
    const successes = await ch.query<{
      ip: string;
      id: string;
      t: string;
      client_id: string;
      client_user: string;
      session_id: string;
    }>(sql`
        SELECT client_ip AS ip, toString(event_id) AS id, ${T_MS} AS t, client_id, client_user, session_id
        FROM ${eventsTable(ch)}
        WHERE ${firstCopies(ch, start, end + cfg.followMs)} AND ${AUTH_OK}
          AND client_ip IN ${tuple(ips)}
          AND ${T_MS} > transform(client_ip, ${array(ips)}, ${array(ips.map((ip) => kth.get(ip)!))}, toUInt64(0))
          AND (client_ip, client_id) IN (SELECT client_ip, client_id FROM ${eventsTable(ch)} WHERE ${failedWhere})
        ORDER BY ip, t, id
        LIMIT 1 BY ip`);
    if (successes.length === 0) return { findings: [], resolved: [] };

    const hitIps = successes.map((s) => s.ip);
    const where = sql`${failedWhere} AND client_ip IN ${tuple(hitIps)}`;
    const [clients, sessions, samples] = await Promise.all([
      topValues(ch, 'ip', where, 'client_id'),
      topValues(ch, 'ip', where, 'session_id'),
      sampleIds(ch, 'ip', where, { limit: 49 }),
    ]);
    const failuresOf = new Map(candidates.map((c) => [c.ip, num(c.failures)]));
    const findings: Finding[] = successes.map((s) => {
      const failures = failuresOf.get(s.ip) ?? 0;
      const at = num(s.t);
      const sess = [...(sessions.get(s.ip) ?? [])];
      if (s.session_id && !sess.some((c) => c.value === s.session_id))
        sess.unshift({ value: s.session_id, count: 1 });
      return makeFinding({
        detector: 'auth_fail_then_success',
        subject: s.ip,
        clientId: s.client_id,
        windowMs,
        windowStart: start,
        windowEnd: end,
        severity: 'high',
        title: `${s.client_id} authenticated from ${s.ip} after ${failures} failures`,
        summary:
          `${s.ip} failed authentication ${failures} times between ${iso(start)} and ${iso(end)} ` +
          `(raises at ${K}), against ${listText(clients.get(s.ip), undefined, 20)}; then client ` +
          `${s.client_id}${s.client_user ? ` (user ${s.client_user})` : ''} authenticated successfully ` +
          `from the same address at ${iso(at)}${s.session_id ? ` in session ${s.session_id}` : ''}. ` +
          'A success after a run of failures may be a guessed credential: verify with the owner of ' +
          `${s.client_id}, rotate its credential and review what that session did.`,
        observed: failures,
        expected: { low: 0, high: K - 1 },
        score: failures / K,
        contributors: { addresses: [{ value: s.ip, count: failures }], sessions: sess },
        sampleEventIds: [s.id, ...(samples.get(s.ip) ?? [])],
        detectedAt: Math.max(end, at),
      });
    });
    return { findings, resolved: [] };
  }
}
