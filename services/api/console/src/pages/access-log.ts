import { api } from '../api.js';
import { fmtNum, h, qs, replace, table, time } from '../dom.js';
import type { AccessLogRow } from '../types.js';
import { describeRange, timeRange } from '../timerange.js';
import { loadInto, pageHeader, type PageContext } from '../ui.js';

function filtersText(f: unknown): string {
  if (f === null || f === undefined || f === '') return '—';
  if (typeof f === 'string') return f;
  try {
    return JSON.stringify(f);
  } catch {
    return String(f);
  }
}

export function accessLogPage(ctx: PageContext): void {
  document.title = 'Access log · mcp-audit';
  const q = ctx.query;
  const go = (r: { from?: string; to?: string }) =>
    ctx.navigate(`/access-log${qs({ from: r.from, to: r.to })}`);
  const tr = timeRange(q, go, 'ac');
  const form = h('form', { class: 'filters compact' }, tr.el, h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(tr.read());
  });
  const body = h('div', { id: 'results' });
  ctx.main.append(
    pageHeader(
      'Access log',
      h('p', { class: 'sub' }, describeRange(q)),
      h('p', { class: 'sub' }, 'Every request that read or changed audit data, newest first.'),
    ),
    form,
    body,
  );
  const params = new URLSearchParams();
  for (const k of ['from', 'to', 'cursor']) if (q.get(k)) params.set(k, q.get(k)!);
  void loadInto(
    ctx,
    body,
    (signal) => api.get<{ items: AccessLogRow[]; next_cursor: string | null }>('/access-log', params, signal),
    (r) => {
      const next = new URLSearchParams(q);
      if (r.next_cursor) next.set('cursor', r.next_cursor);
      replace(
        body,
        table(
          r.items,
          [
            { label: 'When (UTC)', cell: (x) => time(x.at), class: 'nowrap' },
            { label: 'Key', cell: (x) => h('span', { class: 'mono' }, x.key_id), class: 'nowrap' },
            { label: 'Request', cell: (x) => h('span', { class: 'mono' }, `${x.method} ${x.route}`) },
            { label: 'Status', cell: (x) => String(x.status), class: 'num' },
            { label: 'Rows', cell: (x) => fmtNum(x.rows), class: 'num' },
            { label: 'ms', cell: (x) => fmtNum(x.duration_ms), class: 'num hide-narrow' },
            {
              label: 'Filters',
              cell: (x) => h('span', { class: 'mono clamp' }, filtersText(x.filters)),
              class: 'wrap',
            },
            { label: 'Address', cell: (x) => x.ip ?? '—', class: 'mono hide-narrow' },
          ],
          { empty: 'No requests in this range.', caption: 'Access log' },
        ),
        r.next_cursor
          ? h(
              'nav',
              { class: 'pager', 'aria-label': 'Pages' },
              h(
                'a',
                { href: `/access-log${qs(next)}`, class: 'button', id: 'page-next', rel: 'next' },
                'Next page',
              ),
            )
          : null,
      );
    },
  );
}
