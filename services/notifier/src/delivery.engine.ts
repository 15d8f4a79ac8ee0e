import type { Logger } from '@mcp-audit/service-kit';
import { nextDelayMs } from './backoff.js';
import type { DeliveryJob, Destination, DestinationKind, SendOutcome } from './destinations.js';
import type { NotifierMetrics } from './metrics.js';
import { isUnreadable, type Outbox, type PendingJob, type UnreadableJob } from './outbox.js';

/** A row of mcp_audit.alert_deliveries. Never holds a URL, key or secret. */
export interface DeliveryRow {
  at: string;
  at_ms: number;
  group_id: string;
  job_id: string;
  message_id: string;
  alert_id: string;
  dedup_key: string;
  action: string;
  destination_id: string;
  destination_kind: string;
  attempt: number;
  status: 'delivered' | 'failed' | 'dead_lettered' | 'suppressed';
  final: 0 | 1;
  http_status: number;
  latency_ms: number;
  error: string;
  digest_id: string;
}

export function actionOf(job: Pick<DeliveryJob, 'message'>): string {
  const m = job.message;
  if (m.type === 'alert') return 'trigger';
  if (m.action === 'assign' || m.action === 'note') return m.action;
  return m.status === 'resolved' ? 'resolve' : 'acknowledge';
}

export function deliveryRow(
  groupId: string,
  job: Pick<DeliveryJob, 'jobId' | 'messageId' | 'destinationId' | 'message'>,
  kind: DestinationKind | 'unknown',
  r: Partial<DeliveryRow> & Pick<DeliveryRow, 'status' | 'attempt'>,
  now = new Date(),
): DeliveryRow {
  return {
    at: now.toISOString().slice(0, 19).replace('T', ' '),
    at_ms: now.getUTCMilliseconds(),
    group_id: groupId,
    job_id: job.jobId,
    message_id: job.messageId,
    alert_id: job.message.alert_id,
    dedup_key: job.message.dedup_key,
    action: actionOf(job),
    destination_id: job.destinationId,
    destination_kind: kind,
    final: r.status === 'failed' ? 0 : 1,
    http_status: 0,
    latency_ms: 0,
    error: '',
    digest_id: '',
    ...r,
  };
}

export interface EngineConfig {
  groupId: string;
  /** The topic jobs are parked from (outbox positions are per topic and partition). */
  topic: string;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /**
   * Jobs held in memory at most, shared equally among the destinations. Beyond its share, a
   * destination's jobs stay parked in the outbox and are loaded as its queue drains, so one slow
   * or dead destination never holds back the consumer or the others.
   */
  maxPending: number;
  /** Days of the outbox searched for parked jobs. */
  outboxDays?: number;
}

export interface EngineDeps {
  destinations: Map<string, Destination>;
  /** Appends attempt rows (buffered by the caller). */
  record: (rows: DeliveryRow[]) => void;
  /** Keeps a job that exhausted its budget in the dead-letter topic; must throw if it could not. */
  deadLetter: (job: DeliveryJob, last: SendOutcome) => Promise<void>;
  /** Keeps a parked job whose message no longer parses in the dead-letter topic; must throw if it could not. */
  deadLetterUnreadable: (job: UnreadableJob) => Promise<void>;
  /**
   * While the attempt rows are over their bound in memory (ClickHouse away): a promise that resolves
   * once they drained. No new attempt starts meanwhile; the jobs wait in their queues and the outbox.
   */
  recordPaused?: () => Promise<void> | undefined;
  /** Where parked jobs are loaded from; without it only jobs handed in are delivered (tests). */
  outbox?: Pick<Outbox, 'pending' | 'orphans'>;
  log: Logger;
  metrics: NotifierMetrics;
  random?: () => number;
}

class Waker {
  #resolve: (() => void) | undefined;
  wake(): void {
    this.#resolve?.();
    this.#resolve = undefined;
  }
  wait(ms?: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = ms === undefined ? undefined : setTimeout(resolve, ms);
      this.#resolve = () => {
        if (t) clearTimeout(t);
        resolve();
      };
    });
  }
}

