import { api } from '../api.js';
import { h, qs, replace, table, time, type Child } from '../dom.js';
import type { LegalHold } from '../types.js';
import { flash, loadInto, openDialog, pageHeader, section, type PageContext } from '../ui.js';

/**
 * Legal holds (compliance scope): every hold, active first, with its case, reason, time range,
 * clients, who placed it and when, who released it, when and why. Placing and releasing go through
 * the api's legal-hold routes (POST, with the session's CSRF token like every other action); a held
 * day is kept by retention whatever its policy says.
 */
export function holdsPage(ctx: PageContext): void {
  document.title = 'Legal holds · mcp-audit';
  const showReleased = ctx.query.get('all') !== 'false';
  const body = h('div', { id: 'results' });
  const place = h(
    'button',
    { type: 'button', id: 'hold-create', on: { click: () => createDialog(redraw) } },
    'Place a hold…',
  );
  const toggle = h(
    'a',
    { href: `/holds${qs(showReleased ? { all: 'false' } : {})}`, id: 'holds-toggle' },
    showReleased ? 'Active only' : 'Show released holds too',
  );
  ctx.main.append(
    pageHeader(
      'Legal holds',
      h(
        'p',
        { class: 'sub' },
        'Days a hold covers are kept by retention whatever the policy says, until the hold is released.',
      ),
    ),
    h('div', { class: 'toolbar' }, place, toggle),
    body,
  );

  function redraw(): void {
    void loadInto(
      ctx,
      body,
      (signal) =>
        api.get<{ items: LegalHold[] }>('/legal-holds', { all: showReleased ? 'true' : 'false' }, signal),
      (r) => {
        const active = r.items.filter((x) => x.active);
        const released = r.items.filter((x) => !x.active);
        replace(
          body,
          section(`Active (${active.length})`, holdsTable(active, true, redraw)),
          showReleased ? section(`Released (${released.length})`, holdsTable(released, false, redraw)) : null,
        );
      },
    );
  }
  redraw();
}

const clientsText = (c: string[]): Child =>
  c.length === 0 ? h('em', null, 'all clients') : h('span', { class: 'mono' }, c.join(', '));

function holdsTable(rows: LegalHold[], active: boolean, redraw: () => void): HTMLElement {
  return table(
    rows,
    [
      { label: 'Case', cell: (x) => h('strong', null, x.case_id), class: 'wrap' },
      { label: 'Reason', cell: (x) => x.reason, class: 'wrap' },
      {
        label: 'Range (UTC)',
        cell: (x) => [time(x.from), ' →', h('br'), time(x.to)],
      },
      { label: 'Clients', cell: (x) => clientsText(x.clients), class: 'wrap' },
      { label: 'Placed', cell: (x) => [x.created_by, h('br'), time(x.created_at)] },
      active
        ? {
            label: 'Action',
            cell: (x) =>
              h(
                'button',
                {
                  type: 'button',
                  class: 'secondary',
                  id: `hold-release-${x.hold_id}`,
                  'aria-label': `Release the hold of case ${x.case_id}`,
                  on: { click: () => releaseDialog(x, redraw) },
                },
                'Release…',
              ),
          }
        : {
            label: 'Released',
            cell: (x) => [
              x.released_by ?? '—',
              h('br'),
              time(x.released_at),
              x.release_note ? [h('br'), h('em', null, x.release_note)] : null,
            ],
            class: 'wrap',
          },
    ],
    {
      empty: active ? 'No active hold.' : 'No released hold.',
      caption: active ? 'Active legal holds' : 'Released legal holds',
    },
  );
}

/** `<input type=datetime-local>` value ↔ ISO, both read as UTC (the console shows every time in UTC). */
const localUtc = (ms: number) => new Date(ms).toISOString().slice(0, 16);
const fromLocalUtc = (v: string) => (v ? new Date(`${v}:00Z`).toISOString() : '');

function field(id: string, label: string, input: HTMLElement): Child[] {
  return [h('label', { for: id }, label), input];
}

function createDialog(done: () => void): void {
  const now = Date.now();
  const caseId = h('input', {
    type: 'text',
    id: 'hold-case',
    required: true,
    maxlength: '128',
    autocomplete: 'off',
  });
  const reason = h('textarea', { id: 'hold-reason', rows: '3', required: true, maxlength: '1000' });
  const from = h('input', {
    type: 'datetime-local',
    id: 'hold-from',
    required: true,
    value: localUtc(now - 30 * 86_400_000),
  });
  const to = h('input', { type: 'datetime-local', id: 'hold-to', required: true, value: localUtc(now) });
  const clients = h('input', {
    type: 'text',
    id: 'hold-clients',
    maxlength: '20000',
    autocomplete: 'off',
    placeholder: 'client ids, comma separated; empty: all clients',
  });
  openDialog({
    title: 'Place a legal hold',
    body: h(
      'div',
      { class: 'dialog-fields' },
      field(caseId.id, 'Case', caseId),
      field(reason.id, 'Reason', reason),
      field(from.id, 'From (UTC)', from),
      field(to.id, 'To (UTC)', to),
      field(clients.id, 'Clients', clients),
    ),
    submitLabel: 'Place hold',
    onSubmit: async () => {
      if (!caseId.value.trim()) throw new Error('Enter the case.');
      if (!reason.value.trim()) throw new Error('Enter the reason.');
      if (!from.value || !to.value) throw new Error('Enter the range.');
      const held = await api.post<LegalHold>('/legal-holds', {
        case_id: caseId.value.trim(),
        reason: reason.value.trim(),
        from: fromLocalUtc(from.value),
        to: fromLocalUtc(to.value),
        clients: clients.value
          .split(',')
          .map((c) => c.trim())
          .filter((c) => c !== ''),
      });
      flash(`Hold placed for case ${held.case_id}.`);
      done();
    },
  });
}

function releaseDialog(x: LegalHold, done: () => void): void {
  const note = h('textarea', { id: 'hold-release-note', rows: '3', required: true, maxlength: '1000' });
  openDialog({
    title: `Release the hold of case ${x.case_id}`,
    body: h(
      'div',
      { class: 'dialog-fields' },
      h('p', null, 'Once released, retention may drop these days at its next run.'),
      field(note.id, 'Why (recorded with your key)', note),
    ),
    submitLabel: 'Release hold',
    onSubmit: async () => {
      if (!note.value.trim()) throw new Error('Say why the hold is released.');
      await api.post<LegalHold>(`/legal-holds/${encodeURIComponent(x.hold_id)}/release`, {
        note: note.value.trim(),
      });
      flash(`Hold of case ${x.case_id} released.`);
      done();
    },
  });
}
