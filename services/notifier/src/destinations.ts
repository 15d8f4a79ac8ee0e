import { createHash, randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { BlockList } from 'node:net';
import type { AlertMessage } from '@mcp-audit/schema';
import { allowList, refuseUrl } from './address.policy.js';
import { readSecret, type DestinationConfig, type RoutesFile } from './alerts.router.js';
import { parseRetryAfter, TokenBucket } from './backoff.js';
import { SafeDeliveryError, type HttpResult, type PostJson } from './http.sender.js';
import { buildPagerDutyEvent } from './pagerduty.payload.js';
import { IncidentBook } from './incident.book.js';
import { buildSlackDigest, buildSlackMessage } from './slack.payload.js';
import {
  incidentOfMessage,
  memoryThreadStore,
  parseSlackAnswer,
  slackApiRequest,
  type ThreadStore,
} from './slack-threads.js';
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
  /**
   * Where the job was parked from: partition, offset and its place among the message's jobs. Jobs
   * belong to whoever holds the partition; without a source a job is only ever in memory (tests).
   */
  source?: { partition: number; offset: string; seq: number };
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
  /** Alert → incident, shared by all destinations (a human's change names only the alert). */
  incidents?: IncidentBook;
  /** Where each incident's Slack thread is (slack_api destinations). */
  threads?: ThreadStore;
}

/**
 * Slack: one message per second per webhook with short bursts (https://api.slack.com/docs/rate-limits,
 * "Posting messages: 1 per second, short bursts >1 allowed"). PagerDuty limits events per
 * integration (routing) key; 2/s with bursts of 10 per key stays well inside it.
 */
const DEFAULT_RATE: Record<DestinationKind, { per_second: number; burst: number }> = {
  slack: { per_second: 1, burst: 3 },
  // chat.postMessage: about one message per second per channel.
  slack_api: { per_second: 1, burst: 3 },
  pagerduty: { per_second: 2, burst: 10 },
  webhook: { per_second: 20, burst: 50 },
};

function retryableStatus(s: number): boolean {
  return s === 408 || s === 425 || s === 429 || s >= 500;
}

/**
 * What a failed attempt is recorded as (alert_deliveries.error, logs, the dead-letter reason).
 * NOTE: never the URL, host, address or path (a webhook URL is a secret, and Node's own messages
 * name the host: "getaddrinfo ENOTFOUND hooks.example.com", "connect ECONNREFUSED 10.0.0.5:443"),
 * and never the response body (a receiver may echo the request, URL or token back). Only the status,
 * a stable error code and a fixed description of it.
 */
export function httpError(status: number): string {
  const text = STATUS_CODES[status];
  return `HTTP ${status}${text ? ` ${text}` : ''}`;
}

const NETWORK_ERRORS: Record<string, string> = {
  ENOTFOUND: 'DNS lookup failed',
  EAI_AGAIN: 'DNS lookup failed (temporary)',
  EAI_FAIL: 'DNS lookup failed',
  EAI_NODATA: 'DNS lookup returned no address',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by the destination',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection closed while sending',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  EHOSTDOWN: 'host down',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS certificate does not match the destination',
  CERT_HAS_EXPIRED: 'TLS certificate expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS certificate not trusted (self-signed)',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS certificate not trusted (self-signed chain)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS certificate not trusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'TLS certificate not trusted',
  ERR_SSL_WRONG_VERSION_NUMBER: 'TLS handshake failed (not a TLS endpoint?)',
  HPE_INVALID_CONSTANT: 'invalid HTTP response',
  ERR_INVALID_URL: 'invalid URL',
};

export function networkError(err: unknown): string {
  if (err instanceof SafeDeliveryError) return `${err.code}: ${err.message}`;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,47}$/.test(code))
    return `${code}: ${NETWORK_ERRORS[code] ?? 'request failed'}`;
  return 'request failed';
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
      error: ok ? undefined : httpError(res.status),
      digestId,
    };
  } catch (err) {
    return {
      count,
      ok: false,
      retryable: !(err instanceof SafeDeliveryError && !err.retryable),
      httpStatus: 0,
      latencyMs: Math.round(performance.now() - started),
      error: networkError(err),
      digestId,
    };
  }
}

type Rate = { per_second: number; burst: number };

/** A bucket id for a routing key: its digest, so the key itself is never held as a map key or shown. */
export const routingKeyBucketId = (routingKey: string): string =>
  `pagerduty:${createHash('sha256').update(routingKey).digest('hex')}`;

/**
 * PagerDuty limits events per routing (integration) key, so destinations that share a key share one
 * token bucket, at the strictest of their rates; every other destination has its own.
 */
