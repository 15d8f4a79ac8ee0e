import type { Alert, AlertMessage, AlertStateChange } from '@mcp-audit/schema';

/**
 * Slack Block Kit limits (https://api.slack.com/reference/block-kit/blocks): at most 50 blocks per
 * message; header text 150 characters; section text 3000; section fields at most 10 of 2000 each;
 * context at most 10 elements; button text 75 and URL 3000.
 */
export const SLACK_LIMITS = {
  blocks: 50,
  headerText: 150,
  sectionText: 3000,
  fields: 10,
  fieldText: 2000,
  contextElements: 10,
  buttonText: 75,
  buttonUrl: 3000,
  /** Top-level `text` is the notification fallback; kept short. */
  fallbackText: 3000,
} as const;

export interface SlackMessage {
  text: string;
  blocks: Array<Record<string, unknown>>;
}

const EMOJI: Record<string, string> = {
  critical: ':red_circle:',
  high: ':large_orange_circle:',
  medium: ':large_yellow_circle:',
  low: ':large_blue_circle:',
  info: ':white_circle:',
};

export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  return `${s.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * Slack mrkdwn control characters: &, < and > must be escaped, which also stops alert content from
 * forming links or mentions such as <!channel>.
 */
export const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const plain = (text: string, max: number) => ({ type: 'plain_text', text: truncate(text, max), emoji: true });
const mrkdwn = (text: string, max: number) => ({ type: 'mrkdwn', text: truncate(text, max) });
export const alertUrl = (consoleUrl: string, alertId: string) =>
  `${consoleUrl.replace(/\/+$/, '')}/alerts/${encodeURIComponent(alertId)}`;
const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));

function button(consoleUrl: string, alertId: string) {
  return {
    type: 'actions',
    elements: [
      {
        type: 'button',
        text: plain('Open in mcp-audit', SLACK_LIMITS.buttonText),
        url: truncate(alertUrl(consoleUrl, alertId), SLACK_LIMITS.buttonUrl),
        action_id: 'open_alert',
      },
    ],
  };
}

function top(list: Array<{ value: string; count: number }>, n = 5): string {
  if (list.length === 0) return '—';
  return list
    .slice(0, n)
    .map((c) => `\`${esc(truncate(c.value, 80))}\` ×${c.count}`)
    .join('\n');
}

export function buildSlackAlert(a: Alert, consoleUrl: string): SlackMessage {
  const head = `${a.severity.toUpperCase()} · ${a.title}`;
  const text = `${a.summary ? `${esc(a.summary)}\n\n` : ''}*Observed* ${fmt(a.observed)} against *expected* ${fmt(
    a.expected.low,
  )}–${fmt(a.expected.high)} (score ${fmt(a.score)}) between ${a.window.start} and ${a.window.end}.`;
  const fields = [
    ['Client', `\`${esc(a.client_id)}\``],
    ['Detector', esc(a.detector)],
    ['Severity', `${EMOJI[a.severity]} ${a.severity}`],
    ['Baseline', esc(a.baseline_version || '—')],
    ['Top tools', top(a.contributors.tools)],
    ['Top addresses', top(a.contributors.addresses)],
    ['Sessions', top(a.contributors.sessions, 3)],
    ['Sample events', String(a.sample_event_ids.length)],
  ]
    .slice(0, SLACK_LIMITS.fields)
    .map(([k, v]) => mrkdwn(`*${k}*\n${v}`, SLACK_LIMITS.fieldText));
  return {
    text: truncate(`${EMOJI[a.severity]} ${head} (${a.client_id})`, SLACK_LIMITS.fallbackText),
    blocks: [
      { type: 'header', text: plain(head, SLACK_LIMITS.headerText) },
      { type: 'section', text: mrkdwn(text, SLACK_LIMITS.sectionText) },
      { type: 'section', fields },
      {
        type: 'context',
        elements: [
          mrkdwn(
            `alert \`${a.alert_id}\` · dedup \`${esc(truncate(a.dedup_key, 200))}\` · ${a.created_at}`,
            2000,
          ),
        ],
      },
      button(consoleUrl, a.alert_id),
    ],
  };
}

