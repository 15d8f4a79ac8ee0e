import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  exportFiltersSchema,
  FORMATS,
  HoldError,
  holdSpecSchema,
  tarDirectory,
  type ExportJobs,
  type LegalHolds,
  type VerifyReport,
} from '@mcp-audit/retention';
import type { RouteConfig } from './app.js';
import { ApiError, queryLimitOf } from './errors.js';

/**
 * Compliance routes (scope `compliance`, every one audited: one access_log row each, like the
 * other routes of the table). Legal holds, ledger verification and export jobs come from
 * @mcp-audit/retention; main.ts wires them, and without them these routes answer 503.
 */
export interface ComplianceDeps {
  holds: LegalHolds;
  /** verifyRange over [fromMs, toMs) with the published public keys. */
  verify: (fromMs: number, toMs: number) => Promise<VerifyReport>;
  /** Absent when no export signing key is configured. */
  exports?: ExportJobs | undefined;
  /** Longest range one verify or export may cover. */
  maxRangeDays: number;
}

const iso = z.iso.datetime({ offset: true });
const holdIdParams = z.object({ hold_id: z.string().min(1).max(64) });
const jobIdParams = z.object({ job_id: z.uuid() });
const cfg: RouteConfig = { scope: 'compliance', audit: true };

export function registerComplianceRoutes(app: FastifyInstance, deps: ComplianceDeps | undefined): void {
  const need = (): ComplianceDeps => {
    if (!deps)
      throw new ApiError('AUDIT_ERR_UNAVAILABLE', 'compliance features are not configured on this API');
    return deps;
  };
  const range = (from: string, to: string) => {
    const f = Date.parse(from);
    const t = Date.parse(to);
    if (!(f < t)) throw new ApiError('AUDIT_ERR_VALIDATION', 'from must be before to');
    if (t - f > need().maxRangeDays * 86_400_000)
      throw new ApiError('AUDIT_ERR_VALIDATION', `the range may cover at most ${need().maxRangeDays} days`);
    return { from: f, to: t };
  };
  const actor = (req: FastifyRequest) => req.principal!.keyId;
  const holdError = (err: unknown): never => {
    if (err instanceof HoldError)
      throw new ApiError(
        err.code === 'AUDIT_ERR_HOLD_NOT_FOUND' ? 'AUDIT_ERR_NOT_FOUND' : 'AUDIT_ERR_CONFLICT',
        err.message,
      );
    throw err;
  };
  // NOTE: verify streams each day partition as mcp_api_reader, whose profile (deploy/clickhouse
  // users.xml.tmpl) stops a query after 15 s or 500,000 result rows (one per stored copy). 18.16
  // reports a limit hit mid-stream inside the body, which the retention stream refuses with the
  // server's text ("… Code: 396 …"): named here as the limit, with what to do instead.
  const verifyLimit = (err: unknown): never => {
    const m = err instanceof Error ? /Code: (\d+)[,.]/.exec(err.message) : null;
    const limit = m ? queryLimitOf(Number(m[1])) : undefined;
    if (limit)
      throw new ApiError(
        'AUDIT_ERR_QUERY_LIMIT',
        `verify hit the API's ClickHouse limit on ${limit} (profile api_reader: 15 s and 500,000 rows a query, one query per day); verify fewer hours at a time, or run \`retention verify\` (CLI, admin connection) for large days`,
        { cause: err },
      );
    throw err;
  };

  app.route({
    method: 'GET',
    url: '/api/v1/legal-holds',
    config: cfg,
    schema: {
      summary: 'Legal holds (active, or all with all=true)',
      tags: ['compliance'],
      querystring: z.object({ all: z.enum(['true', 'false']).default('false') }),
    },
    async handler(req) {
      const q = req.query as { all: 'true' | 'false' };
      const items = await need().holds.list({ activeOnly: q.all !== 'true' });
      req.auditNote.filters = q;
      req.auditNote.rows = items.length;
      return { items };
    },
  });
  app.route({
    method: 'POST',
    url: '/api/v1/legal-holds',
    config: cfg,
    schema: {
      summary: 'Place a legal hold (its days are kept whatever the retention policy says)',
      tags: ['compliance'],
      body: z.object({
        case_id: z.string().min(1).max(128),
        reason: z.string().min(1).max(1_000),
        from: iso,
        to: iso,
        clients: z.array(z.string().min(1).max(256)).max(100).default([]),
      }),
    },
    async handler(req, reply) {
      const b = req.body as { case_id: string; reason: string; from: string; to: string; clients: string[] };
      const spec = holdSpecSchema.safeParse({ ...b, actor: actor(req) });
      if (!spec.success) throw new ApiError('AUDIT_ERR_VALIDATION', spec.error.issues[0]!.message);
      req.auditNote.filters = b;
      const h = await need().holds.create(spec.data).catch(holdError);
      req.auditNote.rows = 1;
      return reply.code(201).send(h);
    },
  });
  app.route({
    method: 'POST',
    url: '/api/v1/legal-holds/:hold_id/release',
    config: cfg,
    schema: {
      summary: 'Release a legal hold (who, when and why are recorded)',
      tags: ['compliance'],
      params: holdIdParams,
      body: z.object({ note: z.string().min(1).max(1_000) }),
    },
    async handler(req) {
      const { hold_id } = req.params as { hold_id: string };
      const { note } = req.body as { note: string };
      req.auditNote.filters = { hold_id, note };
      const h = await need().holds.release(hold_id, actor(req), note).catch(holdError);
      req.auditNote.rows = 1;
      return h;
    },
  });
  app.route({
    method: 'GET',
    url: '/api/v1/verify',
    config: cfg,
    schema: {
      summary: 'Recompute every hour of a range against the signed ledger',
      tags: ['compliance'],
      querystring: z.object({ from: iso, to: iso }),
    },
    async handler(req) {
      const q = req.query as { from: string; to: string };
      const r = range(q.from, q.to);
      req.auditNote.range = r;
      const report = await need().verify(r.from, r.to).catch(verifyLimit);
      req.auditNote.rows = report.rowsChecked;
      return report;
    },
  });
  const jobs = (): ExportJobs => {
    const j = need().exports;
    if (!j) throw new ApiError('AUDIT_ERR_UNAVAILABLE', 'exports need MCP_AUDIT_API_EXPORT_SIGNING_KEY_FILE');
    return j;
  };
  app.route({
    method: 'POST',
    url: '/api/v1/exports',
    config: cfg,
    schema: {
      summary: 'Start an export bundle job (NDJSON, CSV or OCSF; signed manifest)',
      tags: ['compliance'],
      body: z.object({
        from: iso,
        to: iso,
        format: z.enum(FORMATS),
        filters: exportFiltersSchema.default(exportFiltersSchema.parse({})),
      }),
    },
    async handler(req, reply) {
      const b = req.body as {
        from: string;
        to: string;
        format: (typeof FORMATS)[number];
        filters: z.infer<typeof exportFiltersSchema>;
      };
      const r = range(b.from, b.to);
      req.auditNote.filters = { format: b.format, ...b.filters };
      req.auditNote.range = r;
      const job = jobs().start({
        fromMs: r.from,
        toMs: r.to,
        format: b.format,
        filters: b.filters,
        actor: actor(req),
      });
      return reply.code(202).send(job);
    },
  });
  app.route({
    method: 'GET',
    url: '/api/v1/exports/:job_id',
    config: cfg,
    schema: { summary: 'An export job: status and progress', tags: ['compliance'], params: jobIdParams },
    async handler(req) {
      const { job_id } = req.params as { job_id: string };
      const job = jobs().get(job_id);
      if (!job) throw new ApiError('AUDIT_ERR_NOT_FOUND', `no export job ${job_id}`);
      return job;
    },
  });
  app.route({
    method: 'GET',
    url: '/api/v1/exports/:job_id/download',
    config: cfg,
    schema: {
      summary: 'The finished bundle as one .tar (gzip data files, manifest.json, manifest.sig)',
      tags: ['compliance'],
      params: jobIdParams,
    },
    async handler(req, reply) {
      const { job_id } = req.params as { job_id: string };
      const j = jobs();
      const job = j.get(job_id);
      if (!job) throw new ApiError('AUDIT_ERR_NOT_FOUND', `no export job ${job_id}`);
      const dir = j.dirOf(job_id);
      if (!dir) throw new ApiError('AUDIT_ERR_CONFLICT', `export job ${job_id} is ${job.status}`);
      req.auditNote.rows = job.rows ?? 0;
      reply.header('content-type', 'application/x-tar');
      reply.header('content-disposition', `attachment; filename="mcp-audit-export-${job_id}.tar"`);
      return reply.send(Readable.from(tarDirectory(dir, `mcp-audit-export-${job_id}`)));
    },
  });
}
