import { z } from 'zod';
import {
  alertSeverity,
  severityRank,
  type AlertMessage,
  type AlertSeverity,
  alertMessageId,
} from '@mcp-audit/schema';

/**
 * The routing file: destinations (secrets only by reference to an env var or a file) and rules.
 * Parsed once at boot; secrets are resolved by `resolveDestinations`, never stored in the file.
 */
const secretRef = z.union([
  z.object({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name') }).strict(),
  z.object({ file: z.string().min(1) }).strict(),
]);
export type SecretRef = z.infer<typeof secretRef>;

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM');
const cidr = z.string().regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, 'a CIDR such as 127.0.0.1/32');

const common = {
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'lowercase letters, digits, - and _'),
  /** Alerts below this severity are not sent to this destination. */
  min_severity: alertSeverity.default('info'),
  /** In these hours (wrapping midnight allowed) only alerts at or above quiet_hours.min_severity go out. */
  quiet_hours: z
    .object({
      start: hhmm,
      end: hhmm,
      tz: z.string().default('UTC'),
      min_severity: alertSeverity.default('critical'),
    })
    .optional(),
  /** Plain http is refused unless set (tests use loopback receivers). */
  allow_http: z.boolean().default(false),
  /** Private, loopback, link-local and metadata addresses are refused unless listed here. */
  allow_networks: z.array(cidr).default([]),
  /** Token bucket per destination: sustained rate and burst. */
  rate: z
    .object({ per_second: z.number().positive().max(1_000), burst: z.number().int().min(1).max(1_000) })
    .optional(),
};

const slackDest = z.object({ kind: z.literal('slack'), url: secretRef, ...common }).strict();
const pagerDutyDest = z
  .object({
    kind: z.literal('pagerduty'),
    routing_key: secretRef,
    /** The Events API v2 endpoint (not a secret). */
    endpoint: z.string().url().default('https://events.pagerduty.com/v2/enqueue'),
    ...common,
  })
  .strict();
const webhookDest = z
  .object({ kind: z.literal('webhook'), url: secretRef, secret: secretRef, ...common })
  .strict();
/**
 * Slack through a bot token and chat.postMessage (https://api.slack.com/methods/chat.postMessage):
 * unlike an incoming webhook it returns the message's `ts`, so each incident gets one thread.
 */
const slackApiDest = z
  .object({
    kind: z.literal('slack_api'),
    token: secretRef,
    /** Channel id (C…) or name the bot is a member of. */
    channel: z
      .string()
      .min(1)
      .max(80)
      .regex(/^[#A-Za-z0-9._-]+$/, 'must be a channel id or name'),
    /** The chat.postMessage endpoint (not a secret). */
    endpoint: z.string().url().default('https://slack.com/api/chat.postMessage'),
    ...common,
  })
  .strict();
const destinationSchema = z.discriminatedUnion('kind', [slackDest, slackApiDest, pagerDutyDest, webhookDest]);
export type DestinationConfig = z.infer<typeof destinationSchema>;

const ruleSchema = z
  .object({
    name: z.string().min(1).max(128),
    match: z
      .object({
        min_severity: alertSeverity.optional(),
        severities: z.array(alertSeverity).optional(),
        detectors: z.array(z.string()).optional(),
        clients: z.array(z.string()).optional(),
        client_labels: z.record(z.string(), z.string()).optional(),
      })
      .strict()
      .default({}),
    destinations: z.array(z.string()).min(1),
    /** Stop evaluating later rules when this one matched. */
    final: z.boolean().default(false),
  })
  .strict();
export type RuleConfig = z.infer<typeof ruleSchema>;

export const routesFileSchema = z
  .object({ destinations: z.array(destinationSchema).min(1), rules: z.array(ruleSchema).min(1) })
  .strict()
  .superRefine((f, ctx) => {
    const ids = new Set<string>();
    f.destinations.forEach((d, i) => {
      if (ids.has(d.id))
        ctx.addIssue({ code: 'custom', path: ['destinations', i, 'id'], message: 'duplicate id' });
      ids.add(d.id);
    });
    f.rules.forEach((r, i) =>
      r.destinations.forEach((d, j) => {
        if (!ids.has(d))
          ctx.addIssue({
            code: 'custom',
            path: ['rules', i, 'destinations', j],
            message: `unknown destination ${d}`,
          });
      }),
    );
  });
export type RoutesFile = z.infer<typeof routesFileSchema>;

export function parseRoutes(json: unknown): RoutesFile {
  const r = routesFileSchema.safeParse(json);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`invalid routing file:\n${lines.join('\n')}`);
  }
  return r.data;
}

