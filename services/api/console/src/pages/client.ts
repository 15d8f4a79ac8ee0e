import { api } from '../api.js';
import { badge, fmtNum, h, qs, seg, table, time } from '../dom.js';
import { loadCharts } from '../chart-registry.js';
import { alertsTable } from '../alerts-table.js';
import type { ClientPage } from '../types.js';
import { describeRange, timeRange } from '../timerange.js';
import { loadInto, pageHeader, section, type PageContext } from '../ui.js';

export function clientPage(ctx: PageContext): void {
  const id = ctx.params[0] ?? '';
  const q = ctx.query;
  document.title = `${id} · mcp-audit`;
  const base = `/clients/${seg(id)}`;
  const range = { from: q.get('from') ?? undefined, to: q.get('to') ?? undefined };
  const go = (r: { from?: string; to?: string }) => ctx.navigate(`${base}${qs({ from: r.from, to: r.to })}`);
  const tr = timeRange(q, go, 'cl');
  const form = h('form', { class: 'filters compact' }, tr.el, h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(tr.read());
  });
  const body = h('div');
  ctx.main.append(
    pageHeader(
      h('span', null, 'Client ', h('span', { class: 'mono' }, id)),
      h('p', { class: 'sub' }, describeRange(q)),
      h(
        'p',
        { class: 'sub' },
        h('a', { href: `/events${qs({ client: id, ...range })}` }, 'Search its events'),
      ),
    ),
    form,
    body,
  );
  void loadInto(
    ctx,
    body,
    (signal) => Promise.all([api.get<ClientPage>(`/clients/${seg(id)}`, range, signal), loadCharts()]),
    ([c, charts]) => {
      const activity = h('div', { class: 'chart', id: 'chart-activity' });
      const how = h('div', { class: 'chart heat', id: 'chart-hour-of-week' });
      const labels = Object.entries(c.labels ?? {});
      const st = c.state;
      body.append(
        h(
          'div',
          { class: 'grid two' },
          section(
            'Baseline',
            h(
              'dl',
              { class: 'fields' },
              h('dt', null, 'State'),
              h('dd', null, badge('state', st.state), st.since ? [' since ', time(st.since)] : null),
              h('dt', null, 'Days of history'),
              h(
                'dd',
                null,
                st.state === 'unknown'
                  ? 'No baseline for this client yet'
                  : `${fmtNum(st.active_days)} of ${fmtNum(st.required_days)} needed`,
              ),
            ),
            st.state === 'learning'
              ? h(
                  'p',
                  { class: 'hint' },
                  'While learning, only rules that need no baseline (authentication failures) raise alerts.',
                )
              : null,
          ),
          section(
            'Labels',
            labels.length
              ? h(
                  'ul',
                  { class: 'chips' },
                  labels.map(([k, v]) =>
                    h(
                      'li',
                      { class: 'chip' },
                      h(
                        'a',
                        { href: `/events${qs({ label: `${k}=${v}`, ...range })}` },
                        h('span', { class: 'chip-key' }, k),
                        h('span', { class: 'chip-value' }, v),
                      ),
                    ),
                  ),
                )
              : h('p', { class: 'empty' }, 'No labels.'),
          ),
        ),
        section(
          'Calls per hour against the expected band',
          c.activity.length ? activity : h('p', { class: 'empty' }, 'No activity in this range.'),
        ),
        section(
          'Hour-of-week profile (median calls, UTC)',
          c.hour_of_week.some((v) => v > 0) ? how : h('p', { class: 'empty' }, 'No baseline yet.'),
        ),
        h(
          'div',
          { class: 'grid two' },
          section(
            'Servers',
            table(
              c.servers,
              [
                {
                  label: 'Server',
                  cell: (s) =>
                    h('a', { href: `/events${qs({ client: id, server: s.name, ...range })}` }, s.name),
                },
                { label: 'First use', cell: (s) => time(s.first_seen), class: 'nowrap' },
                { label: 'Last use', cell: (s) => time(s.last_seen), class: 'nowrap' },
                { label: 'Calls', cell: (s) => fmtNum(s.calls), class: 'num' },
              ],
              { empty: 'No servers used in this range.', caption: 'Servers' },
            ),
          ),
          section(
            'Tools',
            table(
              c.tools,
              [
                {
                  label: 'Tool',
                  cell: (t) =>
                    h(
                      'a',
                      {
                        href: `/events${qs({ client: id, server: t.server, tool: t.name, ...range })}`,
                        class: 'mono',
                      },
                      `${t.server} · ${t.name}`,
                    ),
                },
                { label: 'First use', cell: (t) => time(t.first_seen), class: 'nowrap' },
                { label: 'Last use', cell: (t) => time(t.last_seen), class: 'nowrap' },
                { label: 'Calls', cell: (t) => fmtNum(t.calls), class: 'num' },
              ],
              { empty: 'No tools used in this range.', caption: 'Tools' },
            ),
          ),
        ),
        section(
          'Alerts',
          alertsTable(c.alerts, { client: false }),
          h('p', null, h('a', { href: `/alerts${qs({ client: id })}` }, 'All alerts of this client')),
        ),
      );
      if (c.activity.length) charts.activityChart(activity, c.activity);
      if (c.hour_of_week.some((v) => v > 0)) charts.hourOfWeekChart(how, c.hour_of_week);
    },
  );
}
