import { api } from '../api.js';
import { fmtNum, h, qs, replace, seg, table, time } from '../dom.js';
import { eventsTable } from '../events-table.js';
import type { EventSummary, Range } from '../types.js';
import { describeRange, timeRange } from '../timerange.js';
import { loadInto, pageHeader, section, type PageContext } from '../ui.js';

interface SessionAnswer {
  session_id: string;
  identities: Array<{
    client_id: string;
    client_user: string | null;
    client_ip: string | null;
    first_ts: string;
    last_ts: string;
    events: number;
  }>;
  items: EventSummary[];
  next_cursor: string | null;
  range: Range;
}

export function sessionPage(ctx: PageContext): void {
  const id = ctx.params[0] ?? '';
  const q = ctx.query;
  document.title = 'Session · mcp-audit';
  const base = `/sessions/${seg(id)}`;
  const go = (r: { from?: string; to?: string }) => ctx.navigate(`${base}${qs({ from: r.from, to: r.to })}`);
  const tr = timeRange(q, go, 'se');
  const form = h('form', { class: 'filters compact' }, tr.el, h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(tr.read());
  });
  const body = h('div');
  ctx.main.append(
    pageHeader(
      h('span', null, 'Session ', h('span', { class: 'mono' }, id)),
      h('p', { class: 'sub' }, describeRange(q)),
      h(
        'p',
        { class: 'sub' },
        h(
          'a',
          {
            href: `/events${qs({ session: id, from: q.get('from') ?? undefined, to: q.get('to') ?? undefined })}`,
          },
          'Search its events',
        ),
      ),
    ),
    form,
    body,
  );
  const params = {
    from: q.get('from') ?? undefined,
    to: q.get('to') ?? undefined,
    cursor: q.get('cursor') ?? undefined,
  };
  void loadInto(
    ctx,
    body,
    (signal) => api.get<SessionAnswer>(`/sessions/${seg(id)}`, params, signal),
    (r) => {
      const warn =
        r.identities.length > 1
          ? h('p', { class: 'notice warn' }, `This session was used under ${r.identities.length} identities.`)
          : null;
      const next = new URLSearchParams(q);
      if (r.next_cursor) next.set('cursor', r.next_cursor);
      const first = new URLSearchParams(q);
      first.delete('cursor');
      replace(
        body,
        section(
          'Identities',
          warn,
          table(
            r.identities,
            [
              { label: 'Client', cell: (i) => h('a', { href: `/clients/${seg(i.client_id)}` }, i.client_id) },
              { label: 'User', cell: (i) => i.client_user ?? '—' },
              { label: 'Address', cell: (i) => i.client_ip ?? '—', class: 'mono' },
              { label: 'First', cell: (i) => time(i.first_ts), class: 'nowrap' },
              { label: 'Last', cell: (i) => time(i.last_ts), class: 'nowrap' },
              { label: 'Events', cell: (i) => fmtNum(i.events), class: 'num' },
            ],
            { empty: 'No events for this session in this range.', caption: 'Identities' },
          ),
        ),
        section(
          'Timeline (oldest first)',
          eventsTable(r.items, { session: false, empty: 'No events in this range.' }),
          h(
            'nav',
            { class: 'pager', 'aria-label': 'Pages' },
            q.get('cursor')
              ? h('a', { href: `${base}${qs(first)}`, class: 'button secondary' }, 'Start')
              : null,
            r.next_cursor
              ? h(
                  'a',
                  { href: `${base}${qs(next)}`, class: 'button', id: 'page-next', rel: 'next' },
                  'Next page',
                )
              : null,
          ),
        ),
      );
    },
  );
}
