import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EVENT_JSON_SCHEMA_PATH, generateEventJsonSchema } from '../src/generate-json-schema.js';
import { eventJsonSchema, renderEventJsonSchema, MAX_LABELS } from '../src/index.js';

describe('schemas/event.v1.json', () => {
  it('is the committed output of the generator (run npm run schema:generate if this fails)', () => {
    assert.equal(readFileSync(EVENT_JSON_SCHEMA_PATH, 'utf8'), renderEventJsonSchema());
    assert.equal(generateEventJsonSchema({ check: true }), true);
  });

  it('--check mode reports a stale file without writing it; write mode fixes it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'schema-'));
    try {
      const path = join(dir, 'event.v1.json');
      assert.equal(generateEventJsonSchema({ check: true, path }), false);
      assert.throws(() => readFileSync(path));
      assert.equal(generateEventJsonSchema({ path }), false);
      assert.equal(generateEventJsonSchema({ check: true, path }), true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is draft 2020-12, accepts unknown members and states the rules zod checks in code', () => {
    const s = eventJsonSchema() as {
      $schema: string;
      required: string[];
      additionalProperties?: unknown;
      allOf: unknown[];
      properties: Record<string, { maxProperties?: number; type?: string }>;
    };
    assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(s.additionalProperties, undefined);
    for (const f of [
      'schema_version',
      'event_id',
      'ts',
      'kind',
      'source',
      'client',
      'server',
      'method',
      'outcome',
    ]) {
      assert.ok(s.required.includes(f), f);
    }
    assert.ok(!s.required.includes('tool') && !s.required.includes('args') && !s.required.includes('labels'));
    assert.equal(s.allOf.length, 3);
    assert.equal(s.properties.labels?.maxProperties, MAX_LABELS);
    assert.ok(renderEventJsonSchema().endsWith('}\n'));
  });
});
