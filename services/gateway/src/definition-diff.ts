import type { ToolDefinitionRecord, ToolEntry } from './tool-guard.js';

/**
 * A readable review of a tool's pending definition change (what `approve.cli.js diff` and
 * `approve` print): description lines removed and added, with the changed text of a one-line
 * edit spelled out, and input-schema properties added, removed or changed. Pure, so it is tested
 * without a gateway.
 */
export type ReviewEntry = Pick<ToolEntry, 'upstream' | 'tool' | 'approved_hash' | 'current_hash'> &
  Partial<ToolEntry> & { blocked?: boolean };

/**
 * NOTE: the definitions come from the upstream under review, and a terminal obeys what it prints:
 * escape sequences could erase lines or recolour them invisible, bidi overrides and zero-width
 * characters could make text read differently from what it is. All of those are shown escaped.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]|\p{Cs}/gu;

export function printable(s: string): string {
  return s.replace(UNSAFE, (c) => `\\u{${c.codePointAt(0)!.toString(16).padStart(4, '0')}}`);
}

const json = (v: unknown) => printable(JSON.stringify(v) ?? 'undefined');
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const descriptionText = (d: ToolDefinitionRecord | undefined): string | undefined =>
  d?.description === undefined
    ? undefined
    : typeof d.description === 'string'
      ? d.description
      : JSON.stringify(d.description);

/** Longest common subsequence over lines beyond this many cells: shown as all removed, all added. */
const MAX_LCS_CELLS = 1_000_000;
/** Unchanged lines around a change that are shown; longer unchanged runs are collapsed. */
const CONTEXT = 2;

type Op = { op: ' ' | '-' | '+'; line: string };

function lineDiff(a: string[], b: string[]): Op[] {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const head: Op[] = a.slice(0, start).map((line) => ({ op: ' ', line }));
  const tail: Op[] = a.slice(endA).map((line) => ({ op: ' ', line }));
  const x = a.slice(start, endA);
  const y = b.slice(start, endB);
  const mid: Op[] = [];
  if ((x.length + 1) * (y.length + 1) > MAX_LCS_CELLS) {
    for (const line of x) mid.push({ op: '-', line });
    for (const line of y) mid.push({ op: '+', line });
    return [...head, ...mid, ...tail];
  }
  const w = y.length + 1;
  const lcs = new Uint32Array((x.length + 1) * w);
  for (let i = x.length - 1; i >= 0; i--)
    for (let j = y.length - 1; j >= 0; j--)
      lcs[i * w + j] =
        x[i] === y[j] ? lcs[(i + 1) * w + j + 1]! + 1 : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      mid.push({ op: ' ', line: x[i++]! });
      j++;
    } else if (i < x.length && (j === y.length || lcs[(i + 1) * w + j]! >= lcs[i * w + j + 1]!)) {
      mid.push({ op: '-', line: x[i++]! });
    } else {
      mid.push({ op: '+', line: y[j++]! });
    }
  }
  return [...head, ...mid, ...tail];
}

/** For one line replaced by another: the text that went and the text that came, between what both keep. */
function changedText(before: string, after: string): { removed: string; added: string } {
  let p = 0;
  while (p < before.length && p < after.length && before[p] === after[p]) p++;
  let s = 0;
  while (
    s < before.length - p &&
    s < after.length - p &&
    before[before.length - 1 - s] === after[after.length - 1 - s]
  )
    s++;
  return { removed: before.slice(p, before.length - s), added: after.slice(p, after.length - s) };
}

function describeDescription(before: string | undefined, after: string | undefined, out: string[]): void {
  if (before === after) return;
  out.push('description:');
  if (before === undefined) out.push('  (none before)');
  if (after === undefined) out.push('  (removed)');
  const ops = lineDiff(
    before === undefined ? [] : before.split('\n'),
    after === undefined ? [] : after.split('\n'),
  );
  const near = ops.map((_, k) =>
    ops.slice(Math.max(0, k - CONTEXT), k + CONTEXT + 1).some((o) => o.op !== ' '),
  );
  let skipped = 0;
  const flush = () => {
    if (skipped > 0) out.push(`    … ${skipped} unchanged line${skipped === 1 ? '' : 's'}`);
    skipped = 0;
  };
  ops.forEach((o, k) => {
    if (o.op === ' ' && !near[k]) {
      skipped++;
      return;
    }
    flush();
    out.push(`  ${o.op} ${printable(o.line)}`);
  });
  flush();
  const removed = ops.filter((o) => o.op === '-');
  const added = ops.filter((o) => o.op === '+');
  if (removed.length === 1 && added.length === 1) {
    const c = changedText(removed[0]!.line, added[0]!.line);
    if (c.removed) out.push(`    text removed: «${printable(c.removed)}»`);
    if (c.added) out.push(`    text added:   «${printable(c.added)}»`);
  }
}

