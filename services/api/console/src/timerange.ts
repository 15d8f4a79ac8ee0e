import { h } from './dom.js';

const PRESETS: Array<[string, number]> = [
  ['15m', 15 * 60_000],
  ['1h', 3600_000],
  ['6h', 6 * 3600_000],
  ['24h', 24 * 3600_000],
  ['7d', 7 * 24 * 3600_000],
  ['30d', 30 * 24 * 3600_000],
];

/** `<input type=datetime-local>` value for an ISO instant, in UTC (the console shows UTC everywhere). */
function toLocalInput(iso: string | null): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toISOString().slice(0, 16);
}

function fromLocalInput(v: string): string | undefined {
  if (!v) return undefined;
  const d = new Date(`${v}:00Z`);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** A preset's range ending now, as absolute instants: a copied link then reopens the same view. */
export function presetRange(ms: number, now = Date.now()): { from: string; to: string } {
  // Whole minutes keep the URL readable and the result stable between two clicks.
  const to = Math.ceil(now / 60_000) * 60_000;
  return { from: new Date(to - ms).toISOString(), to: new Date(to).toISOString() };
}

export function describeRange(q: URLSearchParams, fallback = 'Last 24 hours'): string {
  const from = q.get('from');
  const to = q.get('to');
  if (!from && !to) return fallback;
  if (from && to) {
    const ms = Date.parse(to) - Date.parse(from);
    const p = PRESETS.find(([, v]) => v === ms);
    if (p && Math.abs(Date.parse(to) - Date.now()) < 120_000) return `Last ${p[0]}`;
  }
  return `${from ? from.replace('T', ' ').slice(0, 16) : '…'} → ${to ? to.replace('T', ' ').slice(0, 16) : 'now'} UTC`;
}

/**
 * The time controls of a filter form: preset buttons that apply at once, and custom From/To (UTC)
 * fields that go with the form's own submit (Enter works in them).
 */
export function timeRange(
  q: URLSearchParams,
  apply: (range: { from?: string; to?: string }) => void,
  idPrefix = 'range',
): { el: HTMLElement; read: () => { from?: string; to?: string } } {
  const from = h('input', {
    type: 'datetime-local',
    id: `${idPrefix}-from`,
    value: toLocalInput(q.get('from')),
  });
  const to = h('input', { type: 'datetime-local', id: `${idPrefix}-to`, value: toLocalInput(q.get('to')) });
  const el = h(
    'fieldset',
    { class: 'timerange' },
    h('legend', null, 'Time range (UTC)'),
    h(
      'div',
      { class: 'presets', role: 'group', 'aria-label': 'Quick ranges' },
      h('span', { class: 'muted', 'aria-hidden': 'true' }, 'Last'),
      PRESETS.map(([label, ms]) =>
        h(
          'button',
          {
            type: 'button',
            class: 'chip-button',
            id: `${idPrefix}-preset-${label}`,
            'aria-label': `Last ${label}`,
            on: { click: () => apply(presetRange(ms)) },
          },
          label,
        ),
      ),
    ),
    h('label', { for: from.id }, 'From'),
    from,
    h('label', { for: to.id }, 'To'),
    to,
  );
  return { el, read: () => ({ from: fromLocalInput(from.value), to: fromLocalInput(to.value) }) };
}
