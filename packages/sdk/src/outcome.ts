import type { EventOutcome } from '@mcp-audit/schema';

/** The three outcome layers of one MCP exchange, kept apart in the event, plus policy decisions. */
export interface OutcomeLayers {
  /** Transport: the HTTP status of the MCP response, when there is one. */
  httpStatus?: number | undefined;
  /** Protocol: the JSON-RPC error code, when the response is a JSON-RPC error. */
  rpcErrorCode?: number | undefined;
  /** Tool: the result carried `isError: true`. */
  toolIsError?: boolean | undefined;
  /** A policy (gateway allow-list, rate limit, …) refused the request. */
  denied?: boolean | undefined;
  /** Authentication failed. */
  authFailed?: boolean | undefined;
}

/**
 * The contract's summary outcome. Precedence: authentication, then policy, then any failing layer.
 * HTTP 401 counts as `auth_failed` and 403 as `denied` even without the flags; an event with
 * outcome `auth_failed` must carry `auth: { result: 'failure', … }` (schema rule). Anything else
 * that failed at any layer (HTTP >= 400, a JSON-RPC error, a tool result with `isError: true`) is
 * `error`: an HTTP 200 carrying a failed tool call is not `ok`.
 */
export function outcomeOf(layers: OutcomeLayers): EventOutcome {
  if (layers.authFailed || layers.httpStatus === 401) return 'auth_failed';
  if (layers.denied || layers.httpStatus === 403) return 'denied';
  if (layers.httpStatus !== undefined && layers.httpStatus >= 400) return 'error';
  if (layers.rpcErrorCode !== undefined) return 'error';
  if (layers.toolIsError === true) return 'error';
  return 'ok';
}