function describeSchema(before: unknown, after: unknown, out: string[]): void {
  const lines: string[] = [];
  if ((before === undefined) !== (after === undefined)) {
    lines.push(before === undefined ? '  (none before)' : '  (removed)');
    if (before === undefined) before = {};
    else after = {};
  }
  if (!isObject(before) || !isObject(after)) {
    if (JSON.stringify(before) !== JSON.stringify(after)) lines.push(`  ~ ${json(before)} -> ${json(after)}`);
  } else {
    const props = (s: Record<string, unknown>) => (isObject(s.properties) ? s.properties : {});
    const pa = props(before);
    const pb = props(after);
    for (const name of Object.keys(pb))
      if (!Object.hasOwn(pa, name)) lines.push(`  + property ${printable(name)}: ${json(pb[name])}`);
    for (const name of Object.keys(pa))
      if (!Object.hasOwn(pb, name)) lines.push(`  - property ${printable(name)}: ${json(pa[name])}`);
    for (const name of Object.keys(pa))
      if (Object.hasOwn(pb, name) && JSON.stringify(pa[name]) !== JSON.stringify(pb[name]))
        lines.push(`  ~ property ${printable(name)}: ${json(pa[name])} -> ${json(pb[name])}`);
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    keys.delete('properties');
    // `properties` that is not an object (a malformed schema) is compared whole.
    const odd = (v: unknown) => v !== undefined && !isObject(v);
    if (
      (odd(before.properties) || odd(after.properties)) &&
      JSON.stringify(before.properties) !== JSON.stringify(after.properties)
    )
      lines.push(`  ~ properties: ${json(before.properties)} -> ${json(after.properties)}`);
    for (const k of [...keys].sort())
      if (JSON.stringify(before[k]) !== JSON.stringify(after[k]))
        lines.push(
          before[k] === undefined
            ? `  + ${printable(k)}: ${json(after[k])}`
            : after[k] === undefined
              ? `  - ${printable(k)}: ${json(before[k])}`
              : `  ~ ${printable(k)}: ${json(before[k])} -> ${json(after[k])}`,
        );
  }
  if (lines.length > 0) out.push('input schema:', ...lines);
}

function recordNotes(label: string, d: ToolDefinitionRecord | undefined, out: string[]): void {
  if (!d) return;
  if (d.truncated)
    out.push(
      `warning: the ${label} definition is ${d.bytes} bytes, over the 64 KiB the gateway records: only part of it is shown${
        d.omitted?.length ? ` (left out: ${d.omitted.join(', ')})` : ''
      }; review the rest at the upstream`,
    );
  if (d.redactions)
    out.push(`note: ${d.redactions} secret(s) in the ${label} definition are shown as [REDACTED:…] markers`);
}

/** The full definition, as additions (no approved definition to compare with). */
function describeWhole(d: ToolDefinitionRecord, out: string[]): void {
  describeDescription(undefined, descriptionText(d), out);
  describeSchema({}, d.inputSchema ?? {}, out);
}

export function describeReview(e: ReviewEntry): string {
  const out: string[] = [];
  const pending = e.current_hash !== e.approved_hash;
  const where = `${printable(e.upstream)} / ${printable(e.tool)}`;
  if (!pending) {
    out.push(`${where}: no pending change (the current definition is the approved one)`);
    out.push(
      `  approved  ${e.approved_hash}${e.approved_at ? `  at ${e.approved_at} by ${e.approved_by ?? '?'}` : ''}`,
    );
    return `${out.join('\n')}\n`;
  }
  out.push(
    `${where}: definition changed${e.blocked ? ', calls refused until approved' : e.blocked === false ? ' (guard off: calls pass)' : ''}`,
  );
  out.push(
    `  approved  ${e.approved_hash}${e.approved_at ? `  at ${e.approved_at} by ${e.approved_by ?? '?'}` : e.first_seen ? `  first seen ${e.first_seen}` : ''}`,
  );
  out.push(`  current   ${e.current_hash}${e.changed_at ? `  changed ${e.changed_at}` : ''}`);
  const before = e.approved_definition;
  const after = e.pending_definition;
  if (!after) {
    out.push(
      'the current definition is not recorded yet (state written by an older gateway): list the tools through the gateway (tools/list) and review again',
    );
    return `${out.join('\n')}\n`;
  }
  recordNotes('approved', before, out);
  recordNotes('current', after, out);
  const body: string[] = [];
  if (!before) {
    out.push(
      'the approved definition was not recorded (state written by an older gateway); the current one in full:',
    );
    describeWhole(after, body);
  } else {
    describeDescription(descriptionText(before), descriptionText(after), body);
    describeSchema(before.inputSchema, after.inputSchema, body);
  }
  if (body.length === 0)
    body.push('no visible difference in what was recorded (the change is in a redacted or truncated part)');
  out.push(...body);
  return `${out.join('\n')}\n`;
}
