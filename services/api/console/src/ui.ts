import { ApiError } from './api.js';
import { h, replace, type Child } from './dom.js';

export interface PageContext {
  /** Path parameters, already decoded. */
  params: string[];
  query: URLSearchParams;
  main: HTMLElement;
  /** Aborted when the user navigates away: late answers must not draw over the next page. */
  signal: AbortSignal;
  navigate: (url: string, opts?: { replace?: boolean }) => void;
}

// A blink: answers faster than this never flash a spinner.
const SPINNER_DELAY_MS = 150;

/**
 * Runs `work` for a region of the page: after SPINNER_DELAY_MS the region shows a spinner, on error a
 * message that says what happened (a query limit gets its own wording) and a retry button.
 */
export async function loadInto<T>(
  ctx: PageContext,
  region: HTMLElement,
  work: (signal: AbortSignal) => Promise<T>,
  draw: (data: T) => void,
): Promise<void> {
  region.setAttribute('aria-busy', 'true');
  const timer = setTimeout(() => {
    if (!ctx.signal.aborted) replace(region, spinner());
  }, SPINNER_DELAY_MS);
  try {
    const data = await work(ctx.signal);
    if (ctx.signal.aborted) return;
    clearTimeout(timer);
    replace(region);
    draw(data);
  } catch (err) {
    clearTimeout(timer);
    if (ctx.signal.aborted || (err as Error).name === 'AbortError') return;
    replace(
      region,
      errorBox(err, () => void loadInto(ctx, region, work, draw)),
    );
  } finally {
    region.removeAttribute('aria-busy');
  }
}

export function spinner(text = 'Loading…'): HTMLElement {
  return h(
    'div',
    { class: 'loading', role: 'status' },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }),
    text,
  );
}

export function errorBox(err: unknown, retry?: () => void): HTMLElement {
  const e = err instanceof ApiError ? err : new ApiError(0, 'CLIENT', (err as Error)?.message ?? String(err));
  let title = 'Something went wrong';
  let hint: string | null = null;
  if (e.code === 'AUDIT_ERR_QUERY_LIMIT') {
    title = 'This query hit a limit';
    hint = 'Narrow the time range or add filters, then try again.';
  } else if (e.status === 403) {
    title = 'Not allowed';
    hint = 'Your key does not have the scope this page needs.';
  } else if (e.status === 404) title = 'Not found';
  else if (e.status === 400) title = 'The request was refused';
  else if (e.status === 429) title = 'Too many requests';
  else if (e.status === 503) title = 'The service is unavailable';
  else if (e.status === 0) title = 'No connection';
  return h(
    'div',
    { class: `notice error${e.code === 'AUDIT_ERR_QUERY_LIMIT' ? ' limit' : ''}`, role: 'alert' },
    h('strong', null, title),
    h('p', null, e.message),
    hint ? h('p', { class: 'hint' }, hint) : null,
    h('p', { class: 'code' }, e.code),
    retry && e.status !== 404 && e.status !== 403
      ? h('button', { type: 'button', class: 'secondary', on: { click: retry } }, 'Try again')
      : null,
  );
}

export function pageHeader(title: Child, ...extra: Child[]): HTMLElement {
  return h('header', { class: 'page-header' }, h('h1', { tabindex: '-1' }, title), ...extra);
}

export function section(title: string, ...children: Child[]): HTMLElement {
  return h('section', { class: 'card' }, h('h2', null, title), ...children);
}

/**
 * A modal built on <dialog>.showModal(): the rest of the page becomes inert (focus stays inside),
 * Escape closes it, focus returns to whatever opened it.
 */
export function openDialog(opts: {
  title: string;
  body: Child;
  submitLabel: string;
  onSubmit: (form: HTMLFormElement) => Promise<void>;
}): void {
  const opener = document.activeElement as HTMLElement | null;
  const status = h('div', { class: 'dialog-status', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit' }, opts.submitLabel);
  const form = h(
    'form',
    { method: 'dialog', class: 'dialog-form' },
    h('h2', { id: 'dialog-title' }, opts.title),
    opts.body,
    status,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', on: { click: () => dialog.close() } }, 'Cancel'),
      submit,
    ),
  );
  const dialog = h('dialog', { 'aria-labelledby': 'dialog-title' }, form);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    replace(status, spinner('Working…'));
    opts
      .onSubmit(form)
      .then(() => dialog.close())
      .catch((err) => {
        submit.disabled = false;
        replace(status, errorBox(err));
      });
  });
  dialog.addEventListener('close', () => {
    dialog.remove();
    // The page may have been drawn again behind the dialog: back to the same control if it is still
    // there and usable, else to the first usable action, else to the heading.
    let back: HTMLElement | null = opener?.isConnected
      ? opener
      : opener?.id
        ? document.getElementById(opener.id)
        : null;
    if (!back || (back as HTMLButtonElement).disabled)
      back =
        document.querySelector<HTMLElement>('.triage-actions button:not([disabled])') ??
        document.querySelector<HTMLElement>('main h1');
    back?.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = form.querySelector<HTMLElement>('input, select, textarea');
  (first ?? submit).focus();
}

export function flash(text: string, kind: 'ok' | 'error' = 'ok'): void {
  // Outside #app, so the message survives the page re-rendering after the action.
  let region = document.getElementById('flash');
  if (!region) {
    region = h('div', { id: 'flash', role: 'status', 'aria-live': 'polite' });
    document.body.append(region);
  }
  const msg = h('div', { class: `flash ${kind}` }, text);
  replace(region, msg);
  setTimeout(() => msg.remove(), 6000);
}

/** The page to come back to after logging in: only a path on this origin. */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  return next.startsWith('/login') ? '/' : next;
}
