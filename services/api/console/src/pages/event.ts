import { api } from '../api.js';
import { append, badge, dl, fmtNum, h, qs, seg, time } from '../dom.js';
import { eventsTable } from '../events-table.js';
import type { AuditEvent, EventSummary } from '../types.js';
import { loadInto, pageHeader, section, type PageContext } from '../ui.js';

interface EventAnswer {
  event: AuditEvent;
  neighbours: { before: EventSummary[]; after: EventSummary[] };
}

/** Pretty JSON as text: arguments are redacted but still attacker-written, so never markup. */
export function json(value: unknown): HTMLElement {
  let text: string;
  try {
    text = JSON.stringify(value, null, 2) ?? 'null';
  } catch {
    text = String(value);
  }
  return h('pre', { class: 'json', tabindex: '0' }, text);
}

function labels(l: Record<string, string> | undefined): HTMLElement | string {
  const entries = Object.entries(l ?? {});
  if (entries.length === 0) return '—';
  return h(
    'ul',
    { class: 'chips' },
    entries.map(([k, v]) =>
      h('li', { class: 'chip' }, h('span', { class: 'chip-key' }, k), h('span', { class: 'chip-value' }, v)),
    ),
  );
}

export function eventFields(e: AuditEvent): HTMLElement {
  const near = (field: string, v: string | null | undefined) =>
    v
      ? h(
          'a',
          {
            href: `/events${qs({ [field]: v, from: new Date(Date.parse(e.ts) - 3600_000).toISOString(), to: new Date(Date.parse(e.ts) + 3600_000).toISOString() })}`,
            title: 'Events with this value within an hour',
          },
          v,
        )
      : null;
  return h(
    'div',
    { class: 'grid two' },
    section(
      'Request',
      dl([
        ['Event id', h('span', { class: 'mono' }, e.event_id)],
        ['Time', time(e.ts)],
        ['Kind', e.kind],
        ['Outcome', badge('outcome', e.outcome)],
        ['Server', near('server', e.server_name)],
        ['Server version / transport', [e.server_version ?? '—', ' / ', e.server_transport ?? '—']],
        ['Tool', near('tool', e.tool_name)],
        [
          'Tool definition hash',
          e.tool_definition_hash ? h('span', { class: 'mono ellipsis' }, e.tool_definition_hash) : null,
        ],
        ['Method', e.method],
        ['Duration', e.duration_ms === null ? null : `${fmtNum(e.duration_ms)} ms`],
        ['HTTP status', e.http_status === null || e.http_status === undefined ? null : String(e.http_status)],
        [
          'JSON-RPC error',
          e.rpc_error_code === null || e.rpc_error_code === undefined ? null : String(e.rpc_error_code),
        ],
        [
          'Tool reported an error',
          e.tool_is_error === null || e.tool_is_error === undefined ? null : e.tool_is_error ? 'yes' : 'no',
        ],
        ['Error code', e.error_code],
        ['Error message', e.error_message ? h('span', { class: 'error-text' }, e.error_message) : null],
        ['Bytes in / out', `${fmtNum(e.request_bytes)} / ${fmtNum(e.response_bytes)}`],
        [
          'Response digest',
          e.response_digest ? h('span', { class: 'mono ellipsis' }, e.response_digest) : null,
        ],
        ['Trace id', e.trace_id ? h('span', { class: 'mono' }, e.trace_id) : null],
      ]),
    ),
    section(
      'Who',
      dl([
        ['Client', h('a', { href: `/clients/${seg(e.client_id)}` }, e.client_id)],
        ['Client name / agent', [e.client_name ?? '—', ' / ', e.client_agent ?? '—']],
        ['User', near('user', e.client_user)],
        ['Address', near('ip', e.client_ip)],
        ['User agent', e.client_user_agent],
        [
          'Session',
          e.session_id
            ? h('a', { href: `/sessions/${seg(e.session_id)}`, class: 'mono' }, e.session_id)
            : null,
        ],
        [
          'Auth',
          e.auth
            ? [e.auth.method ?? '—', ' · ', e.auth.result ?? '—', e.auth.reason ? ` · ${e.auth.reason}` : '']
            : null,
        ],
        [
          'Source',
          [
            near('source', e.source_id),
            e.source_type ? ` (${e.source_type}${e.source_version ? ` ${e.source_version}` : ''})` : '',
          ],
        ],
        ['Labels', labels(e.labels)],
        ['Ingested', time(e.ingested_at)],
      ]),
    ),
  );
}

/** Oldest first, whatever order the two neighbour lists came in. */
function chronological(rows: EventSummary[]): EventSummary[] {
  return rows.slice().sort((a, b) => a.ts.localeCompare(b.ts) || a.event_id.localeCompare(b.event_id));
}

export function eventPage(ctx: PageContext): void {
  const id = ctx.params[0] ?? '';
  document.title = 'Event · mcp-audit';
  const body = h('div');
  ctx.main.append(pageHeader(h('span', null, 'Event ', h('span', { class: 'mono' }, id))), body);
  void loadInto(
    ctx,
    body,
    (signal) => api.get<EventAnswer>(`/events/${seg(id)}`, undefined, signal),
    ({ event: e, neighbours }) => {
      const current: EventSummary = e;
      append(body, [
        eventFields(e),
        section('Arguments (redacted)', json(e.args ?? null)),
        h(
          'details',
          { class: 'card' },
          h('summary', null, 'Stored raw copy (redacted)'),
          json(e.raw ?? null),
        ),
        e.session_id
          ? section(
              'In this session',
              h(
                'p',
                { class: 'hint' },
                'Up to 10 events before and after this one. ',
                h('a', { href: `/sessions/${seg(e.session_id)}` }, 'Whole session timeline'),
              ),
              eventsTable(chronological([...neighbours.before, current, ...neighbours.after]), {
                session: false,
                highlight: e.event_id,
                empty: 'No other events in this session.',
              }),
            )
          : null,
      ]);
    },
  );
}
