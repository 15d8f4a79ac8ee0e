import { AuditError } from '@mcp-audit/service-kit';

/**
 * Splitting a request body into the raw bytes of each event, without parsing the events: every
 * item then goes through `parseEvent` exactly like a Kafka message, so duplicate keys, sizes and
 * UTF-8 are judged on the bytes the source sent, and those bytes are what gets stored.
 * All structural characters are ASCII, and no byte of a multi-byte UTF-8 sequence is below 0x80,
 * so scanning bytes is safe for any encoding of the text inside strings.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const LF = 0x0a;
const CR = 0x0d;

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === LF || c === CR;

function malformed(message: string, at: number): AuditError {
  return new AuditError(
    'AUDIT_ERR_INVALID_REQUEST',
    `body is not a valid JSON array: ${message} at byte ${at}`,
  );
}

function shown(c: number): string {
  return c >= 0x21 && c <= 0x7e ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16).padStart(2, '0')}`;
}

/**
 * The top-level items of a JSON array, each the exact bytes between its delimiters with the
 * surrounding whitespace removed. A body holding one object (not an array) is one item. Only the
 * array's structure is checked here (strings closed, brackets balanced and matched, one comma
 * between items); what is inside an item is left to the event parser, which reports it per item.
 * Iterative, so hostile nesting costs memory proportional to the body, never stack.
 */
export function splitJsonArray(body: Buffer): Buffer[] {
  let i = 0;
  while (i < body.length && isSpace(body[i]!)) i++;
  if (i === body.length) throw malformed('the body is empty', i);
  if (body[i] === OPEN_BRACE) {
    let end = body.length;
    while (isSpace(body[end - 1]!)) end--;
    return [body.subarray(i, end)];
  }
  if (body[i] !== OPEN_BRACKET) throw malformed(`expected '[' but found ${shown(body[i]!)}`, i);
  i++;

  const items: Buffer[] = [];
  // Closers expected inside the current item, innermost last (nesting below the top level).
  const closers: number[] = [];
  let start = -1; // first byte of the current item, -1 between items
  let last = -1; // last byte of the current item
  let ended = false; // the current item is complete: only ',' or ']' may follow
  let afterComma = false;
  for (; i < body.length; i++) {
    const c = body[i]!;
    if (closers.length > 0) {
      if (c === QUOTE) i = skipString(body, i);
      else if (c === OPEN_BRACE || c === OPEN_BRACKET)
        closers.push(c === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET);
      else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        const want = closers.pop()!;
        if (c !== want) throw malformed(`expected ${shown(want)} but found ${shown(c)}`, i);
        ended = closers.length === 0;
      }
      last = i;
      continue;
    }
    if (isSpace(c)) {
      if (start >= 0) ended = true;
    } else if (c === COMMA || c === CLOSE_BRACKET) {
      if (start >= 0) items.push(body.subarray(start, last + 1));
      // `[,`, `,,` and `,]` are holes; `[]` is an empty array (the caller refuses it as such).
      else if (c === COMMA || afterComma) throw malformed(`expected an item but found ${shown(c)}`, i);
      start = -1;
      ended = false;
      afterComma = c === COMMA;
      if (c === CLOSE_BRACKET) {
        for (i++; i < body.length; i++) {
          if (!isSpace(body[i]!)) throw malformed(`unexpected ${shown(body[i]!)} after the array`, i);
        }
        return items;
      }
    } else {
      const opens = c === QUOTE || c === OPEN_BRACE || c === OPEN_BRACKET;
      if (ended || (start >= 0 && opens) || c === CLOSE_BRACE) {
        throw malformed(`expected ',' or ']' but found ${shown(c)}`, i);
      }
      if (start < 0) start = i;
      if (c === QUOTE) {
        i = skipString(body, i);
        ended = true;
      } else if (opens) {
        closers.push(c === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET);
      }
      // Anything else belongs to a scalar (a number, true, null …), whose spelling the event parser judges.
      last = i;
    }
  }
  throw malformed(
    start >= 0 && closers.length > 0
      ? `the item starting at byte ${start} is not closed`
      : "the array is not closed (no ']')",
    i,
  );
}

/** The index of the quote closing the string that opens at `open`. */
function skipString(body: Buffer, open: number): number {
  let i = open + 1;
  for (; i < body.length && body[i] !== QUOTE; i++) if (body[i] === BACKSLASH) i++;
  if (i >= body.length) throw malformed('unterminated string', open);
  return i;
}

/** Non-blank lines of an NDJSON body; a CR before the LF belongs to the line break. */
export function splitNdjson(body: Buffer): Buffer[] {
  const items: Buffer[] = [];
  for (let from = 0; from <= body.length;) {
    let to = body.indexOf(LF, from);
    if (to < 0) to = body.length;
    let end = to;
    if (end > from && body[end - 1] === CR) end--;
    let k = from;
    while (k < end && isSpace(body[k]!)) k++;
    if (k < end) items.push(body.subarray(from, end));
    from = to + 1;
  }
  return items;
}