export function buildDestinations(routes: RoutesFile, deps: DestinationDeps): Map<string, Destination> {
  const io = { env: deps.env, readFile: deps.readFile };
  deps = {
    ...deps,
    incidents: deps.incidents ?? new IncidentBook(),
    threads: deps.threads ?? memoryThreadStore(),
  };
  const rates = new Map<string, Rate>();
  for (const cfg of routes.destinations) {
    if (cfg.kind !== 'pagerduty') continue;
    const id = routingKeyBucketId(readSecret(cfg.routing_key, io, `destination ${cfg.id} routing_key`));
    const r = cfg.rate ?? DEFAULT_RATE.pagerduty;
    const prev = rates.get(id);
    rates.set(
      id,
      prev
        ? { per_second: Math.min(prev.per_second, r.per_second), burst: Math.min(prev.burst, r.burst) }
        : r,
    );
  }
  const buckets = new Map<string, TokenBucket>();
  const shared = (id: string, own: Rate): TokenBucket => {
    let b = buckets.get(id);
    if (!b) {
      const r = rates.get(id) ?? own;
      b = new TokenBucket(r.per_second, r.burst);
      buckets.set(id, b);
    }
    return b;
  };
  const out = new Map<string, Destination>();
  for (const cfg of routes.destinations) out.set(cfg.id, buildDestination(cfg, deps, shared));
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

export function buildDestination(
  cfg: DestinationConfig,
  deps: DestinationDeps,
  sharedBucket?: (id: string, rate: Rate) => TokenBucket,
): Destination {
  const io = { env: deps.env, readFile: deps.readFile };
  const allowed: BlockList = allowList(cfg.allow_networks);
  const rate = cfg.rate ?? DEFAULT_RATE[cfg.kind];
  const ownBucket = () => new TokenBucket(rate.per_second, rate.burst);
  const post = (url: URL, body: string, headers?: Record<string, string>) => () =>
    deps.postJson(url, body, { timeoutMs: deps.timeoutMs, allowed, ...(headers ? { headers } : {}) });

  switch (cfg.kind) {
    case 'slack': {
      const url = checkedUrl(readSecret(cfg.url, io, `destination ${cfg.id} url`), cfg, 'url');
      return {
        id: cfg.id,
        kind: cfg.kind,
        bucket: ownBucket(),
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
    case 'slack_api': {
      const token = readSecret(cfg.token, io, `destination ${cfg.id} token`);
      const url = checkedUrl(cfg.endpoint, cfg, 'endpoint');
      const threads = deps.threads ?? memoryThreadStore();
      return {
        id: cfg.id,
        kind: cfg.kind,
        bucket: ownBucket(),
        folds: false,
        async send(jobs) {
          const m = jobs[0]!.message;
          const incidentId = incidentOfMessage(m, deps.incidents);
          const thread = incidentId ? await threads.get(cfg.id, incidentId) : undefined;
          const req = slackApiRequest(m, cfg.channel, deps.consoleUrl, incidentId, thread);
          let answer: ReturnType<typeof parseSlackAnswer> | undefined;
          const out = await deliver(async () => {
            const res = await post(url, JSON.stringify(req.body), {
              authorization: `Bearer ${token}`,
            })();
            if (res.status >= 200 && res.status < 300) answer = parseSlackAnswer(res);
            return res;
          }, 1);
          if (!out.ok || !answer) return out;
          if (!answer.ok)
            return {
              ...out,
              ok: false,
              retryable: answer.retryable ?? false,
              error: `Slack API: ${answer.error}`,
            };
          if (req.startsThread && incidentId && answer.ts) await threads.set(cfg.id, incidentId, answer.ts);
          return out;
        },
      };
    }
    case 'pagerduty': {
      const routingKey = readSecret(cfg.routing_key, io, `destination ${cfg.id} routing_key`);
      const url = checkedUrl(cfg.endpoint, cfg, 'endpoint');
      const bucketId = routingKeyBucketId(routingKey);
      return {
        id: cfg.id,
        kind: cfg.kind,
        bucket: sharedBucket ? sharedBucket(bucketId, rate) : ownBucket(),
        folds: false,
        async send(jobs) {
          const event = buildPagerDutyEvent(jobs[0]!.message, routingKey, deps.consoleUrl, deps.incidents);
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
        bucket: ownBucket(),
        folds: false,
        async send(jobs) {
          const job = jobs[0]!;
          // Signed per attempt: the timestamp is the time of sending, so a retry is not a "replay".
          const body = buildWebhookBody(
            job.message,
            job.jobId,
            deps.consoleUrl,
            new Date(),
            incidentOfMessage(job.message, deps.incidents),
          );
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
