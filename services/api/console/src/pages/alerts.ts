import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { alertsTable } from '../alerts-table.js';
import { actionButtons } from '../triage.js';
import type { AlertSummary } from '../types.js';
import { LIST_FILTERS, listFilterForm, listParams, pager } from '../list-filters.js';
import { loadInto, pageHeader, type PageContext } from '../ui.js';

const STATUSES = ['open', 'acknowledged', 'resolved'];

export function alertsPage(ctx: PageContext): void {
  document.title = 'Alerts · mcp-audit';
  const q = ctx.query;
  const form = listFilterForm(q, {
    path: '/alerts',
    idPrefix: 'alerts',
    rangePrefix: 'al',
    label: 'Alert filters',
    statuses: STATUSES,
    detectorPlaceholder: 'e.g. tool_breadth',
    navigate: (to) => ctx.navigate(to),
  });

  const apiFilter: Record<string, string | string[]> = {};
  const params = listParams(q);
  for (const k of LIST_FILTERS) {
    const vs = q.getAll(k);
    if (vs.length === 0) continue;
    // The bulk body takes single values for the range, lists for the rest.
    apiFilter[k] = k === 'from' || k === 'to' ? vs[0]! : vs;
  }

  const selected = new Set<string>();
  const selInfo = h('span', { class: 'sel-info', 'aria-live': 'polite' }, 'None selected');
  const results = h('div', { id: 'results' });
  const refresh = () => ctx.navigate(location.pathname + location.search, { replace: true });
  const updateSel = () => {
    selInfo.textContent = selected.size ? `${selected.size} selected` : 'None selected';
    for (const b of toolbar.querySelectorAll<HTMLButtonElement>('.sel-actions button'))
      b.disabled = selected.size === 0;
  };
  const toolbar = h(
    'div',
    { class: 'toolbar' },
    h(
      'div',
      { class: 'sel-actions' },
      selInfo,
      actionButtons(
        () =>
          selected.size
            ? {
                ids: [...selected],
                describe: `${selected.size} selected alert${selected.size === 1 ? '' : 's'}`,
              }
            : null,
        refresh,
        { idPrefix: 'sel' },
      ),
    ),
    h(
      'details',
      { class: 'bulk' },
      h('summary', null, 'Act on every alert matching the filter'),
      h(
        'p',
        { class: 'hint' },
        Object.keys(apiFilter).length
          ? 'Applies to all matching alerts, not only this page.'
          : 'No filter is set: this applies to every alert.',
      ),
      actionButtons(() => ({ filter: apiFilter, describe: 'every alert matching the filter' }), refresh, {
        idPrefix: 'bulk',
      }),
    ),
  );

  ctx.main.append(pageHeader('Alerts'), form, toolbar, results);
  updateSel();
  void loadInto(
    ctx,
    results,
    (signal) => api.get<{ items: AlertSummary[]; next_cursor: string | null }>('/alerts', params, signal),
    (r) => {
      const all = h('input', {
        type: 'checkbox',
        id: 'select-all',
        on: {
          change: () => {
            for (const a of r.items)
              if (all.checked) selected.add(a.alert_id);
              else selected.delete(a.alert_id);
            for (const box of results.querySelectorAll<HTMLInputElement>('.row-select'))
              box.checked = all.checked;
            updateSel();
          },
        },
      });
      replace(
        results,
        r.items.length
          ? h('label', { class: 'check select-all', for: all.id }, all, 'Select all on this page')
          : null,
        alertsTable(r.items, { select: selected, onSelect: updateSel }),
        pager('/alerts', q, r.next_cursor),
      );
    },
  );
}
