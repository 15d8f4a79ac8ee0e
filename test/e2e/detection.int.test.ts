import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suffix } from '../lib/index.js';
import { formatReport } from '../scenario/score.js';
import { runScenario } from '../scenario/run.js';

/**
 * Issue 5's acceptance through the real stack: a smaller scenario (24 clients x 21 days, still every
 * anomaly kind, cold-start ones included) goes through Kafka, the real ingester and the real detector
 * (own topics, database and consumer groups: test/scenario/run.ts); the scorer must find every
 * labelled anomaly caught and at most one false alarm per 500 client-days. Then `cli replay` over the
 * evaluation week must raise the same alerts (dedup key, window, observed, severity) as live.
 * Default tuning (the scenario config adds only time zones, business hours and the holiday).
 * About 3-4 minutes on the 2-core box.
 */
test('scenario: every labelled anomaly caught, false alarms within budget, replay equals live', async () => {
  const lines: string[] = [];
  const r = await runScenario({
    scenario: { prefix: `scne2e${suffix()}`, clients: 24, days: 21, seed: 11 },
    timeoutMs: 10 * 60_000,
    log: (l) => lines.push(l),
  });
  const live = formatReport(r.live);
  assert.ok(r.live.pass, `live detection fails acceptance:\n${live}\n${lines.join('\n')}`);
  assert.ok(r.replay, 'replay ran');
  assert.ok(r.replay.pass, `replay fails acceptance:\n${formatReport(r.replay)}`);
  assert.deepEqual(r.replayDiff, { onlyLive: [], onlyReplay: [] }, 'replay raises what live raised');
});
