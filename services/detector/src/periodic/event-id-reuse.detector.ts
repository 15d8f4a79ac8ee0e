import { dbIdent, ident, join, sql, type ClickHouse, type SqlFragment } from '@mcp-audit/clickhouse';
import type { Finding } from '../model.js';
import type { PeriodicConfig } from '../config.js';
import { MAX_CLOCK_SKEW_MS } from '@mcp-audit/schema';
import { eventsTable, iso, makeFinding, num } from './shared.js';
import { windowStarts, type Evaluation, type PeriodicDetector, type Resolution } from './types.js';
import { dedupKeyOf } from './windows.js';

/**
 * The event's content: every stored column of mcp_audit.events in migration order except the id
 * itself and the ingestion bookkeeping (ver, ingested_at, kafka_partition, kafka_offset): the
 * ledger's canonical row without event_id. A test checks this list against system.columns, so a new
 * column cannot be left out unnoticed.
 */
export const CONTENT_COLUMNS = [
  'ts',
  'ts_ms',
  'schema_version',
  'kind',
  'source_type',
  'source_id',
  'source_version',
  'client_id',
  'client_name',
  'client_user',
  'client_agent',
  'client_ip',
  'client_user_agent',
  'session_id',
  'server_name',
  'server_version',
  'server_transport',
  'method',
  'tool_name',
  'tool_definition_hash',
  'outcome',
  'http_status',
  'rpc_error_code',
  'tool_is_error',
  'trace_id',
  'auth_method',
  'auth_result',
  'auth_reason',
  'error_code',
  'error_message',
  'duration_ms',
  'request_bytes',
  'response_bytes',
  'args',
  'response_digest',
  'label_keys',
  'label_values',
  'raw',
  'tool_annotations',
] as const;
export const BOOKKEEPING_COLUMNS = ['ver', 'ingested_at', 'kafka_partition', 'kafka_offset'] as const;
const NULLABLE = new Set<string>(['http_status', 'rpc_error_code', 'tool_is_error']);

// NOTE: cityHash64 of a NULL is NULL (and so is any hash over it): nullable columns hash as
// (isNull, value-or-0), so NULL and 0 differ and the row hash is never NULL.
const columnHash = (c: string): SqlFragment => {
  const col = ident(c, CONTENT_COLUMNS);
  return NULLABLE.has(c) ? sql`cityHash64(isNull(${col}), ifNull(${col}, 0))` : sql`cityHash64(${col})`;
};
const COLUMN_HASHES = sql`[${join(CONTENT_COLUMNS.map(columnHash))}]`;

/** One stored copy of an event id. */
export interface StoredCopy {
  /** Ingestion time, epoch seconds. */
  ingestedAt: number;
  ver: number;
  partition: number;
  offset: string;
  clientId: string;
  /** Hash of the whole content. */
  content: string;
  /** One hash per CONTENT_COLUMNS entry. */
  columns: string[];
}

/**
 * "The copy every query sees" (README, event contract): the highest ver, i.e. the first ingested
 * (ver = 2^32 - 1 - ingest second). Ties (two copies ingested in the same second) are rare; here they
 * go to the lower Kafka partition and offset, then the smaller content hash, only so that the alert
 * reads the same every time (the ledger's tie rule decides which copy the readers keep).
 */
export function byPrecedence(a: StoredCopy, b: StoredCopy): number {
  return (
    b.ver - a.ver ||
    a.ingestedAt - b.ingestedAt ||
    a.partition - b.partition ||
    cmp(BigInt(a.offset), BigInt(b.offset)) ||
    (a.content < b.content ? -1 : a.content > b.content ? 1 : 0)
  );
}
const cmp = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A copy the ingester refused because its id was already stored with other content
 * (mcp_audit.event_id_conflicts, schemas/clickhouse/009_event_ids.sql): it never reached events.
 */
