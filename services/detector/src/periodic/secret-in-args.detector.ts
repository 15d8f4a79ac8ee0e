import { sql, type ClickHouse } from '@mcp-audit/clickhouse';
import type { AlertSeverity } from '@mcp-audit/schema';
import type { PeriodicConfig } from '../config.js';
import type { Finding } from '../model.js';
import { eventsTable, firstCopies, groupByWindow, iso, makeFinding, num, T_MS } from './shared.js';
import { windowStarts, type Evaluation, type PeriodicDetector } from './types.js';

/**
 * secret_in_args: a credential went through a tool. Redaction (packages/redaction: at the source, in
 * the collector and again in the ingester) replaces every credential it finds in a call's arguments
 * and error text with `[REDACTED:<kind>:<8 hex>]`, the hex a keyed HMAC of the value; the detector
 * reads only the stored, redacted events, so it derives the alert from those markers and never sees a
 * value. One alert per (client, kind, fingerprint): an agent that keeps passing the same token is one
 * alert, a second token (or the same token through another client) is another.
 *
 * Periodic rather than streaming: the markers are what the ingester stored (a direct Kafka producer's
 * event is unredacted on the topic), so the stored copy is the only one that carries them for every
 * source. Nothing proves a leaked credential safe again, so the alert expires `expireMs` (7 days) of
 * event time after it opened; the same fingerprint from the same client after that is a new alert.
 */

/** The marker as packages/redaction writes it (fingerprint.ts MARKER_RE), for ClickHouse's re2. */
const MARKER_PATTERN = '\\[REDACTED:[a-z0-9_]{1,40}:[0-9a-f]{8}\\]';
const MARKER = /^\[REDACTED:([a-z0-9_]{1,40}):([0-9a-f]{8})\]$/;

/** Where tool traffic carries values: arguments and the error (result) text. */
const CARRIES_ARGS = sql`kind IN ('tool_call', 'resource_read', 'prompt_get')`;
const HAS_MARKER = sql`(position(args, '[REDACTED:') > 0 OR position(error_message, '[REDACTED:') > 0)`;

/** Kinds that open infrastructure on their own (a private key, a cloud secret): high, the rest medium. */
const HIGH_KINDS = new Set([
  'private_key',
  'age_secret_key',
  'aws_secret_access_key',
  'azure_storage_key',
  'google_oauth_client_secret',
  'vault_token',
  'stripe_key',
  'connection_password',
  'connection_string',
]);

export function parseMarker(m: string): { kind: string; fingerprint: string } | undefined {
  const x = MARKER.exec(m);
  return x ? { kind: x[1]!, fingerprint: x[2]! } : undefined;
}

export const secretSubject = (client: string, kind: string, fingerprint: string): string =>
  `${client}/${kind}/${fingerprint}`;

interface Row {
  w: number;
  client: string;
  marker: string;
  n: string;
  first: string;
  in_args: string;
  in_error: string;
  tools: string[];
  sessions: string[];
  ids: string[];
}

export function secretInArgsDetector(ch: ClickHouse, cfg: PeriodicConfig['secretInArgs']): PeriodicDetector {
  const windowMs = cfg.windowMs;
  const detector: PeriodicDetector = {
    name: 'secret_in_args',
    windowMs,
    expireMs: cfg.expireMs,
    async evaluate(start, end) {
      return (await detector.evaluateRange!(start, end))[0]!;
    },
    async evaluateRange(from, to) {
      const starts = windowStarts(from, to, windowMs);
      // One query for the range: the markers per window and client, with where they were found.
      const rows = await ch.query<Row>(sql`
        SELECT intDiv(toUInt32(ts), ${windowMs / 1000}) AS w, client_id AS client, m AS marker,
               uniqExact(event_id) AS n, min(${T_MS}) AS first,
               uniqExactIf(event_id, has(extractAll(args, ${MARKER_PATTERN}), m)) AS in_args,
               uniqExactIf(event_id, has(extractAll(error_message, ${MARKER_PATTERN}), m)) AS in_error,
               groupUniqArray(tool_name) AS tools, groupUniqArray(session_id) AS sessions,
               groupUniqArray(toString(event_id)) AS ids
        FROM ${eventsTable(ch)}
        ARRAY JOIN arrayDistinct(extractAll(concat(args, '\n', error_message), ${MARKER_PATTERN})) AS m
        WHERE ${firstCopies(ch, from, to)} AND ${CARRIES_ARGS} AND ${HAS_MARKER}
        GROUP BY w, client, marker
        ORDER BY w, client, marker`);
      const byWindow = groupByWindow(rows, windowMs);
      return starts.map((start): Evaluation => {
        const findings: Finding[] = [];
        for (const r of byWindow.get(start) ?? []) {
          const m = parseMarker(r.marker);
          if (!m) continue;
          findings.push(finding(r, m, start, start + windowMs));
        }
        return { findings, resolved: [] };
      });
    },
  };
  return detector;

  function finding(r: Row, m: { kind: string; fingerprint: string }, start: number, end: number): Finding {
    const severity: AlertSeverity = HIGH_KINDS.has(m.kind) ? 'high' : 'medium';
    const where = [num(r.in_args) > 0 ? 'arguments' : '', num(r.in_error) > 0 ? 'error results' : '']
      .filter(Boolean)
      .join(' and ');
    const tools = r.tools.filter(Boolean).sort();
    const sessions = r.sessions.filter(Boolean).sort();
    return makeFinding({
      detector: 'secret_in_args',
      subject: secretSubject(r.client, m.kind, m.fingerprint),
      clientId: r.client,
      windowMs,
      windowStart: start,
      windowEnd: end,
      severity,
      title: `Credential passed through tools by ${r.client}: ${m.kind} ${m.fingerprint}`,
      summary:
        `A ${m.kind} credential (fingerprint ${m.fingerprint}) appeared in the ${where} of ${num(r.n)} ` +
        `call(s) by ${r.client} between ${iso(start)} and ${iso(end)} (first at ${iso(num(r.first))}), ` +
        `through ${tools.length > 0 ? tools.slice(0, 10).join(', ') : 'unnamed tools'}. Redaction replaced ` +
        'it before storage; the value is not kept. An agent moving credentials through tools can leak ' +
        'them to a server or a model: find where the agent got it, rotate it if it left your systems. ' +
        'The same fingerprint from this client is part of this alert until it expires.',
      observed: num(r.n),
      expected: { low: 0, high: 0 },
      score: num(r.n),
      contributors: {
        tools: tools.map((t) => ({ value: t, count: 1 })),
        sessions: sessions.slice(0, 20).map((s) => ({ value: s, count: 1 })),
      },
      sampleEventIds: [...r.ids].sort().slice(0, 20),
      detectedAt: end,
    });
  }
}
