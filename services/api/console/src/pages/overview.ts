import { api } from '../api.js';
import { fmtNum, h, qs, time, type Child } from '../dom.js';
import { loadCharts } from '../chart-registry.js';
import type { Overview, ValueCount } from '../types.js';
import { describeRange, timeRange } from '../timerange.js';
import { loadInto, pageHeader, section, type PageContext } from '../ui.js';

const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const;
// Silent sources listed by name; the rest are counted ("and N more").
const SILENT_SHOWN = 10;

export function overviewPage(ctx: PageContext): void {
  document.title = 'Overview · mcp-audit';
  const q = ctx.query;
  const range = { from: q.get('from') ?? undefined, to: q.get('to') ?? undefined };
  const go = (r: { from?: string; to?: string }) => ctx.navigate(`/${qs({ from: r.from, to: r.to })}`);
  const tr = timeRange(q, go, 'ov');
  const form = h('form', { class: 'filters compact' }, tr.el, h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(tr.read());
  });
  const body = h('div', { class: 'overview' });
  ctx.main.append(pageHeader('Overview', h('p', { class: 'sub' }, describeRange(q))), form, body);

  // Links into the event search keep the overview's range, so the numbers match what opens.
  const eventsLink = (field: string, value: string) => `/events${qs({ ...range, [field]: value })}`;
  const list = (rows: ValueCount[], field: string): Child =>
    rows.length === 0
      ? h('p', { class: 'empty' }, 'No events in this range.')
      : h(
          'ol',
          { class: 'top-list' },
          rows.map((r) =>
            h(
              'li',
              null,
              h('a', { href: eventsLink(field, r.value) }, r.value),
              h('span', { class: 'count' }, fmtNum(r.count)),
            ),
          ),
        );

  void loadInto(
    ctx,
    body,
    (signal) => Promise.all([api.get<Overview>('/overview', range, signal), loadCharts()]),
    ([o, charts]) => {
      const rate = h('div', { class: 'chart', id: 'chart-rate' });
      const outcomes = h('div', { class: 'chart small', id: 'chart-outcomes' });
      const total = o.event_rate.reduce((n, p) => n + p.count, 0);
      const sev = o.open_alerts_by_severity;
      body.append(
        h(
          'div',
          { class: 'grid two' },
          section(
            'Open alerts',
            h(
              'ul',
              { class: 'severity-tiles' },
              SEVERITIES.map((s) =>
                h(
                  'li',
                  null,
                  h(
                    'a',
                    { href: `/alerts${qs({ status: 'open', severity: s })}`, class: `tile sev-${s}` },
                    h('span', { class: 'n' }, fmtNum(sev?.[s] ?? 0)),
                    h('span', null, s),
                  ),
                ),
              ),
            ),
          ),
          section(
            'Ingestion health',
            h(
              'dl',
              { class: 'fields' },
              h('dt', null, 'Dead letters'),
              h('dd', null, o.ingestion.dead_letters === null ? 'unknown' : fmtNum(o.ingestion.dead_letters)),
              h('dt', null, 'Silent sources'),
              h(
                'dd',
                null,
                o.ingestion.silent_sources_total === 0 ? 'none' : fmtNum(o.ingestion.silent_sources_total),
              ),
            ),
            o.ingestion.silent_sources.length
              ? h(
                  'ul',
                  { class: 'plain', id: 'silent-sources' },
                  o.ingestion.silent_sources
                    .slice(0, SILENT_SHOWN)
                    .map((s) =>
                      h(
                        'li',
                        null,
                        h('a', { href: eventsLink('source', s.source_id) }, s.source_id),
                        ' last seen ',
                        time(s.last_seen),
                      ),
                    ),
                  o.ingestion.silent_sources_total > SILENT_SHOWN
                    ? h(
                        'li',
                        { class: 'more' },
                        `and ${fmtNum(o.ingestion.silent_sources_total - SILENT_SHOWN)} more`,
                      )
                    : null,
                )
              : null,
          ),
        ),
        section(`Events per hour (${fmtNum(total)} in range)`, rate),
        h(
          'div',
          { class: 'grid three' },
          section(
            'Outcomes',
            o.outcomes.length ? outcomes : h('p', { class: 'empty' }, 'No events in this range.'),
            list(o.outcomes, 'outcome'),
          ),
          section('Top clients', list(o.top_clients, 'client')),
          section('Top tools', list(o.top_tools, 'tool')),
        ),
      );
      charts.rateChart(rate, o.event_rate, o.range);
      if (o.outcomes.length) charts.barChart(outcomes, o.outcomes, 'Events by outcome');
    },
  );
}
