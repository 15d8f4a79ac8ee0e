import { api, exportUrl } from '../api.js';
import { append, fmtNum, h, qs, replace } from '../dom.js';
import { eventsTable, FILTER_FIELDS, FILTER_NAMES } from '../events-table.js';
import type { EventSummary, Range, ValueCount } from '../types.js';
import { describeRange, timeRange } from '../timerange.js';
import { loadInto, pageHeader, type PageContext } from '../ui.js';

interface EventsAnswer {
  items: EventSummary[];
  next_cursor: string | null;
  range: Range;
}
interface FacetsAnswer {
  facets: Record<string, ValueCount[]>;
  range: Range;
}

const FACETS: Array<[string, string, string]> = [
  ['client_id', 'client', 'Clients'],
  ['client_user', 'user', 'Users'],
  ['server_name', 'server', 'Servers'],
  ['tool_name', 'tool', 'Tools'],
  ['method', 'method', 'Methods'],
  ['kind', 'kind', 'Kinds'],
  ['outcome', 'outcome', 'Outcomes'],
  ['source_id', 'source', 'Sources'],
];

/** The API's own parameters, verbatim: the console URL is the query. */
function apiParams(q: URLSearchParams, withCursor: boolean): URLSearchParams {
  const p = new URLSearchParams();
  q.forEach((v, k) => {
    if (
      FILTER_NAMES.has(k) ||
      k === 'q' ||
      k === 'from' ||
      k === 'to' ||
      k === 'limit' ||
      (withCursor && k === 'cursor')
    )
      p.append(k, v);
  });
  return p;
}

