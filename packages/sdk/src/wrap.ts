import { performance } from 'node:perf_hooks';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { JSONRPCMessage, MessageExtraInfo, RequestInfo } from '@modelcontextprotocol/sdk/types.js';
import {
  sha256Hex,
  utf8ByteLength,
  type AuthMethod,
  type EventClient,
  type EventKind,
  type EventTool,
  type ServerTransport,
} from '@mcp-audit/schema';
import {
  createAuditEmitter,
  type AuditEmitter,
  type AuditEmitterOptions,
  type AuditEventDraft,
} from './emitter.js';
import { toolDefinitionHash } from './hash.js';
import { sdkLog, type AuditLogger } from './logger.js';
import { outcomeOf } from './outcome.js';
import {
  cleanText,
  defaultTextRedactor,
  eventAnnotations,
  requestNames,
  wellFormedText,
  wellFormedValue,
} from './sanitize.js';
import type { AuditSink } from './sink.js';
import { SDK_VERSION } from './version.js';

/** What the identity hook sees about one request. Nothing in it comes from client-chosen headers except `requestInfo`. */
export interface ClientContext {
  /** Set by the transport's authentication (for example the SDK's requireBearerAuth middleware). */
  authInfo?: AuthInfo | undefined;
  /** The MCP session (Streamable HTTP `Mcp-Session-Id`), if any. */
  sessionId?: string | undefined;
  /** HTTP request headers and URL (HTTP transports only). */
  requestInfo?: RequestInfo | undefined;
  /** `clientInfo` the client announced in `initialize` (self-declared: descriptive, not identity). */
  clientInfo?: { name: string; version: string } | undefined;
}

/** The identity an event carries: `client` plus, when the request was authenticated, `auth`. */
export interface ClientIdentity {
  client: EventClient;
  auth?: { method: AuthMethod; result: 'success' | 'failure'; reason?: string };
}

export interface AuditServerOptions {
  /** A shared emitter (one per process is typical). Without it, one is created from `sink`. */
  emitter?: AuditEmitter;
  /** Used when no emitter is given: the wrap creates an emitter on it (see `emitterOptions`). */
  sink?: AuditSink;
  /** `source.id` of every event; with the collector sink it must be the token's source id. */
  sourceId: string;
  /** `source.version`. Default: this package's version. */
  sourceVersion?: string;
  /** `server.name`. Default: the name the server announces in `initialize`. */
  serverName?: string;
  serverVersion?: string;
  /** `server.transport`. Default: `http` when the transport passes HTTP request info, else `stdio`. */
  serverTransport?: ServerTransport;
  /** Override how a request's client is identified. Default: see `defaultClientIdentity`. */
  clientIdentity?: (ctx: ClientContext) => ClientIdentity;
  /** `client.id` of requests without authentication info (stdio, unauthenticated HTTP). Default `anonymous`. */
  anonymousClientId?: string;
  /** Labels added to every event of this server. */
  labels?: Record<string, string>;
  /**
   * Requests tracked per connection while awaiting their response. Requests beyond it are not
   * audited; each is counted as dropped (reason `in_flight_limit`) and so reported. Default 10 000.
   */
  maxInFlightPerConnection?: number;
  /** Options for the emitter created from `sink`. */
  emitterOptions?: Omit<AuditEmitterOptions, 'sink' | 'source'>;
  /** The host's logger (pino fits; see AuditLogger), also the emitter's unless emitterOptions has one. */
  logger?: AuditLogger;
}

export type AuditedServer<T> = T & { audit: AuditEmitter };

const AUDITED = Symbol.for('mcp-audit.sdk.audited');
/** Default: at most this many requests per connection are tracked while awaiting their response. */
const MAX_PENDING = 10_000;
/** The drop reason of requests not tracked because `maxInFlightPerConnection` were in flight. */
export const IN_FLIGHT_LIMIT_REASON = 'in_flight_limit';
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

const AUDITED_METHODS: Record<string, EventKind> = {
  initialize: 'session',
  'tools/list': 'tool_list',
  'tools/call': 'tool_call',
  'resources/read': 'resource_read',
  'prompts/get': 'prompt_get',
};

