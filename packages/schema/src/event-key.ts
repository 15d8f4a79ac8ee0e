import { createHash } from 'node:crypto';

/** Domain separation: a key of the events topic is not a hash of anything else. */
const EVENT_KEY_DOMAIN = 'mcp-audit.events.key.v1\0';

/**
 * The Kafka message key of an event on `mcp.audit.events.v1`: SHA-256 (hex) of the **redacted**
 * `client.id`. Every producer of the events topic (collector, SDK Kafka sink, replay, tests) calls
 * this one function, so one client always lands on one partition whoever produced it.
 *
 * - Pass the id as it is in the redacted event, never the raw one: a secret pasted into a client
 *   id is then a redaction marker before it is hashed, so the key cannot be brute-forced back to it.
 * - Unkeyed on purpose: the redacted id is in the message value anyway, so a keyed MAC would hide
 *   nothing more, while every producer would need the redaction key to agree on partitions (the
 *   SDK's sink has none; a per-process random key would move a client between partitions on every
 *   restart). The only key-dependent part is a marker's fingerprint, which all services share.
 */
export function eventKeyFor(redactedClientId: string): string {
  return createHash('sha256').update(EVENT_KEY_DOMAIN).update(redactedClientId, 'utf8').digest('hex');
}
