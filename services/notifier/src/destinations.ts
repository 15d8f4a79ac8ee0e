import { randomUUID } from 'node:crypto';
import type { BlockList } from 'node:net';
import type { AlertMessage } from '@mcp-audit/schema';
import { allowList, refuseUrl } from './address.policy.js';
import { readSecret, type DestinationConfig, type RoutesFile } from './alerts.router.js';
import { parseRetryAfter, TokenBucket } from './backoff.js';
import { DestinationRefusedError, type HttpResult, type PostJson } from './http.sender.js';
import { buildPagerDutyEvent } from './pagerduty.payload.js';
import { buildSlackDigest, buildSlackMessage } from './slack.payload.js';
import {
  buildWebhookBody,
  HEADER_DELIVERY,
  HEADER_SIGNATURE,
  HEADER_TIMESTAMP,
  signWebhook,
} from './webhook.payload.js';

export type DestinationKind = DestinationConfig['kind'];

/** One alert message for one destination. */
export interface DeliveryJob {
  jobId: string;
  messageId: string;
  destinationId: string;
  message: AlertMessage;
  /** Attempts made so far. */
  attempts: number;
}

export interface SendOutcome {
  /** How many jobs from the head of the list this request carried (a Slack digest carries several). */
  count: number;
  ok: boolean;
  retryable: boolean;
  httpStatus: number;
  latencyMs: number;
  retryAfterMs?: number | undefined;
  error?: string | undefined;
  digestId?: string | undefined;
}

export interface Destination {
  readonly id: string;
  readonly kind: DestinationKind;
  readonly bucket: TokenBucket;
  /** Whether a backlog may be folded into one request (Slack digests). */
  readonly folds: boolean;
  send(jobs: readonly DeliveryJob[]): Promise<SendOutcome>;
}

export interface DestinationDeps {
  postJson: PostJson;
  consoleUrl: string;
  timeoutMs: number;
  env: Record<string, string | undefined>;
  readFile: (path: string) => string;
}

/**
 * Slack: one message per second per webhook with short bursts (https://api.slack.com/docs/rate-limits,
 * "Posting messages: 1 per second, short bursts >1 allowed"). PagerDuty limits events per
 * integration key; 2/s with bursts of 10 stays well inside it.
 */
const DEFAULT_RATE: Record<DestinationKind, { per_second: number; burst: number }> = {
  slack: { per_second: 1, burst: 3 },
  pagerduty: { per_second: 2, burst: 10 },
  webhook: { per_second: 20, burst: 50 },
};

function retryableStatus(s: number): boolean {
  return s === 408 || s === 425 || s === 429 || s >= 500;
}

/** Never include a URL or a response that might echo a secret: status and a short reason only. */
function shortError(res: HttpResult): string {
  const text = res.body.replace(/\s+/g, ' ').slice(0, 200);
  return `HTTP ${res.status}${text ? `: ${text}` : ''}`;
}

export async function deliver(
  post: () => Promise<HttpResult>,
  count: number,
  digestId?: string,
): Promise<SendOutcome> {
  const started = performance.now();
  try {
    const res = await post();
    const ok = res.status >= 200 && res.status < 300;
    return {
      count,
      ok,
      retryable: !ok && retryableStatus(res.status),
      httpStatus: res.status,
      latencyMs: res.latencyMs,
      retryAfterMs: ok ? undefined : parseRetryAfter(res.headers['retry-after']),
      error: ok ? undefined : shortError(res),
      digestId,
    };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return {
      count,
      ok: false,
      retryable: !(err instanceof DestinationRefusedError),
      httpStatus: 0,
      latencyMs: Math.round(performance.now() - started),
      error: `${e.code ? `${e.code}: ` : ''}${e.message}`.slice(0, 300),
      digestId,
    };
  }
}

export function buildDestinations(routes: RoutesFile, deps: DestinationDeps): Map<string, Destination> {
  const out = new Map<string, Destination>();
  for (const cfg of routes.destinations) out.set(cfg.id, buildDestination(cfg, deps));
  return out;
}

function checkedUrl(raw: string, cfg: DestinationConfig, what: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`destination ${cfg.id}: ${what} is not a valid URL`);
  }
  const why = refuseUrl(url, { allowHttp: cfg.allow_http });
  if (why) throw new Error(`destination ${cfg.id}: ${what} refused: ${why}`);
  return url;
}

export function buildDestination(cfg: DestinationConfig, deps: DestinationDeps): Destination {
  const io = { env: deps.env, readFile: deps.readFile };
  const allowed: BlockList = allowList(cfg.allow_networks);
  const rate = cfg.rate ?? DEFAULT_RATE[cfg.kind];
  const bucket = new TokenBucket(rate.per_second, rate.burst);
  const post = (url: URL, body: string, headers?: Record<string, string>) => () =>
    deps.postJson(url, body, { timeoutMs: deps.timeoutMs, allowed, ...(headers ? { headers } : {}) });

  switch (cfg.kind) {
    case 'slack': {
      const url = checkedUrl(readSecret(cfg.url, io, `destination ${cfg.id} url`), cfg, 'url');
      return {
        id: cfg.id,
        kind: cfg.kind,
        bucket,
        folds: true,
        async send(jobs) {
          if (jobs.length === 1) {
            const msg = buildSlackMessage(jobs[0]!.message, deps.consoleUrl);
            return deliver(post(url, JSON.stringify(msg)), 1);
          }
          const { message, folded } = buildSlackDigest(
            jobs.map((j) => j.message),
            deps.consoleUrl,
          );
          return deliver(post(url, JSON.stringify(message)), folded, randomUUID());
        },
      };
    }
    case 'pagerduty': {
      const routingKey = readSecret(cfg.routing_key, io, `destination ${cfg.id} routing_key`);
      const url = checkedUrl(cfg.endpoint, cfg, 'endpoint');
      return {
        id: cfg.id,
        kind: cfg.kind,
        bucket,
        folds: false,
        async send(jobs) {
          const event = buildPagerDutyEvent(jobs[0]!.message, routingKey, deps.consoleUrl);
          return deliver(post(url, JSON.stringify(event)), 1);
        },
      };
    }
    case 'webhook': {
      const url = checkedUrl(readSecret(cfg.url, io, `destination ${cfg.id} url`), cfg, 'url');
      const secret = readSecret(cfg.secret, io, `destination ${cfg.id} secret`);
      return {
        id: cfg.id,
        kind: cfg.kind,
        bucket,
        folds: false,
        async send(jobs) {
          const job = jobs[0]!;
          // Signed per attempt: the timestamp is the time of sending, so a retry is not a "replay".
          const body = buildWebhookBody(job.message, job.jobId, deps.consoleUrl);
          const ts = Math.floor(Date.now() / 1000);
          return deliver(
            post(url, body, {
              [HEADER_TIMESTAMP]: String(ts),
              [HEADER_SIGNATURE]: signWebhook(secret, ts, body),
              [HEADER_DELIVERY]: job.jobId,
            }),
            1,
          );
        },
      };
    }
  }
}
