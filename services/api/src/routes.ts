import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { dbIdent, sql, tuple } from '@mcp-audit/clickhouse';
import type { RateLimiter } from '@mcp-audit/service-kit';
import type { AccessLogRow } from './access-log.js';
import { readAccessLog } from './access-log.js';
import {
  alertById,
  alertFilterQuery,
  alertFilterSchema,
  deliveriesOf,
  listAlerts,
  toAlertDetail,
  toAlertSummary,
  toTransition,
  transitionsOf,
} from './alerts.queries.js';
import type { ApiDeps, RouteConfig, RouteScope } from './app.js';
import { SESSION_COOKIE } from './app.js';
import { clientPage, openAlertsBySeverity, overview } from './clients.queries.js';
import type { ApiConfig } from './config.js';
import { ApiError } from './errors.js';
import {
  eventById,
  eventWhere,
  facets,
  FULL_COLUMNS,
  neighbours,
  searchEvents,
  sessionIdentities,
  toEvent,
  type EventSummary,
  type FullRow,
} from './events.queries.js';
import { exportStream } from './export.js';
import {
  eventFilterQuery,
  eventFilterSchema,
  list,
  MAX_VALUE,
  MAX_VALUES,
  pageQuery,
  rangeOut,
  rangeQuery,
  resolveRange,
  uuidParam,
} from './query.params.js';
import { csrfMatches, type SessionStore } from './sessions.js';
import { RESOLUTIONS, TRIAGE_ACTIONS, type Triage, type TriageRequest } from './triage.js';

export interface RoutesContext {
  config: ApiConfig;
  deps: ApiDeps;
  sessions: SessionStore;
  triage: Triage;
  accessRow: (req: FastifyRequest, status: number, phase: string) => AccessLogRow;
  now: () => number;
  authFailures: RateLimiter;
  limited: (ms: number) => ApiError;
}

/** One entry of the route table: every route declares its scope and whether it is audited. */
interface RouteDef<Q extends z.ZodType, P extends z.ZodType, B extends z.ZodType> {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  scope: RouteScope;
  audit: boolean;
  summary: string;
  tags: string[];
  querystring?: Q;
  params?: P;
  body?: B;
  handler: (
    req: FastifyRequest & { query: z.infer<Q>; params: z.infer<P>; body: z.infer<B> },
    reply: FastifyReply,
  ) => Promise<unknown>;
}

const noteText = z.string().max(1_000);
const id = z.string().min(1).max(MAX_VALUE);
const alertIdParams = z.object({ alert_id: uuidParam });

