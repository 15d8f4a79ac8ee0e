import { z } from 'zod';
import { auditEventV1, eventLabels } from './event.js';
import { MAX_CLOCK_SKEW_MS, MAX_EVENT_AGE_MS, MAX_EVENT_BYTES, MAX_LABELS } from './limits.js';

export const EVENT_JSON_SCHEMA_ID = 'urn:mcp-audit:schema:event:v1';

/**
 * The JSON Schema (draft 2020-12) of the v1 event, as accepted on the wire: unknown members are
 * allowed (they are stripped, not refused). Rules JSON Schema cannot state (sizes in bytes, clock
 * bounds on ts, NUL bytes, forbidden and duplicate keys) are named in the descriptions.
 */
export function eventJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(auditEventV1, {
    target: 'draft-2020-12',
    io: 'input',
    override: (ctx) => {
      if (ctx.zodSchema === eventLabels) ctx.jsonSchema.maxProperties = MAX_LABELS;
      if (ctx.zodSchema === auditEventV1) {
        // The cross-field rules of the zod superRefine, restated.
        ctx.jsonSchema.allOf = [
          { if: { properties: { kind: { const: 'tool_call' } } }, then: { required: ['tool'] } },
          { if: { properties: { kind: { const: 'auth' } } }, then: { required: ['auth'] } },
          {
            if: { properties: { outcome: { const: 'auth_failed' } } },
            then: {
              required: ['auth'],
              properties: { auth: { properties: { result: { const: 'failure' } } } },
            },
          },
        ];
      }
    },
  });
  const { $schema, ...rest } = generated;
  return {
    $schema,
    $id: EVENT_JSON_SCHEMA_ID,
    ...rest,
    $comment:
      `Also enforced by @mcp-audit/schema parseEvent: at most ${MAX_EVENT_BYTES} bytes as UTF-8 JSON; ` +
      `ts at most ${MAX_CLOCK_SKEW_MS / 1000}s ahead of and ${MAX_EVENT_AGE_MS / 86_400_000} days behind the receiver's clock; ` +
      'no NUL bytes or lone surrogates in any string; no duplicate keys; no __proto__, constructor or prototype keys anywhere.',
  };
}

/** The committed file's exact text: two-space indentation and a trailing newline. */
export function renderEventJsonSchema(): string {
  return `${JSON.stringify(eventJsonSchema(), null, 2)}\n`;
}
