import { AssignerProtocol, type Consumer, type Kafka, type PartitionAssigner } from 'kafkajs';
import { z } from 'zod';
import { envBool, envInt, type HealthReport, type Logger } from '@mcp-audit/service-kit';

/**
 * Leader election for work that must happen once (periodic detectors, the baseline job, ledger
 * sealing, retention), built on a Kafka consumer group: every instance joins the group of a
 * one-partition internal topic on which nothing is ever produced, and the member the group assigns
 * partition 0 is the leader. A dead leader stops heartbeating; the coordinator evicts it after the
 * session timeout and the rebalance gives partition 0 to a survivor (hand-over).
 *
 * Fencing (the guarantee, and its assumptions):
 * - The leader holds the lease until `deadline` = (send time of its last acknowledged heartbeat) +
 *   sessionTimeout - margin. kafkajs sends heartbeats one after another, so a heartbeat acknowledged
 *   now was sent after the previous acknowledgement: that earlier time is the bound used. The
 *   coordinator cannot evict the member before sessionTimeout after it *received* that heartbeat,
 *   so the lease ends locally before any other member can be assigned partition 0 (assuming clock
 *   rates agree within the margin; wall-clock offsets do not matter: each side measures its own
 *   intervals).
 * - It also ends at once when kafkajs starts a rebalance (the member must rejoin before anyone is
 *   assigned anything) or the consumer crashes or stops.
 * - Ending the lease aborts the term's signal and awaits `onRelease`, which stops the work; the work
 *   checks `term.valid()` between units (a window, a job). A new leader waits `takeoverDelayMs`
 *   after its assignment before `onAcquire`, so a unit of work the previous leader had in flight when
 *   its lease ended (a ClickHouse insert already sent) has that long to land. A unit that takes
 *   longer than takeoverDelayMs after the deadline (a process frozen mid-insert) is NOT fenced: there
 *   is no fencing token at the storage. The duties are idempotent where it matters (deterministic
 *   alert ids and monotonic progress rows), which bounds what such an overlap can cause.
 */

export interface LeaseTerm {
  /** Increases with every term this instance holds. */
  readonly term: number;
  /** Aborted when the lease ends. */
  readonly signal: AbortSignal;
  /** Whether the lease is still held (check between units of work). */
  valid(): boolean;
}

export interface LeaseOptions {
  kafka: Kafka;
  /** One-partition topic of this duty (declared in schemas/kafka/topics.json). */
  topic: string;
  groupId: string;
  /** The duty's name, for logs and health. */
  duty: string;
  log: Logger;
  /** Start the work; the term says until when it may run. A throw releases and retries on the next term. */
  onAcquire(term: LeaseTerm): Promise<void> | void;
  /** Stop the work and resolve when it has stopped (nothing in flight). */
  onRelease(reason: string): Promise<void> | void;
  /** How long the coordinator waits for a silent member (default 10 s). */
  sessionTimeoutMs?: number;
  /** Between heartbeats (default sessionTimeout / 10). */
  heartbeatIntervalMs?: number;
  /** Pause between the assignment and onAcquire (default sessionTimeout / 2). */
  takeoverDelayMs?: number;
}

export interface Lease {
  start(): Promise<void>;
  stop(): Promise<void>;
  isLeader(): boolean;
  health(): HealthReport;
}

const LEASE_PARTITION = 0;

/**
 * Keeps partition 0 with the member that held it (its metadata says so), so another instance joining
 * does not move the lease; otherwise the lowest member id gets it. Every member gets an entry.
 */
export function leaseAssigner(holds: () => boolean): PartitionAssigner {
  const name = 'McpAuditLeaseAssigner';
  return () => ({
    name,
    version: 1,
    async assign({ members, topics }) {
      const holders = members.filter((m) => {
        const meta = AssignerProtocol.MemberMetadata.decode(m.memberMetadata);
        return meta?.userData?.toString() === 'holds';
      });
      const ids = members.map((m) => m.memberId).sort();
      const leader = holders.length === 1 ? holders[0]!.memberId : ids[0];
      return ids.map((memberId) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: Object.fromEntries(
            topics.map((t) => [t, memberId === leader ? [LEASE_PARTITION] : []]),
          ),
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 1,
          topics,
          userData: Buffer.from(holds() ? 'holds' : ''),
        }),
      };
    },
  });
}

