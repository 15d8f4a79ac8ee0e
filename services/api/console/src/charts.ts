import * as echarts from 'echarts/core';
import { BarChart, HeatmapChart, LineChart } from 'echarts/charts';
import { GridComponent, TooltipComponent, VisualMapComponent, LegendComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import type { ClientPage, ValueCount } from './types.js';
import { trackChart } from './chart-registry.js';

echarts.use([
  LineChart,
  BarChart,
  HeatmapChart,
  GridComponent,
  TooltipComponent,
  VisualMapComponent,
  LegendComponent,
  CanvasRenderer,
]);

// NOTE: tooltips use renderMode 'richText': they are drawn on the canvas, so ECharts writes no HTML
// (attacker-controlled names would otherwise go through its HTML formatter) and sets no inline style,
// which the CSP (style-src 'self') refuses.
const tooltip = { trigger: 'axis' as const, renderMode: 'richText' as const, confine: true };

const COLORS = { line: '#1f4e8c', band: 'rgba(46, 139, 87, 0.18)', bandLine: '#2e8b57', bar: '#3b6fb6' };

function mount(el: HTMLElement, option: echarts.EChartsCoreOption, label: string): echarts.ECharts {
  el.setAttribute('role', 'img');
  el.setAttribute('aria-label', label);
  const chart = echarts.init(el, undefined, { renderer: 'canvas' });
  // UTC like every time the console shows (fmtTime), so the axes' "(UTC)" holds.
  chart.setOption({ useUTC: true, ...option });
  const ro = new ResizeObserver(() => chart.resize());
  ro.observe(el);
  trackChart({
    dispose: () => {
      ro.disconnect();
      chart.dispose();
    },
  });
  return chart;
}

const HOUR = 3_600_000;
const COMPACT = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });
// Time-axis labels by level: a tick on a day boundary names the date ("Dec 8"), not the day of the
// month alone ("8"), which read as an hour under hourly bars.
const TIME_LABELS = {
  year: '{yyyy}',
  month: '{MMM} {yyyy}',
  day: '{MMM} {d}',
  hour: '{HH}:{mm}',
  minute: '{HH}:{mm}',
  second: '{HH}:{mm}:{ss}',
  millisecond: '{HH}:{mm}:{ss}',
  none: '{HH}:{mm}',
};
// Axis titles: what is counted and per what, and the time axis' zone.
const NAME = { color: '#4a5568', fontSize: 12 };
const axisTime = {
  type: 'time' as const,
  minInterval: HOUR,
  axisLabel: { hideOverlap: true, formatter: TIME_LABELS },
  name: 'hour (UTC)',
  nameLocation: 'middle' as const,
  nameGap: 26,
  nameTextStyle: NAME,
};
const axisCount = (name: string) => ({
  type: 'value' as const,
  minInterval: 1,
  name,
  nameLocation: 'middle' as const,
  nameGap: 40,
  nameTextStyle: NAME,
});

const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
const dayHour = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');

/**
 * Events per hour bin over the SELECTED range (the axis spans it whole, empty hours included, so a
 * quiet end of the range shows as quiet, not cut off); each bar fills its own hour (centred on its
 * middle) and ticks are never finer than an hour.
 */
export function rateChart(
  el: HTMLElement,
  points: Array<{ ts: string; count: number }>,
  range: { from: string; to: string },
): void {
  const min = Math.floor(Date.parse(range.from) / HOUR) * HOUR;
  const max = Math.max(min + HOUR, Math.ceil(Date.parse(range.to) / HOUR) * HOUR);
  const hours = Math.round((max - min) / HOUR);
  const withEvents = points.filter((p) => p.count > 0).length;
  mount(
    el,
    {
      animation: false,
      grid: { left: 60, right: 16, top: 16, bottom: 44 },
      tooltip: {
        ...tooltip,
        formatter: (ps: Array<{ value: [number, number] }>) => {
          const v = ps[0]?.value;
          if (!v) return '';
          const start = v[0] - HOUR / 2;
          return `${dayHour(start)}–${hhmm(start + HOUR)} UTC\nevents: ${v[1]}`;
        },
      },
      xAxis: {
        ...axisTime,
        min,
        max,
      },
      yAxis: axisCount('events / hour'),
      series: [
        {
          name: 'events',
          type: 'bar',
          barMaxWidth: 24,
          barMinWidth: 1,
          color: COLORS.line,
          data: points.map((p) => [Date.parse(p.ts) + HOUR / 2, p.count]),
        },
      ],
    },
    `Events per hour from ${dayHour(min)} to ${dayHour(max)} UTC: ${hours} hours, ${withEvents} with events`,
  );
}

