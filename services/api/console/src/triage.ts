import { api } from './api.js';
import { h } from './dom.js';
import type { AlertSummary, Transition } from './types.js';
import { flash, openDialog } from './ui.js';

export type Action = 'acknowledge' | 'assign' | 'note' | 'resolve';
export const REASONS: Array<[string, string]> = [
  ['true_positive', 'True positive'],
  ['benign', 'Benign'],
  ['false_positive', 'False positive'],
  ['duplicate', 'Duplicate'],
];

interface Target {
  /** Alerts chosen one by one… */
  ids?: string[];
  /** …or every alert matching a filter (POST /alerts/bulk). */
  filter?: Record<string, string | string[]>;
  describe: string;
}

const PATH: Record<Action, string> = {
  acknowledge: 'acknowledge',
  assign: 'assign',
  note: 'notes',
  resolve: 'resolve',
};
const VERB: Record<Action, string> = {
  acknowledge: 'Acknowledge',
  assign: 'Assign',
  note: 'Add note',
  resolve: 'Resolve',
};

export interface TriageResult {
  alert: AlertSummary;
  transition: Transition;
}

async function run(
  action: Action,
  target: Target,
  body: Record<string, string>,
  results: TriageResult[],
): Promise<string> {
  if (target.filter) {
    const r = await api.post<{ matched: number; changed: number }>('/alerts/bulk', {
      filter: target.filter,
      action,
      ...body,
    });
    return `${r.changed} of ${r.matched} matching alerts changed.`;
  }
  const ids = target.ids ?? [];
  let changed = 0;
  const failures: string[] = [];
  // One at a time: a handful of selected alerts, and each answer is a transition the analyst expects in order.
  for (const id of ids) {
    try {
      results.push(await api.post<TriageResult>(`/alerts/${encodeURIComponent(id)}/${PATH[action]}`, body));
      changed += 1;
    } catch (err) {
      if (ids.length === 1) throw err;
      failures.push((err as Error).message);
    }
  }
  return failures.length
    ? `${changed} of ${ids.length} changed; ${failures.length} refused: ${failures[0]}`
    : ids.length === 1
      ? `${VERB[action]}: done.`
      : `${changed} alerts changed.`;
}

/** Opens the form an action needs (every one takes an optional note) and runs it. */
export function triage(action: Action, target: Target, done: (results: TriageResult[]) => void): void {
  const note = h('textarea', { id: 'triage-note', name: 'note', rows: '3', maxlength: '2000' });
  const noteField = [h('label', { for: note.id }, action === 'note' ? 'Note' : 'Note (optional)'), note];
  const assignee = h('input', {
    type: 'text',
    id: 'triage-assignee',
    name: 'assignee',
    required: true,
    maxlength: '200',
    autocomplete: 'off',
  });
  const reason = h(
    'select',
    { id: 'triage-reason', name: 'reason', required: true },
    REASONS.map(([v, l]) => h('option', { value: v }, l)),
  );
  if (action === 'note') note.required = true;
  const fields =
    action === 'assign'
      ? [h('label', { for: assignee.id }, 'Assignee'), assignee, ...noteField]
      : action === 'resolve'
        ? [h('label', { for: reason.id }, 'Reason'), reason, ...noteField]
        : noteField;
  openDialog({
    title: `${VERB[action]} — ${target.describe}`,
    body: h('div', { class: 'dialog-fields' }, fields),
    submitLabel: VERB[action],
    onSubmit: async () => {
      const body: Record<string, string> = {};
      if (note.value.trim()) body.note = note.value.trim();
      if (action === 'assign') {
        if (!assignee.value.trim()) throw new Error('Enter an assignee.');
        body.assignee = assignee.value.trim();
      }
      if (action === 'resolve') body.reason = reason.value;
      if (action === 'note' && !body.note) throw new Error('Write a note.');
      const results: TriageResult[] = [];
      const msg = await run(action, target, body, results);
      flash(msg);
      done(results);
    },
  });
  // Enter in the one-line fields submits (native form behaviour); in the textarea it is a newline.
}

export function actionButtons(
  target: () => Target | null,
  done: (results: TriageResult[]) => void,
  opts: { disabled?: Partial<Record<Action, boolean>>; idPrefix?: string } = {},
): HTMLElement {
  return h(
    'div',
    { class: 'triage-actions', role: 'group', 'aria-label': 'Triage' },
    (['acknowledge', 'assign', 'note', 'resolve'] as Action[]).map((a) =>
      h(
        'button',
        {
          type: 'button',
          id: `${opts.idPrefix ?? 'triage'}-${a}`,
          class: a === 'resolve' ? '' : 'secondary',
          disabled: opts.disabled?.[a] ?? false,
          on: {
            click: () => {
              const t = target();
              if (t) triage(a, t, done);
            },
          },
        },
        `${VERB[a]}…`,
      ),
    ),
  );
}
