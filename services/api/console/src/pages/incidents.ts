import { api } from '../api.js';
import { badge, h, qs, replace, seg, table, time } from '../dom.js';
import { timeRange } from '../timerange.js';
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
const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];
const FILTERS = ['status', 'severity', 'detector', 'client', 'from', 'to'];

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
  const go = (p: URLSearchParams) => {
    p.delete('cursor');
    ctx.navigate(`/incidents${qs(p)}`);
  };
  const checks = (name: string, legend: string, values: string[]) =>
    h(
      'fieldset',
      { class: 'checks' },
      h('legend', null, legend),
      values.map((v) =>
        h(
          'label',
          { class: 'check' },
          h('input', { type: 'checkbox', name, value: v, checked: q.getAll(name).includes(v) }),
          v,
        ),
      ),
    );
  const text = (name: string, placeholder: string) =>
    h('input', {
      type: 'text',
      id: `incidents-${name}`,
      name,
      value: q.getAll(name).join(', '),
      placeholder,
    });
  const detector = text('detector', 'e.g. auth_spray');
  const client = text('client', 'client ids, comma separated');
  const tr = timeRange(
    q,
    (r) => {
      const p = new URLSearchParams(q);
      p.delete('from');
      p.delete('to');
      if (r.from) p.set('from', r.from);
      if (r.to) p.set('to', r.to);
      go(p);
    },
    'inc',
  );
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Incident filters' },
    h(
      'div',
      { class: 'row' },
      checks('status', 'Status', STATUSES),
      checks('severity', 'Severity', SEVERITIES),
    ),
    h(
      'div',
      { class: 'row' },
      h('label', { for: detector.id }, 'Detector'),
      detector,
      h('label', { for: client.id }, 'Client'),
      client,
    ),
    h(
      'div',
      { class: 'row actions' },
      tr.el,
      h('button', { type: 'submit', id: 'incidents-apply' }, 'Filter'),
      h('a', { href: '/incidents' }, 'Clear'),
    ),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const box of form.querySelectorAll<HTMLInputElement>('input[type=checkbox]:checked'))
      p.append(box.name, box.value);
    for (const input of [detector, client])
      for (const v of input.value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean))
        p.append(input.name, v);
    const r = tr.read();
    if (r.from) p.set('from', r.from);
    if (r.to) p.set('to', r.to);
    go(p);
  });

  const params = new URLSearchParams();
  q.forEach((v, k) => {
    if (FILTERS.includes(k) || k === 'cursor') params.append(k, v);
  });
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
      const next = new URLSearchParams(q);
      if (r.next_cursor) next.set('cursor', r.next_cursor);
      const first = new URLSearchParams(q);
      first.delete('cursor');
      replace(
        results,
        incidentsTable(r.items),
        h(
          'nav',
          { class: 'pager', 'aria-label': 'Pages' },
          q.get('cursor')
            ? h('a', { href: `/incidents${qs(first)}`, class: 'button secondary' }, 'Newest')
            : null,
          r.next_cursor
            ? h(
                'a',
                { href: `/incidents${qs(next)}`, class: 'button', id: 'page-next', rel: 'next' },
                'Next page',
              )
            : null,
        ),
      );
    },
  );
}