export function createLease(opts: LeaseOptions): Lease {
  const log = opts.log.child({ component: 'lease', duty: opts.duty, groupId: opts.groupId });
  const sessionTimeoutMs = opts.sessionTimeoutMs ?? 10_000;
  const heartbeatIntervalMs = opts.heartbeatIntervalMs ?? Math.max(100, Math.floor(sessionTimeoutMs / 10));
  const takeoverDelayMs = opts.takeoverDelayMs ?? Math.floor(sessionTimeoutMs / 2);
  // 10 % of the session for clock-rate differences and timer lateness, at least two heartbeats.
  const marginMs = Math.max(Math.floor(sessionTimeoutMs / 10), 2 * heartbeatIntervalMs);
  if (!(sessionTimeoutMs > marginMs + heartbeatIntervalMs))
    throw new RangeError(`lease ${opts.duty}: sessionTimeoutMs ${sessionTimeoutMs} is too short`);

  let running = false;
  /** Assigned partition 0 in the current generation (what the assigner metadata reports). */
  let assigned = false;
  let leader: { term: number; controller: AbortController } | undefined;
  let terms = 0;
  /** Lower bound of the send time of the last acknowledged heartbeat (or join). */
  let lastAck: number | undefined;
  let deadline = 0;
  let acquireTimer: NodeJS.Timeout | undefined;
  let guard: NodeJS.Timeout | undefined;
  let chain: Promise<void> = Promise.resolve();
  let lastError: string | undefined;
  let acquiredAt: number | undefined;

  const serially = (fn: () => Promise<void>) => {
    chain = chain.then(fn, fn);
    return chain;
  };

  function release(reason: string): Promise<void> {
    if (acquireTimer) clearTimeout(acquireTimer);
    acquireTimer = undefined;
    const held = leader;
    if (!held) return chain;
    leader = undefined;
    held.controller.abort(new Error(`lease ended: ${reason}`));
    log.warn({ term: held.term, reason }, 'lease released: stopping the once-only work');
    const stopped = serially(async () => {
      try {
        await opts.onRelease(reason);
      } catch (err) {
        lastError = (err as Error).message;
        log.error({ err }, 'stopping the once-only work failed');
      }
    });
    // Still assigned (a late heartbeat, a failed start): a new term once a heartbeat proves the
    // membership again (acquire() waits for a deadline in the future).
    if (running && assigned) acquireTimer = setTimeout(acquire, takeoverDelayMs);
    return stopped;
  }

  function acquire(): void {
    acquireTimer = undefined;
    if (!running || !assigned || leader) return;
    if (Date.now() >= deadline) {
      // No heartbeat acknowledged since the assignment yet: try again shortly.
      acquireTimer = setTimeout(acquire, heartbeatIntervalMs);
      return;
    }
    const controller = new AbortController();
    const held = { term: ++terms, controller };
    leader = held;
    acquiredAt = Date.now();
    const term: LeaseTerm = {
      term: held.term,
      signal: controller.signal,
      valid: () => leader === held && Date.now() < deadline,
    };
    log.info({ term: held.term }, 'lease acquired: starting the once-only work');
    void serially(async () => {
      if (leader !== held) return;
      try {
        await opts.onAcquire(term);
      } catch (err) {
        lastError = (err as Error).message;
        log.error({ err }, 'starting the once-only work failed; releasing the lease');
        void release('start failed');
      }
    });
  }

  function makeConsumer(): Consumer {
    const c = opts.kafka.consumer({
      groupId: opts.groupId,
      sessionTimeout: sessionTimeoutMs,
      rebalanceTimeout: sessionTimeoutMs,
      heartbeatInterval: heartbeatIntervalMs,
      // The fetch loop is where kafkajs heartbeats: wake up often on an empty topic.
      maxWaitTimeInMs: Math.min(250, heartbeatIntervalMs),
      allowAutoTopicCreation: false,
      partitionAssigners: [leaseAssigner(() => assigned)],
      retry: { initialRetryTime: 300, retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 5_000 },
    });
    c.on(c.events.GROUP_JOIN, (e) => {
      lastAck = Date.now();
      deadline = 0; // established by the first heartbeat of the generation
      assigned = (e.payload.memberAssignment[opts.topic] ?? []).includes(LEASE_PARTITION);
      log.info({ memberId: e.payload.memberId, assigned }, 'lease group joined');
      if (!assigned) void release('partition reassigned');
      else if (!leader && !acquireTimer) acquireTimer = setTimeout(acquire, takeoverDelayMs);
    });
    c.on(c.events.HEARTBEAT, () => {
      const now = Date.now();
      // This heartbeat was sent after the previous acknowledgement (kafkajs sends them in sequence).
      if (lastAck !== undefined) deadline = lastAck + sessionTimeoutMs - marginMs;
      lastAck = now;
    });
    c.on(c.events.REBALANCING, () => {
      deadline = 0;
      void release('group rebalancing');
    });
    c.on(c.events.CRASH, (e) => {
      deadline = 0;
      assigned = false;
      lastError = e.payload.error.message;
      void release(`consumer crashed: ${e.payload.error.message}`);
      if (!e.payload.restart && running) {
        log.error({ err: e.payload.error }, 'lease consumer gave up; starting a new one');
        void restart();
      }
    });
    return c;
  }

  let consumer = makeConsumer();

  async function runConsumer(c: Consumer): Promise<void> {
    await c.connect();
    await c.subscribe({ topic: opts.topic, fromBeginning: false });
    // Nothing is produced on a lease topic; the group membership is the point.
    await c.run({ autoCommit: false, eachBatch: async () => undefined });
  }

  async function restart(): Promise<void> {
    await consumer.disconnect().catch(() => undefined);
    while (running) {
      consumer = makeConsumer();
      try {
        await runConsumer(consumer);
        return;
      } catch (err) {
        lastError = (err as Error).message;
        await new Promise((r) => setTimeout(r, 2_000));
      }
    }
  }

  return {
    async start() {
      running = true;
      // The local end of the lease: checked often so the work stops before the coordinator could
      // assign partition 0 to anyone else.
      guard = setInterval(
        () => {
          if (leader && Date.now() >= deadline) void release('no heartbeat acknowledged in time');
        },
        Math.max(50, Math.floor(heartbeatIntervalMs / 2)),
      );
      guard.unref();
      await runConsumer(consumer);
    },
    async stop() {
      running = false;
      if (guard) clearInterval(guard);
      // The work stops first; then leaving the group hands the lease over at once.
      await release('stopping');
      await consumer.disconnect();
    },
    isLeader: () => leader !== undefined,
    health() {
      return {
        ok: running,
        details: {
          duty: opts.duty,
          leader: leader !== undefined,
          term: leader?.term ?? null,
          since: leader && acquiredAt ? new Date(acquiredAt).toISOString() : null,
          ...(lastError ? { lastError } : {}),
        },
      };
    },
  };
}

