import { api } from '../api.js';
import { h, qs, replace } from '../dom.js';
import { alertsTable } from '../alerts-table.js';
import { actionButtons } from '../triage.js';
import type { AlertSummary } from '../types.js';
import { timeRange } from '../timerange.js';
import { loadInto, pageHeader, type PageContext } from '../ui.js';

const STATUSES = ['open', 'acknowledged', 'resolved'];
const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];
const FILTERS = ['status', 'severity', 'detector', 'client', 'from', 'to'];

export function alertsPage(ctx: PageContext): void {
  document.title = 'Alerts · mcp-audit';
  const q = ctx.query;
  const go = (p: URLSearchParams) => {
    p.delete('cursor');
    ctx.navigate(`/alerts${qs(p)}`);
  };
  const checks = (name: string, values: string[]) =>
    h(
      'fieldset',
      { class: 'checks' },
      h('legend', null, name === 'status' ? 'Status' : 'Severity'),
      values.map((v) =>
        h(
          'label',
          { class: 'check' },
          h('input', { type: 'checkbox', name, value: v, checked: q.getAll(name).includes(v) }),
          v,
        ),
      ),
    );
  const detector = h('input', {
    type: 'text',
    id: 'alerts-detector',
    name: 'detector',
    value: q.getAll('detector').join(', '),
    placeholder: 'e.g. tool_breadth',
  });
  const client = h('input', {
    type: 'text',
    id: 'alerts-client',
    name: 'client',
    value: q.getAll('client').join(', '),
    placeholder: 'client ids, comma separated',
  });
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
    'al',
  );
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Alert filters' },
    h('div', { class: 'row' }, checks('status', STATUSES), checks('severity', SEVERITIES)),
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
      h('button', { type: 'submit', id: 'alerts-apply' }, 'Filter'),
      h('a', { href: '/alerts' }, 'Clear'),
    ),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const box of form.querySelectorAll<HTMLInputElement>('input[type=checkbox]:checked'))
      p.append(box.name, box.value);
    for (const [name, input] of [
      ['detector', detector],
      ['client', client],
    ] as const)
      for (const v of input.value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean))
        p.append(name, v);
    const r = tr.read();
    if (r.from) p.set('from', r.from);
    if (r.to) p.set('to', r.to);
    go(p);
  });

  const apiFilter: Record<string, string | string[]> = {};
  const params = new URLSearchParams();
  q.forEach((v, k) => {
    if (FILTERS.includes(k) || k === 'cursor') params.append(k, v);
  });
  for (const k of FILTERS) {
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
      const next = new URLSearchParams(q);
      if (r.next_cursor) next.set('cursor', r.next_cursor);
      const first = new URLSearchParams(q);
      first.delete('cursor');
      replace(
        results,
        r.items.length
          ? h('label', { class: 'check select-all', for: all.id }, all, 'Select all on this page')
          : null,
        alertsTable(r.items, { select: selected, onSelect: updateSel }),
        h(
          'nav',
          { class: 'pager', 'aria-label': 'Pages' },
          q.get('cursor')
            ? h('a', { href: `/alerts${qs(first)}`, class: 'button secondary' }, 'Newest')
            : null,
          r.next_cursor
            ? h(
                'a',
                { href: `/alerts${qs(next)}`, class: 'button', id: 'page-next', rel: 'next' },
                'Next page',
              )
            : null,
        ),
      );
    },
  );
}
