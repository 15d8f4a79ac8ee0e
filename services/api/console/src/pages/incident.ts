import { api } from '../api.js';
import { alertsTable } from '../alerts-table.js';
import { badge, dl, h, seg, table, time } from '../dom.js';
import type { AlertSummary } from '../types.js';
import { loadInto, pageHeader, section, type PageContext } from '../ui.js';
import type { IncidentSummary } from './incidents.js';

interface TimelineEntry {
  seq: number;
  kind: string;
  at: string;
  alert_id: string;
  alert_title: string;
  detector: string;
  client_id: string;
  alert_severity: string;
  severity: string;
  status: string;
  alerts: number;
  open_alerts: number;
  note: string | null;
}

interface IncidentDetail {
  incident: IncidentSummary;
  alerts: AlertSummary[];
  timeline: TimelineEntry[];
}

const KIND_TEXT: Record<string, string> = {
  opened: 'Opened by',
  joined: 'Joined by',
  reopened: 'Reopened by',
  alert_resolved: 'Alert ended',
  resolved: 'Resolved: last alert ended',
};

export function incidentPage(ctx: PageContext): void {
  const id = ctx.params[0] ?? '';
  document.title = 'Incident · mcp-audit';
  const head = pageHeader(h('span', null, 'Incident'));
  const body = h('div', { id: 'incident' });
  ctx.main.append(head, body);
  void loadInto(
    ctx,
    body,
    (signal) => api.get<IncidentDetail>(`/incidents/${seg(id)}`, undefined, signal),
    (d) => {
      const i = d.incident;
      document.title = `${i.title} · mcp-audit`;
      head.querySelector('h1')!.textContent = i.title;
      body.append(
        h(
          'div',
          { class: 'alert-head card' },
          h('div', { class: 'badges' }, badge('sev', i.severity), badge('status', i.status)),
          dl([
            ['Incident id', h('span', { class: 'mono' }, i.incident_id)],
            ['Alerts', `${i.alerts} (${i.open_alerts} open)`],
            ['Detectors', i.detectors.join(', ')],
            [
              'Clients',
              i.clients.flatMap((c, n) => [n ? ', ' : '', h('a', { href: `/clients/${seg(c)}` }, c)]),
            ],
            ['Opened', time(i.opened_at)],
            ['Last change', time(i.updated_at)],
            ['Event time', [time(i.window.start), ' – ', time(i.window.end)]],
          ]),
        ),
        section('Alerts in this incident', alertsTable(d.alerts)),
        section(
          'Timeline',
          table(
            d.timeline,
            [
              { label: '#', cell: (t) => String(t.seq) },
              { label: 'At (UTC)', cell: (t) => time(t.at), class: 'nowrap' },
              { label: 'What', cell: (t) => KIND_TEXT[t.kind] ?? t.kind },
              {
                label: 'Alert',
                cell: (t) => [
                  h('a', { href: `/alerts/${seg(t.alert_id)}` }, t.alert_title || t.alert_id),
                  h('div', { class: 'muted' }, `${t.detector} · ${t.client_id}`),
                  t.note ? h('div', { class: 'muted clamp' }, t.note) : null,
                ],
                class: 'wrap',
              },
              {
                label: 'Incident after',
                cell: (t) => [badge('sev', t.severity), ' ', badge('status', t.status)],
              },
              { label: 'Open alerts', cell: (t) => `${t.open_alerts} of ${t.alerts}`, class: 'nowrap' },
            ],
            { empty: 'No timeline.', caption: 'Incident timeline' },
          ),
        ),
      );
    },
  );
}