const AUTH_METHODS: readonly AuthMethod[] = ['oauth', 'api_key', 'mtls', 'none'];

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

function header(info: RequestInfo | undefined, name: string): string | undefined {
  const v = info?.headers?.[name];
  return Array.isArray(v) ? str(v[0]) : str(v);
}

/**
 * The default identity: `client.id` is `authInfo.clientId` (the token's client, asserted by the
 * server's authentication); `user` comes from `authInfo.extra.user`/`sub`/`email`, `name` from
 * `authInfo.extra.client_name`, the auth method from `authInfo.extra.auth_method` (default
 * `oauth`). Without authInfo the id is `anonymousClientId` and no `auth` is set. `agent` is the
 * self-declared clientInfo (`name/version`), `user_agent` the HTTP header: descriptive only.
 */
export function defaultClientIdentity(ctx: ClientContext, anonymousClientId = 'anonymous'): ClientIdentity {
  const a = ctx.authInfo;
  const extra = a?.extra ?? {};
  const client: EventClient = { id: str(a?.clientId) ?? anonymousClientId };
  const user = str(extra.user) ?? str(extra.sub) ?? str(extra.email);
  if (user) client.user = user;
  // Descriptive text chosen by the client (or carried along by the auth layer): control
  // characters and lone surrogates would make the event invalid, so they are cleaned, not trusted.
  const name = cleanText(str(extra.client_name) ?? str(extra.clientName));
  if (name) client.name = name;
  if (ctx.clientInfo)
    client.agent = `${cleanText(ctx.clientInfo.name) ?? '?'}/${cleanText(ctx.clientInfo.version) ?? '?'}`;
  const ua = cleanText(header(ctx.requestInfo, 'user-agent'));
  if (ua) client.user_agent = ua;
  if (ctx.sessionId) client.session_id = ctx.sessionId;
  if (!a) return { client };
  const m = str(extra.auth_method);
  const method = m && (AUTH_METHODS as readonly string[]).includes(m) ? (m as AuthMethod) : 'oauth';
  return { client, auth: { method, result: 'success' } };
}

interface Pending {
  method: string;
  kind: EventKind;
  params: Record<string, unknown>;
  requestBytes: number;
  startedAt: number;
  startedPerf: number;
  extra: MessageExtraInfo | undefined;
}

interface Connection {
  clientInfo?: { name: string; version: string };
  pending: Map<string, Pending>;
}

type LowLevel = Server & { [AUDITED]?: true };

function lowLevelOf(server: McpServer | Server): LowLevel {
  const inner = (server as McpServer).server as Server | undefined;
  if (inner && typeof inner.setRequestHandler === 'function') return inner as LowLevel;
  if (typeof (server as Server).setRequestHandler === 'function') return server as LowLevel;
  throw new TypeError('auditMcpServer: expected an McpServer or a Server from @modelcontextprotocol/sdk');
}

const idKey = (id: unknown): string => `${typeof id}:${String(id)}`;

/**
 * Whether the transport answers every request that reaches the server on an HTTP 200: the SDK's
 * Streamable HTTP transports do (the SSE stream or the JSON body opens with 200; their own
 * refusals, 4xx, never reach the server). Others are unknown: the legacy SSE transport answers
 * the POST 202 and sends the response on a GET stream; custom transports say nothing.
 */
const answersOn200 = (t: Transport): boolean =>
  t instanceof StreamableHTTPServerTransport || t instanceof WebStandardStreamableHTTPServerTransport;

function jsonBytes(v: unknown): { json: string; bytes: number } {
  const json = v === undefined ? '' : (JSON.stringify(v) ?? '');
  return { json, bytes: json === '' ? 0 : utf8ByteLength(json) };
}

function withoutMeta(params: unknown): Record<string, unknown> {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return {};
  const { _meta: _ignored, ...rest } = params as Record<string, unknown>;
  return rest;
}

