/**
 * What a local stand-in for Slack, PagerDuty and a webhook consumer checks on every payload: the
 * documented field names, enums, lengths and sizes. Each returns a list of violations (empty = ok).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

// Slack Block Kit: https://api.slack.com/reference/block-kit/blocks
export function validateSlack(body: unknown): string[] {
  const v: string[] = [];
  if (!isObj(body)) return ['body is not an object'];
  if (typeof body.text !== 'string' || body.text.length === 0) v.push('text fallback missing');
  const blocks = body.blocks;
  if (!Array.isArray(blocks) || blocks.length === 0) return [...v, 'blocks missing'];
  if (blocks.length > 50) v.push(`${blocks.length} blocks > 50`);
  const text = (t: unknown, max: number, where: string, types = ['plain_text', 'mrkdwn']) => {
    if (!isObj(t) || !types.includes(String(t.type)) || typeof t.text !== 'string')
      v.push(`${where}: bad text object`);
    else if (t.text.length > max) v.push(`${where}: ${t.text.length} chars > ${max}`);
    else if (t.text.length === 0) v.push(`${where}: empty text`);
  };
  blocks.forEach((b, i) => {
    if (!isObj(b)) return v.push(`block ${i} not an object`);
    if (b.block_id !== undefined && String(b.block_id).length > 255) v.push(`block ${i}: block_id > 255`);
    switch (b.type) {
      case 'header':
        text(b.text, 150, `header ${i}`, ['plain_text']);
        break;
      case 'section':
        if (b.text === undefined && b.fields === undefined) v.push(`section ${i}: neither text nor fields`);
        if (b.text !== undefined) text(b.text, 3000, `section ${i}`);
        if (b.fields !== undefined) {
          if (!Array.isArray(b.fields) || b.fields.length > 10) v.push(`section ${i}: more than 10 fields`);
          else b.fields.forEach((f, j) => text(f, 2000, `section ${i} field ${j}`));
        }
        break;
      case 'context':
        if (!Array.isArray(b.elements) || b.elements.length === 0 || b.elements.length > 10)
          v.push(`context ${i}: 1..10 elements`);
        else b.elements.forEach((e, j) => text(e, 3000, `context ${i} element ${j}`));
        break;
      case 'actions':
        if (!Array.isArray(b.elements) || b.elements.length === 0 || b.elements.length > 25)
          v.push(`actions ${i}: 1..25 elements`);
        else
          b.elements.forEach((e, j) => {
            if (!isObj(e) || e.type !== 'button') return v.push(`actions ${i}.${j}: not a button`);
            text(e.text, 75, `button ${i}.${j}`, ['plain_text']);
            if (typeof e.url !== 'string' || e.url.length > 3000 || !/^https?:\/\//.test(e.url))
              v.push(`button ${i}.${j}: bad url`);
          });
        break;
      case 'divider':
        break;
      default:
        v.push(`block ${i}: unknown type ${String(b.type)}`);
    }
  });
  return v;
}

// chat.postMessage: https://api.slack.com/methods/chat.postMessage (channel required; a reply names
// its parent's ts in thread_ts; reply_broadcast only on a reply). Blocks as above.
export function validateSlackPostMessage(body: unknown): string[] {
  if (!isObj(body)) return ['body is not an object'];
  const v = validateSlack(body);
  if (typeof body.channel !== 'string' || body.channel.length === 0) v.push('channel missing');
  if (
    body.thread_ts !== undefined &&
    (typeof body.thread_ts !== 'string' || !/^\d+\.\d+$/.test(body.thread_ts))
  )
    v.push('thread_ts is not a message ts');
  if (body.reply_broadcast !== undefined && (body.reply_broadcast !== true || body.thread_ts === undefined))
    v.push('reply_broadcast without thread_ts');
  return v;
}

// PagerDuty Events API v2: https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
export function validatePagerDuty(raw: string, body: unknown, routingKey: string): string[] {
  const v: string[] = [];
  if (Buffer.byteLength(raw) > 512 * 1024) v.push('event larger than 512 KB');
  if (!isObj(body)) return ['body is not an object'];
  if (body.routing_key !== routingKey) v.push('wrong routing_key');
  if (!['trigger', 'acknowledge', 'resolve'].includes(String(body.event_action))) v.push('bad event_action');
  if (typeof body.dedup_key !== 'string' || body.dedup_key.length === 0 || body.dedup_key.length > 255)
    v.push('dedup_key missing or > 255');
  if (body.event_action === 'trigger') {
    const p = body.payload;
    if (!isObj(p)) return [...v, 'payload missing'];
    if (typeof p.summary !== 'string' || p.summary.length === 0 || p.summary.length > 1024)
      v.push('summary 1..1024');
    if (typeof p.source !== 'string' || p.source.length === 0) v.push('source missing');
    if (!['critical', 'error', 'warning', 'info'].includes(String(p.severity))) v.push('bad severity');
    if (p.timestamp !== undefined && Number.isNaN(Date.parse(String(p.timestamp)))) v.push('bad timestamp');
    if (p.custom_details !== undefined && !isObj(p.custom_details)) v.push('custom_details not an object');
  }
  return v;
}

/**
 * Webhook receiver verification, as in the README: reject a timestamp more than 5 minutes from the
 * receiver's clock, then compare v1=HMAC-SHA256(secret, timestamp + "." + raw body) in constant time.
 */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  rawBody: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): 'ok' | 'missing' | 'stale' | 'bad_signature' {
  const ts = String(headers['x-mcp-audit-timestamp'] ?? '');
  const sig = String(headers['x-mcp-audit-signature'] ?? '');
  if (!/^\d+$/.test(ts) || !sig.startsWith('v1=')) return 'missing';
  if (Math.abs(nowSeconds - Number(ts)) > 300) return 'stale';
  const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(`${ts}.${rawBody}`).digest('hex')}`);
  const got = Buffer.from(sig);
  return got.length === expected.length && timingSafeEqual(got, expected) ? 'ok' : 'bad_signature';
}

export function validateWebhookBody(body: unknown): string[] {
  if (!isObj(body)) return ['body is not an object'];
  const v: string[] = [];
  if (body.schema !== 'mcp-audit.alert.v1') v.push('schema is not mcp-audit.alert.v1');
  if (typeof body.delivery_id !== 'string') v.push('delivery_id missing');
  if (body.type !== 'alert' && body.type !== 'state_change') v.push('bad type');
  else if (!isObj(body[body.type])) v.push(`${body.type} missing`);
  return v;
}
