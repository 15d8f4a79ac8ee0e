/**
 * Whether the JSON text `raw` holds only what `doc` holds: every member and item of it is also in
 * `doc` at the same path, and every other value equals the one in `doc`. Read straight from the
 * text, because JSON.parse would build a whole tree only to compare it. Answers false for anything
 * else, invalid JSON and containers nested `maxDepth` deep included.
 */
export function jsonWithin(raw: string, doc: unknown, maxDepth: number): boolean {
  const reader = new Reader(raw, maxDepth);
  return reader.value(doc, 0) && reader.atEnd();
}

// Only string tokens can hold them, and there they are invalid (raw tabs and newlines too).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHAR = /[\u0000-\u001f]/;
const LITERAL = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null/y;

class Reader {
  private i = 0;
  /** Without control characters in the text (compact JSON), string tokens need no check for them. */
  private readonly controls: boolean;

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
  ) {
    this.controls = CONTROL_CHAR.test(text);
  }

  atEnd(): boolean {
    this.skipSpace();
    return this.i === this.text.length;
  }

  value(expected: unknown, depth: number): boolean {
    const c = this.skipSpace();
    if (c === 0x7b /* { */) return this.object(expected, depth);
    if (c === 0x5b /* [ */) return this.array(expected, depth);
    if (c === 0x22 /* " */) return typeof expected === 'string' && this.string() === expected;
    return this.literal(expected);
  }

  /** Skips JSON whitespace; returns the code of the next character (NaN at the end). */
  private skipSpace(): number {
    let c = this.text.charCodeAt(this.i);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = this.text.charCodeAt(++this.i);
    return c;
  }

  private object(expected: unknown, depth: number): boolean {
    if (typeof expected !== 'object' || expected === null || Array.isArray(expected)) return false;
    if (depth >= this.maxDepth) return false;
    this.i++;
    if (this.skipSpace() === 0x7d /* } */) {
      this.i++;
      return true;
    }
    for (;;) {
      if (this.skipSpace() !== 0x22) return false;
      const key = this.string();
      if (key === undefined || !Object.hasOwn(expected, key)) return false;
      if (this.skipSpace() !== 0x3a /* : */) return false;
      this.i++;
      if (!this.value((expected as Record<string, unknown>)[key], depth + 1)) return false;
      const c = this.skipSpace();
      this.i++;
      if (c === 0x7d) return true;
      if (c !== 0x2c /* , */) return false;
    }
  }

  private array(expected: unknown, depth: number): boolean {
    if (!Array.isArray(expected) || depth >= this.maxDepth) return false;
    this.i++;
    if (this.skipSpace() === 0x5d /* ] */) {
      this.i++;
      return expected.length === 0;
    }
    for (let n = 0; n < expected.length; n++) {
      if (!this.value(expected[n], depth + 1)) return false;
      const c = this.skipSpace();
      this.i++;
      if (c === 0x5d) return n + 1 === expected.length;
      if (c !== 0x2c) return false;
    }
    return false;
  }

  /** The string token at the cursor, decoded; undefined when it is not valid JSON. */
  private string(): string | undefined {
    const start = this.i + 1;
    let end = this.text.indexOf('"', start);
    for (;;) {
      if (end === -1) return undefined;
      let backslashes = 0;
      while (this.text.charCodeAt(end - 1 - backslashes) === 0x5c /* \ */) backslashes++;
      if (backslashes % 2 === 0) break;
      end = this.text.indexOf('"', end + 1);
    }
    this.i = end + 1;
    const token = this.text.slice(start, end);
    if (this.controls && CONTROL_CHAR.test(token)) return undefined;
    if (!token.includes('\\')) return token;
    try {
      return JSON.parse(`"${token}"`) as string;
    } catch {
      return undefined;
    }
  }

  private literal(expected: unknown): boolean {
    LITERAL.lastIndex = this.i;
    const m = LITERAL.exec(this.text);
    if (m === null) return false;
    this.i += m[0].length;
    switch (m[0]) {
      case 'true':
        return expected === true;
      case 'false':
        return expected === false;
      case 'null':
        return expected === null;
      default:
        return Number(m[0]) === expected;
    }
  }
}
