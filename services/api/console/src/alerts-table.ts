import { badge, h, seg, table, time } from './dom.js';
import type { AlertSummary } from './types.js';

export function alertsTable(
  rows: AlertSummary[],
  opts: { select?: Set<string>; onSelect?: () => void; client?: boolean } = {},
): HTMLElement {
  return table(
    rows,
    [
      ...(opts.select
        ? [
            {
              label: 'Select',
              class: 'select',
              cell: (a: AlertSummary) =>
                h('input', {
                  type: 'checkbox',
                  class: 'row-select',
                  'aria-label': `Select alert ${a.title}`,
                  checked: opts.select!.has(a.alert_id),
                  'data-id': a.alert_id,
                  on: {
                    change: (ev: Event) => {
                      const box = ev.target as HTMLInputElement;
                      if (box.checked) opts.select!.add(a.alert_id);
                      else opts.select!.delete(a.alert_id);
                      opts.onSelect?.();
                    },
                  },
                }),
            },
          ]
        : []),
      { label: 'Severity', cell: (a) => badge('sev', a.severity) },
      {
        label: 'Alert',
        cell: (a) => [
          h('a', { href: `/alerts/${seg(a.alert_id)}`, class: 'alert-link' }, a.title),
          h('div', { class: 'muted clamp' }, a.summary),
        ],
        class: 'wrap',
      },
      {
        label: 'Status',
        cell: (a) => [
          badge('status', a.status),
          a.resolution ? h('div', { class: 'muted' }, a.resolution.replace('_', ' ')) : null,
        ],
      },
      ...(opts.client === false
        ? []
        : [
            {
              label: 'Client',
              cell: (a: AlertSummary) =>
                h('a', { href: `/clients/${seg(a.client_id)}`, class: 'nowrap' }, a.client_id),
            },
          ]),
      { label: 'Detector', cell: (a) => a.detector, class: 'hide-narrow' },
      { label: 'Assignee', cell: (a) => a.assignee ?? '—', class: 'hide-narrow' },
      { label: 'Created (UTC)', cell: (a) => time(a.created_at), class: 'nowrap' },
    ],
    { empty: 'No alerts match.', caption: 'Alerts' },
  );
}