export function buildSlackStateChange(c: AlertStateChange, consoleUrl: string): SlackMessage {
  const word =
    c.action === 'assign'
      ? `Assigned to ${c.assignee ?? '-'}`
      : c.action === 'note'
        ? 'Note'
        : c.status === 'resolved'
          ? `Resolved${c.resolution ? ` (${c.resolution.replace('_', ' ')})` : ''}`
          : 'Acknowledged';
  const icon =
    c.action === 'assign' || c.action === 'note'
      ? ':memo:'
      : c.status === 'resolved'
        ? ':white_check_mark:'
        : ':eyes:';
  const verb = `${icon} ${esc(word)}`;
  const who = c.actor ? ` by ${esc(c.actor)}` : '';
  const note = c.note ? `\n> ${esc(truncate(c.note, 1000))}` : '';
  return {
    text: truncate(`${word}: ${c.title} (${c.client_id})`, 3000),
    blocks: [
      {
        type: 'section',
        text: mrkdwn(
          `${verb}${who}: *${esc(c.title)}* for client \`${esc(c.client_id)}\`${note}`,
          SLACK_LIMITS.sectionText,
        ),
      },
      {
        type: 'context',
        elements: [mrkdwn(`alert \`${c.alert_id}\` · was ${c.from} · ${c.changed_at}`, 2000)],
      },
      button(consoleUrl, c.alert_id),
    ],
  };
}

export function buildSlackMessage(m: AlertMessage, consoleUrl: string): SlackMessage {
  return m.type === 'alert' ? buildSlackAlert(m, consoleUrl) : buildSlackStateChange(m, consoleUrl);
}

function digestLine(m: AlertMessage, consoleUrl: string): string {
  const link = `<${alertUrl(consoleUrl, m.alert_id)}|${esc(truncate(m.title, 100)).replace(/\|/g, '¦')}>`;
  const what =
    m.type === 'alert'
      ? `${EMOJI[m.severity]} *${m.severity}*`
      : m.status === 'resolved'
        ? ':white_check_mark: resolved'
        : ':eyes: acknowledged';
  return `• ${what} ${link} · \`${esc(truncate(m.client_id, 60))}\``;
}

/**
 * Fold as many messages as fit into one digest, in order. Returns the message and how many were
 * folded (the rest wait for the next one). Every folded alert is named by its link.
 */
export function buildSlackDigest(
  messages: readonly AlertMessage[],
  consoleUrl: string,
  maxItems = 500,
): { message: SlackMessage; folded: number } {
  // header + context leave 48 blocks for sections
  const maxSections = SLACK_LIMITS.blocks - 2;
  const sections: string[] = [];
  let current = '';
  let folded = 0;
  for (const m of messages.slice(0, maxItems)) {
    const line = truncate(digestLine(m, consoleUrl), SLACK_LIMITS.sectionText);
    if (current && current.length + 1 + line.length > SLACK_LIMITS.sectionText) {
      if (sections.length + 1 >= maxSections) break;
      sections.push(current);
      current = '';
    }
    current = current ? `${current}\n${line}` : line;
    folded++;
  }
  if (current) sections.push(current);
  const header = `mcp-audit digest: ${folded} alert update${folded === 1 ? '' : 's'}`;
  return {
    folded,
    message: {
      text: header,
      blocks: [
        { type: 'header', text: plain(header, SLACK_LIMITS.headerText) },
        ...sections.map((s) => ({ type: 'section', text: mrkdwn(s, SLACK_LIMITS.sectionText) })),
        {
          type: 'context',
          elements: [mrkdwn('Folded into one message to stay within the webhook rate limit.', 2000)],
        },
      ],
    },
  };
}
