import { badge, fmtNum, h, seg, table, time, type Column } from './dom.js';
import type { EventSummary } from './types.js';

export const FILTER_FIELDS: Array<[string, string]> = [
  ['client', 'Client'],
  ['user', 'User'],
  ['ip', 'Address'],
  ['session', 'Session'],
  ['source', 'Source'],
  ['server', 'Server'],
  ['tool', 'Tool'],
  ['method', 'Method'],
  ['kind', 'Kind'],
  ['outcome', 'Outcome'],
  ['label', 'Label (key=value)'],
];
export const FILTER_NAMES = new Set(FILTER_FIELDS.map(([k]) => k));

export function what(e: EventSummary): string {
  if (e.tool_name) return e.server_name ? `${e.server_name} · ${e.tool_name}` : e.tool_name;
  return e.method ?? e.kind;
}

export function eventColumns(opts: { session?: boolean; client?: boolean } = {}): Column<EventSummary>[] {
  const cols: Column<EventSummary>[] = [
    {
      label: 'Time (UTC)',
      cell: (e) => h('a', { href: `/events/${seg(e.event_id)}`, class: 'nowrap' }, time(e.ts)),
    },
    { label: 'Kind', cell: (e) => e.kind },
    { label: 'Outcome', cell: (e) => badge('outcome', e.outcome) },
    { label: 'What', cell: (e) => h('span', { class: 'mono' }, what(e)) },
  ];
  if (opts.client !== false)
    cols.push({
      label: 'Client',
      cell: (e) => [
        h('a', { href: `/clients/${seg(e.client_id)}`, class: 'nowrap' }, e.client_id),
        e.client_user || e.client_ip
          ? h('div', { class: 'muted' }, [e.client_user, e.client_ip].filter(Boolean).join(' · '))
          : null,
      ],
    });
  if (opts.session !== false)
    cols.push({
      label: 'Session',
      cell: (e) =>
        e.session_id
          ? h(
              'a',
              { href: `/sessions/${seg(e.session_id)}`, class: 'mono ellipsis', title: e.session_id },
              e.session_id,
            )
          : '—',
      class: 'hide-narrow',
    });
  cols.push({ label: 'ms', cell: (e) => fmtNum(e.duration_ms), class: 'num hide-narrow' });
  cols.push({
    label: 'Error',
    cell: (e) => (e.error_message ? h('span', { class: 'error-text' }, e.error_message) : ''),
    class: 'wrap',
  });
  return cols;
}

export function eventsTable(
  rows: EventSummary[],
  opts: { session?: boolean; client?: boolean; highlight?: string; empty?: string } = {},
): HTMLElement {
  return table(rows, eventColumns(opts), {
    empty: opts.empty ?? 'No events match.',
    caption: 'Events',
    rowClass: (e) => (e.event_id === opts.highlight ? 'current' : undefined),
  });
}
