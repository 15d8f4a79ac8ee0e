import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  validatePagerDuty,
  validateSlack,
  validateSlackPostMessage,
  validateWebhookBody,
  verifyWebhook,
} from './validate.js';

/**
 * What the receiver does with the next request: answer a status (with a body of the test's choosing),
 * hang (timeout), or delay then accept.
 */
export type Fault =
  { status: number; retryAfter?: string; body?: string } | { hang: true } | { delayMs: number };

export interface Received {
  at: number;
  raw: string;
  body: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
}

export interface Endpoint {
  /** Requests answered 2xx, in arrival order. */
  accepted: Received[];
  /** Requests answered 401 by the webhook verification, with the reason. */
  rejected: Array<{ reason: string; raw: string }>;
  /** Payloads that broke the documented format (a test asserts this stays empty). */
  violations: string[];
  requests: number;
  /** Consumed one per request before the default behaviour. */
  faults: Fault[];
  /** Applied to every request after the faults are used up. */
  delayMs: number;
  /** When set, every request after the faults gets this instead of being accepted (a dead endpoint). */
  fallback?: Fault | undefined;
}

export interface Receivers {
  base: string;
  slack: Endpoint;
  /** chat.postMessage with a bot token: answers `{ ok, channel, ts }` (ts increasing). */
  slackApi: Endpoint;
  pagerduty: Endpoint;
  webhook: Endpoint;
  /** Seconds added to the webhook receiver's clock (to test replays). */
  clockSkewSeconds: number;
  close(): Promise<void>;
}

const endpoint = (): Endpoint => ({
  accepted: [],
  rejected: [],
  violations: [],
  requests: 0,
  faults: [],
  delayMs: 0,
});

/** Local stand-ins for a Slack incoming webhook, the PagerDuty Events API and a webhook consumer. */
export async function startReceivers(opts: {
  routingKey: string;
  webhookSecret: string;
  /** The bot token chat.postMessage expects (`Authorization: Bearer …`). */
  slackToken?: string;
}): Promise<Receivers> {
  let slackTs = 1_700_000_000_000_000;
  const r = {
    slack: endpoint(),
    slackApi: endpoint(),
    pagerduty: endpoint(),
    webhook: endpoint(),
    clockSkewSeconds: 0,
  } as Omit<Receivers, 'base' | 'close'>;
  const hung = new Set<ServerResponse>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const name = (req.url ?? '').split('/')[1] as 'slack' | 'slackApi' | 'pagerduty' | 'webhook';
        const ep = (r as Record<string, Endpoint | number>)[name] as Endpoint | undefined;
        if (!ep || req.method !== 'POST') return res.writeHead(404).end();
        ep.requests++;
        const fault = ep.faults.shift() ?? ep.fallback;
        if (fault && 'hang' in fault) {
          hung.add(res);
          res.on('close', () => hung.delete(res));
          return;
        }
        if (fault && 'status' in fault) {
          return res
            .writeHead(fault.status, fault.retryAfter ? { 'retry-after': fault.retryAfter } : {})
            .end(fault.body ?? (fault.status === 429 ? 'rate_limited' : 'server_error'));
        }
        const delay = fault && 'delayMs' in fault ? fault.delayMs : ep.delayMs;
        if (delay > 0) await new Promise((ok) => setTimeout(ok, delay));
        if (res.destroyed) return;
        const raw = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          ep.violations.push('body is not JSON');
          return res.writeHead(400).end('invalid_payload');
        }
        if (req.headers['content-type'] !== 'application/json')
          ep.violations.push('content-type is not application/json');
        let v: string[];
        if (name === 'slack') v = validateSlack(body);
        else if (name === 'slackApi') {
          if (req.headers.authorization !== `Bearer ${opts.slackToken ?? ''}`) {
            ep.rejected.push({ reason: 'invalid_auth', raw });
            // Slack answers auth errors with HTTP 200 and ok: false.
            return res
              .writeHead(200, { 'content-type': 'application/json' })
              .end(JSON.stringify({ ok: false, error: 'invalid_auth' }));
          }
          v = validateSlackPostMessage(body);
        } else if (name === 'pagerduty') v = validatePagerDuty(raw, body, opts.routingKey);
        else {
          const verdict = verifyWebhook(
            opts.webhookSecret,
            req.headers,
            raw,
            Math.floor(Date.now() / 1000) + r.clockSkewSeconds,
          );
          if (verdict !== 'ok') {
            ep.rejected.push({ reason: verdict, raw });
            return res.writeHead(401).end(verdict);
          }
          v = validateWebhookBody(body);
        }
        if (v.length > 0) {
          ep.violations.push(...v);
          return res.writeHead(400).end('invalid_payload');
        }
        ep.accepted.push({ at: Date.now(), raw, body, headers: req.headers });
        if (name === 'slackApi') {
          slackTs += 1;
          const ts = `${Math.floor(slackTs / 1e6)}.${String(slackTs % 1e6).padStart(6, '0')}`;
          body.ts = ts;
          return res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ ok: true, channel: body.channel, ts }));
        }
        if (name === 'pagerduty')
          return res
            .writeHead(202, { 'content-type': 'application/json' })
            .end(
              JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: body.dedup_key }),
            );
        res.writeHead(200).end('ok');
      })();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return Object.assign(r, {
    base: `http://127.0.0.1:${port}`,
    async close() {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  });
}
