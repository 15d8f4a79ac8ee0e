/**
 * A small XML reader for configuration files the tests check statically (ClickHouse users.xml):
 * elements, attributes, text; comments, the declaration and CDATA-free content only. Throws on
 * mismatched tags, so a broken file fails its test instead of parsing to something else.
 */
export interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  text: string;
}

const TOKEN =
  /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<\/([\w.:-]+)\s*>|<([\w.:-]+)((?:\s+[\w.:-]+\s*=\s*"[^"]*")*)\s*(\/?)>|([^<]+)/g;
const ATTR = /([\w.:-]+)\s*=\s*"([^"]*)"/g;

const unescape = (s: string) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');

export function parseXml(src: string): XmlNode {
  const root: XmlNode = { name: '#document', attrs: {}, children: [], text: '' };
  const stack = [root];
  let consumed = 0;
  for (const m of src.matchAll(TOKEN)) {
    if (m.index !== consumed)
      throw new Error(`xml: unexpected ${JSON.stringify(src.slice(consumed, consumed + 20))}`);
    consumed = m.index + m[0].length;
    const top = stack[stack.length - 1]!;
    if (m[1]) {
      if (top.name !== m[1]) throw new Error(`xml: </${m[1]}> closes <${top.name}>`);
      stack.pop();
    } else if (m[2]) {
      const node: XmlNode = { name: m[2], attrs: {}, children: [], text: '' };
      for (const a of (m[3] ?? '').matchAll(ATTR)) node.attrs[a[1]!] = unescape(a[2]!);
      top.children.push(node);
      if (!m[4]) stack.push(node);
    } else if (m[5]) {
      top.text += unescape(m[5]);
    }
  }
  if (consumed !== src.length) throw new Error(`xml: unparsed input at ${consumed}`);
  if (stack.length !== 1) throw new Error(`xml: <${stack[stack.length - 1]!.name}> is never closed`);
  return root;
}

/** The child element named `name` (the first), or undefined. */
export const child = (n: XmlNode | undefined, name: string): XmlNode | undefined =>
  n?.children.find((c) => c.name === name);

/** The element at a path of child names. */
export const at = (n: XmlNode | undefined, ...path: string[]): XmlNode | undefined =>
  path.reduce<XmlNode | undefined>((cur, p) => child(cur, p), n);

/** Trimmed text of the element at a path. */
export const textAt = (n: XmlNode | undefined, ...path: string[]): string | undefined =>
  at(n, ...path)?.text.trim();