/** What `args` holds per method: the request's parameters, never the result. */
function argsOf(method: string, params: Record<string, unknown>): Record<string, unknown> | undefined {
  switch (method) {
    case 'tools/call': {
      const a = params.arguments;
      return a !== null && typeof a === 'object' && !Array.isArray(a) ? (a as Record<string, unknown>) : {};
    }
    case 'resources/read':
      return { uri: params.uri };
    case 'prompts/get':
      return { name: params.name, arguments: params.arguments ?? {} };
    case 'initialize':
      return {
        protocolVersion: params.protocolVersion,
        clientInfo: params.clientInfo,
        capabilities: params.capabilities,
      };
    case 'tools/list':
      return params.cursor === undefined ? undefined : { cursor: params.cursor };
    default:
      return undefined;
  }
}

/**
 * Wraps an MCP server built with the official TypeScript SDK (`McpServer` or the low-level
 * `Server`) so that every `initialize`, `tools/list`, `tools/call`, `resources/read` and
 * `prompts/get` it answers emits an audit event. Call it before `connect()`; every transport the
 * server connects to afterwards is observed (a transport already connected is observed from now
 * on). The server's behaviour is unchanged: observation runs beside the SDK's own handling, never
 * throws into it and never waits on delivery. Returns the same object with `audit`, the emitter
 * (close it on shutdown to flush).
 */