/** Reads one secret reference; the value is never logged (errors name the reference only). */
export function readSecret(
  ref: SecretRef,
  io: { env: Record<string, string | undefined>; readFile: (path: string) => string },
  what: string,
): string {
  if ('env' in ref) {
    const v = io.env[ref.env]?.trim();
    if (!v) throw new Error(`${what}: environment variable ${ref.env} is not set`);
    return v;
  }
  let v: string;
  try {
    v = io.readFile(ref.file).trim();
  } catch (err) {
    throw new Error(
      `${what}: cannot read secret file ${ref.file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  if (!v) throw new Error(`${what}: secret file ${ref.file} is empty`);
  return v;
}

export interface RouteDecision {
  destinationId: string;
  /** Why it is not sent, when it is not (recorded as `suppressed`). */
  suppressed?: 'min_severity' | 'quiet_hours' | 'not_paged';
}

/** Minutes since midnight in a time zone. */
function minutesIn(tz: string, at: Date): number {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: tz,
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const h = Number(parts.find((p) => p.type === 'hour')?.value ?? 0);
  const m = Number(parts.find((p) => p.type === 'minute')?.value ?? 0);
  return h * 60 + m;
}

export function inQuietHours(q: { start: string; end: string; tz: string }, at: Date): boolean {
  const toMin = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5));
  const now = minutesIn(q.tz, at);
  const start = toMin(q.start);
  const end = toMin(q.end);
  if (start === end) return false;
  return start < end ? now >= start && now < end : now >= start || now < end;
}

function ruleMatches(rule: RuleConfig, m: AlertMessage): boolean {
  const x = rule.match;
  if (x.min_severity && severityRank(m.severity) < severityRank(x.min_severity)) return false;
  if (x.severities && !x.severities.includes(m.severity)) return false;
  if (x.detectors && !x.detectors.includes(m.detector)) return false;
  if (x.clients && !x.clients.includes(m.client_id)) return false;
  if (x.client_labels) {
    for (const [k, v] of Object.entries(x.client_labels)) if (m.client_labels?.[k] !== v) return false;
  }
  return true;
}

/**
 * Destinations for one alert message, in rule order, each once. A state change is routed like the
 * alert it belongs to (it carries the same detector, client and severity). NOTE: quiet hours hold
 * back new alerts only, never their acknowledge/resolve: a page sent at 14:00 must be resolved at
 * 23:00, or the incident stays open all night. (A resolve for a trigger that quiet hours held back
 * is harmless: PagerDuty drops an event for a dedup_key it has no incident for.)
 */
export function routeAlert(routes: RoutesFile, m: AlertMessage, now: Date = new Date()): RouteDecision[] {
  const byId = new Map(routes.destinations.map((d) => [d.id, d]));
  const out: RouteDecision[] = [];
  const seen = new Set<string>();
  for (const rule of routes.rules) {
    if (!ruleMatches(rule, m)) continue;
    for (const id of rule.destinations) {
      if (seen.has(id)) continue;
      seen.add(id);
      const d = byId.get(id)!;
      // The end of an incident goes wherever its page went: judged at the incident's severity.
      const sev: AlertSeverity = m.type === 'state_change' && m.incident ? m.incident.severity : m.severity;
      // A human's assign or note changes nobody's pager: PagerDuty has no such event (it would
      // become an acknowledge); chat and webhooks still hear of it.
      // One alert of an incident ended while others are open: the page stays as it is (the chat
      // thread and webhooks hear of it).
      if (
        m.type === 'state_change' &&
        (m.action === 'assign' || m.action === 'note' || m.incident?.status === 'open') &&
        d.kind === 'pagerduty'
      )
        out.push({ destinationId: id, suppressed: 'not_paged' });
      else if (severityRank(sev) < severityRank(d.min_severity))
        out.push({ destinationId: id, suppressed: 'min_severity' });
      else if (
        m.type !== 'state_change' &&
        d.quiet_hours &&
        inQuietHours(d.quiet_hours, now) &&
        severityRank(sev) < severityRank(d.quiet_hours.min_severity)
      )
        out.push({ destinationId: id, suppressed: 'quiet_hours' });
      else out.push({ destinationId: id });
    }
    if (rule.final) break;
  }
  return out;
}

/** One delivery: one alert message to one destination. */
export const jobIdOf = (m: AlertMessage, destinationId: string): string =>
  `${alertMessageId(m)}:${destinationId}`;