export function registerRoutes(app: FastifyInstance, ctx: RoutesContext): void {
  const { config, deps, sessions, triage } = ctx;
  const ch = deps.reader;
  const route = <Q extends z.ZodType, P extends z.ZodType, B extends z.ZodType>(d: RouteDef<Q, P, B>) => {
    const cfg: RouteConfig = { scope: d.scope, audit: d.audit };
    app.route({
      method: d.method,
      url: d.url,
      config: cfg,
      schema: {
        summary: d.summary,
        tags: d.tags,
        ...(d.querystring ? { querystring: d.querystring } : {}),
        ...(d.params ? { params: d.params } : {}),
        ...(d.body ? { body: d.body } : {}),
      },
      handler: d.handler as never,
    });
  };
  const rangeOf = (q: { from?: string | undefined; to?: string | undefined }) =>
    resolveRange(q, config.maxRangeDays, ctx.now());

  // ---- session (console login) ----------------------------------------------------------------
  const sessionAnswer = (keyId: string, scopes: readonly string[], csrf: string, expiresAt: number) => ({
    key_id: keyId,
    scopes,
    csrf_token: csrf,
    expires_at: new Date(expiresAt).toISOString(),
  });
  const cookieOpts = {
    httpOnly: true,
    sameSite: 'strict' as const,
    secure: config.cookieSecure,
    path: '/',
  };

  route({
    method: 'POST',
    url: '/api/v1/session',
    scope: 'session',
    audit: false,
    summary: 'Exchange an API key for a console session cookie',
    tags: ['session'],
    body: z.object({ key: z.string().min(1).max(600) }),
    async handler(req, reply) {
      const v = deps.keys.verify(req.body.key);
      if (!v.ok) {
        const wait = ctx.authFailures.take(req.ip);
        if (wait > 0) throw ctx.limited(wait);
        throw new ApiError('AUDIT_ERR_UNAUTHENTICATED', 'unknown or revoked key');
      }
      sessions.destroy(req.cookies[SESSION_COOKIE]);
      const s = sessions.create(v.credential.id);
      reply.setCookie(SESSION_COOKIE, s.token, {
        ...cookieOpts,
        maxAge: Math.ceil(config.sessionMaxMs / 1000),
      });
      return sessionAnswer(v.credential.id, v.credential.scopes, s.session.csrf, s.expiresAt);
    },
  });
  route({
    method: 'GET',
    url: '/api/v1/session',
    scope: 'session',
    audit: false,
    summary: 'The current console session',
    tags: ['session'],
    async handler(req) {
      const s = sessions.get(req.cookies[SESSION_COOKIE]);
      if (!s || !req.principal || req.principal.via !== 'session')
        throw new ApiError('AUDIT_ERR_UNAUTHENTICATED', 'no live session');
      return sessionAnswer(req.principal.keyId, req.principal.scopes, s.session.csrf, s.expiresAt);
    },
  });
  route({
    method: 'DELETE',
    url: '/api/v1/session',
    scope: 'session',
    audit: false,
    summary: 'Log out',
    tags: ['session'],
    async handler(req, reply) {
      const s = sessions.get(req.cookies[SESSION_COOKIE]);
      if (s && !csrfOk(req, s.session.csrf))
        throw new ApiError('AUDIT_ERR_FORBIDDEN', 'X-CSRF-Token missing or wrong');
      sessions.destroy(req.cookies[SESSION_COOKIE]);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send();
    },
  });

  // ---- events ----------------------------------------------------------------------------------
  const searchQuery = z.object({ ...eventFilterQuery, ...pageQuery });
  route({
    method: 'GET',
    url: '/api/v1/events',
    scope: 'analyst',
    audit: true,
    summary: 'Search events (newest first, keyset pagination)',
    tags: ['events'],
    querystring: searchQuery,
    async handler(req) {
      const range = rangeOf(req.query);
      note(req, req.query, range);
      const page = await searchEvents(ch, eventWhere(req.query, range), req.query);
      req.auditNote.rows = page.items.length;
      return { ...page, range: rangeOut(range) };
    },
  });
  route({
    method: 'GET',
    url: '/api/v1/events/facets',
    scope: 'analyst',
    audit: true,
    summary: 'Top 10 values of the main fields among matching events',
    tags: ['events'],
    querystring: eventFilterSchema,
    async handler(req) {
      const range = rangeOf(req.query);
      note(req, req.query, range);
      const f = await facets(ch, eventWhere(req.query, range));
      req.auditNote.rows = Object.values(f).reduce((n, v) => n + v.length, 0);
      return { facets: f, range: rangeOut(range) };
    },
  });
  route({
    method: 'GET',
    url: '/api/v1/events/export',
    scope: 'analyst',
    audit: true,
    summary: 'Download matching events as NDJSON or CSV (row cap: X-Row-Cap-Reached)',
    tags: ['events'],
    querystring: z.object({ ...eventFilterQuery, format: z.enum(['ndjson', 'csv']).default('ndjson') }),
    async handler(req, reply) {
      const range = rangeOf(req.query);
      note(req, req.query, range);
      const where = eventWhere(req.query, range);
      const db = dbIdent(ch.database);
      const [c] = await ch.query<{ n: string }>(
        sql`SELECT count() AS n FROM ${db}.events FINAL WHERE ${where}`,
      );
      const total = Number(c?.n ?? 0);
      const rows = Math.min(total, config.exportMaxRows);
      req.auditNote.rows = rows;
      const fmt = req.query.format;
      const stamp = new Date(ctx.now()).toISOString().replace(/[:.]/g, '-');
      reply
        .header('content-type', fmt === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
        .header(
          'content-disposition',
          `attachment; filename="mcp-audit-events-${stamp}.${fmt === 'csv' ? 'csv' : 'ndjson'}"`,
        )
        .header('x-row-cap-reached', total > config.exportMaxRows ? 'true' : 'false');
      const stream = Readable.from(
        exportStream(ch, where, fmt, config.exportMaxRows, (sent, err) => {
          // The final count, appended once the download ends (the first row was written before it began).
          const row = { ...ctx.accessRow(req, err ? 500 : 200, 'export_complete'), rows: sent };
          deps.accessLog
            .write(row)
            .catch((e: unknown) => req.log.error({ err: e }, 'export completion row failed'));
        }),
      );
      return reply.send(stream);
    },
  });
  route({
    method: 'GET',
    url: '/api/v1/events/:event_id',
    scope: 'analyst',
    audit: true,
    summary: 'One event in full, with its neighbours in the session',
    tags: ['events'],
    params: z.object({ event_id: uuidParam }),
    async handler(req) {
      const t = ctx.now();
      const fallback = { from: t - config.maxRangeDays * 86_400_000, to: t };
      note(req, req.params, undefined);
      const e = await eventById(ch, req.params.event_id, fallback);
      if (!e) throw new ApiError('AUDIT_ERR_NOT_FOUND', `event ${req.params.event_id} not found`);
      const n = await neighbours(ch, e, 10);
      req.auditNote.rows = 1 + n.before.length + n.after.length;
      return { event: toEvent(e), neighbours: n };
    },
  });
  route({
    method: 'GET',
    url: '/api/v1/sessions/:session_id',
    scope: 'analyst',
    audit: true,
    summary: "A session's timeline (oldest first) and every identity it was used under",
    tags: ['events'],
    params: z.object({ session_id: id }),
    querystring: z.object({ ...rangeQuery, ...pageQuery }),
    async handler(req) {
      const range = rangeOf(req.query);
      note(req, { ...req.query, session_id: req.params.session_id }, range);
      const sid = req.params.session_id;
      const [identities, page] = await Promise.all([
        sessionIdentities(ch, sid, range),
        searchEvents(ch, eventWhere({ session: sid }, range), { ...req.query, dir: 'asc' }),
      ]);
      req.auditNote.rows = page.items.length + identities.length;
      return { session_id: sid, identities, ...page, range: rangeOut(range) };
    },
  });

  // ---- clients, overview -----------------------------------------------------------------------
  route({
    method: 'GET',
    url: '/api/v1/clients/:client_id',
    scope: 'analyst',
    audit: true,
    summary: "A client's state, baseline band, servers, tools, activity and alerts",
    tags: ['clients'],
    params: z.object({ client_id: id }),
    querystring: z.object(rangeQuery),
    async handler(req) {
      const range = rangeOf(req.query);
      const cid = req.params.client_id;
      note(req, { ...req.query, client_id: cid }, range);
      const [page, alerts] = await Promise.all([
        clientPage(ch, cid, range),
        listAlerts(ch, { client: cid }, range, { limit: 100 }),
      ]);
      req.auditNote.rows =
        page.tools.length + page.servers.length + page.activity.length + alerts.items.length;
      return { ...page, alerts: alerts.items.map(toAlertSummary), range: rangeOut(range) };
    },
  });
  route({
    method: 'GET',
    url: '/api/v1/overview',
    scope: 'analyst',
    audit: true,
    summary: 'Event rate, outcome mix, top clients and tools, open alerts, ingestion health',
    tags: ['overview'],
    querystring: z.object(rangeQuery),
    async handler(req) {
      const range = rangeOf(req.query);
      note(req, req.query, range);
      const [o, open] = await Promise.all([overview(ch, range), openAlertsBySeverity(ch)]);
      req.auditNote.rows =
        o.event_rate.length + o.outcomes.length + o.top_clients.length + o.top_tools.length;
      return {
        range: rangeOut(range),
        event_rate: o.event_rate,
        outcomes: o.outcomes,
        top_clients: o.top_clients,
        top_tools: o.top_tools,
        open_alerts_by_severity: open,
        // Dead letters live on a Kafka topic, not in ClickHouse: not counted here (null).
        ingestion: {
          dead_letters: null,
          silent_sources: o.silent_sources,
          silent_sources_total: o.silent_sources_total,
        },
      };
    },
  });

  // ---- alerts ----------------------------------------------------------------------------------
  route({
    method: 'GET',
    url: '/api/v1/alerts',
    scope: 'analyst',
    audit: true,
    summary: 'List and filter alerts (newest first)',
    tags: ['alerts'],
    querystring: z.object({ ...alertFilterQuery, ...pageQuery }),
    async handler(req) {
      const range = rangeOf({
        ...req.query,
        ...(req.query.from ? {} : { from: new Date(ctx.now() - 7 * 86_400_000).toISOString() }),
      });
      note(req, req.query, range);
      const page = await listAlerts(ch, req.query, range, req.query);
      req.auditNote.rows = page.items.length;
      return { items: page.items.map(toAlertSummary), next_cursor: page.next_cursor, range: rangeOut(range) };
    },
  });
  route({
    method: 'GET',
    url: '/api/v1/alerts/:alert_id',
    scope: 'analyst',
    audit: true,
    summary: 'One alert: explanation, sample events, transitions, deliveries',
    tags: ['alerts'],
    params: alertIdParams,
    async handler(req) {
      note(req, req.params, undefined);
      const a = await alertById(ch, req.params.alert_id);
      if (!a) throw new ApiError('AUDIT_ERR_NOT_FOUND', `alert ${req.params.alert_id} not found`);
      const detail = toAlertDetail(a);
      const [transitions, deliveries, samples] = await Promise.all([
        transitionsOf(ch, a.alert_id),
        deliveriesOf(ch, a.alert_id),
        sampleEvents(a.sample_event_ids, Number(a.window_start_ms), Number(a.window_end_ms)),
      ]);
      req.auditNote.rows = 1 + transitions.length + deliveries.length + samples.length;
      return { alert: detail, samples, transitions: transitions.map(toTransition), deliveries };
    },
  });

  async function sampleEvents(ids: string[], start: number, end: number) {
    const valid = ids.filter((i) => /^[0-9a-f-]{36}$/.test(i)).slice(0, 50);
    if (valid.length === 0) return [];
    const db = dbIdent(ch.database);
    const from = new Date(Math.max(0, Math.floor(start / 1000) - 86_400) * 1000);
    const to = new Date((Math.floor(end / 1000) + 86_400) * 1000);
    const rows = await ch.query<FullRow>(sql`
      SELECT ${FULL_COLUMNS}
      FROM ${db}.events
      PREWHERE event_id IN ${tuple(valid.map((v) => sql`toUUID(${v})`))}
      WHERE ts >= ${from} AND ts <= ${to}
      ORDER BY event_id, ver DESC
      LIMIT 1 BY event_id`);
    // The winning copy of each id (highest ver, as FINAL keeps), without merging the window's days.
    rows.sort((a, b) => Number(a.ts_s) - Number(b.ts_s) || Number(a.ts_ms) - Number(b.ts_ms));
    return rows.map(toEvent);
  }

  const triageBody = {
    acknowledge: z.object({ note: noteText.optional() }),
    assign: z.object({
      assignee: z
        .string()
        .min(1)
        .max(128)
        // eslint-disable-next-line no-control-regex -- assignees travel to Slack and PagerDuty
        .regex(/^[^\u0000-\u001f\u007f]+$/, 'no control characters'),
      note: noteText.optional(),
    }),
    note: z.object({ note: noteText.min(1) }),
    resolve: z.object({ reason: z.enum(RESOLUTIONS), note: noteText.optional() }),
  };
  const triageRoute = (action: (typeof TRIAGE_ACTIONS)[number], path: string) =>
    route({
      method: 'POST',
      url: `/api/v1/alerts/:alert_id/${path}`,
      scope: 'analyst',
      audit: true,
      summary: `Triage: ${action}`,
      tags: ['triage'],
      params: alertIdParams,
      body: triageBody[action],
      async handler(req) {
        const b = req.body as { note?: string; assignee?: string; reason?: (typeof RESOLUTIONS)[number] };
        note(req, { alert_id: req.params.alert_id, action, ...b }, undefined);
        const r = await triage.apply(() => alertById(ch, req.params.alert_id), req.params.alert_id, {
          action,
          actor: req.principal!.keyId,
          note: b.note,
          assignee: b.assignee,
          reason: b.reason,
        });
        req.auditNote.rows = 1;
        return r;
      },
    });
  triageRoute('acknowledge', 'acknowledge');
  triageRoute('assign', 'assign');
  triageRoute('note', 'notes');
  triageRoute('resolve', 'resolve');

  route({
    method: 'POST',
    url: '/api/v1/alerts/bulk',
    scope: 'analyst',
    audit: true,
    summary: 'Triage every alert matching a filter (at most 1000 per call)',
    tags: ['triage'],
    body: z
      .object({
        filter: alertFilterSchema,
        action: z.enum(TRIAGE_ACTIONS),
        assignee: z.string().min(1).max(128).optional(),
        reason: z.enum(RESOLUTIONS).optional(),
        note: noteText.optional(),
      })
      .superRefine((b, c) => {
        if (b.action === 'assign' && !b.assignee)
          c.addIssue({ code: 'custom', path: ['assignee'], message: 'required for assign' });
        if (b.action === 'resolve' && !b.reason)
          c.addIssue({ code: 'custom', path: ['reason'], message: 'required for resolve' });
        if (b.action === 'note' && !b.note)
          c.addIssue({ code: 'custom', path: ['note'], message: 'required for note' });
      }),
    async handler(req) {
      const b = req.body;
      const range = rangeOf({
        ...b.filter,
        ...(b.filter.from ? {} : { from: new Date(ctx.now() - 7 * 86_400_000).toISOString() }),
      });
      note(req, b, range);
      const matched = await listAlerts(ch, b.filter, range, { limit: 1000 });
      let changed = 0;
      const conflicts: string[] = [];
      for (const a of matched.items) {
        const r: TriageRequest = {
          action: b.action,
          actor: req.principal!.keyId,
          note: b.note,
          assignee: b.assignee,
          reason: b.reason,
        };
        try {
          await triage.apply(() => alertById(ch, a.alert_id), a.alert_id, r);
          changed++;
        } catch (err) {
          if (
            err instanceof ApiError &&
            (err.code === 'AUDIT_ERR_CONFLICT' || err.code === 'AUDIT_ERR_NOT_FOUND')
          )
            conflicts.push(a.alert_id);
          else throw err;
        }
      }
      req.auditNote.rows = changed;
      return { matched: matched.items.length, changed, truncated: matched.next_cursor !== null };
    },
  });

  // ---- admin -----------------------------------------------------------------------------------
  route({
    method: 'GET',
    url: '/api/v1/access-log',
    scope: 'admin',
    audit: true,
    summary: 'Who read or changed what (newest first)',
    tags: ['admin'],
    querystring: z.object({
      ...rangeQuery,
      ...pageQuery,
      key_id: z.union([id, z.array(id).max(MAX_VALUES)]).optional(),
    }),
    async handler(req) {
      const range = rangeOf(req.query);
      note(req, req.query, range);
      const page = await readAccessLog(ch, range, { ...req.query, keyId: list(req.query.key_id) });
      req.auditNote.rows = page.items.length;
      return { ...page, range: rangeOut(range) };
    },
  });
}

function note(req: FastifyRequest, filters: unknown, range: { from: number; to: number } | undefined) {
  req.auditNote.filters = filters;
  req.auditNote.range = range;
}

const csrfOk = (req: FastifyRequest, csrf: string): boolean => csrfMatches(csrf, req.headers['x-csrf-token']);

export type { EventSummary };
