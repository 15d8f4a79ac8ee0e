import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Admin, Producer } from 'kafkajs';
import { startService, suffix, waitFor, type ServiceProcess, useStackClients } from '../lib/index.js';
import {
  createAlertTopics,
  makeAlert,
  notifierEnv,
  produceAlerts,
  startReceivers,
  writeRoutes,
  ROUTING_KEY,
  WEBHOOK_SECRET,
} from '../lib/receivers/index.js';

let admin: Admin;
let producer: Producer;
useStackClients((c) => ({ admin, producer } = c));

/** The partitions an instance holds, from its latest "partitions assigned" log line. */
function held(svc: ServiceProcess): number[] | undefined {
  let last: number[] | undefined;
  for (const line of readFileSync(svc.logFile, 'utf8').split('\n')) {
    if (!line.includes('"msg":"partitions assigned"')) continue;
    last = (JSON.parse(line) as { partitions: number[] }).partitions;
  }
  return last;
}

const assignedCount = (svc: ServiceProcess) =>
  readFileSync(svc.logFile, 'utf8').split('"msg":"partitions assigned"').length - 1;

test('parked jobs follow their partitions across instances: a stopped instance’s jobs are delivered by a live one without a restart, and a joining one does not resend what a live one holds', async () => {
  const tag = `parts-${suffix()}`;
  const rx = await startReceivers({ routingKey: ROUTING_KEY, webhookSecret: WEBHOOK_SECRET });
  // A slow receiver: each instance delivers about 5 a second, so backlogs build up.
  rx.webhook.delayMs = 200;
  const topics = await createAlertTopics(admin, tag);
  const group = `e2e-notifier-${suffix()}`;
  const routes = writeRoutes({ base: rx.base, destinations: ['webhook'] });
  const envs = notifierEnv(rx, topics, group, routes);
  const a = startService('notifier', envs, `${tag}-a`);
  let b: ServiceProcess | undefined;
  let c: ServiceProcess | undefined;
  const deliveries = () => rx.webhook.accepted.map((r) => String(r.body.delivery_id));
  const distinct = (alerts: Array<{ alert_id: string }>) => {
    const got = new Set(deliveries());
    return alerts.filter((x) => got.has(`${x.alert_id}:siem`)).length;
  };
  const duplicates = () => deliveries().length - new Set(deliveries()).size;
  try {
    await waitFor(() => held(a)?.length === 3, { timeoutMs: 60_000, what: 'a holds every partition' });
    b = startService('notifier', envs, `${tag}-b`);
    const bJoined = b;
    await waitFor(
      () => {
        const pa = held(a) ?? [];
        const pb = held(bJoined) ?? [];
        return pa.length > 0 && pb.length > 0 && pa.length + pb.length === 3;
      },
      { timeoutMs: 60_000, what: 'a and b sharing the partitions' },
    );
    const heldByA = held(a)!;

    // Phase 1: a stops with a backlog parked; b takes over its partitions and delivers the backlog.
    const wave1 = Array.from({ length: 60 }, (_, i) => makeAlert(i, `${tag}-1`));
    await produceAlerts(producer, topics.alerts, wave1);
    await waitFor(() => distinct(wave1) >= 10, { timeoutMs: 60_000, what: 'first deliveries' });
    assert.equal(await a.stop(), 0);
    assert.ok(distinct(wave1) < 60, `a stopped with jobs still parked (${distinct(wave1)} delivered)`);
    await waitFor(() => held(bJoined)?.length === 3, {
      timeoutMs: 60_000,
      what: 'b holding every partition',
    });
    await waitFor(() => distinct(wave1) === 60, {
      timeoutMs: 90_000,
      what: `every alert delivered by b, including a's parked ones (partitions ${heldByA.join(',')})`,
    });
    assert.ok(duplicates() <= 3, `phase 1 duplicates bounded (${duplicates()})`);

    // Phase 2: c joins while b has a backlog; b drops what moves to c, c loads it, nothing twice.
    const before = duplicates();
    const wave2 = Array.from({ length: 100 }, (_, i) => makeAlert(i, `${tag}-2`));
    await produceAlerts(producer, topics.alerts, wave2);
    await waitFor(() => distinct(wave2) >= 10, { timeoutMs: 60_000, what: 'wave 2 under way' });
    const joinsBefore = assignedCount(bJoined);
    c = startService('notifier', envs, `${tag}-c`);
    const cJoined = c;
    await waitFor(() => (held(cJoined)?.length ?? 0) > 0 && assignedCount(bJoined) > joinsBefore, {
      timeoutMs: 60_000,
      what: 'c taking partitions from b',
    });
    const atJoin = distinct(wave2);
    assert.ok(atJoin < 90, `c joined with a backlog left (${atJoin} of 100 delivered)`);
    await waitFor(() => distinct(wave2) === 100, { timeoutMs: 90_000, what: 'every wave-2 alert delivered' });
    const dup2 = duplicates() - before;
    assert.ok(
      dup2 <= 5,
      `phase 2 duplicates bounded (${dup2}; a reload of everything would repeat the backlog)`,
    );
    assert.deepEqual(rx.webhook.violations, []);
    assert.deepEqual(rx.webhook.rejected, []);
  } finally {
    await a.kill9();
    await b?.stop();
    await c?.stop();
    await rx.close();
  }
});