/** Where a destination's parked jobs of one partition are not in memory yet: read from here on. */
interface Backlog {
  offset: bigint;
  seq: number;
  /** The assignment it was set under (a load that straddles a reassignment is discarded). */
  epoch: number;
}

interface WorkerHooks {
  /** Delivered or dead-lettered: gone from the queue for good. */
  finished(w: DestinationWorker, jobs: readonly DeliveryJob[]): void;
  /** Whether the job's partition is held by another instance now (so it is no longer ours to retry). */
  revoked(job: DeliveryJob): boolean;
  /** Removed from the queue without a final state (the partition's new owner has it). */
  dropped(w: DestinationWorker, jobs: readonly DeliveryJob[]): void;
}

/**
 * One FIFO queue and one sender loop per destination, so a destination that is down or slow holds
 * back only its own queue, and a dedup key's messages reach each destination in topic order (a
 * later message never overtakes an earlier one that is waiting for a retry).
 */
class DestinationWorker {
  readonly queue: DeliveryJob[] = [];
  readonly waker = new Waker();
  /** The head of the queue while a request (and the dead-lettering after it) is in progress. */
  readonly inFlight = new Set<DeliveryJob>();
  /** Partitions whose parked jobs for this destination are (partly) only in the outbox. */
  readonly backlog = new Map<number, Backlog>();
  /** Partitions a job was admitted for while a load was reading the outbox: read them once more. */
  readonly dirty = new Set<number>();
  loading: Promise<void> | undefined;
  loadFailures = 0;
  notBefore = 0;
  stopping = false;
  loop: Promise<void> | undefined;
  constructor(
    readonly dest: Destination,
    /** Jobs this destination may hold in memory. */
    readonly cap: number,
    private readonly cfg: EngineConfig,
    private readonly deps: EngineDeps,
    private readonly hooks: WorkerHooks,
  ) {}

  remove(jobs: readonly DeliveryJob[]): void {
    for (const j of jobs) {
      const i = this.queue.indexOf(j);
      if (i >= 0) this.queue.splice(i, 1);
    }
  }

  async run(): Promise<void> {
    const { dest } = this;
    while (!this.stopping) {
      if (this.queue.length === 0) {
        await this.waker.wait();
        continue;
      }
      const paused = this.deps.recordPaused?.();
      if (paused) {
        await Promise.race([paused, this.waker.wait()]);
        continue;
      }
      const wait = Math.max(this.notBefore - Date.now(), dest.bucket.waitMs());
      if (wait > 0) {
        await this.waker.wait(wait);
        continue;
      }
      // Fold into a digest only when the backlog is larger than the tokens in hand: below the rate
      // every alert gets its own full message.
      const fold = dest.folds && this.queue.length > 1 && this.queue.length > dest.bucket.available();
      const candidates = fold ? this.queue.slice(0, 500) : this.queue.slice(0, 1);
      for (const j of candidates) this.inFlight.add(j);
      try {
        await this.attempt(candidates);
      } finally {
        this.inFlight.clear();
      }
    }
  }

