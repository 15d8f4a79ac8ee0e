/**
 * The leader lease (src/lease.ts) against the tests' real Kafka: one leader at a time, the lease stays
 * with its holder when others join (sticky assignor), and a graceful stop hands it over. The hand-over
 * after `kill -9` of a whole process is services/detector/test/lease.int.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AssignerProtocol } from 'kafkajs';
import { createLogger } from '@mcp-audit/service-kit';
import { createKafka, type Kafka } from '../src/client.js';
import { createLease, leaseAssigner, type Lease } from '../src/lease.js';

const log = createLogger('lease-test', { level: 'silent' });
const topic = `lease-test-${randomBytes(4).toString('hex')}`;
let kafka: Kafka;

before(async () => {
  kafka = createKafka(
    {
      brokers: (process.env.MCP_AUDIT_KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
      clientId: 'lease-test',
      ssl: false,
      replicationFactor: 1,
      connectionTimeoutMs: 3_000,
      requestTimeoutMs: 10_000,
    },
    log,
  );
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
  await admin.disconnect();
});

after(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
});

async function until(what: string, fn: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('lease assigner: the holder keeps partition 0; otherwise the lowest member id; everyone gets an entry', async () => {
  const member = (memberId: string, holds: boolean) => ({
    memberId,
    memberMetadata: AssignerProtocol.MemberMetadata.encode({
      version: 1,
      topics: [topic],
      userData: Buffer.from(holds ? 'holds' : ''),
    }),
  });
  const assigned = async (members: ReturnType<typeof member>[]) => {
    const assigner = leaseAssigner(() => false)({} as never);
    const out = await assigner.assign({ members, topics: [topic] });
    assert.deepEqual(out.map((o) => o.memberId).sort(), members.map((m) => m.memberId).sort());
    return out
      .filter((o) =>
        AssignerProtocol.MemberAssignment.decode(o.memberAssignment)!.assignment[topic]!.includes(0),
      )
      .map((o) => o.memberId);
  };
  assert.deepEqual(await assigned([member('m-b', false), member('m-a', false)]), ['m-a']);
  assert.deepEqual(await assigned([member('m-a', false), member('m-c', true), member('m-b', false)]), [
    'm-c',
  ]);
  // Two claim it (a split brain already over): the lowest id, still exactly one.
  assert.deepEqual(await assigned([member('m-c', true), member('m-b', true)]), ['m-b']);
});

test('one leader at a time; joining instances do not move the lease; a stop hands it over', async () => {
  const holders = new Set<string>();
  const acquired: string[] = [];
  let overlap = false;
  const make = (name: string): Lease =>
    createLease({
      kafka,
      topic,
      groupId: `${topic}-group`,
      duty: 'test',
      log,
      sessionTimeoutMs: 6_000, // the broker's group.min.session.timeout.ms
      takeoverDelayMs: 500,
      onAcquire: () => {
        if (holders.size > 0) overlap = true;
        holders.add(name);
        acquired.push(name);
      },
      onRelease: async () => {
        await new Promise((r) => setTimeout(r, 200)); // work in flight finishing
        holders.delete(name);
      },
    });
  const a = make('a');
  const b = make('b');
  const c = make('c');
  try {
    await a.start();
    await until('a leads', () => a.isLeader());
    await b.start();
    await c.start();
    // Both newcomers joined (the group rebalanced twice) and a still holds the lease.
    await new Promise((r) => setTimeout(r, 15_000));
    assert.ok(a.isLeader(), 'the holder keeps the lease when others join');
    // (a pauses during each rebalance, as the fencing requires, and resumes: a new term of its own)
    assert.deepEqual([...new Set(acquired)], ['a'], 'nobody else led meanwhile');
    assert.equal(holders.size, 1);
    const before = acquired.length;
    await a.stop();
    await until('b or c leads', () => b.isLeader() || c.isLeader());
    assert.ok(!(b.isLeader() && c.isLeader()), 'never two leaders');
    assert.equal(acquired.length, before + 1, 'one new term after the hand-over');
    assert.equal(overlap, false, 'no term started while another was running');
  } finally {
    await Promise.all([a, b, c].map((l) => l.stop().catch(() => undefined)));
  }
  assert.equal(holders.size, 0, 'stopped leases hold nothing');
});
