import { api } from '../api.js';
import { badge, h, replace, seg, table, time } from '../dom.js';
import { listFilterForm, listParams, pager } from '../list-filters.js';
import { loadInto, pageHeader, type PageContext } from '../ui.js';

/** One incident as GET /api/v1/incidents lists it. */
export interface IncidentSummary {
  incident_id: string;
  title: string;
  severity: string;
  status: 'open' | 'resolved';
  alerts: number;
  open_alerts: number;
  clients: string[];
  detectors: string[];
  opened_at: string;
  updated_at: string;
  window: { start: string; end: string };
}

const STATUSES = ['open', 'resolved'];

export function incidentsTable(rows: IncidentSummary[]): HTMLElement {
  return table(
    rows,
    [
      { label: 'Severity', cell: (i) => badge('sev', i.severity) },
      {
        label: 'Incident',
        cell: (i) => [
          h('a', { href: `/incidents/${seg(i.incident_id)}`, class: 'incident-link' }, i.title),
          h('div', { class: 'muted' }, i.detectors.join(', ')),
        ],
        class: 'wrap',
      },
      { label: 'Status', cell: (i) => badge('status', i.status) },
      { label: 'Alerts', cell: (i) => `${i.alerts} (${i.open_alerts} open)`, class: 'nowrap' },
      {
        label: 'Clients',
        cell: (i) => [
          ...i.clients
            .slice(0, 3)
            .flatMap((c, n) => [n ? ', ' : '', h('a', { href: `/clients/${seg(c)}` }, c)]),
          i.clients.length > 3 ? ` +${i.clients.length - 3}` : '',
        ],
        class: 'hide-narrow',
      },
      { label: 'Opened (UTC)', cell: (i) => time(i.opened_at), class: 'nowrap' },
      { label: 'Updated (UTC)', cell: (i) => time(i.updated_at), class: 'nowrap hide-narrow' },
    ],
    { empty: 'No incidents match.', caption: 'Incidents' },
  );
}

export function incidentsPage(ctx: PageContext): void {
  document.title = 'Incidents · mcp-audit';
  const q = ctx.query;
  const form = listFilterForm(q, {
    path: '/incidents',
    idPrefix: 'incidents',
    rangePrefix: 'inc',
    label: 'Incident filters',
    statuses: STATUSES,
    detectorPlaceholder: 'e.g. auth_spray',
    navigate: (to) => ctx.navigate(to),
  });
  const params = listParams(q);
  const results = h('div', { id: 'results' });
  ctx.main.append(
    pageHeader('Incidents'),
    h(
      'p',
      { class: 'hint' },
      'Related alerts (same client, address, session or source, close in time, or one causing another) form one incident: it is what pages a person.',
    ),
    form,
    results,
  );
  void loadInto(
    ctx,
    results,
    (signal) =>
      api.get<{ items: IncidentSummary[]; next_cursor: string | null }>('/incidents', params, signal),
    (r) => {
      replace(results, incidentsTable(r.items), pager('/incidents', q, r.next_cursor));
    },
  );
}
