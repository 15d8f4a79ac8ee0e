import { z } from 'zod';

/**
 * The alert contract (topic mcp.audit.alerts.v1, key = dedup_key). The detector produces two kinds
 * of message: an `alert` when something opens, and a `state_change` when it is acknowledged or
 * resolved. Both carry enough to be routed (detector, client, severity) on their own.
 */
export const ALERT_SCHEMA_VERSION = 1;

export const ALERT_SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export const alertSeverity = z.enum(ALERT_SEVERITIES);
export type AlertSeverity = z.infer<typeof alertSeverity>;

export const ALERT_STATUSES = ['open', 'acknowledged', 'resolved'] as const;
export const alertStatus = z.enum(ALERT_STATUSES);
export type AlertStatus = z.infer<typeof alertStatus>;

/** Ordinal of a severity, for "at least" comparisons. */
export const severityRank = (s: AlertSeverity): number => ALERT_SEVERITIES.indexOf(s);

// eslint-disable-next-line no-control-regex -- identifiers end up in Slack text and log lines
const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const isoMs = () => z.iso.datetime({ offset: false, precision: 3 });
const id = (max = 256) => z.string().min(1).max(max).regex(NO_CONTROL, 'must not contain control characters');
const uuid = () => z.string().regex(UUID, 'must be a lowercase UUID');

const contributor = z.object({ value: id(512), count: z.number().int().nonnegative() });

export const INCIDENT_STATUSES = ['open', 'resolved'] as const;
export const INCIDENT_TRANSITIONS = ['opened', 'joined', 'alert_resolved', 'resolved', 'reopened'] as const;

/**
 * The incident an alert belongs to, as it stands after this message (related alerts form one incident:
 * it is what pages a human). `transition` says what this message did to it; the notifier triggers on
 * `opened`/`reopened`, updates on `joined`/`alert_resolved` and resolves on `resolved`.
 */
export const incidentRefSchema = z.object({
  id: uuid(),
  title: id(200),
  severity: alertSeverity,
  status: z.enum(INCIDENT_STATUSES),
  transition: z.enum(INCIDENT_TRANSITIONS),
  alerts: z.number().int().nonnegative(),
  open_alerts: z.number().int().nonnegative(),
});
export type IncidentRef = z.infer<typeof incidentRefSchema>;

export const alertSchema = z.object({
  schema_version: z.literal(ALERT_SCHEMA_VERSION),
  type: z.literal('alert'),
  alert_id: uuid(),
  /** Stable across re-detections of the same problem; PagerDuty's dedup_key allows 255 characters. */
  dedup_key: id(255),
  detector: id(64),
  client_id: id(),
  client_labels: z.record(id(128), z.string().max(256)).optional(),
  title: id(200),
  summary: z.string().max(2_000),
  severity: alertSeverity,
  status: z.literal('open'),
  window: z.object({ start: isoMs(), end: isoMs() }),
  observed: z.number(),
  expected: z.object({ low: z.number(), high: z.number() }),
  /** How far outside the band, in robust deviations (detector-specific, larger is worse). */
  score: z.number(),
  baseline_version: z.string().max(64),
  contributors: z
    .object({
      tools: z.array(contributor).max(20).default([]),
      addresses: z.array(contributor).max(20).default([]),
      sessions: z.array(contributor).max(20).default([]),
    })
    .default({ tools: [], addresses: [], sessions: [] }),
  sample_event_ids: z.array(uuid()).max(50).default([]),
  created_at: isoMs(),
  /** The incident this alert joined (absent on messages from before incidents existed). */
  incident_id: uuid().optional(),
  incident: incidentRefSchema.optional(),
});
export type Alert = z.infer<typeof alertSchema>;

export const alertStateChangeSchema = z
  .object({
    schema_version: z.literal(ALERT_SCHEMA_VERSION),
    type: z.literal('state_change'),
    /** Idempotency key of this transition. */
    transition_id: uuid(),
    alert_id: uuid(),
    dedup_key: id(255),
    detector: id(64),
    client_id: id(),
    client_labels: z.record(id(128), z.string().max(256)).optional(),
    title: id(200),
    severity: alertSeverity,
    from: alertStatus,
    /**
     * The status after the change. 'open' only for a human assign/note on an open alert (the status
     * does not change); older consumers that know acknowledged|resolved only must be upgraded first.
     */
    status: alertStatus,
    changed_at: isoMs(),
    actor: id(128).optional(),
    note: z.string().max(1_000).optional(),
    /**
     * What a human did through the analyst API (absent on the detector's own changes, which are
     * resolves). assign and note leave the status as it was and must not page anyone: the notifier
     * sends them to chat and webhooks, never to PagerDuty.
     */
    action: z.enum(['acknowledge', 'assign', 'note', 'resolve']).optional(),
    assignee: id(128).optional(),
    resolution: z.enum(['true_positive', 'benign', 'false_positive', 'duplicate']).optional(),
    /** The alert's incident; set on the detector's own changes (a human's carry none). */
    incident_id: uuid().optional(),
    incident: incidentRefSchema.optional(),
  })
  .refine((m) => m.status !== 'open' || m.action === 'assign' || m.action === 'note', {
    message: "status 'open' is only for an assign or a note",
    path: ['status'],
  });
export type AlertStateChange = z.infer<typeof alertStateChangeSchema>;

export const alertMessageSchema = z.discriminatedUnion('type', [alertSchema, alertStateChangeSchema]);
export type AlertMessage = z.infer<typeof alertMessageSchema>;

/** The idempotency key of a message on the alerts topic. */
export const alertMessageId = (m: AlertMessage): string =>
  m.type === 'alert' ? m.alert_id : m.transition_id;
