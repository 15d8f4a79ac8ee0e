import { createHash } from 'node:crypto';

const MAX_CANONICAL_DEPTH = 256;

/**
 * Canonical JSON: object keys sorted by UTF-16 code units at every level, no whitespace, numbers
 * and strings serialized as JSON.stringify does. For JSON data this is RFC 8785 (JCS) output, so
 * the same value hashes the same in any language that implements JCS.
 *
 * Like JSON.stringify, `undefined` object members are omitted and `toJSON()` is honoured; unlike it,
 * non-finite numbers, bigints, functions, symbols, `undefined` array items and cycles throw instead
 * of turning silently into something else.
 */
export function canonicalJson(value: unknown): string {
  return write(value, 0, '$');
}

function write(value: unknown, depth: number, path: string): string {
  if (depth > MAX_CANONICAL_DEPTH)
    throw new TypeError(`canonicalJson: nesting deeper than ${MAX_CANONICAL_DEPTH} at ${path}`);
  if (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: non-finite number at ${path}`);
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        return `[${value
          .map((item, i) => {
            if (item === undefined) throw new TypeError(`canonicalJson: undefined at ${path}[${i}]`);
            return write(item, depth + 1, `${path}[${i}]`);
          })
          .join(',')}]`;
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${write(obj[k], depth + 1, `${path}.${k}`)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: cannot serialize a ${typeof value} at ${path}`);
  }
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The parts of an MCP tool definition that `tool.definition_hash` covers. */
export interface ToolDefinition {
  name: string;
  description?: string | undefined;
  inputSchema?: unknown;
}

/**
 * `tool.definition_hash`: SHA-256 (hex) of the canonical JSON of `{ name, description, inputSchema }`,
 * with absent members omitted. Pass an MCP `Tool` from `tools/list` as is: other members (title,
 * annotations, outputSchema) are ignored, so only a change of what the model reads changes the hash.
 */
export function toolDefinitionHash(tool: ToolDefinition): string {
  return sha256Hex(
    canonicalJson({ name: tool.name, description: tool.description, inputSchema: tool.inputSchema }),
  );
}
