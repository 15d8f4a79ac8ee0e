import { z } from 'zod';
import { jsonValue, utf8ByteLength } from './json.js';
import {
  MAX_ARGS_BYTES,
  MAX_ERROR_MESSAGE_LENGTH,
  MAX_LABELS,
  MAX_LABEL_KEY_LENGTH,
  MAX_LABEL_VALUE_LENGTH,
  MAX_STRING_LENGTH,
  MAX_TOOL_TITLE_LENGTH,
} from './limits.js';

export const SCHEMA_VERSION = 1;

// NOTE: identifiers end up in alert text, Slack messages and log lines, so C0 controls and DEL
// (newlines included) are refused there; free text (error.message, args) only refuses NUL,
// which parseEvent checks in every string.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NO_CONTROL_CHARS = /^[^\u0000-\u001f\u007f]*$/;
const NO_CONTROL_MESSAGE = 'must not contain control characters';

// Any RFC 9562 version (v7 preferred) and variant 10xx, lowercase; the nil and max UUIDs are refused
// because an idempotency key shared by every careless emitter would merge unrelated events.
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/;
const TRACE_ID_PATTERN = /^(?!0{32}$)[0-9a-f]{32}$/;

const identifier = () =>
  z
    .string()
    .min(1, 'must not be empty')
    .max(MAX_STRING_LENGTH, `must be at most ${MAX_STRING_LENGTH} characters`)
    .regex(NO_CONTROL_CHARS, NO_CONTROL_MESSAGE);

const sha256Hex = () =>
  z.string().regex(SHA256_HEX_PATTERN, 'must be a SHA-256 digest: 64 lowercase hex characters');

/**
 * A schema-level message for a malformed value that still lets a missing one read `Required`
 * (parseEvent's default messages handle that case).
 */
const unlessMissing =
  (message: string) =>
  (iss: { input?: unknown }): string | undefined =>
    iss.input === undefined ? undefined : message;

const count = () => z.int().min(0, 'must be >= 0');

export const eventKind = z.enum(['tool_call', 'resource_read', 'prompt_get', 'tool_list', 'session', 'auth']);
export const sourceType = z.enum(['gateway', 'sdk']);
export const serverTransport = z.enum(['stdio', 'http']);
export const eventOutcome = z.enum(['ok', 'error', 'denied', 'auth_failed']);
export const authMethod = z.enum(['oauth', 'api_key', 'mtls', 'none']);
export const authResult = z.enum(['success', 'failure']);

export const eventSource = z
  .object({
    type: sourceType,
    id: identifier().describe('Stable id of the emitting gateway or SDK instance; matches its ingest token.'),
    version: identifier().describe('Version of the emitting software.'),
  })
  .describe('Who emitted the event.');

export const eventClient = z
  .object({
    id: identifier().describe(
      "The unit of baselining. Asserted by the gateway's authentication, never by client-supplied headers.",
    ),
    name: identifier().optional(),
    user: identifier().optional(),
    agent: identifier().optional(),
    ip: z.union([z.ipv4(), z.ipv6()], { error: unlessMissing('must be an IPv4 or IPv6 address') }).optional(),
    user_agent: identifier().optional(),
    session_id: identifier().optional(),
  })
  .describe('The MCP client.');

export const eventServer = z
  .object({
    name: identifier(),
    version: identifier().optional(),
    transport: serverTransport,
  })
  .describe('The MCP server.');

const hint = (what: string) => z.boolean().optional().describe(what);

/**
 * MCP `ToolAnnotations` as the server's `tools/list` returned them: hints, not guarantees. Members
 * MCP may add later are stripped; the five known ones must have their MCP types.
 */
export const toolAnnotations = z
  .object({
    title: z
      .string()
      .max(MAX_TOOL_TITLE_LENGTH, `must be at most ${MAX_TOOL_TITLE_LENGTH} characters`)
      .regex(NO_CONTROL_CHARS, NO_CONTROL_MESSAGE)
      .optional(),
    readOnlyHint: hint('The tool does not modify its environment.'),
    destructiveHint: hint('The tool may perform destructive updates (meaningful when not read-only).'),
    idempotentHint: hint('Repeated calls with the same arguments have no additional effect.'),
    openWorldHint: hint('The tool interacts with an open world of external entities (it can send data out).'),
  })
  .describe("The tool's MCP annotations as tools/list returned them; absent when the server gave none.");

export const eventTool = z
  .object({
    name: identifier(),
    definition_hash: sha256Hex()
      .optional()
      .describe(
        'SHA-256 of the canonical tool definition (name, description, inputSchema): see toolDefinitionHash.',
      ),
    annotations: toolAnnotations.optional(),
  })
  .describe(
    'The tool called (kind tool_call, required) or listed (kind tool_list, one event per listed tool).',
  );

