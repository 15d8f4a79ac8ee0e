import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alertMessageSchema, type AlertStateChange } from '@mcp-audit/schema';
import { routeAlert, type RoutesFile } from '../src/alerts.router.js';
import { actionOf } from '../src/delivery.engine.js';
import { buildSlackStateChange } from '../src/slack.payload.js';

const change = (o: Partial<AlertStateChange>): AlertStateChange =>
  alertMessageSchema.parse({
    schema_version: 1,
    type: 'state_change',
    transition_id: '0190f3c4-1111-7abc-8def-0123456789ab',
    alert_id: '0190f3c4-2222-7abc-8def-0123456789ab',
    dedup_key: 'volume|c1',
    detector: 'volume',
    client_id: 'c1',
    title: 'Volume spike',
    severity: 'high',
    from: 'open',
    status: 'open',
    changed_at: '2026-12-07T10:00:00.000Z',
    actor: 'k-analyst',
    action: 'assign',
    assignee: 'bob',
    ...o,
  }) as AlertStateChange;

const routes = {
  destinations: [
    { id: 'pd', kind: 'pagerduty', min_severity: 'info' },
    { id: 'chat', kind: 'slack', min_severity: 'info' },
  ],
  rules: [{ name: 'all', match: {}, destinations: ['pd', 'chat'] }],
} as unknown as RoutesFile;

test("a human's assign or note never reaches PagerDuty; acknowledge and resolve do", () => {
  const assign = change({});
  assert.deepEqual(routeAlert(routes, assign), [
    { destinationId: 'pd', suppressed: 'not_paged' },
    { destinationId: 'chat' },
  ]);
  assert.equal(actionOf({ message: assign }), 'assign');
  assert.match(buildSlackStateChange(assign, 'http://x').text, /^Assigned to bob/);
  const resolve = change({
    from: 'acknowledged',
    status: 'resolved',
    action: 'resolve',
    resolution: 'benign',
    assignee: undefined,
  });
  assert.deepEqual(routeAlert(routes, resolve), [{ destinationId: 'pd' }, { destinationId: 'chat' }]);
  assert.equal(actionOf({ message: resolve }), 'resolve');
  assert.throws(() => change({ action: 'acknowledge', status: 'open' }), /assign or a note/);
});
