import { toolDefinitionHash as schemaToolDefinitionHash } from '@mcp-audit/schema';

/** An MCP tool definition as `tools/list` returns it; members other than the hashed ones are ignored. */
export interface ToolLike {
  name: string;
  description?: string | undefined;
  inputSchema?: unknown;
  [k: string]: unknown;
}

/**
 * `tool.definition_hash`: SHA-256 (lowercase hex) of the canonical JSON (RFC 8785 key order, see
 * `canonicalJson` in @mcp-audit/schema) of `{ name, description, inputSchema }`, absent members
 * omitted. `title`, `annotations`, `outputSchema` and `_meta` are deliberately NOT covered: this is
 * the single definition shared by the gateway, the SDK and the drift detector (packages/schema), and
 * it changes exactly when what the model reads to decide on a call changes.
 */
export function toolDefinitionHash(tool: ToolLike): string {
  return schemaToolDefinitionHash({
    name: tool.name,
    description: tool.description,
    inputSchema: tool.inputSchema,
  });
}