export interface RefusedCopy {
  /** Ingestion time of the refused copy, epoch seconds. */
  detectedAt: number;
  fields: string[];
  digest: string;
  clientId: string;
  sourceId: string;
  partition: number;
  offset: string;
  stored: { clientId: string; sourceId: string; ingestedAt: number; partition: number; offset: string };
}

interface Hit {
  id: string;
  /** The stored copy every query sees, when more than one content is stored. */
  winner?: StoredCopy;
  differing: StoredCopy[];
  refused: RefusedCopy[];
  firstNew: number;
}

/** Ingestion time (ms) of the last stored copy differing from the first, among those before `end`. */
function lastDiffering(all: StoredCopy[], end: number): number {
  const known = all.filter((c) => c.ingestedAt * 1000 < end);
  const winner = known[0];
  if (!winner) return 0;
  return Math.max(0, ...known.filter((c) => c.content !== winner.content).map((c) => c.ingestedAt * 1000));
}

/** The columns in which `copy` differs from `winner`. */
export function differingColumns(winner: StoredCopy, copy: StoredCopy): string[] {
  return CONTENT_COLUMNS.filter((_, i) => winner.columns[i] !== copy.columns[i]);
}

/**
 * event_id_reuse: an event id stored with more than one content. The contract says the same id twice
 * is one event, so a benign redelivery (Kafka at-least-once, an SDK retry) is byte-for-byte the same
 * event with other bookkeeping; a second copy with another time, client, tool or arguments is either a
 * forgery (someone re-using a real id to plant or disguise an event) or corruption. Every query sees
 * the first ingested copy; this says that another one exists.
 *
 * Windows are ingestion time (`ingested_at`), so each run reads only the copies stored since the last
 * one (its progress is in periodic_progress like every periodic detector), and compares them with every
 * copy of the same ids whose event time is within `lookbackMs` (the ingester refuses older events).
 * One alert per id (key `event_id_reuse:<id>:<window>`), severity high. The alert names the id, the
 * differing columns and each copy's ingestion time and Kafka position, never a value of `args`, `raw`
 * or any other column. It expires (resolves) `expireMs` of ingestion time after the last differing copy
 * of that id, or earlier when acknowledged and resolved by an analyst.
 */
