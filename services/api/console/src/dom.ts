/**
 * The only way the console creates DOM. Every value becomes a text node or an attribute set with
 * setAttribute; there is no innerHTML anywhere, because everything shown (tool names, arguments, error
 * messages, labels) is attacker-controlled. Event handlers are functions, never attribute strings.
 */
export type Child = Node | string | number | null | undefined | false | Child[];

type Handler = (ev: Event) => void;
export interface Attrs {
  [name: string]: string | number | boolean | null | undefined | Handler | Record<string, Handler>;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs)
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'on') {
        for (const [type, fn] of Object.entries(value as Record<string, Handler>))
          el.addEventListener(type, fn);
        continue;
      }
      // NOTE: refusing on* attributes keeps a stray string from ever becoming script (CSP would too).
      if (/^on/i.test(name)) throw new Error(`h(): event attribute ${name} refused; use { on: { … } }`);
      if (typeof value === 'function') continue;
      el.setAttribute(name, value === true ? '' : String(value));
    }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function replace(el: Element, ...children: Child[]): void {
  clear(el);
  append(el, children);
}

/** An internal link handled by the router (plain <a href>, so middle-click and copy work). */
export function link(href: string, ...children: Child[]): HTMLAnchorElement {
  return h('a', { href }, ...children);
}

/** A path segment from data: always encoded, so an id like `../admin` stays one segment. */
export const seg = (v: string): string => encodeURIComponent(v);

export function qs(params: URLSearchParams | Record<string, string | string[] | undefined>): string {
  const p = params instanceof URLSearchParams ? params : new URLSearchParams();
  if (!(params instanceof URLSearchParams))
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined) continue;
      for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
    }
  const s = p.toString();
  return s ? `?${s}` : '';
}

const pad = (n: number) => String(n).padStart(2, '0');

/** `2026-12-01 14:03:07 UTC`-style, always UTC: analysts compare times across sources. */
export function fmtTime(iso: string | null | undefined, withSeconds = true): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const s = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  return withSeconds ? `${s}:${pad(d.getUTCSeconds())}` : s;
}

export function time(iso: string | null | undefined): HTMLTimeElement {
  return h('time', { datetime: iso ?? undefined, title: iso ?? undefined }, fmtTime(iso));
}

export function fmtNum(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits });
}

export function badge(kind: string, value: string): HTMLSpanElement {
  // The class comes from a fixed list; the value is only ever text.
  const safe = /^[a-z_]{1,20}$/.test(value) ? value : 'other';
  return h('span', { class: `badge ${kind}-${safe}` }, value);
}

export interface Column<T> {
  label: string;
  cell: (row: T) => Child;
  class?: string;
}

export function table<T>(
  rows: readonly T[],
  cols: Column<T>[],
  opts: { empty?: string; caption?: string; rowClass?: (r: T) => string | undefined } = {},
): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty' }, opts.empty ?? 'Nothing here.');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      null,
      opts.caption ? h('caption', { class: 'sr-only' }, opts.caption) : null,
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          cols.map((c) => h('th', { scope: 'col', class: c.class }, c.label)),
        ),
      ),
      h(
        'tbody',
        null,
        rows.map((r) =>
          h(
            'tr',
            { class: opts.rowClass?.(r) },
            cols.map((c) => h('td', { class: c.class, 'data-label': c.label }, h('div', null, c.cell(r)))),
          ),
        ),
      ),
    ),
  );
}

/** A `<dl>` of label → value pairs, skipping nothing: an empty value shows as an em dash. */
export function dl(pairs: Array<[string, Child]>): HTMLDListElement {
  return h(
    'dl',
    { class: 'fields' },
    pairs.map(([k, v]) => [
      h('dt', null, k),
      h('dd', null, v === null || v === undefined || v === '' ? '—' : v),
    ]),
  );
}