  private async attempt(candidates: DeliveryJob[]): Promise<void> {
    const { dest, deps } = this;
    dest.bucket.take();
    const res = await dest.send(candidates);
    const sent = candidates.slice(0, Math.max(1, res.count));
    for (const j of candidates.slice(sent.length)) this.inFlight.delete(j);
    for (const j of sent) j.attempts++;
    deps.metrics.attempts.inc({
      destination: dest.id,
      result: res.ok ? 'ok' : res.retryable ? 'retry' : 'error',
    });
    deps.metrics.latency.observe({ destination: dest.id }, res.latencyMs / 1000);
    if (res.digestId) deps.metrics.digests.inc({ destination: dest.id });
    const row = (j: DeliveryJob, status: DeliveryRow['status']) =>
      deliveryRow(this.cfg.groupId, j, dest.kind, {
        status,
        attempt: j.attempts,
        http_status: res.httpStatus,
        latency_ms: res.latencyMs,
        error: res.error ?? '',
        digest_id: res.digestId ?? '',
      });
    if (res.ok) {
      deps.record(sent.map((j) => row(j, 'delivered')));
      deps.metrics.delivered.inc({ destination: dest.id }, sent.length);
      this.queue.splice(0, sent.length);
      this.notBefore = 0;
      this.hooks.finished(this, sent);
      return;
    }
    deps.record(sent.map((j) => row(j, 'failed')));
    // A job whose partition moved to another instance while it was in flight is that instance's
    // now: it loads the job from the outbox, so retrying it here too would only send it twice.
    const gone = sent.filter((j) => this.hooks.revoked(j));
    if (gone.length > 0) {
      this.remove(gone);
      this.hooks.dropped(this, gone);
    }
    const mine = sent.filter((j) => !gone.includes(j));
    const exhausted = mine.filter((j) => !res.retryable || j.attempts >= this.cfg.maxAttempts);
    const head = sent[0]!;
    deps.log.warn(
      {
        destination: dest.id,
        kind: dest.kind,
        jobs: sent.length,
        attempt: head.attempts,
        httpStatus: res.httpStatus,
        retryable: res.retryable,
        err: res.error,
      },
      'delivery attempt failed',
    );
    // Dead-letter in queue order; a job that could not be dead-lettered stays at the head.
    for (const j of exhausted) {
      if (this.stopping) return;
      if (!(await this.deadLetterOne(j, res))) break;
      this.remove([j]);
      this.hooks.finished(this, [j]);
    }
    this.notBefore =
      Date.now() +
      nextDelayMs(
        Math.max(1, head.attempts),
        { baseMs: this.cfg.backoffBaseMs, maxMs: this.cfg.backoffMaxMs, retryAfterMs: res.retryAfterMs },
        deps.random,
      );
  }

  private async deadLetterOne(job: DeliveryJob, last: SendOutcome): Promise<boolean> {
    const { deps, dest } = this;
    for (let i = 1; !this.stopping; i++) {
      try {
        await deps.deadLetter(job, last);
        deps.record([
          deliveryRow(this.cfg.groupId, job, dest.kind, {
            status: 'dead_lettered',
            attempt: job.attempts,
            http_status: last.httpStatus,
            error: last.error ?? '',
          }),
        ]);
        deps.metrics.deadLettered.inc({ destination: dest.id });
        deps.log.error(
          {
            destination: dest.id,
            kind: dest.kind,
            jobId: job.jobId,
            dedupKey: job.message.dedup_key,
            attempts: job.attempts,
            err: last.error,
          },
          'alert delivery dead-lettered after its retry budget',
        );
        return true;
      } catch (err) {
        deps.log.warn({ err, destination: dest.id, attempt: i }, 'dead-lettering failed; retrying');
        await this.waker.wait(Math.min(30_000, 200 * 2 ** Math.min(i, 8)));
      }
    }
    return false;
  }
}

/** Job ids finished here that are remembered (about 5 MB): longer than any final row stays buffered. */
const RECENT_JOBS = 50_000;
/** Rows read per outbox query at least (a page can hold jobs already in memory, which are skipped). */
const LOAD_PAGE = 200;

export interface AdmitResult {
  /** Now in memory. */
  queued: number;
  /** Left in the outbox: the destination is full or has older parked jobs to load first. */
  deferred: number;
  /** Already in memory or finished here. */
  known: number;
  /** Of a partition this instance no longer holds (its new owner loads them). */
  foreign: number;
  /** For a destination that is not configured. */
  unknown: DeliveryJob[];
}

/**
 * The destinations' queues, and which parked jobs are in them. Jobs belong to the partition they
 * were parked from: on assignment the engine loads the assigned partitions' parked jobs from the
 * outbox (in topic order, each destination up to its share of memory), on revocation it drops the
 * revoked partitions' jobs, which their new owner loads. A destination that is full defers its new
 * jobs to the outbox and reads them back, in order, as it catches up.
 */
export class DeliveryEngine {
  readonly #workers = new Map<string, DestinationWorker>();
  /** Jobs in the queues, by id: a job is held once, however often it is parked or offered. */
  readonly #held = new Map<string, DeliveryJob>();
  /** Jobs finished here lately: their final rows may still be buffered, so the outbox offers them. */
  readonly #recent = new Set<string>();
  /** Partitions this instance holds; undefined until the first assignment (then all jobs are ours). */
  #partitions: Set<number> | undefined;
  #epoch = 0;
  #started = false;
  #stopping = false;
  readonly #sleepers = new Set<() => void>();

