import { h, qs } from './dom.js';
import { timeRange } from './timerange.js';

/** The filters of the alert and incident lists: their URL parameters, in the API's names. */
export const LIST_FILTERS = ['status', 'severity', 'detector', 'client', 'from', 'to'];
export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];

export interface ListFilterOptions {
  /** The page's path, e.g. '/alerts'. */
  path: string;
  /** Prefix of element ids ('alerts' → alerts-detector, alerts-apply). */
  idPrefix: string;
  /** The time range widget's id prefix. */
  rangePrefix: string;
  /** Accessible name of the form. */
  label: string;
  statuses: string[];
  detectorPlaceholder: string;
  navigate: (to: string) => void;
}

/**
 * The filter form of a list page (status and severity boxes, detector and client lists, a time
 * range): every filter lives in the URL, so applying navigates and Back works. Applying drops the
 * page cursor.
 */
export function listFilterForm(q: URLSearchParams, o: ListFilterOptions): HTMLFormElement {
  const go = (p: URLSearchParams) => {
    p.delete('cursor');
    o.navigate(`${o.path}${qs(p)}`);
  };
  const checks = (name: string, legend: string, values: string[]) =>
    h(
      'fieldset',
      { class: 'checks' },
      h('legend', null, legend),
      values.map((v) =>
        h(
          'label',
          { class: 'check' },
          h('input', { type: 'checkbox', name, value: v, checked: q.getAll(name).includes(v) }),
          v,
        ),
      ),
    );
  const text = (name: string, placeholder: string) =>
    h('input', {
      type: 'text',
      id: `${o.idPrefix}-${name}`,
      name,
      value: q.getAll(name).join(', '),
      placeholder,
    });
  const detector = text('detector', o.detectorPlaceholder);
  const client = text('client', 'client ids, comma separated');
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
    o.rangePrefix,
  );
  const form = h(
    'form',
    { class: 'filters', 'aria-label': o.label },
    h(
      'div',
      { class: 'row' },
      checks('status', 'Status', o.statuses),
      checks('severity', 'Severity', SEVERITIES),
    ),
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
      h('button', { type: 'submit', id: `${o.idPrefix}-apply` }, 'Filter'),
      h('a', { href: o.path }, 'Clear'),
    ),
  ) as HTMLFormElement;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const box of form.querySelectorAll<HTMLInputElement>('input[type=checkbox]:checked'))
      p.append(box.name, box.value);
    for (const input of [detector, client])
      for (const v of input.value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean))
        p.append(input.name, v);
    const r = tr.read();
    if (r.from) p.set('from', r.from);
    if (r.to) p.set('to', r.to);
    go(p);
  });
  return form;
}

/** The page's filters and cursor, as the list endpoint takes them. */
export function listParams(q: URLSearchParams): URLSearchParams {
  const params = new URLSearchParams();
  q.forEach((v, k) => {
    if (LIST_FILTERS.includes(k) || k === 'cursor') params.append(k, v);
  });
  return params;
}

/** Newest / Next page links of a keyset-paged list. */
export function pager(path: string, q: URLSearchParams, nextCursor: string | null): HTMLElement {
  const next = new URLSearchParams(q);
  if (nextCursor) next.set('cursor', nextCursor);
  const first = new URLSearchParams(q);
  first.delete('cursor');
  return h(
    'nav',
    { class: 'pager', 'aria-label': 'Pages' },
    q.get('cursor') ? h('a', { href: `${path}${qs(first)}`, class: 'button secondary' }, 'Newest') : null,
    nextCursor
      ? h('a', { href: `${path}${qs(next)}`, class: 'button', id: 'page-next', rel: 'next' }, 'Next page')
      : null,
  );
}
