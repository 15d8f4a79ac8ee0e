import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  desiredTopicConfig,
  loadTopicDefs,
  replicationFor,
  topicConfigChanges,
  TOPIC_EVENTS,
} from '../src/topics.js';

const events = loadTopicDefs().find((d) => d.name === TOPIC_EVENTS)!;

test('declared topics: replication factor 3, min.insync.replicas 2 (a cluster loses one broker and refuses no write)', () => {
  for (const d of loadTopicDefs()) {
    assert.equal(d.replicationFactor, 3, d.name);
    assert.equal(d.config['min.insync.replicas'], '2', d.name);
  }
});

test('the environment caps replication; min.insync.replicas never exceeds it', () => {
  assert.equal(replicationFor(events, 1), 1);
  assert.equal(replicationFor(events, 3), 3);
  assert.equal(replicationFor(events, 5), 3, 'never above the declaration');
  assert.equal(desiredTopicConfig(events, 1)['min.insync.replicas'], '1', 'single broker');
  assert.equal(desiredTopicConfig(events, 2)['min.insync.replicas'], '2');
  assert.equal(desiredTopicConfig(events, 3)['min.insync.replicas'], '2', 'cluster');
  assert.equal(desiredTopicConfig(events, 3)['retention.ms'], events.config['retention.ms']);
});

test('config changes: only what differs from the topic overrides, the old value named', () => {
  const desired = desiredTopicConfig(events, 3);
  assert.deepEqual(topicConfigChanges(desired, { ...desired }), []);
  const current = { ...desired, 'min.insync.replicas': '1', 'segment.ms': '1000' };
  delete (current as Record<string, string>)['retention.ms'];
  assert.deepEqual(topicConfigChanges(desired, current), [
    { name: 'retention.ms', from: undefined, to: desired['retention.ms'] },
    { name: 'min.insync.replicas', from: '1', to: '2' },
  ]);
});