export function auditMcpServer<T extends McpServer | Server>(
  server: T,
  opts: AuditServerOptions,
): AuditedServer<T> {
  if (typeof opts.sourceId !== 'string' || opts.sourceId.length === 0) {
    throw new TypeError('auditMcpServer: sourceId is required (the source.id of the events)');
  }
  const maxInFlight = opts.maxInFlightPerConnection ?? MAX_PENDING;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
    throw new RangeError('auditMcpServer: maxInFlightPerConnection must be a positive integer');
  const low = lowLevelOf(server);
  if (low[AUDITED]) throw new Error('auditMcpServer: this server is already audited');
  const announced = (low as unknown as { _serverInfo?: { name?: unknown; version?: unknown } })._serverInfo;
  const serverName = opts.serverName ?? str(announced?.name) ?? 'unknown';
  const serverVersion = opts.serverVersion ?? str(announced?.version);
  let emitter = opts.emitter;
  if (!emitter) {
    if (!opts.sink) throw new TypeError('auditMcpServer: pass an emitter or a sink');
    emitter = createAuditEmitter({
      ...(opts.logger ? { logger: opts.logger } : {}),
      ...opts.emitterOptions,
      sink: opts.sink,
      source: { type: 'sdk', id: opts.sourceId, version: opts.sourceVersion ?? SDK_VERSION },
      reportAs: opts.emitterOptions?.reportAs ?? {
        server: {
          name: serverName,
          ...(serverVersion ? { version: serverVersion } : {}),
          transport: opts.serverTransport ?? 'stdio',
        },
      },
    });
  }
  const audit = emitter;
  // The emitter's own, so a secret in a tool name cut here gets the fingerprint the emitter gives it.
  const redactor = audit.redactor ?? defaultTextRedactor;
  const log = opts.logger && sdkLog(opts.logger, { component: 'audit-wrap' });
  const identify =
    opts.clientIdentity ?? ((ctx: ClientContext) => defaultClientIdentity(ctx, opts.anonymousClientId));
  // Definition hashes and annotations of the last tools/list, for tool_call events of this server.
  const listedTools = new Map<string, Pick<EventTool, 'definition_hash' | 'annotations'>>();
  let warned = 0;

  function guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      // Auditing must never break the server: count nothing here, log rarely.
      if (warned++ % 1000 === 0) log?.warn({ err, what }, 'audit observation failed');
    }
  }

  function emitFor(
    conn: Connection,
    transport: Transport,
    p: Pending,
    response: Record<string, unknown> | undefined,
    o: { closedReason?: string; httpStatus?: number; endedPerf?: number } = {},
  ): void {
    const { closedReason } = o;
    const durationMs = Math.max(0, Math.round((o.endedPerf ?? performance.now()) - p.startedPerf));
    const extra = p.extra;
    const identity = identify({
      authInfo: extra?.authInfo,
      sessionId: transport.sessionId,
      requestInfo: extra?.requestInfo,
      clientInfo: conn.clientInfo,
    });
    const rpcError = response?.error as { code?: unknown; message?: unknown } | undefined;
    const result = response?.result as Record<string, unknown> | undefined;
    const out = jsonBytes(rpcError ?? result);
    const toolIsError =
      p.method === 'tools/call' && result !== undefined ? result.isError === true : undefined;
    const rpcErrorCode =
      typeof rpcError?.code === 'number' && Number.isInteger(rpcError.code) ? rpcError.code : undefined;
    const traceparent = header(extra?.requestInfo, 'traceparent');
    const traceId = traceparent ? TRACEPARENT.exec(traceparent)?.[1] : undefined;
    // The tool name is the client's: one the event cannot carry verbatim is sanitized and labelled
    // (invalid_tool_name, tool_name_sha256, tool_name_length) like the gateway does.
    const rawTool = typeof p.params.name === 'string' ? p.params.name : undefined;
    const names = requestNames(p.method, p.method === 'tools/call' ? rawTool : undefined, redactor);
    const base: AuditEventDraft = {
      ts: new Date(p.startedAt).toISOString(),
      kind: p.kind,
      client: identity.client,
      server: {
        name: serverName,
        ...(serverVersion ? { version: serverVersion } : {}),
        transport: opts.serverTransport ?? (extra?.requestInfo ? 'http' : 'stdio'),
      },
      method: names.method,
      outcome: closedReason ? 'error' : outcomeOf({ rpcErrorCode, toolIsError }),
      duration_ms: durationMs,
      request_bytes: p.requestBytes,
      response_bytes: out.bytes,
    };
    if (identity.auth) base.auth = identity.auth;
    if (o.httpStatus !== undefined) base.http_status = o.httpStatus;
    if (rpcErrorCode !== undefined) base.rpc_error_code = rpcErrorCode;
    if (toolIsError !== undefined) base.tool_is_error = toolIsError;
    if (traceId && !/^0+$/.test(traceId)) base.trace_id = traceId;
    if (rpcError)
      base.error = {
        code: rpcErrorCode ?? 'rpc_error',
        message: wellFormedText(String(rpcError.message ?? '')),
      };
    if (closedReason)
      base.error = { code: closedReason, message: `no response: ${closedReason.replace(/_/g, ' ')}` };
    if (result !== undefined) base.response_digest = sha256Hex(out.json);
    const args = argsOf(p.method, p.params);
    // NUL and lone surrogates become U+FFFD in a copy: the server's handler sees the request as sent.
    if (args !== undefined) base.args = wellFormedValue(args);
    if (opts.labels || names.labels) base.labels = { ...opts.labels, ...names.labels };
    if (p.method === 'initialize') {
      const pv = str(result?.protocolVersion);
      if (pv) base.labels = { ...base.labels, 'mcp.protocol_version': pv };
    }

    if (p.method === 'tools/call') {
      const known = rawTool === undefined ? undefined : listedTools.get(rawTool);
      base.tool = { name: names.tool ?? '(missing)', ...known };
      audit.emit(base);
      return;
    }
    // A tools/list is its own event (no tool, the exchange's sizes) plus one event per listed tool
    // (DESIGN, The event), so definition and annotation drift are plain per-(server, tool) queries.
    audit.emit(base);
    const tools =
      p.method === 'tools/list' && Array.isArray(result?.tools) ? (result.tools as unknown[]) : undefined;
    if (!tools || tools.length === 0) return;
    tools.forEach((t, i) => {
      guard('tools/list item', () => {
        const tool = t as {
          name?: unknown;
          description?: unknown;
          inputSchema?: unknown;
          annotations?: unknown;
        };
        const name = str(tool.name);
        if (!name) return;
        const hash = toolDefinitionHash({
          name,
          description: typeof tool.description === 'string' ? tool.description : undefined,
          inputSchema: tool.inputSchema,
        });
        const annotations = eventAnnotations(tool.annotations, redactor);
        listedTools.set(name, { definition_hash: hash, ...(annotations ? { annotations } : {}) });
        // Names come from the server: sanitized and labelled like a client's, never trusted.
        const listed = requestNames(p.method, name, redactor);
        audit.emit({
          ...base,
          tool: { name: listed.tool ?? name, definition_hash: hash, ...(annotations ? { annotations } : {}) },
          request_bytes: 0,
          response_bytes: 0,
          labels: {
            ...base.labels,
            ...listed.labels,
            'mcp.list_index': String(i),
            'mcp.list_size': String(tools.length),
          },
        });
      });
    });
  }

  function observe(transport: Transport): void {
    const conn: Connection = { pending: new Map() };

    const prevOnMessage = transport.onmessage;
    transport.onmessage = <M extends JSONRPCMessage>(message: M, extra?: MessageExtraInfo) => {
      guard('incoming', () => {
        const m = message as { id?: unknown; method?: unknown; params?: unknown };
        if (typeof m.method !== 'string') return;
        if (m.id === undefined) {
          // A cancelled request gets no response: account for it now.
          if (m.method === 'notifications/cancelled') {
            const params = withoutMeta(m.params);
            const key = idKey(params.requestId);
            const p = conn.pending.get(key);
            if (p) {
              conn.pending.delete(key);
              emitFor(conn, transport, p, undefined, { closedReason: 'cancelled' });
            }
          }
          return;
        }
        const kind = AUDITED_METHODS[m.method];
        if (!kind) return;
        if (conn.pending.size >= maxInFlight) {
          // Never silent: an untracked request is an event lost, counted and reported as such.
          audit.countDropped(IN_FLIGHT_LIMIT_REASON);
          return;
        }
        const params = withoutMeta(m.params);
        if (m.method === 'initialize') {
          const ci = params.clientInfo as { name?: unknown; version?: unknown } | undefined;
          const name = str(ci?.name);
          if (name) conn.clientInfo = { name, version: str(ci?.version) ?? '?' };
        }
        conn.pending.set(idKey(m.id), {
          method: m.method,
          kind,
          params,
          requestBytes: jsonBytes(m.params).bytes,
          startedAt: Date.now(),
          startedPerf: performance.now(),
          extra,
        });
      });
      prevOnMessage?.(message, extra);
    };

    const on200 = answersOn200(transport);
    const origSend = transport.send.bind(transport);
    transport.send = (message, options) => {
      let answered: { p: Pending; endedPerf: number } | undefined;
      guard('outgoing', () => {
        const m = message as { id?: unknown; result?: unknown; error?: unknown; method?: unknown };
        if (m.method !== undefined || m.id === undefined || (m.result === undefined && m.error === undefined))
          return;
        const key = idKey(m.id);
        const p = conn.pending.get(key);
        if (!p) return;
        conn.pending.delete(key);
        if (on200) answered = { p, endedPerf: performance.now() };
        else emitFor(conn, transport, p, m as Record<string, unknown>);
      });
      let sent: Promise<void>;
      try {
        sent = origSend(message, options);
      } catch (err) {
        sent = Promise.reject(err);
      }
      // Over Streamable HTTP the status is 200 once the transport took the response; if it could
      // not (the client's stream is gone), the response never arrived: no status to record.
      if (answered) {
        const { p, endedPerf } = answered;
        const emit = (httpStatus?: number) =>
          guard('outgoing', () =>
            emitFor(conn, transport, p, message as Record<string, unknown>, {
              endedPerf,
              ...(httpStatus === undefined ? {} : { httpStatus }),
            }),
          );
        sent.then(
          () => emit(200),
          () => emit(undefined),
        );
      }
      return sent;
    };

    const prevOnClose = transport.onclose;
    transport.onclose = () => {
      guard('close', () => {
        for (const p of conn.pending.values())
          emitFor(conn, transport, p, undefined, { closedReason: 'connection_closed' });
        conn.pending.clear();
      });
      prevOnClose?.();
    };
  }

  const origConnect = low.connect.bind(low);
  low.connect = async (transport: Transport) => {
    guard('connect', () => observe(transport));
    return origConnect(transport);
  };
  if (low.transport) guard('connected transport', () => observe(low.transport!));
  low[AUDITED] = true;

  return Object.assign(server, { audit }) as AuditedServer<T>;
}