export function eventIdReuseDetector(ch: ClickHouse, cfg: PeriodicConfig['eventIdReuse']): PeriodicDetector {
  const windowMs = cfg.windowMs;
  const detector: PeriodicDetector = {
    name: 'event_id_reuse',
    windowMs,
    async evaluate(start, end) {
      return (await detector.evaluateRange!(start, end))[0]!;
    },
    async evaluateRange(from, to) {
      const starts = windowStarts(from, to, windowMs);
      // New differing copies in [from, to), and the ids whose last differing copy may expire in it.
      const [fresh, expiring, refused, refusedExpiring] = await Promise.all([
        conflicts(from, to, to),
        conflicts(from - cfg.expireMs, to - cfg.expireMs, to),
        refusals(from, to, to),
        refusals(from - cfg.expireMs, to - cfg.expireMs, to),
      ]);
      return starts.map((start) =>
        judge(start, start + windowMs, { fresh, expiring, refused, refusedExpiring }),
      );
    },
  };
  return detector;

  /**
   * Every id with a copy ingested in [from, to) and more than one content among its copies ingested
   * before `known`, with all those copies (event time within lookbackMs before `from`).
   */
  async function conflicts(from: number, to: number, known: number): Promise<Map<string, StoredCopy[]>> {
    // NOTE: explicit PREWHERE: left to itself ClickHouse moves the cheap ingested_at/ts conditions
    // there and reads every column of 30 days of rows (10x slower on 5M events). Only ids stored
    // more than once are hashed (the middle query): most new ids have one copy.
    const tsRange = sql`ts >= ${new Date(Math.max(0, from - cfg.lookbackMs))} AND ts < ${new Date(known + MAX_CLOCK_SKEW_MS)}`;
    const stored = sql`${tsRange} AND ingested_at < ${new Date(known)}`;
    const rows = await ch.query<{
      id: string;
      copies: Array<[number, number, number, string, string, string, string[]]>;
    }>(sql`
      SELECT toString(event_id) AS id,
             groupArray((toUInt32(ingested_at), ver, kafka_partition, toString(kafka_offset), client_id,
                         toString(cityHash64(cols)), arrayMap(h -> toString(h), cols))) AS copies
      FROM (
        SELECT event_id, ingested_at, ver, kafka_partition, kafka_offset, client_id, ${COLUMN_HASHES} AS cols
        FROM ${eventsTable(ch)}
        PREWHERE event_id IN (
          SELECT event_id FROM ${eventsTable(ch)}
          PREWHERE event_id IN (
            SELECT event_id FROM ${eventsTable(ch)}
            PREWHERE ingested_at >= ${new Date(from)} AND ingested_at < ${new Date(to)}
            WHERE ${tsRange})
          WHERE ${stored}
          GROUP BY event_id HAVING count() > 1)
        WHERE ${stored})
      GROUP BY event_id
      HAVING uniqExact(cityHash64(cols)) > 1
      ORDER BY id`);
    const out = new Map<string, StoredCopy[]>();
    for (const r of rows) {
      const copies = r.copies.map(([ingestedAt, ver, partition, offset, clientId, content, columns]) => ({
        ingestedAt: num(ingestedAt),
        ver: num(ver),
        partition: num(partition),
        offset,
        clientId,
        content,
        columns,
      }));
      out.set(r.id, copies.sort(byPrecedence));
    }
    return out;
  }

  /**
   * The copies the ingester refused with a record in [from, to), with every record of the same ids
   * before `known` from `from` on (one row per refusal; a redelivered refusal is recorded again).
   */
  async function refusals(from: number, to: number, known: number): Promise<Map<string, RefusedCopy[]>> {
    const table = sql`${dbIdent(ch.database)}.event_id_conflicts`;
    const rows = await ch.query<{
      id: string;
      detected_at: number;
      fields: string[];
      digest: string;
      client_id: string;
      source_id: string;
      partition: number;
      offset: string;
      s_client_id: string;
      s_source_id: string;
      s_ingested_at: number;
      s_partition: number;
      s_offset: string;
    }>(sql`
      SELECT toString(event_id) AS id, toUInt32(detected_at) AS detected_at, fields, refused_digest AS digest,
             refused_client_id AS client_id, refused_source_id AS source_id,
             refused_kafka_partition AS partition, toString(refused_kafka_offset) AS offset,
             stored_client_id AS s_client_id, stored_source_id AS s_source_id,
             toUInt32(stored_ingested_at) AS s_ingested_at, stored_kafka_partition AS s_partition,
             toString(stored_kafka_offset) AS s_offset
      FROM ${table}
      WHERE detected_at >= ${new Date(from)} AND detected_at < ${new Date(known)}
        AND event_id IN (SELECT event_id FROM ${table}
                         WHERE detected_at >= ${new Date(from)} AND detected_at < ${new Date(to)})
      ORDER BY id, detected_at, partition, offset`);
    const out = new Map<string, RefusedCopy[]>();
    for (const r of rows) {
      const list = out.get(r.id) ?? [];
      list.push({
        detectedAt: num(r.detected_at),
        fields: r.fields,
        digest: r.digest,
        clientId: r.client_id,
        sourceId: r.source_id,
        partition: num(r.partition),
        offset: r.offset,
        stored: {
          clientId: r.s_client_id,
          sourceId: r.s_source_id,
          ingestedAt: num(r.s_ingested_at),
          partition: num(r.s_partition),
          offset: r.s_offset,
        },
      });
      out.set(r.id, list);
    }
    return out;
  }

  function judge(
    start: number,
    end: number,
    data: {
      fresh: Map<string, StoredCopy[]>;
      expiring: Map<string, StoredCopy[]>;
      refused: Map<string, RefusedCopy[]>;
      refusedExpiring: Map<string, RefusedCopy[]>;
    },
  ): Evaluation {
    const { fresh, expiring } = data;
    const findings: Finding[] = [];
    const byId = new Map<string, Hit>();
    for (const [id, all] of fresh) {
      const known = all.filter((c) => c.ingestedAt * 1000 < end);
      const winner = known[0];
      if (!winner) continue;
      const differing = known.filter((c) => c.content !== winner.content);
      const inWindow = differing.filter((c) => c.ingestedAt * 1000 >= start);
      if (inWindow.length === 0) continue;
      byId.set(id, {
        id,
        winner,
        differing,
        refused: [],
        firstNew: Math.min(...inWindow.map((c) => c.ingestedAt)),
      });
    }
    for (const [id, all] of data.refused) {
      const known = all.filter((c) => c.detectedAt * 1000 < end);
      const inWindow = known.filter((c) => c.detectedAt * 1000 >= start);
      if (inWindow.length === 0) continue;
      const firstNew = Math.min(...inWindow.map((c) => c.detectedAt));
      const hit = byId.get(id);
      if (hit) {
        hit.refused = known;
        hit.firstNew = Math.min(hit.firstNew, firstNew);
      } else byId.set(id, { id, differing: [], refused: known, firstNew });
    }
    const hits = [...byId.values()];
    hits.sort((a, b) => a.firstNew - b.firstNew || (a.id < b.id ? -1 : 1));
    for (const h of hits.slice(0, cfg.maxAlertsPerWindow)) findings.push(finding(start, end, h));
    const rest = hits.slice(cfg.maxAlertsPerWindow);
    if (rest.length > 0) findings.push(overflow(start, end, rest));

    const resolved: Resolution[] = [];
    // The summary alert is back in band as soon as a window needs none.
    if (rest.length === 0)
      resolved.push({
        dedupKey: dedupKeyOf('event_id_reuse', '*', windowMs),
        reason: `at most ${cfg.maxAlertsPerWindow} reused event ids in the window ending ${iso(end)}`,
      });

    // Expiry: the last differing copy (known at the window end) is expireMs before the window.
    // Expiry: the last differing copy, stored or refused (known at the window end), is expireMs before
    // the window.
    const lastRefused = (id: string) =>
      Math.max(
        0,
        ...[...(data.refused.get(id) ?? []), ...(data.refusedExpiring.get(id) ?? [])]
          .filter((c) => c.detectedAt * 1000 < end)
          .map((c) => c.detectedAt * 1000),
      );
    for (const [id, all] of expiring) {
      const last = lastDiffering(all, end);
      if (last === 0 || lastRefused(id) > last) continue; // the refusals decide (below)
      if (last + cfg.expireMs >= start && last + cfg.expireMs < end)
        resolved.push({
          dedupKey: dedupKeyOf('event_id_reuse', id, windowMs),
          reason: `no further differing copy of event ${id} for ${cfg.expireMs / 3_600_000} hours of ingestion time since ${iso(last)}`,
        });
    }
    for (const id of data.refusedExpiring.keys()) {
      const last = lastRefused(id);
      const stored = fresh.get(id) ?? expiring.get(id);
      if (stored && lastDiffering(stored, end) >= last) continue; // the stored copies decide (above)
      if (last + cfg.expireMs >= start && last + cfg.expireMs < end)
        resolved.push({
          dedupKey: dedupKeyOf('event_id_reuse', id, windowMs),
          reason: `no further copy of event ${id} with other content for ${cfg.expireMs / 3_600_000} hours of ingestion time since ${iso(last)}`,
        });
    }
    return { findings, resolved };
  }

  function finding(start: number, end: number, h: Hit): Finding {
    const { id, winner, differing, refused } = h;
    const fields = [
      ...new Set([
        ...(winner ? differing.flatMap((c) => differingColumns(winner, c)) : []),
        ...refused.flatMap((r) => r.fields),
      ]),
    ];
    const where = (c: StoredCopy, first: StoredCopy) =>
      `ingested ${iso(c.ingestedAt * 1000)} (Kafka partition ${c.partition}, offset ${c.offset}` +
      (c.clientId !== first.clientId ? `, client ${c.clientId}` : '') +
      ')';
    const refusedAt = (r: RefusedCopy) =>
      `refused ${iso(r.detectedAt * 1000)} (Kafka partition ${r.partition}, offset ${r.offset}, client ` +
      `${r.clientId}, source ${r.sourceId}${r.fields.length > 0 ? `, differing in ${r.fields.join(', ')}` : ''})`;
    const parts: string[] = [];
    let contents = 1;
    let clientId: string;
    if (winner) {
      contents = new Set([winner.content, ...differing.map((c) => c.content)]).size;
      clientId = winner.clientId;
      const shown = differing.slice(0, 5);
      parts.push(
        `Event ${id} is stored in ${contents} different versions. The copy every query uses was ` +
          `${where(winner, winner)} for client ${winner.clientId}; ` +
          `${differing.length} later cop${differing.length === 1 ? 'y differs' : 'ies differ'} in ` +
          `${[...new Set(differing.flatMap((c) => differingColumns(winner, c)))].join(', ')}: ` +
          shown.map((c) => where(c, winner)).join('; ') +
          (differing.length > shown.length ? ` and ${differing.length - shown.length} more` : '') +
          '.',
      );
    } else {
      const s = refused[0]!.stored;
      clientId = s.clientId;
      parts.push(
        `Event ${id} is stored once: the copy every query uses was ingested ${iso(s.ingestedAt * 1000)} ` +
          `(Kafka partition ${s.partition}, offset ${s.offset}) for client ${s.clientId}, source ${s.sourceId}.`,
      );
    }
    if (refused.length > 0) {
      contents += new Set(refused.map((r) => r.digest)).size;
      const shown = refused.slice(0, 5);
      parts.push(
        `The ingester refused ${refused.length} cop${refused.length === 1 ? 'y' : 'ies'} of the same id with ` +
          `other content (dead-lettered with AUDIT_ERR_EVENT_ID_CONFLICT, never stored): ` +
          shown.map(refusedAt).join('; ') +
          (refused.length > shown.length ? ` and ${refused.length - shown.length} more` : '') +
          '.',
      );
    }
    return makeFinding({
      detector: 'event_id_reuse',
      subject: id,
      clientId,
      windowMs,
      windowStart: start,
      windowEnd: end,
      severity: 'high',
      title: `Event id ${id} ${winner ? 'stored' : 'reused'} with different content (${fields.slice(0, 6).join(', ')})`,
      summary:
        parts.join(' ') +
        ' The same id twice must be the same event: a different copy is a forged event re-using a ' +
        'real id, or a corrupted redelivery. Find who produced it (the source and Kafka position), ' +
        'compare both copies in the event view and acknowledge. Values are not shown here (arguments may ' +
        `hold secrets). Expires ${cfg.expireMs / 3_600_000} hours after the last differing copy.`,
      observed: contents,
      expected: { low: 1, high: 1 },
      score: contents - 1,
      sampleEventIds: [id],
      detectedAt: end,
    });
  }

  function overflow(start: number, end: number, rest: ReadonlyArray<{ id: string }>): Finding {
    return makeFinding({
      detector: 'event_id_reuse',
      subject: '*',
      windowMs,
      windowStart: start,
      windowEnd: end,
      severity: 'high',
      title: `${rest.length} more event ids stored with different content`,
      summary:
        `Besides the ${cfg.maxAlertsPerWindow} ids alerted one by one, ${rest.length} more event ids ` +
        `received a copy with different content between ${iso(start)} and ${iso(end)} (ingestion time). ` +
        'Many reused ids at once suggest a producer replaying real ids with altered content: find the ' +
        'source and stop it. The first ids are in the sample.',
      observed: rest.length,
      expected: { low: 0, high: 0 },
      score: rest.length,
      sampleEventIds: rest.map((r) => r.id),
      detectedAt: end,
    });
  }
}
