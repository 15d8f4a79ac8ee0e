import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ClickHouse } from '@mcp-audit/clickhouse';
import { listAlerts, toAlertSummary } from './alerts.queries.js';
import type { RouteConfig } from './app.js';
import { ApiError } from './errors.js';
import {
  incidentById,
  incidentFilterQuery,
  listIncidents,
  timelineOf,
  toIncidentSummary,
  toTimelineEntry,
} from './incidents.queries.js';
import { pageQuery, rangeOut, resolveRange, uuidParam } from './query.params.js';

/**
 * Incidents (scope analyst, every read audited: one access_log row each). An incident is what the
 * detector grouped from related alerts; its state is folded from incident_transitions.
 */
export interface IncidentRoutesDeps {
  reader: ClickHouse;
  maxRangeDays: number;
  now: () => number;
}

const cfg: RouteConfig = { scope: 'analyst', audit: true };
const incidentIdParams = z.object({ incident_id: uuidParam });
const listQuery = z.object({ ...incidentFilterQuery, ...pageQuery });

const note = (req: FastifyRequest, filters: unknown, range: { from: number; to: number } | undefined) => {
  req.auditNote.filters = filters;
  req.auditNote.range = range;
};

export function registerIncidentRoutes(app: FastifyInstance, deps: IncidentRoutesDeps): void {
  const ch = deps.reader;
  app.route({
    method: 'GET',
    url: '/api/v1/incidents',
    config: cfg,
    schema: {
      summary: 'List and filter incidents (related alerts grouped by the detector), newest first',
      tags: ['incidents'],
      querystring: listQuery,
    },
    async handler(req) {
      const q = req.query as z.infer<typeof listQuery>;
      const range = resolveRange(
        { ...q, ...(q.from ? {} : { from: new Date(deps.now() - 7 * 86_400_000).toISOString() }) },
        deps.maxRangeDays,
        deps.now(),
      );
      note(req, q, range);
      const page = await listIncidents(ch, q, range, q);
      req.auditNote.rows = page.items.length;
      return {
        items: page.items.map(toIncidentSummary),
        next_cursor: page.next_cursor,
        range: rangeOut(range),
      };
    },
  });
  app.route({
    method: 'GET',
    url: '/api/v1/incidents/:incident_id',
    config: cfg,
    schema: {
      summary: 'One incident: its alerts and its timeline',
      tags: ['incidents'],
      params: incidentIdParams,
    },
    async handler(req) {
      const { incident_id } = req.params as z.infer<typeof incidentIdParams>;
      note(req, { incident_id }, undefined);
      const inc = await incidentById(ch, incident_id);
      if (!inc) throw new ApiError('AUDIT_ERR_NOT_FOUND', `incident ${incident_id} not found`);
      const timeline = await timelineOf(ch, incident_id);
      const alertIds = [
        ...new Set(timeline.filter((t) => t.kind !== 'alert_resolved').map((t) => t.alert_id)),
      ];
      const alerts = await listAlerts(ch, {}, undefined, { limit: 1000, ids: alertIds.slice(0, 1000) });
      req.auditNote.rows = 1 + alerts.items.length + timeline.length;
      return {
        incident: toIncidentSummary(inc),
        alerts: alerts.items.map(toAlertSummary),
        timeline: timeline.map(toTimelineEntry),
      };
    },
  });
}