  constructor(
    private readonly cfg: EngineConfig,
    private readonly deps: EngineDeps,
  ) {
    const n = Math.max(1, deps.destinations.size);
    const cap = Math.max(1, Math.floor(cfg.maxPending / n));
    const hooks: WorkerHooks = {
      finished: (w, jobs) => {
        for (const j of jobs) this.#held.delete(j.jobId);
        this.#remember(jobs);
        this.#gauge();
        this.#maybeLoad(w);
      },
      revoked: (j) => j.source !== undefined && !this.holds(j.source.partition),
      dropped: (w, jobs) => {
        for (const j of jobs) this.#held.delete(j.jobId);
        this.#gauge();
        this.#maybeLoad(w);
      },
    };
    for (const d of deps.destinations.values())
      this.#workers.set(d.id, new DestinationWorker(d, cap, cfg, deps, hooks));
  }

  #remember(jobs: ReadonlyArray<{ jobId: string }>): void {
    for (const j of jobs) this.#recent.add(j.jobId);
    for (const id of this.#recent) {
      if (this.#recent.size <= RECENT_JOBS) break;
      this.#recent.delete(id);
    }
  }

  #gauge(): void {
    this.deps.metrics.pending.set(this.#held.size);
  }

  /** Jobs held in memory (queued or in flight). */
  get pending(): number {
    return this.#held.size;
  }

  /** Whether jobs of this partition are ours (true for every partition before the first assignment). */
  holds(partition: number): boolean {
    return this.#partitions === undefined || this.#partitions.has(partition);
  }

