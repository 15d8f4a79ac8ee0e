import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AlertMessage } from '@mcp-audit/schema';
import { alertUrl } from './slack.payload.js';

export const WEBHOOK_SCHEMA = 'mcp-audit.alert.v1';
export const HEADER_TIMESTAMP = 'X-MCP-Audit-Timestamp';
export const HEADER_SIGNATURE = 'X-MCP-Audit-Signature';
export const HEADER_DELIVERY = 'X-MCP-Audit-Delivery';
/** Receivers reject a timestamp further than this from their clock (replays). */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/** The versioned JSON body. `delivery_id` is stable across retries: receivers deduplicate on it. */
export function buildWebhookBody(
  m: AlertMessage,
  deliveryId: string,
  consoleUrl: string,
  now = new Date(),
  incidentId: string | undefined = m.incident_id,
): string {
  return JSON.stringify({
    schema: WEBHOOK_SCHEMA,
    delivery_id: deliveryId,
    type: m.type,
    /** The incident the alert belongs to (a human's change carries it when the notifier saw its alert). */
    ...(incidentId ? { incident_id: incidentId } : {}),
    sent_at: now.toISOString(),
    console_url: alertUrl(consoleUrl, m.alert_id),
    [m.type]: m,
  });
}

/** v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>, timestamp in Unix seconds. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export function verifyWebhook(opts: {
  secret: string;
  timestamp: string | undefined;
  signature: string | undefined;
  body: string;
  nowSeconds?: number;
}): { ok: true } | { ok: false; reason: 'missing' | 'stale' | 'bad_signature' } {
  const { timestamp, signature } = opts;
  if (!timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'missing' };
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(timestamp)) > WEBHOOK_TOLERANCE_SECONDS) return { ok: false, reason: 'stale' };
  const expected = Buffer.from(signWebhook(opts.secret, Number(timestamp), opts.body));
  const got = Buffer.from(signature);
  if (got.length !== expected.length || !timingSafeEqual(got, expected))
    return { ok: false, reason: 'bad_signature' };
  return { ok: true };
}