/**
 * The lease fragment of a service's environment: MCP_AUDIT_<S>_LEASE ('true': the once-only work
 * runs on the elected instance; 'false': on every instance, the single-instance layout),
 * _LEASE_TOPIC, _LEASE_GROUP_ID (default: the caller's, see `leaseFromEnv`), _LEASE_SESSION_TIMEOUT_MS,
 * _LEASE_TAKEOVER_DELAY_MS.
 */
export function leaseEnv<S extends string>(service: S) {
  const s = service.toLowerCase();
  const shape = {
    [`MCP_AUDIT_${service}_LEASE`]: envBool('true'),
    [`MCP_AUDIT_${service}_LEASE_TOPIC`]: z.string().min(1).default(`mcp.audit.lease.${s}`),
    [`MCP_AUDIT_${service}_LEASE_GROUP_ID`]: z.string().min(1).optional(),
    [`MCP_AUDIT_${service}_LEASE_SESSION_TIMEOUT_MS`]: envInt(10_000, 3_000, 300_000),
    [`MCP_AUDIT_${service}_LEASE_TAKEOVER_DELAY_MS`]: envInt(5_000, 0, 600_000),
  };
  return z.object(
    shape as {
      [
        K in
          | `MCP_AUDIT_${S}_LEASE`
          | `MCP_AUDIT_${S}_LEASE_TOPIC`
          | `MCP_AUDIT_${S}_LEASE_GROUP_ID`
          | `MCP_AUDIT_${S}_LEASE_SESSION_TIMEOUT_MS`
          | `MCP_AUDIT_${S}_LEASE_TAKEOVER_DELAY_MS`
      ]: K extends `MCP_AUDIT_${S}_LEASE`
        ? ReturnType<typeof envBool>
        : K extends `${string}_MS`
          ? ReturnType<typeof envInt>
          : K extends `${string}_GROUP_ID`
            ? z.ZodOptional<z.ZodString>
            : z.ZodDefault<z.ZodString>;
    },
  );
}

type LeaseEnv<S extends string> = z.infer<ReturnType<typeof leaseEnv<S>>>;

/**
 * The service's lease from its environment, or undefined when MCP_AUDIT_<S>_LEASE is 'false' (the
 * caller then runs the work itself). The group defaults to `mcp-audit-<service>-lease`, or to
 * `defaultGroupId` (the detector derives it from its consumer group, so instances that do not share
 * a consumer group, such as tests' own detectors, do not share a lease either).
 */
export function leaseFromEnv<S extends string>(
  service: S,
  env: LeaseEnv<S>,
  parts: Pick<LeaseOptions, 'kafka' | 'log' | 'onAcquire' | 'onRelease'> & { defaultGroupId?: string },
): Lease | undefined {
  const e = env as Record<string, unknown>;
  const k = (suffix: string) => e[`MCP_AUDIT_${service}_LEASE${suffix}`];
  if (k('') !== true) return undefined;
  const { defaultGroupId, ...rest } = parts;
  return createLease({
    ...rest,
    duty: service.toLowerCase(),
    topic: k('_TOPIC') as string,
    groupId:
      (k('_GROUP_ID') as string | undefined) ?? defaultGroupId ?? `mcp-audit-${service.toLowerCase()}-lease`,
    sessionTimeoutMs: k('_SESSION_TIMEOUT_MS') as number,
    takeoverDelayMs: k('_TAKEOVER_DELAY_MS') as number,
  });
}