  #push(w: DestinationWorker, j: DeliveryJob): void {
    w.queue.push(j);
    this.#held.set(j.jobId, j);
  }

  /**
   * Jobs in hand, appended to their destinations' queues whatever their size (tests, and jobs
   * without an outbox position). Returns the jobs of unknown destinations.
   */
  enqueue(jobs: readonly DeliveryJob[]): DeliveryJob[] {
    const unknown: DeliveryJob[] = [];
    for (const j of jobs) {
      const w = this.#workers.get(j.destinationId);
      if (!w) unknown.push(j);
      else if (!this.#held.has(j.jobId)) {
        this.#push(w, j);
        w.waker.wake();
      }
    }
    this.#gauge();
    return unknown;
  }

  /**
   * Parked jobs (already durable), in topic order: each goes to its destination's queue if the
   * destination has room and nothing older of that partition is still only in the outbox;
   * otherwise it stays parked and the destination reads it back in order when it has room.
   */
  admit(jobs: readonly DeliveryJob[]): AdmitResult {
    const r: AdmitResult = { queued: 0, deferred: 0, known: 0, foreign: 0, unknown: [] };
    for (const j of jobs) {
      const w = this.#workers.get(j.destinationId);
      if (!w) {
        r.unknown.push(j);
        continue;
      }
      if (this.#held.has(j.jobId) || this.#recent.has(j.jobId)) {
        r.known++;
        continue;
      }
      const src = j.source;
      if (src) {
        if (!this.holds(src.partition)) {
          r.foreign++;
          continue;
        }
        if (w.backlog.has(src.partition)) {
          if (w.loading) w.dirty.add(src.partition);
          r.deferred++;
          continue;
        }
        if (w.queue.length >= w.cap && this.deps.outbox) {
          w.backlog.set(src.partition, { offset: BigInt(src.offset), seq: src.seq, epoch: this.#epoch });
          r.deferred++;
          continue;
        }
      }
      this.#push(w, j);
      w.waker.wake();
      r.queued++;
    }
    this.#gauge();
    return r;
  }

  /**
   * The partitions this instance holds now (kafkajs GROUP_JOIN). Jobs of partitions no longer held
   * are dropped from memory (except a request in flight); newly held partitions' parked jobs are
   * loaded from the outbox.
   */
  assign(partitions: readonly number[]): { assigned: number[]; revoked: number[] } {
    const next = new Set(partitions);
    const prev = this.#partitions ?? new Set<number>();
    const revoked = [...prev].filter((p) => !next.has(p)).sort((a, b) => a - b);
    const assigned = [...next].filter((p) => !prev.has(p)).sort((a, b) => a - b);
    this.#partitions = next;
    this.#epoch++;
    for (const w of this.#workers.values()) {
      const drop = w.queue.filter(
        (j) => !w.inFlight.has(j) && j.source !== undefined && !next.has(j.source.partition),
      );
      if (drop.length > 0) {
        w.remove(drop);
        for (const j of drop) this.#held.delete(j.jobId);
      }
      for (const p of revoked) {
        w.backlog.delete(p);
        w.dirty.delete(p);
      }
      if (this.deps.outbox)
        for (const p of assigned) w.backlog.set(p, { offset: 0n, seq: 0, epoch: this.#epoch });
    }
    this.#gauge();
    if (this.#started) for (const w of this.#workers.values()) this.#maybeLoad(w);
    if (assigned.length > 0) void this.#reportOrphans(assigned);
    return { assigned, revoked };
  }

  /** The consumer left the group (crash, stop, lost membership): no partition is ours. */
  revokeAll(): { revoked: number[] } {
    const { revoked } = this.assign([]);
    return { revoked };
  }

  #maybeLoad(w: DestinationWorker): void {
    if (!this.deps.outbox || !this.#started || this.#stopping || w.loading || w.backlog.size === 0) return;
    // Read in chunks: when the queue is down to half its share, or empty.
    if (w.queue.length > Math.floor(w.cap / 2)) return;
    w.loading = this.#load(w)
      .catch((err: unknown) => this.deps.log.error({ err, destination: w.dest.id }, 'parked job load failed'))
      .finally(() => {
        w.loading = undefined;
        this.#maybeLoad(w);
      });
  }

  async #load(w: DestinationWorker): Promise<void> {
    const outbox = this.deps.outbox!;
    const log = this.deps.log;
    for (;;) {
      const room = w.cap - w.queue.length;
      if (this.#stopping || w.backlog.size === 0 || room <= 0) return;
      const from = [...w.backlog].map(([partition, b]) => ({ partition, ...b }));
      const limit = Math.max(room, LOAD_PAGE);
      w.dirty.clear();
      let jobs: PendingJob[];
      try {
        jobs = await outbox.pending({
          groupId: this.cfg.groupId,
          topic: this.cfg.topic,
          destinationId: w.dest.id,
          from,
          limit,
          ...(this.cfg.outboxDays ? { days: this.cfg.outboxDays } : {}),
        });
        w.loadFailures = 0;
      } catch (err) {
        w.loadFailures++;
        log.warn(
          { err, destination: w.dest.id, attempt: w.loadFailures },
          'loading parked jobs failed (ClickHouse unavailable?); retrying',
        );
        await this.#sleep(Math.min(5_000, 200 * 2 ** Math.min(w.loadFailures, 5)));
        continue;
      }
      if (this.#stopping) return;
      let queued = 0;
      // The partition where this read stopped before its end; partitions before it were read whole.
      let stoppedAt: number | undefined;
      let unreadableFailed = false;
      for (const j of jobs) {
        const src = j.source!;
        const b = w.backlog.get(src.partition);
        if (!b || b.epoch !== from.find((f) => f.partition === src.partition)?.epoch) continue;
        if (!this.#held.has(j.jobId) && !this.#recent.has(j.jobId)) {
          if (isUnreadable(j)) {
            // Not retried: it would fail the same way forever. Its cursor stays on it until it is
            // in the dead-letter topic.
            if (!(await this.#deadLetterUnreadable(w, j))) {
              stoppedAt = src.partition;
              unreadableFailed = true;
              break;
            }
            if (this.#stopping) return;
            // Reassigned while dead-lettering: this read's cursor for the partition is stale.
            if (w.backlog.get(src.partition) !== b) continue;
          } else {
            if (queued >= room) {
              stoppedAt = src.partition;
              break;
            }
            this.#push(w, j);
            queued++;
          }
        }
        b.offset = BigInt(src.offset);
        b.seq = src.seq + 1;
      }
      if (!unreadableFailed && stoppedAt === undefined && jobs.length === limit)
        stoppedAt = jobs[jobs.length - 1]!.source!.partition;
      for (const f of from) {
        const b = w.backlog.get(f.partition);
        if (!b || b.epoch !== f.epoch || w.dirty.has(f.partition)) continue;
        if (stoppedAt === undefined || f.partition < stoppedAt) w.backlog.delete(f.partition);
      }
      if (queued > 0) {
        this.#gauge();
        w.waker.wake();
        log.debug(
          { destination: w.dest.id, loaded: queued, queued: w.queue.length, backlog: [...w.backlog.keys()] },
          'parked jobs loaded from the outbox',
        );
      }
      if (unreadableFailed) {
        w.loadFailures++;
        await this.#sleep(Math.min(5_000, 200 * 2 ** Math.min(w.loadFailures, 5)));
      }
    }
  }

  async #deadLetterUnreadable(w: DestinationWorker, j: UnreadableJob): Promise<boolean> {
    const { deps } = this;
    const ctx = {
      destination: w.dest.id,
      jobId: j.jobId,
      dedupKey: j.dedupKey,
      partition: j.source.partition,
      offset: j.source.offset,
      reason: j.reason,
    };
    try {
      await deps.deadLetterUnreadable(j);
    } catch (err) {
      deps.log.warn({ ...ctx, err }, 'dead-lettering an unreadable parked job failed; retrying');
      return false;
    }
    const now = new Date();
    deps.record([
      {
        at: now.toISOString().slice(0, 19).replace('T', ' '),
        at_ms: now.getUTCMilliseconds(),
        group_id: this.cfg.groupId,
        job_id: j.jobId,
        message_id: j.messageId,
        alert_id: '',
        dedup_key: j.dedupKey,
        action: 'unknown',
        destination_id: j.destinationId,
        destination_kind: w.dest.kind,
        attempt: 0,
        status: 'dead_lettered',
        final: 1,
        http_status: 0,
        latency_ms: 0,
        error: `unreadable parked message: ${j.reason}`.slice(0, 500),
        digest_id: '',
      },
    ]);
    this.#remember([j]);
    deps.metrics.unreadable.inc({ destination: w.dest.id });
    deps.log.error(ctx, 'parked job no longer parses: dead-lettered, not delivered');
    return true;
  }

  async #reportOrphans(partitions: number[]): Promise<void> {
    if (!this.deps.outbox) return;
    try {
      const rows = await this.deps.outbox.orphans({
        groupId: this.cfg.groupId,
        topic: this.cfg.topic,
        partitions,
        known: [...this.#workers.keys()],
        ...(this.cfg.outboxDays ? { days: this.cfg.outboxDays } : {}),
      });
      for (const r of rows)
        this.deps.log.error(
          { destination: r.destination_id, jobs: r.jobs, partitions },
          'parked jobs for a destination no longer configured',
        );
    } catch (err) {
      this.deps.log.warn({ err }, 'could not check the outbox for unconfigured destinations');
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#sleepers.add(done);
    });
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const w of this.#workers.values()) {
      w.loop = w.run();
      this.#maybeLoad(w);
    }
  }

  /** Finishes the request in flight; queued jobs stay parked for whoever holds their partition next. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const w of this.#workers.values()) {
      w.stopping = true;
      w.waker.wake();
    }
    for (const wake of [...this.#sleepers]) wake();
    // A load in flight is not awaited: it discards what it reads once stopping.
    await Promise.all([...this.#workers.values()].map((w) => w.loop));
  }

  health(): { ok: boolean; details: Record<string, unknown> } {
    const queues: Record<string, number> = {};
    const parkedOnly: Record<string, number[]> = {};
    for (const [id, w] of this.#workers) {
      queues[id] = w.queue.length;
      if (w.backlog.size > 0) parkedOnly[id] = [...w.backlog.keys()];
    }
    return {
      ok: this.#started && !this.#stopping,
      details: {
        pending: this.#held.size,
        queues,
        partitions: this.#partitions ? [...this.#partitions] : 'all',
        loadingPartitions: parkedOnly,
      },
    };
  }
}