export function eventsPage(ctx: PageContext): void {
  document.title = 'Events · mcp-audit';
  const q = ctx.query;
  const go = (p: URLSearchParams) => {
    p.delete('cursor');
    ctx.navigate(`/events${qs(p)}`);
  };
  const withFilter = (k: string, v: string) => {
    const p = new URLSearchParams(q);
    p.delete('cursor');
    if (!p.getAll(k).includes(v)) p.append(k, v);
    return p;
  };
  const without = (k: string, v: string) => {
    const p = new URLSearchParams();
    q.forEach((val, key) => {
      if (!(key === k && val === v) && key !== 'cursor') p.append(key, val);
    });
    return p;
  };

  // Filter form: one field + value to add, the free text, the time range. Enter anywhere submits.
  const field = h(
    'select',
    { id: 'filter-field', 'aria-label': 'Filter field' },
    FILTER_FIELDS.map(([k, label]) => h('option', { value: k }, label)),
  );
  const value = h('input', {
    type: 'text',
    id: 'filter-value',
    'aria-label': 'Filter value',
    placeholder: 'value, e.g. a client id',
  });
  const text = h('input', {
    type: 'search',
    id: 'filter-q',
    name: 'q',
    value: q.get('q') ?? '',
    placeholder: 'tool name, error message, arguments',
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
    'ev',
  );
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Event filters' },
    h('div', { class: 'row' }, h('label', { for: text.id }, 'Search'), text),
    h('div', { class: 'row' }, h('span', { class: 'label' }, 'Add filter'), field, value),
    h('div', { class: 'row' }, tr.el, h('button', { type: 'submit', id: 'filter-apply' }, 'Search')),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams(q);
    const v = value.value.trim();
    if (v && !p.getAll(field.value).includes(v)) p.append(field.value, v);
    p.delete('q');
    if (text.value.trim()) p.set('q', text.value.trim());
    const r = tr.read();
    p.delete('from');
    p.delete('to');
    if (r.from) p.set('from', r.from);
    if (r.to) p.set('to', r.to);
    go(p);
  });

  const chips: HTMLElement[] = [];
  q.forEach((v, k) => {
    if (!FILTER_NAMES.has(k)) return;
    const label = FILTER_FIELDS.find(([f]) => f === k)?.[1] ?? k;
    chips.push(
      h(
        'li',
        { class: 'chip' },
        h('span', { class: 'chip-key' }, label),
        h('span', { class: 'chip-value' }, v || '(empty)'),
        h(
          'a',
          {
            href: `/events${qs(without(k, v))}`,
            class: 'chip-remove',
            'aria-label': `Remove filter ${label} ${v}`,
            title: 'Remove',
          },
          '×',
        ),
      ),
    );
  });
  const active = chips.length
    ? h(
        'div',
        { class: 'active-filters' },
        h('ul', { class: 'chips', 'aria-label': 'Active filters' }, chips),
        h(
          'a',
          { href: `/events${qs({ from: q.get('from') ?? undefined, to: q.get('to') ?? undefined })}` },
          'Clear filters',
        ),
      )
    : null;

  const params = apiParams(q, true);
  const downloads = h(
    'div',
    { class: 'downloads' },
    'Download: ',
    h(
      'a',
      { href: exportUrl('ndjson', apiParams(q, false)), download: 'events.ndjson', id: 'download-ndjson' },
      'NDJSON',
    ),
    ' · ',
    h(
      'a',
      { href: exportUrl('csv', apiParams(q, false)), download: 'events.csv', id: 'download-csv' },
      'CSV',
    ),
  );
  const results = h('div', { class: 'results', id: 'results' });
  const facets = h('aside', { class: 'facets', 'aria-label': 'Facet counts' });

  append(ctx.main, [
    pageHeader(
      'Events',
      h('p', { class: 'sub' }, describeRange(q)),
      q.get('q') ? h('p', { class: 'sub' }, 'Text: ', h('q', null, q.get('q') ?? '')) : null,
    ),
    form,
    active,
    h('div', { class: 'split' }, h('div', { class: 'main-col' }, downloads, results), facets),
  ]);

  void loadInto(
    ctx,
    results,
    (signal) => api.get<EventsAnswer>('/events', params, signal),
    (r) => {
      const nav: HTMLElement[] = [];
      if (q.get('cursor')) {
        const first = new URLSearchParams(q);
        first.delete('cursor');
        nav.push(
          h('a', { href: `/events${qs(first)}`, class: 'button secondary', id: 'page-first' }, 'Newest'),
        );
      }
      if (r.next_cursor) {
        const next = new URLSearchParams(q);
        next.set('cursor', r.next_cursor);
        nav.push(
          h('a', { href: `/events${qs(next)}`, class: 'button', id: 'page-next', rel: 'next' }, 'Next page'),
        );
      }
      replace(
        results,
        h(
          'p',
          { class: 'count-line', id: 'result-count' },
          `${fmtNum(r.items.length)} event${r.items.length === 1 ? '' : 's'}${r.next_cursor ? ' on this page' : ''}, newest first`,
        ),
        eventsTable(r.items, { empty: 'No events match these filters in this range.' }),
        nav.length ? h('nav', { class: 'pager', 'aria-label': 'Pages' }, nav) : null,
      );
    },
  );
  void loadInto(
    ctx,
    facets,
    (signal) => api.get<FacetsAnswer>('/events/facets', apiParams(q, false), signal),
    (r) => {
      facets.append(h('h2', null, 'Facets'));
      for (const [key, param, title] of FACETS) {
        const rows = r.facets[key] ?? [];
        if (rows.length === 0) continue;
        facets.append(
          h(
            'section',
            { class: 'facet' },
            h('h3', null, title),
            h(
              'ul',
              null,
              rows.map((row) => {
                const on = q.getAll(param).includes(row.value);
                return h(
                  'li',
                  null,
                  h(
                    'a',
                    {
                      href: `/events${qs(on ? without(param, row.value) : withFilter(param, row.value))}`,
                      class: on ? 'facet-on' : undefined,
                      title: on ? 'Remove this filter' : 'Add as a filter',
                    },
                    h('span', { class: 'facet-value' }, row.value || '(empty)'),
                    h('span', { class: 'count' }, fmtNum(row.count)),
                  ),
                );
              }),
            ),
          ),
        );
      }
    },
  );
}
