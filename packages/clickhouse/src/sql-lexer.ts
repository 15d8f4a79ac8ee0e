/**
 * Just enough of ClickHouse's lexer to know, at any point of a SQL text, whether we are in code,
 * inside a quoted string or identifier, or inside a comment. Used to check where `sql` template
 * placeholders sit and to split migration files into statements.
 */
export type LexState = 'code' | 'string' | 'dquote' | 'backtick' | 'line_comment' | 'block_comment';

export interface Segment {
  kind: 'code' | 'string' | 'quoted' | 'comment';
  text: string;
}

const QUOTE_OF: Partial<Record<LexState, string>> = { string: "'", dquote: '"', backtick: '`' };

/** Splits `text` into segments, starting in `start` (so a template can be lexed part by part). */
export function lex(text: string, start: LexState = 'code'): { segments: Segment[]; end: LexState } {
  const segments: Segment[] = [];
  let state = start;
  let from = 0;
  const push = (to: number) => {
    if (to > from) segments.push({ kind: kindOf(state), text: text.slice(from, to) });
    from = to;
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (state === 'code') {
      const next = text[i + 1];
      let to: LexState | undefined;
      if (c === "'") to = 'string';
      else if (c === '"') to = 'dquote';
      else if (c === '`') to = 'backtick';
      // NOTE: current ClickHouse releases also treat `#` as a line comment; 18.16 rejects it.
      else if ((c === '-' && next === '-') || c === '#') to = 'line_comment';
      else if (c === '/' && next === '*') to = 'block_comment';
      if (to) {
        push(i);
        state = to;
        i += to === 'block_comment' || (to === 'line_comment' && c === '-') ? 2 : 1;
      } else i++;
      continue;
    }
    if (state === 'line_comment') {
      if (c === '\n') {
        push(i);
        state = 'code';
      }
      i++;
      continue;
    }
    if (state === 'block_comment') {
      if (c === '*' && text[i + 1] === '/') {
        i += 2;
        push(i);
        state = 'code';
      } else i++;
      continue;
    }
    // Inside a quoted string or identifier: backslash escapes the next character, a doubled
    // quote is an escaped quote.
    const q = QUOTE_OF[state]!;
    if (c === '\\') i += 2;
    else if (c === q && text[i + 1] === q) i += 2;
    else if (c === q) {
      i++;
      push(i);
      state = 'code';
    } else i++;
  }
  push(text.length);
  return { segments, end: state };
}

function kindOf(state: LexState): Segment['kind'] {
  if (state === 'code') return 'code';
  if (state === 'string') return 'string';
  if (state === 'line_comment' || state === 'block_comment') return 'comment';
  return 'quoted';
}