export const eventAuth = z
  .object({
    method: authMethod,
    result: authResult,
    reason: identifier().optional(),
  })
  .describe('Authentication of the request. Required when kind is auth or outcome is auth_failed.');

export const eventError = z
  .object({
    // Both forms occur: JSON-RPC error codes are integers, gateways and tools use string codes.
    code: z.union([identifier(), z.int()], {
      error: unlessMissing('must be a non-empty string or an integer'),
    }),
    message: z
      .string()
      .max(MAX_ERROR_MESSAGE_LENGTH, `must be at most ${MAX_ERROR_MESSAGE_LENGTH} characters`),
  })
  .describe('The error, redacted at the source.');

function argsSizeIssue(args: Record<string, unknown>): string | undefined {
  const bytes = utf8ByteLength(JSON.stringify(args));
  return bytes > MAX_ARGS_BYTES ? `is ${bytes} bytes as JSON; the limit is ${MAX_ARGS_BYTES}` : undefined;
}

function labelsCountIssue(labels: Record<string, string>): string | undefined {
  const n = Object.keys(labels).length;
  return n > MAX_LABELS ? `has ${n} entries; the limit is ${MAX_LABELS}` : undefined;
}

/** A refinement from a function that words what is wrong with a value, if anything. */
const rule =
  <T>(issue: (value: T) => string | undefined) =>
  (value: T, ctx: z.RefinementCtx<T>): void => {
    const message = issue(value);
    if (message !== undefined) ctx.addIssue({ code: 'custom', message });
  };

const argsRecord = <V extends z.ZodType>(value: V) => z.record(z.string(), value);

export const eventArgs = argsRecord(jsonValue)
  .superRefine(rule(argsSizeIssue))
  .describe(
    `Request arguments, redacted at the source; at most ${MAX_ARGS_BYTES} bytes as JSON (larger values are replaced by their SHA-256 at the source).`,
  );

const labelsRecord = z.record(
  z
    .string()
    .min(1, 'label keys must not be empty')
    .max(MAX_LABEL_KEY_LENGTH, `label keys must be at most ${MAX_LABEL_KEY_LENGTH} characters`)
    .regex(NO_CONTROL_CHARS, NO_CONTROL_MESSAGE),
  z
    .string()
    .max(MAX_LABEL_VALUE_LENGTH, `must be at most ${MAX_LABEL_VALUE_LENGTH} characters`)
    .regex(NO_CONTROL_CHARS, NO_CONTROL_MESSAGE),
);

export const eventLabels = labelsRecord
  .superRefine(rule(labelsCountIssue))
  .describe(`Free-form string labels, at most ${MAX_LABELS}.`);

const eventShape = z.object({
  schema_version: z.literal(SCHEMA_VERSION),
  event_id: z
    .stringFormat('uuid', UUID_PATTERN, {
      error: unlessMissing('must be a UUID in lowercase canonical form (v7 preferred)'),
    })
    .describe('Idempotency key: the same id twice is one event.'),
  ts: z.iso
    .datetime({
      precision: 3,
      error: unlessMissing('must be ISO-8601 UTC with milliseconds, e.g. 2026-11-21T10:00:00.123Z'),
    })
    .describe('Time at the source, UTC with exactly millisecond precision.'),
  kind: eventKind,
  source: eventSource,
  client: eventClient,
  server: eventServer,
  method: identifier().describe('The JSON-RPC method, e.g. tools/call.'),
  tool: eventTool.optional(),
  outcome: eventOutcome.describe('The summary; transport, protocol and tool outcomes stay separate below.'),
  http_status: z
    .int()
    .min(100, 'must be >= 100')
    .max(599, 'must be <= 599')
    .optional()
    .describe('HTTP status of the MCP response, when the transport is HTTP.'),
  rpc_error_code: z
    .int32({ error: unlessMissing('must be a 32-bit integer') })
    .optional()
    .describe('JSON-RPC error code, if any.'),
  tool_is_error: z.boolean().optional().describe('The tool result carried isError: true.'),
  trace_id: z
    .string()
    .regex(TRACE_ID_PATTERN, 'must be a W3C trace id: 32 lowercase hex characters, not all zero')
    .optional(),
  auth: eventAuth.optional(),
  error: eventError.optional(),
  // NOTE: stored as UInt32 (ClickHouse would wrap a larger value silently): 49.7 days is the limit.
  duration_ms: count().max(4_294_967_295, 'must be <= 4294967295 (ms; 49.7 days)'),
  request_bytes: count(),
  response_bytes: count(),
  args: eventArgs.optional(),
  response_digest: sha256Hex().optional().describe('SHA-256 of the result, not the result.'),
  labels: eventLabels.optional(),
});

