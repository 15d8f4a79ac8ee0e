import type { AlertMessage } from '@mcp-audit/schema';
import type { IncidentBook } from './incident.book.js';
import type { HttpResult } from './http.sender.js';
import { buildSlackMessage, esc, SLACK_LIMITS, truncate, type SlackMessage } from './slack.payload.js';

/**
 * One Slack thread per incident (chat.postMessage with a bot token, https://api.slack.com/methods/
 * chat.postMessage): the incident's first message is the thread's parent, every later alert and state
 * change of it a reply (`thread_ts` = the parent's `ts`); the incident's end and a reopen are also
 * broadcast to the channel (`reply_broadcast`). Slack answers HTTP 200 with `{ ok: false, error }` on
 * failure, so the body decides, not the status.
 */

/** Where an incident's thread is, per destination. */
export interface ThreadStore {
  get(destinationId: string, incidentId: string): Promise<string | undefined>;
  set(destinationId: string, incidentId: string, ts: string): Promise<void>;
}

/** In memory, bounded (a restart starts a new thread for an incident that continues). */
export function memoryThreadStore(max = 50_000): ThreadStore {
  const m = new Map<string, string>();
  return {
    get: (d, i) => Promise.resolve(m.get(`${d}\u0000${i}`)),
    set(d, i, ts) {
      if (m.size >= max) m.delete(m.keys().next().value!);
      m.set(`${d}\u0000${i}`, ts);
      return Promise.resolve();
    },
  };
}

/** Slack's error codes worth retrying (the rest are configuration: token, channel, payload). */
const RETRYABLE = new Set([
  'ratelimited',
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
]);

export interface SlackApiAnswer {
  ok: boolean;
  ts?: string;
  /** A Slack error code (lowercase identifier) or `invalid_response`: safe to record. */
  error?: string;
  retryable?: boolean;
}

export function parseSlackAnswer(res: HttpResult): SlackApiAnswer {
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    return { ok: false, error: 'invalid_response', retryable: true };
  }
  const b = body as { ok?: unknown; ts?: unknown; error?: unknown };
  if (b.ok === true && typeof b.ts === 'string' && /^\d{1,12}\.\d{1,9}$/.test(b.ts))
    return { ok: true, ts: b.ts };
  const code = typeof b.error === 'string' && /^[a-z_]{1,64}$/.test(b.error) ? b.error : 'invalid_response';
  return { ok: false, error: code, retryable: RETRYABLE.has(code) };
}

/** The parent message of an incident's thread: the incident, then the alert that opened it. */
export function buildIncidentParent(m: AlertMessage, consoleUrl: string): SlackMessage {
  const body = buildSlackMessage(m, consoleUrl);
  const inc = m.incident;
  if (!inc) return body;
  const head = `Incident · ${inc.severity.toUpperCase()} · ${inc.title}`;
  const url = `${consoleUrl.replace(/\/+$/, '')}/incidents/${encodeURIComponent(inc.id)}`;
  const blocks = [
    {
      type: 'header',
      text: { type: 'plain_text', text: truncate(head, SLACK_LIMITS.headerText), emoji: true },
    },
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: truncate(
            `incident \`${inc.id}\` · ${inc.alerts} alert(s), ${inc.open_alerts} open · updates in this thread · <${url}|open the incident>`,
            2000,
          ),
        },
      ],
    },
    ...body.blocks,
  ].slice(0, SLACK_LIMITS.blocks);
  return { text: truncate(`${head} (${m.client_id})`, SLACK_LIMITS.fallbackText), blocks };
}

/** A reply in an incident's thread: the alert or state change, with where the incident stands. */
export function buildIncidentReply(m: AlertMessage, consoleUrl: string): SlackMessage {
  const body = buildSlackMessage(m, consoleUrl);
  const inc = m.incident;
  if (!inc) return body;
  const what =
    inc.transition === 'resolved'
      ? ':white_check_mark: *Incident resolved*: every alert in it ended.'
      : inc.transition === 'reopened'
        ? ':rotating_light: *Incident reopened* by a related alert.'
        : `Incident: ${inc.alerts} alert(s), ${inc.open_alerts} open, severity ${inc.severity}.`;
  const blocks = [
    {
      type: 'section',
      text: { type: 'mrkdwn', text: truncate(`${what} ${esc(truncate(inc.title, 200))}`, 3000) },
    },
    ...body.blocks,
  ].slice(0, SLACK_LIMITS.blocks);
  return { text: body.text, blocks };
}

/**
 * The chat.postMessage body for a message, and whether it starts a thread. `thread` is the incident's
 * thread ts when one exists.
 */
export function slackApiRequest(
  m: AlertMessage,
  channel: string,
  consoleUrl: string,
  incidentId: string | undefined,
  thread: string | undefined,
): { body: Record<string, unknown>; startsThread: boolean } {
  if (!incidentId) return { body: { channel, ...buildSlackMessage(m, consoleUrl) }, startsThread: false };
  if (!thread) return { body: { channel, ...buildIncidentParent(m, consoleUrl) }, startsThread: true };
  const broadcast = m.incident?.transition === 'resolved' || m.incident?.transition === 'reopened';
  return {
    body: {
      channel,
      thread_ts: thread,
      ...(broadcast ? { reply_broadcast: true } : {}),
      ...buildIncidentReply(m, consoleUrl),
    },
    startsThread: false,
  };
}

/** Resolves the incident a message belongs to (the book maps a human's change back to it). */
export const incidentOfMessage = (m: AlertMessage, book?: IncidentBook): string | undefined =>
  book ? book.note(m) : m.incident_id;
