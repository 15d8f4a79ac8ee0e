import type { AuditEventDraft } from '@mcp-audit/sdk';

// The text sanitizers live in the SDK, so a request gets the same event from the gateway and from
// an SDK-wrapped server (main shares the emitter's redactor with them, so fingerprints match).
export {
  cleanText,
  cutText,
  defaultTextRedactor,
  eventIdentifier,
  eventMethod,
  MAX_EVENT_IDENTIFIER,
  outcomeOf,
  requestNames,
  wellFormedText,
  wellFormedValue,
  type TextRedactor,
} from '@mcp-audit/sdk';

/**
 * What the gateway hands to the SDK's audit emitter (`createAuditEmitter`): the event contract minus
 * what the emitter fills in (schema_version, event_id, source; ts when absent). The emitter redacts,
 * caps and validates; `emit` is synchronous and never throws, so auditing never blocks forwarding.
 */
export type EventDraft = AuditEventDraft;

export interface AuditEmitter {
  emit(draft: EventDraft): void;
}

/** Event kind of a JSON-RPC method. Methods with no kind of their own are `session` traffic. */
export function kindOf(method: string): EventDraft['kind'] {
  switch (method) {
    case 'tools/call':
      return 'tool_call';
    case 'tools/list':
      return 'tool_list';
    case 'resources/read':
      return 'resource_read';
    case 'prompts/get':
      return 'prompt_get';
    default:
      return 'session';
  }
}

/** `::ffff:127.0.0.1` → `127.0.0.1`, so the schema's IPv4/IPv6 check holds and addresses compare. */
export function normalizeIp(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1] : ip;
}

/** The trace id of a W3C `traceparent` header, if it is well formed. */
export function traceIdOf(traceparent: string | string[] | undefined): string | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent.trim());
  return m && !/^0+$/.test(m[1]!) ? m[1] : undefined;
}
