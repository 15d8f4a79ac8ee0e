import { api } from '../api.js';
import { badge, dl, fmtNum, h, qs, replace, seg, table, time } from '../dom.js';
import { eventsTable } from '../events-table.js';
import { actionButtons, type TriageResult } from '../triage.js';
import type { AlertDetail, ValueCount } from '../types.js';
import { loadInto, pageHeader, section, type PageContext } from '../ui.js';

export function alertPage(ctx: PageContext): void {
  const id = ctx.params[0] ?? '';
  document.title = 'Alert · mcp-audit';
  const head = pageHeader(h('span', null, 'Alert'));
  const body = h('div');
  ctx.main.append(head, body);
  // A triage answer carries the alert's new state and the transition: the page is drawn again from
  // them (no second read of samples and deliveries).
  const applied = (detail: AlertDetail) => (results: TriageResult[]) => {
    const r = results[results.length - 1];
    if (!r) return;
    const next: AlertDetail = {
      ...detail,
      alert: { ...detail.alert, ...r.alert },
      transitions: [...detail.transitions, ...results.map((x) => x.transition)],
    };
    replace(body);
    draw(next);
  };
  const draw = (detail: AlertDetail) => {
    const { alert: a, samples, transitions, deliveries } = detail;
    {
      document.title = `${a.title} · mcp-audit`;
      const h1 = head.querySelector('h1')!;
      h1.textContent = a.title;
      const resolved = a.status === 'resolved';
      const around = {
        client: a.client_id,
        from: a.window?.start,
        to: a.window?.end,
      };
      const contributors = (title: string, rows: ValueCount[] | undefined, field: string) =>
        h(
          'div',
          { class: 'contrib' },
          h('h3', null, title),
          rows && rows.length
            ? h(
                'ol',
                { class: 'top-list' },
                rows.map((r) =>
                  h(
                    'li',
                    null,
                    h('a', { href: `/events${qs({ ...around, [field]: r.value })}`, class: 'mono' }, r.value),
                    h('span', { class: 'count' }, fmtNum(r.count)),
                  ),
                ),
              )
            : h('p', { class: 'empty' }, 'none'),
        );
      const exp = a.expected;
      body.append(
        h(
          'div',
          { class: 'alert-head card' },
          h(
            'div',
            { class: 'badges' },
            badge('sev', a.severity),
            badge('status', a.status),
            a.resolution
              ? h('span', { class: 'muted' }, `resolved as ${a.resolution.replace('_', ' ')}`)
              : null,
            a.assignee ? h('span', { class: 'muted' }, `assigned to ${a.assignee}`) : null,
          ),
          h('p', { class: 'summary' }, a.summary),
          resolved
            ? h('p', { class: 'hint' }, 'Resolved by a person: final. A later anomaly raises a new alert.')
            : actionButtons(() => ({ ids: [a.alert_id], describe: a.title }), applied(detail), {
                idPrefix: 'alert',
                disabled: { acknowledge: a.status !== 'open' },
              }),
        ),
        h(
          'div',
          { class: 'grid two' },
          section(
            'Why',
            dl([
              ['Observed', h('strong', { class: 'big' }, fmtNum(a.observed, 2))],
              [
                'Expected band',
                exp && (exp.low !== null || exp.high !== null)
                  ? `${fmtNum(exp.low, 2)} – ${fmtNum(exp.high, 2)}`
                  : 'no baseline (rule)',
              ],
              ['Score', fmtNum(a.score, 2)],
              ['Detector', a.detector],
              ['Window (UTC)', [time(a.window?.start), ' → ', time(a.window?.end)]],
              ['Baseline version', a.baseline_version === null ? null : String(a.baseline_version)],
            ]),
          ),
          section(
            'Alert',
            dl([
              ['Client', h('a', { href: `/clients/${seg(a.client_id)}` }, a.client_id)],
              ['Alert id', h('span', { class: 'mono' }, a.alert_id)],
              ['Dedup key', h('span', { class: 'mono ellipsis' }, a.dedup_key)],
              ['Created', time(a.created_at)],
              ['Updated', time(a.updated_at)],
              ['Events in the window', h('a', { href: `/events${qs(around)}` }, 'Search')],
            ]),
          ),
        ),
        section(
          'Contributors',
          h(
            'div',
            { class: 'grid three' },
            contributors('Tools', a.contributors?.tools, 'tool'),
            contributors('Addresses', a.contributors?.addresses, 'ip'),
            contributors('Sessions', a.contributors?.sessions, 'session'),
          ),
        ),
        section(
          'Sample events',
          eventsTable(samples, { empty: 'No sample events (they may be past retention).' }),
        ),
        section(
          'History',
          table(
            transitions,
            [
              { label: 'When (UTC)', cell: (t) => time(t.changed_at), class: 'nowrap' },
              { label: 'Action', cell: (t) => String(t.action ?? '').replace('_', ' ') },
              { label: 'Status', cell: (t) => `${t.from_status ?? '—'} → ${t.to_status ?? '—'}` },
              { label: 'By', cell: (t) => t.actor ?? '—' },
              {
                label: 'Details',
                cell: (t) => [
                  t.assignee ? `assignee: ${t.assignee}. ` : '',
                  t.resolution ? `reason: ${t.resolution.replace('_', ' ')}. ` : '',
                  t.note ?? '',
                ],
                class: 'wrap',
              },
            ],
            { empty: 'No transitions yet.', caption: 'Transitions' },
          ),
        ),
        section(
          'Notifications',
          table(
            deliveries,
            [
              { label: 'When (UTC)', cell: (d) => time(d.at), class: 'nowrap' },
              { label: 'Destination', cell: (d) => d.destination },
              { label: 'Kind', cell: (d) => d.kind },
              { label: 'Attempt', cell: (d) => String(d.attempt), class: 'num' },
              {
                label: 'Result',
                cell: (d) => [badge('delivery', d.status), d.http_status ? ` HTTP ${d.http_status}` : ''],
              },
              {
                label: 'Error',
                cell: (d) => (d.error ? h('span', { class: 'error-text' }, d.error) : ''),
                class: 'wrap',
              },
            ],
            { empty: 'No delivery attempts recorded.', caption: 'Delivery attempts' },
          ),
        ),
      );
    }
  };
  void loadInto(ctx, body, (signal) => api.get<AlertDetail>(`/alerts/${seg(id)}`, undefined, signal), draw);
}
