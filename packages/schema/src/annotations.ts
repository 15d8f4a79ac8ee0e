import { canonicalJson } from './canonical.js';
import { toolAnnotations, type ToolAnnotations } from './event.js';
import { MAX_TOOL_TITLE_LENGTH } from './limits.js';

const HINTS = ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const;
// eslint-disable-next-line no-control-regex -- the event contract refuses control characters in a title
const CONTROL = /[\u0000-\u001f\u007f]/g;

/**
 * The `tool.annotations` of an event from what a server's `tools/list` returned for one tool (its
 * `annotations` member, untrusted): the five known members when they have MCP's types, a title
 * shortened to the contract's limit and stripped of control characters. `undefined` when nothing
 * usable is left, so an unannotated tool stays unannotated (unclassified, never assumed anything).
 */
export function toolAnnotationsOf(annotations: unknown): ToolAnnotations | undefined {
  if (typeof annotations !== 'object' || annotations === null || Array.isArray(annotations)) return undefined;
  const a = annotations as Record<string, unknown>;
  const out: ToolAnnotations = {};
  if (typeof a.title === 'string') {
    const title = a.title.replace(CONTROL, ' ').slice(0, MAX_TOOL_TITLE_LENGTH);
    if (title.trim() !== '') out.title = title;
  }
  for (const h of HINTS) if (typeof a[h] === 'boolean') out[h] = a[h];
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * The stored form of `tool.annotations` (column `tool_annotations`): canonical JSON of the known
 * members, '' when absent. Equal annotations store equal text, so drift is a change of this string.
 */
export function toolAnnotationsText(annotations: ToolAnnotations | undefined): string {
  if (annotations === undefined) return '';
  const { title, readOnlyHint, destructiveHint, idempotentHint, openWorldHint } = annotations;
  return canonicalJson({ title, readOnlyHint, destructiveHint, idempotentHint, openWorldHint });
}

/** The inverse of toolAnnotationsText for stored rows ('' or text that is not valid: undefined). */
export function toolAnnotationsFromText(text: string): ToolAnnotations | undefined {
  if (text === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = toolAnnotations.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
