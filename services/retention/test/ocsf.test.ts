import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { canonicalRow } from '../src/ledger/canonical.js';
import { decodeOcsf, encodeRow } from '../src/export/formats.js';
import { activityIdOf, OCSF_VERSION, toOcsf } from '../src/export/ocsf.js';
import { canonicalOf, makeRow } from './helpers.js';

/**
 * OCSF 1.3.0, class API Activity (6003): the attributes the class marks required, and their types
 * (integer enums, timestamp_t = integer ms, objects). Recommended ones are checked where we map them.
 */
const REQUIRED: Record<string, 'integer' | 'object' | 'string'> = {
  activity_id: 'integer',
  category_uid: 'integer',
  class_uid: 'integer',
  severity_id: 'integer',
  time: 'integer',
  type_uid: 'integer',
  metadata: 'object',
  actor: 'object',
  api: 'object',
  cloud: 'object',
  src_endpoint: 'object',
};

const typeOf = (v: unknown) =>
  Number.isInteger(v)
    ? 'integer'
    : v !== null && typeof v === 'object' && !Array.isArray(v)
      ? 'object'
      : typeof v;

describe('OCSF 1.3.0 API Activity mapping', () => {
  const rows = [
    ...Array.from({ length: 12 }, (_, i) => makeRow(Date.UTC(2026, 0, 5, 9, 0, i), i)),
    makeRow(Date.UTC(2026, 0, 5, 9), 50, {
      kind: 'auth',
      method: '',
      tool_name: '',
      outcome: 'auth_failed',
      client_user: '',
    }),
    makeRow(Date.UTC(2026, 0, 5, 9), 51, {
      kind: 'resource_read',
      method: 'resources/read',
      tool_name: '',
      outcome: 'denied',
      client_ip: '',
    }),
    makeRow(Date.UTC(2026, 0, 5, 9), 52, { method: 'resources/unsubscribe', http_status: null }),
  ];

  it('every event maps to an object with the required attributes, typed as the class says', () => {
    for (const r of rows) {
      const v = canonicalOf(r);
      const o = toOcsf(v, canonicalRow(v), r.ingested_at, { productVersion: '0.1.0' });
      for (const [k, t] of Object.entries(REQUIRED))
        assert.equal(typeOf(o[k]), t, `${k} of ${String(v.event_id)}`);
      assert.equal(o.class_uid, 6003);
      assert.equal(o.category_uid, 6);
      assert.ok([0, 1, 2, 3, 4, 99].includes(o.activity_id as number));
      assert.equal(o.type_uid, 600300 + (o.activity_id as number));
      assert.equal(o.time, (v.ts as number) * 1000 + (v.ts_ms as number));
      assert.ok([0, 1, 2].includes(o.status_id as number));
      const md = o.metadata as { version: string; uid: string; product: Record<string, unknown> };
      assert.equal(md.version, OCSF_VERSION);
      assert.equal(md.uid, v.event_id);
      assert.equal(typeof md.product.name, 'string');
      assert.equal(typeof md.product.vendor_name, 'string');
      const api = o.api as { operation: unknown; service: { name: unknown } };
      assert.equal(typeof api.operation, 'string');
      assert.equal(api.service.name, v.server_name);
      assert.equal(typeof (o.cloud as { provider: unknown }).provider, 'string');
      assert.equal(typeof o.duration, 'number');
      assert.equal(o.raw_data, canonicalRow(v));
    }
  });

  it('activity_id follows the MCP method; status follows the outcome', () => {
    assert.equal(activityIdOf('resources/read'), 2);
    assert.equal(activityIdOf('tools/list'), 2);
    assert.equal(activityIdOf('resources/subscribe'), 1);
    assert.equal(activityIdOf('logging/setLevel'), 3);
    assert.equal(activityIdOf('resources/unsubscribe'), 4);
    assert.equal(activityIdOf('tools/call'), 99);
    assert.equal(activityIdOf(''), 0);
    const v = canonicalOf(rows[12]!);
    const o = toOcsf(v, canonicalRow(v), 0, { productVersion: 'x' });
    assert.equal(o.status_id, 2);
    assert.equal(o.severity_id, 3);
  });

  it('an encoded line decodes back to the same canonical row (UInt64 exact)', () => {
    for (const r of rows) {
      const v = canonicalOf(r);
      const line = encodeRow(
        'ocsf',
        { values: v, canonical: canonicalRow(v), ingestedAt: r.ingested_at },
        { productVersion: '0.1.0' },
      );
      const back = decodeOcsf(line.trimEnd(), { productVersion: '0.1.0' });
      assert.equal(back.canonical, canonicalRow(v));
      assert.equal(back.values.response_bytes, '18446744073709551615');
    }
  });

  it('OCSF.md documents every attribute the mapping writes and names the version', () => {
    const doc = readFileSync(new URL('../../OCSF.md', import.meta.url), 'utf8');
    assert.ok(doc.includes('OCSF 1.3.0'));
    const v = canonicalOf(rows[1]!);
    const o = toOcsf(v, canonicalRow(v), 0, { productVersion: 'x' });
    const paths = (x: Record<string, unknown>, p = ''): string[] =>
      Object.entries(x).flatMap(([k, y]) =>
        y !== null && typeof y === 'object' && !Array.isArray(y) && k !== 'labels'
          ? paths(y as Record<string, unknown>, `${p}${k}.`)
          : [`${p}${k}`],
      );
    for (const p of paths(JSON.parse(JSON.stringify(o)) as Record<string, unknown>))
      assert.ok(doc.includes(`\`${p}\``), `OCSF.md does not document ${p}`);
  });
});