interface CrossFieldIssue {
  path: string[];
  message: string;
}

function crossFieldIssues(
  e: Pick<z.output<typeof eventShape>, 'kind' | 'method' | 'tool' | 'auth' | 'outcome'>,
): CrossFieldIssue[] {
  const issues: CrossFieldIssue[] = [];
  if (e.kind === 'tool_call' && e.tool === undefined) {
    issues.push({ path: ['tool'], message: 'Required when kind is tool_call' });
  }
  if (
    e.kind === 'tool_list' &&
    e.method === 'tools/list' &&
    e.tool !== undefined &&
    e.tool.definition_hash === undefined
  ) {
    issues.push({
      path: ['tool', 'definition_hash'],
      message: 'Required when a tools/list event names a tool (one event per listed tool)',
    });
  }
  if (e.tool?.annotations !== undefined && e.kind !== 'tool_call' && e.kind !== 'tool_list') {
    issues.push({
      path: ['tool', 'annotations'],
      message: 'only allowed when kind is tool_call or tool_list',
    });
  }
  if (e.kind === 'auth' && e.auth === undefined) {
    issues.push({ path: ['auth'], message: 'Required when kind is auth' });
  }
  if (e.outcome === 'auth_failed' && e.auth?.result !== 'failure') {
    issues.push({
      path: e.auth === undefined ? ['auth'] : ['auth', 'result'],
      message:
        e.auth === undefined
          ? 'Required when outcome is auth_failed'
          : 'must be failure when outcome is auth_failed',
    });
  }
  return issues;
}

/**
 * The v1 audit event. Unknown fields are accepted and stripped from the output (the caller keeps
 * the raw JSON). Rules across fields:
 * - kind `tool_call` requires `tool` (tool breadth and definition drift need the name);
 * - a `tools/list` (kind `tool_list`) is the request's own event without `tool`, or one listed tool
 *   with `tool.name` and `tool.definition_hash` (and `tool.annotations` when the server gave any);
 *   other tool_list events (a gateway's admin actions on tool approvals) are not listings;
 * - `tool.annotations` only on kinds `tool_call` and `tool_list`;
 * - kind `auth` requires `auth`;
 * - outcome `auth_failed` requires `auth` with result `failure`.
 * Clock bounds on `ts`, NUL bytes and forbidden keys are checked by parseEvent/validateEvent.
 */
export const auditEventV1 = eventShape
  .superRefine((e, ctx) => {
    for (const issue of crossFieldIssues(e)) ctx.addIssue({ code: 'custom', ...issue });
  })
  .meta({
    title: 'MCP audit event, schema version 1',
    description:
      'One audit event per MCP request, emitted by a gateway or an SDK-wrapped server. Generated from the zod schema in packages/schema; do not edit.',
  });

/**
 * @internal parseEvent's fast path, for a value it has walked (from JSON.parse, finite numbers
 * only, so `args` holds JSON): the fields of auditEventV1 without the recursive check of `args` and
 * without the refinements, which zod runs slowly; `eventRulesHold` checks those. A value passes
 * auditEventV1 exactly when it passes these fields and the rules hold, and the output is the same.
 */
export const eventFieldsOfJson = eventShape.extend({
  args: argsRecord(z.unknown()).optional(),
  labels: labelsRecord.optional(),
});

/** @internal The refinements of auditEventV1, on an output of `eventFieldsOfJson`. */
export function eventRulesHold(e: z.output<typeof eventFieldsOfJson>): boolean {
  return (
    crossFieldIssues(e).length === 0 &&
    (e.args === undefined || argsSizeIssue(e.args) === undefined) &&
    (e.labels === undefined || labelsCountIssue(e.labels) === undefined)
  );
}

export type AuditEventV1 = z.output<typeof auditEventV1>;
export type AuditEventV1Input = z.input<typeof auditEventV1>;
export type EventKind = z.output<typeof eventKind>;
export type SourceType = z.output<typeof sourceType>;
export type ServerTransport = z.output<typeof serverTransport>;
export type EventOutcome = z.output<typeof eventOutcome>;
export type AuthMethod = z.output<typeof authMethod>;
export type AuthResult = z.output<typeof authResult>;
export type EventSource = z.output<typeof eventSource>;
export type EventClient = z.output<typeof eventClient>;
export type EventServer = z.output<typeof eventServer>;
export type EventTool = z.output<typeof eventTool>;
export type ToolAnnotations = z.output<typeof toolAnnotations>;
export type EventAuth = z.output<typeof eventAuth>;
export type EventError = z.output<typeof eventError>;
export type EventArgs = z.output<typeof eventArgs>;
export type EventLabels = z.output<typeof eventLabels>;
