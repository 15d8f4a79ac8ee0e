import { createHash } from 'node:crypto';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type {
  JSONRPCErrorResponse,
  JSONRPCMessage,
  JSONRPCNotification,
  JSONRPCRequest,
  JSONRPCResultResponse,
  RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { Logger, RateLimiter } from '@mcp-audit/service-kit';
import type { ClientIdentity } from './client-keys.js';
import type { UpstreamConfig } from './config.js';
import { eventAnnotations } from '@mcp-audit/sdk';
import type { ToolAnnotations } from '@mcp-audit/schema';
import {
  cleanText,
  defaultTextRedactor,
  eventIdentifier,
  eventMethod,
  kindOf,
  outcomeOf,
  requestNames,
  wellFormedText,
  wellFormedValue,
  type AuditEmitter,
  type EventDraft,
  type TextRedactor,
} from './audit-events.js';
import type { ListingReport, ToolGuard } from './tool-guard.js';
import { methodLabel, type GatewayMetrics } from './metrics.js';

/** JSON-RPC error codes the gateway answers with (implementation-defined server range). */
export const RPC_RATE_LIMITED = -32029;
export const RPC_TOOL_NOT_APPROVED = -32040;
export const RPC_UPSTREAM_UNAVAILABLE = -32050;

export interface SessionContext {
  identity: ClientIdentity;
  ip?: string | undefined;
  userAgent?: string | undefined;
  traceId?: string | undefined;
  /** How the client reached the gateway: http requests carry http_status in events. */
  downstream: 'http' | 'stdio';
}

export interface ProxyDeps {
  emit: AuditEmitter['emit'];
  guard: ToolGuard;
  /** Applied in band (stdio); the HTTP front applies it before a message reaches the session. */
  limiter?: RateLimiter | undefined;
  metrics: GatewayMetrics;
  log: Logger;
  /** Redacts client-chosen identifiers before they are cut to the event's limits. */
  redactor?: TextRedactor | undefined;
  now?: () => number;
}

interface Pending {
  id: RequestId;
  method: string;
  tool?: string | undefined;
  args?: Record<string, unknown> | undefined;
  start: number;
  /** The request as received; its size is measured when the event is built, off the hot path. */
  msg: JSONRPCRequest;
  hasCursor: boolean;
  progressToken?: string | number | undefined;
  direction: 'client' | 'server';
}

export type RefusalReason = 'rate_limited' | 'tool_not_approved' | 'upstream_unavailable';

// Messages reach a session already validated by their transport (the SDK's schemas on the client
// side, the SDK's or upstreamMessage's on the upstream side): which kind each is follows from its keys.
// The SDK's is* guards validate again with zod, 3 to 5 times per proxied message.
const isJSONRPCRequest = (m: JSONRPCMessage): m is JSONRPCRequest =>
  'method' in m && 'id' in m && m.id !== undefined;
const isJSONRPCNotification = (m: JSONRPCMessage): m is JSONRPCNotification =>
  'method' in m && !('id' in m && m.id !== undefined);
const isJSONRPCResultResponse = (m: JSONRPCMessage): m is JSONRPCResultResponse => 'result' in m;
const isJSONRPCErrorResponse = (m: JSONRPCMessage): m is JSONRPCErrorResponse => 'error' in m;

const byteLength = (m: unknown) => Buffer.byteLength(JSON.stringify(m), 'utf8');
const idKey = (id: RequestId) => `${typeof id}:${String(id)}`;
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** What an event records of a request: the tool it calls and its arguments (uri, prompt). */
export function requestFields(msg: JSONRPCRequest): {
  tool?: string | undefined;
  args?: Record<string, unknown> | undefined;
} {
  const params = isObject(msg.params) ? msg.params : undefined;
  if (msg.method === 'tools/call' && typeof params?.name === 'string')
    return { tool: params.name, args: isObject(params.arguments) ? params.arguments : undefined };
  if (msg.method === 'resources/read' && typeof params?.uri === 'string')
    return { args: { uri: params.uri } };
  if (msg.method === 'prompts/get' && typeof params?.name === 'string')
    return {
      args: { name: params.name, ...(isObject(params.arguments) ? { arguments: params.arguments } : {}) },
    };
  return {};
}

/**
 * One client session bridged to one upstream session at the JSON-RPC message level. Messages pass
 * unchanged in both directions (requests, responses, notifications, progress, cancellation and
 * server→client requests); the session only watches them to time requests, build audit events,
 * record tool definitions, and refuse what policy forbids (with a JSON-RPC error of its own).
 */
export class ProxySession {
  readonly upstream: UpstreamConfig;
  readonly ctx: SessionContext;
  lastActivity: number;
  /** Set once closed; further messages are dropped. */
  closed = false;
  onclose?: () => void;

  private readonly down: Transport;
  private readonly up: Transport;
  private readonly deps: ProxyDeps;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly redactor: TextRedactor;
  private readonly pending = new Map<string, Pending>();
  private readonly serverPending = new Map<string, Pending>();
  private readonly progress = new Map<string, RequestId>();
  private clientInfo?: { name?: string; version?: string };
  private serverVersion?: string;
  // Annotations of this session's last tools/list, by the upstream's tool name: tool_call events
  // carry them. A complete listing replaces the map; a page of a paginated one adds to it.
  private toolAnnotations = new Map<string, ToolAnnotations>();
  // Notifications and `initialize` are barriers: a later message waits until they were handed to
  // the upstream, so an HTTP upstream never sees `tools/list` before `notifications/initialized`.
  private barrier: Promise<void> = Promise.resolve();
  private downQueue: Promise<void> = Promise.resolve();
  // Audit work (sizes, digest, redaction, validation, metrics) runs after the message it describes
  // was handed on: queued here and drained on the next turn of the event loop, never in front of
  // forwarding.
  private auditQueue: Array<() => void> = [];
  private auditScheduled = false;

  constructor(opts: {
    upstream: UpstreamConfig;
    upstreamTransport: Transport;
    downstream: Transport;
    ctx: SessionContext;
    deps: ProxyDeps;
  }) {
    this.upstream = opts.upstream;
    this.up = opts.upstreamTransport;
    this.down = opts.downstream;
    this.ctx = opts.ctx;
    this.deps = opts.deps;
    this.now = opts.deps.now ?? Date.now;
    this.redactor = opts.deps.redactor ?? defaultTextRedactor;
    this.lastActivity = this.now();
    this.log = opts.deps.log.child({ upstream: this.upstream.name, client: this.ctx.identity.clientId });
  }

  get sessionId(): string | undefined {
    return this.down.sessionId;
  }

  get clientId(): string {
    return this.ctx.identity.clientId;
  }

  /** Start the upstream side (spawns the child or prepares HTTP) and wire both directions. */
  async start(): Promise<void> {
    this.up.onmessage = (m) => this.fromServer(m);
    this.up.onerror = (err) => this.log.warn({ err }, 'upstream transport error');
    this.up.onclose = () => void this.close('upstream closed');
    this.down.onmessage = (m) => this.fromClient(m);
    this.down.onerror = (err) => this.log.debug({ err }, 'downstream transport error');
    this.down.onclose = () => void this.close('client closed');
    await this.up.start();
    await this.down.start();
    this.deps.metrics.sessions.inc({ upstream: this.upstream.name });
  }

  async close(reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deps.metrics.sessions.dec({ upstream: this.upstream.name });
    this.log.debug({ reason, session: this.sessionId }, 'session closed');
    for (const p of this.pending.values())
      this.finish(p, {
        error: { code: 'session_closed', message: `session closed before a response: ${reason}` },
      });
    this.pending.clear();
    this.drainAudit();
    this.serverPending.clear();
    const up = this.up as Transport & { terminateSession?: () => Promise<void> };
    // Best effort: tell an HTTP upstream the session is over, then close both sides.
    if (reason === 'client closed' && typeof up.terminateSession === 'function' && up.sessionId)
      await up.terminateSession().catch(() => undefined);
    await Promise.allSettled([this.up.close(), this.down.close()]);
    this.onclose?.();
  }

  // ---- client → upstream -------------------------------------------------------------------

  private fromClient(msg: JSONRPCMessage): void {
    if (this.closed) return;
    this.lastActivity = this.now();
    if (isJSONRPCRequest(msg)) {
      if (this.deps.limiter) {
        const waitMs = this.deps.limiter.take(this.clientId, this.ctx.identity.rateLimit);
        if (waitMs > 0) {
          this.refuse(msg, 'rate_limited', `rate limit exceeded; retry in ${Math.ceil(waitMs / 1000)}s`);
          return;
        }
      }
      const p = this.track(msg, 'client');
      if (p.method === 'initialize' && isObject(msg.params) && isObject(msg.params.clientInfo))
        this.clientInfo = msg.params.clientInfo as { name?: string; version?: string };
      if (p.method === 'tools/call' && p.tool !== undefined) {
        const check = this.deps.guard.check(this.upstream.name, p.tool);
        if (!check.allowed) {
          this.refuse(
            msg,
            'tool_not_approved',
            `tool "${p.tool}" of "${this.upstream.name}" changed its definition and awaits operator re-approval`,
            { definition_hash: check.hash, approved_hash: check.approvedHash },
          );
          return;
        }
      }
      this.pending.set(idKey(msg.id), p);
      if (p.progressToken !== undefined) this.progress.set(String(p.progressToken), msg.id);
      this.toUpstream(msg, p.method === 'initialize');
      return;
    }
    if (isJSONRPCNotification(msg)) {
      if (msg.method === 'notifications/cancelled' && isObject(msg.params)) {
        const id = msg.params.requestId as RequestId | undefined;
        const p = id === undefined ? undefined : this.pending.get(idKey(id));
        if (p) {
          this.pending.delete(idKey(id!));
          this.finish(p, {
            error: {
              code: 'cancelled',
              message: cleanText(msg.params.reason, 500) ?? 'cancelled by the client',
            },
          });
        }
      }
      this.toUpstream(msg, true);
      return;
    }
    // A response to a server→client request (sampling, elicitation, roots).
    const id = (msg as { id?: RequestId }).id;
    const p = id === undefined ? undefined : this.serverPending.get(idKey(id));
    this.toUpstream(msg, false);
    if (p) {
      this.serverPending.delete(idKey(id!));
      this.finish(p, () => this.responseFields(p, msg));
    }
  }

  private toUpstream(msg: JSONRPCMessage, isBarrier: boolean): void {
    const send = this.barrier.then(() =>
      this.up.send(msg).catch((err: unknown) => this.upstreamSendFailed(msg, err)),
    );
    if (isBarrier) this.barrier = send;
  }

  private upstreamSendFailed(msg: JSONRPCMessage, err: unknown): void {
    this.log.warn({ err }, 'could not forward a message upstream');
    if (!isJSONRPCRequest(msg)) return;
    const p = this.pending.get(idKey(msg.id));
    if (!p) return;
    this.pending.delete(idKey(msg.id));
    const message = `upstream "${this.upstream.name}" is unavailable`;
    this.finish(p, {
      error: { code: 'upstream_unavailable', message },
      rpcErrorCode: RPC_UPSTREAM_UNAVAILABLE,
    });
    this.toClient({ jsonrpc: '2.0', id: msg.id, error: { code: RPC_UPSTREAM_UNAVAILABLE, message } });
    // No upstream session came of the client's initialize: end this one once the error is out.
    if (msg.method === 'initialize') void this.downQueue.then(() => this.close('upstream unavailable'));
  }

  // ---- upstream → client -------------------------------------------------------------------

  private fromServer(msg: JSONRPCMessage): void {
    if (this.closed) return;
    this.lastActivity = this.now();
    if (isJSONRPCResultResponse(msg) || isJSONRPCErrorResponse(msg)) {
      const id = (msg as { id?: RequestId }).id;
      const p = id === undefined ? undefined : this.pending.get(idKey(id));
      if (p) {
        this.pending.delete(idKey(id!));
        if (p.progressToken !== undefined) this.progress.delete(String(p.progressToken));
        // In band, before the client can act on the result: the negotiated protocol version and
        // the tool definitions the guard judges the next calls by (listings are rare).
        if (isJSONRPCResultResponse(msg)) this.onResult(p, msg.result);
      }
      this.toClient(msg);
      if (p) this.finish(p, () => this.responseFields(p, msg));
      return;
    }
    if (isJSONRPCRequest(msg)) {
      const p = this.track(msg, 'server');
      this.serverPending.set(idKey(msg.id), p);
      this.toClient(msg, this.latestPendingId());
      return;
    }
    if (isJSONRPCNotification(msg)) {
      let related: RequestId | undefined;
      const token = isObject(msg.params) ? msg.params.progressToken : undefined;
      if (token !== undefined) related = this.progress.get(String(token));
      if (msg.method === 'notifications/tools/list_changed')
        this.log.info({ session: this.sessionId }, 'upstream says its tool list changed');
      this.toClient(msg, related ?? this.latestPendingId());
    }
  }

  /**
   * Over stdio nothing says which client request a server notification or request belongs to.
   * Related to the newest request still open (the SDK server does the same for in-tool messages),
   * it travels on that request's stream; with none open it goes on the session's GET stream.
   */
  private latestPendingId(): RequestId | undefined {
    let last: Pending | undefined;
    for (const p of this.pending.values()) last = p;
    return last?.id;
  }

  private toClient(msg: JSONRPCMessage, relatedRequestId?: RequestId): void {
    this.downQueue = this.downQueue.then(async () => {
      if (this.closed && !('id' in msg)) return;
      try {
        await this.down.send(msg, relatedRequestId === undefined ? undefined : { relatedRequestId });
      } catch (err) {
        if (relatedRequestId === undefined) {
          this.log.debug({ err }, 'could not deliver a message to the client');
          return;
        }
        // The related request's stream is gone (its response was sent): use the session stream.
        await this.down.send(msg).catch((e: unknown) => this.log.debug({ err: e }, 'message dropped'));
      }
    });
  }

  private onResult(p: Pending, result: unknown): void {
    if (!isObject(result)) return;
    if (p.method === 'initialize') {
      const info = isObject(result.serverInfo) ? result.serverInfo : undefined;
      if (typeof info?.version === 'string') this.serverVersion = info.version;
      if (typeof result.protocolVersion === 'string') this.up.setProtocolVersion?.(result.protocolVersion);
    }
    if (p.method === 'tools/list' && Array.isArray(result.tools)) {
      const complete = !p.hasCursor && result.nextCursor === undefined;
      const tools = result.tools as unknown[];
      this.onToolListing(this.deps.guard.observe(this.upstream.name, tools, complete), p, tools, complete);
    }
  }

  /**
   * One tool_list event per listed tool (DESIGN, The event: beside the request's own event), with
   * its definition hash and annotations as returned; a definition change or a shadowing the guard
   * found in this listing is labelled on that tool's event (`change`), so a listing is never more
   * than one event per tool.
   */
  private onToolListing(report: ListingReport, p: Pending, tools: unknown[], complete: boolean): void {
    const base = this.baseDraft({ ...p, method: 'tools/list' });
    // Names come from the upstream: one the event cannot carry is sanitized, not trusted.
    const toolName = (name: string) => eventIdentifier(name, this.redactor).value;
    const annotations = new Map<string, ToolAnnotations>();
    for (const t of tools) {
      if (typeof t !== 'object' || t === null) continue;
      const { name, annotations: raw } = t as { name?: unknown; annotations?: unknown };
      const a = typeof name === 'string' ? eventAnnotations(raw, this.redactor) : undefined;
      if (a && typeof name === 'string') annotations.set(name, a);
    }
    if (complete) this.toolAnnotations = annotations;
    else for (const [name, a] of annotations) this.toolAnnotations.set(name, a);
    const labelled = new Map<string, Record<string, string>>();
    for (const c of report.changes) {
      this.deps.metrics.toolChanges.inc({ upstream: this.upstream.name });
      this.log.warn(
        {
          tool: c.tool,
          hash: c.hash,
          previous: c.previousHash,
          approved: c.approvedHash,
          blocked: c.blocked,
        },
        'tool definition changed',
      );
      labelled.set(c.tool, {
        change: 'definition_changed',
        previous_hash: c.previousHash,
        approved_hash: c.approvedHash,
        guard: !this.deps.guard.enabled ? 'off' : c.blocked ? 'blocked' : 'approved',
      });
    }
    for (const s of report.shadowing) {
      this.log.warn({ tool: s.tool, upstreams: s.upstreams }, 'tool name shadowed across upstreams');
      // A changed tool keeps change=definition_changed; the shadowing shows in `upstreams`.
      labelled.set(s.tool, {
        change: 'shadowing',
        ...labelled.get(s.tool),
        upstreams: s.upstreams.join(','),
      });
    }
    const ts = new Date(this.now()).toISOString();
    const { labels: requestLabels, ...perTool } = base;
    for (const [name, hash] of report.hashes) {
      const a = annotations.get(name);
      const labels = { ...requestLabels, ...labelled.get(name) };
      this.deps.emit({
        ...perTool,
        kind: 'tool_list',
        ts,
        tool: { name: toolName(name), definition_hash: hash, ...(a ? { annotations: a } : {}) },
        outcome: 'ok',
        duration_ms: 0,
        request_bytes: 0,
        response_bytes: 0,
        ...(Object.keys(labels).length > 0 ? { labels } : {}),
      });
    }
  }

  // ---- events ------------------------------------------------------------------------------

  private track(msg: JSONRPCRequest, direction: 'client' | 'server'): Pending {
    const params = isObject(msg.params) ? msg.params : undefined;
    const meta = params && isObject(params._meta) ? params._meta : undefined;
    const token = meta?.progressToken;
    const { tool, args } = requestFields(msg);
    return {
      id: msg.id,
      method: msg.method,
      tool,
      args,
      start: this.now(),
      msg,
      hasCursor: params?.cursor !== undefined,
      progressToken: typeof token === 'string' || typeof token === 'number' ? token : undefined,
      direction,
    };
  }

  private baseDraft(p: Pick<Pending, 'method' | 'tool' | 'start' | 'direction'>): EventDraft {
    const id = this.ctx.identity;
    // A server→client request is no tool call of the client's: its method only.
    const names: ReturnType<typeof requestNames> =
      p.direction === 'client'
        ? requestNames(p.method, p.tool, this.redactor)
        : eventMethod(p.method, this.redactor);
    const labels = {
      ...(p.direction === 'server' ? { direction: 'server_to_client' } : {}),
      ...names.labels,
    };
    return {
      ts: new Date(p.start).toISOString(),
      kind: p.direction === 'server' ? 'session' : kindOf(p.method),
      method: names.method,
      client: {
        id: id.clientId,
        user: id.user,
        name: id.name,
        agent: cleanText(this.clientInfo?.name),
        ip: this.ctx.ip,
        user_agent: this.ctx.userAgent,
        session_id: this.sessionId,
      },
      server: {
        name: this.upstream.name,
        version: cleanText(this.serverVersion),
        transport: this.upstream.transport,
      },
      ...(names.tool !== undefined
        ? {
            tool: {
              name: names.tool,
              definition_hash:
                p.tool === undefined ? undefined : this.deps.guard.hashOf(this.upstream.name, p.tool),
              annotations: p.tool === undefined ? undefined : this.toolAnnotations.get(p.tool),
            },
          }
        : {}),
      auth: { method: 'api_key', result: 'success' },
      trace_id: this.ctx.traceId,
      outcome: 'ok',
      duration_ms: 0,
      request_bytes: 0,
      response_bytes: 0,
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
    };
  }

  private responseFields(p: Pending, msg: JSONRPCMessage): FinishFields {
    const bytes = byteLength(msg);
    if (isJSONRPCErrorResponse(msg)) {
      return {
        responseBytes: bytes,
        rpcErrorCode: msg.error.code,
        error: { code: msg.error.code, message: wellFormedText(msg.error.message, 1000) },
      };
    }
    const result = (msg as { result?: unknown }).result;
    const toolIsError = p.method === 'tools/call' && isObject(result) ? result.isError === true : undefined;
    let error: FinishFields['error'];
    if (toolIsError && isObject(result) && Array.isArray(result.content)) {
      const text = result.content.find((c: unknown) => isObject(c) && c.type === 'text') as
        { text?: unknown } | undefined;
      error = {
        code: 'tool_error',
        message: typeof text?.text === 'string' ? wellFormedText(text.text, 1000) : '',
      };
    }
    return {
      responseBytes: bytes,
      toolIsError,
      error,
      digest: createHash('sha256')
        .update(JSON.stringify(result ?? null))
        .digest('hex'),
    };
  }

  /**
   * Audit a finished request. Its duration is taken now; everything else (fields computed by
   * `fields` when it is a function, the event, metrics) runs after the current forwarding work.
   */
  private finish(p: Pending, fields: FinishFields | (() => FinishFields)): void {
    const end = this.now();
    this.auditQueue.push(() => this.audit(p, typeof fields === 'function' ? fields() : fields, end));
    if (!this.auditScheduled) {
      this.auditScheduled = true;
      setImmediate(() => this.drainAudit());
    }
  }

  private drainAudit(): void {
    this.auditScheduled = false;
    const queue = this.auditQueue;
    this.auditQueue = [];
    for (const run of queue) {
      try {
        run();
      } catch (err) {
        // Never into forwarding: a bug here costs an event, logged, not a message.
        this.log.error({ err }, 'could not audit a request');
      }
    }
  }

  private audit(p: Pending, f: FinishFields, end: number): void {
    const duration = Math.max(0, Math.round(end - p.start));
    const outcome = outcomeOf({ rpcErrorCode: f.rpcErrorCode, toolIsError: f.toolIsError, denied: f.denied });
    const final = f.error && outcome === 'ok' ? 'error' : outcome;
    const base = this.baseDraft(p);
    const labels = { ...base.labels, ...f.labels };
    this.deps.emit({
      ...base,
      outcome: final,
      http_status: this.ctx.downstream === 'http' ? (f.httpStatus ?? 200) : undefined,
      rpc_error_code: f.rpcErrorCode,
      tool_is_error: f.toolIsError,
      error: f.error,
      duration_ms: duration,
      request_bytes: byteLength(p.msg),
      response_bytes: f.responseBytes ?? 0,
      args: p.args === undefined ? undefined : wellFormedValue(p.args),
      response_digest: f.digest,
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
    });
    if (p.direction === 'client') {
      const metric = { upstream: this.upstream.name, method: methodLabel(p.method) };
      this.deps.metrics.requests.inc({ ...metric, outcome: final });
      this.deps.metrics.duration.observe(metric, duration / 1000);
    }
  }

  /** Answer a request with a JSON-RPC error of the gateway's own and audit it as denied. */
  refuse(msg: JSONRPCRequest, reason: RefusalReason, message: string, labels?: Record<string, string>): void {
    const code =
      reason === 'rate_limited'
        ? RPC_RATE_LIMITED
        : reason === 'tool_not_approved'
          ? RPC_TOOL_NOT_APPROVED
          : RPC_UPSTREAM_UNAVAILABLE;
    const response: JSONRPCMessage = { jsonrpc: '2.0', id: msg.id, error: { code, message } };
    this.toClient(response);
    this.auditRefusal(msg, reason, message, { httpStatus: 200, responseBytes: byteLength(response), labels });
  }

  /** Audit a request refused before it reached the session (e.g. an HTTP 429). */
  auditRefusal(
    msg: JSONRPCRequest,
    reason: RefusalReason,
    message: string,
    o: { httpStatus?: number; responseBytes?: number; labels?: Record<string, string> | undefined } = {},
  ): void {
    const p = this.track(msg, 'client');
    const code =
      reason === 'rate_limited'
        ? RPC_RATE_LIMITED
        : reason === 'tool_not_approved'
          ? RPC_TOOL_NOT_APPROVED
          : RPC_UPSTREAM_UNAVAILABLE;
    this.finish(p, {
      // Policy refusals are `denied`; an upstream that is not there is an `error`.
      denied: reason !== 'upstream_unavailable',
      rpcErrorCode: code,
      error: { code: reason, message: wellFormedText(message) },
      httpStatus: o.httpStatus,
      responseBytes: o.responseBytes,
      labels: { refused_by: 'gateway', ...o.labels },
    });
  }
}

interface FinishFields {
  responseBytes?: number | undefined;
  rpcErrorCode?: number | undefined;
  toolIsError?: boolean | undefined;
  denied?: boolean | undefined;
  httpStatus?: number | undefined;
  error?: { code: string | number; message: string } | undefined;
  digest?: string | undefined;
  labels?: Record<string, string> | undefined;
}