/**
 * Observed calls per hour over the baseline band: the band is a stacked pair (low, high − low) with
 * only the upper part filled, the usual way to draw a confidence band in ECharts.
 */
export function activityChart(el: HTMLElement, activity: ClientPage['activity']): void {
  const low = activity.map((a) => [a.hour, a.expected_low ?? null]);
  const width = activity.map((a) => [
    a.hour,
    a.expected_low === null || a.expected_high === null
      ? null
      : Math.max(0, a.expected_high - a.expected_low),
  ]);
  mount(
    el,
    {
      animation: false,
      grid: { left: 60, right: 16, top: 36, bottom: 44 },
      legend: { data: ['observed', 'expected band'], top: 0 },
      tooltip,
      xAxis: axisTime,
      yAxis: axisCount('calls / hour'),
      series: [
        {
          name: 'band-low',
          type: 'line',
          stack: 'band',
          data: low,
          lineStyle: { opacity: 0 },
          showSymbol: false,
          silent: true,
          tooltip: { show: false },
        },
        {
          name: 'expected band',
          type: 'line',
          stack: 'band',
          data: width,
          lineStyle: { opacity: 0 },
          areaStyle: { color: COLORS.band },
          color: COLORS.bandLine,
          showSymbol: false,
        },
        {
          name: 'observed',
          type: 'line',
          data: activity.map((a) => [a.hour, a.calls]),
          color: COLORS.line,
          showSymbol: false,
          step: 'middle',
        },
      ],
    },
    `Calls per hour against the expected band, ${activity.length} hours`,
  );
}

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

export function hourOfWeekChart(el: HTMLElement, values: number[]): void {
  const data: Array<[number, number, number]> = [];
  values.forEach((v, i) => data.push([i % 24, Math.floor(i / 24), v]));
  const max = Math.max(1, ...values);
  mount(
    el,
    {
      animation: false,
      grid: { left: 60, right: 16, top: 8, bottom: 76 },
      tooltip: {
        renderMode: 'richText',
        confine: true,
        formatter: (p: { value: [number, number, number] }) =>
          `${DAYS[p.value[1]]} ${String(p.value[0]).padStart(2, '0')}:00 UTC\nmedian calls: ${p.value[2]}`,
      },
      xAxis: {
        type: 'category',
        data: Array.from({ length: 24 }, (_, i) => String(i).padStart(2, '0')),
        splitArea: { show: true },
        name: 'hour of day (UTC)',
        nameLocation: 'middle',
        nameGap: 26,
        nameTextStyle: NAME,
      },
      yAxis: {
        type: 'category',
        data: DAYS,
        inverse: true,
        splitArea: { show: true },
        name: 'day',
        nameLocation: 'middle',
        nameGap: 44,
        nameTextStyle: NAME,
      },
      visualMap: {
        min: 0,
        max,
        calculable: false,
        orient: 'horizontal',
        left: 'center',
        bottom: 0,
        itemHeight: 120,
        inRange: { color: ['#f3f6fb', '#1f4e8c'] },
      },
      series: [
        {
          name: 'median calls',
          type: 'heatmap',
          data,
          emphasis: { itemStyle: { borderColor: '#000', borderWidth: 1 } },
        },
      ],
    },
    'Median calls by hour of week (UTC), Monday first',
  );
}

export function barChart(el: HTMLElement, rows: ValueCount[], label: string): void {
  mount(
    el,
    {
      animation: false,
      grid: { left: 8, right: 24, top: 8, bottom: 28, containLabel: true },
      tooltip: { ...tooltip, axisPointer: { type: 'shadow' } },
      // Compact numbers ("1.5M") on the narrow count axis: full ones ran into each other.
      xAxis: {
        ...axisCount('events'),
        nameGap: 24,
        axisLabel: { hideOverlap: true, formatter: (v: number) => COMPACT.format(v) },
      },
      yAxis: {
        type: 'category',
        data: rows.map((r) => r.value),
        inverse: true,
        axisLabel: { width: 120, overflow: 'truncate' },
      },
      series: [{ name: label, type: 'bar', data: rows.map((r) => r.count), color: COLORS.bar }],
    },
    label,
  );
}
