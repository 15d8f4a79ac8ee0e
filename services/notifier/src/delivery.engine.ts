import type { Logger } from '@mcp-audit/observability';
import { nextDelayMs } from './backoff.js';
import type { DeliveryJob, Destination, DestinationKind, SendOutcome } from './destinations.js';
import type { NotifierMetrics } from './metrics.js';

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
  return m.type === 'alert' ? 'trigger' : m.status === 'resolved' ? 'resolve' : 'acknowledge';
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
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  maxPending: number;
}

export interface EngineDeps {
  destinations: Map<string, Destination>;
  /** Appends attempt rows (buffered by the caller). */
  record: (rows: DeliveryRow[]) => void;
  /** Keeps a job that exhausted its budget in the dead-letter topic; must throw if it could not. */
  deadLetter: (job: DeliveryJob, last: SendOutcome) => Promise<void>;
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

/**
 * One FIFO queue and one sender loop per destination, so a destination that is down or slow holds
 * back only its own queue, and a dedup key's messages reach each destination in topic order (a
 * later message never overtakes an earlier one that is waiting for a retry).
 */
class DestinationWorker {
  readonly queue: DeliveryJob[] = [];
  readonly waker = new Waker();
  notBefore = 0;
  stopping = false;
  loop: Promise<void> | undefined;
  constructor(
    readonly dest: Destination,
    private readonly cfg: EngineConfig,
    private readonly deps: EngineDeps,
    private readonly onDone: (n: number) => void,
  ) {}

  async run(): Promise<void> {
    const { dest, deps } = this;
    while (!this.stopping) {
      if (this.queue.length === 0) {
        await this.waker.wait();
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
      dest.bucket.take();
      const res = await dest.send(candidates);
      const sent = candidates.slice(0, Math.max(1, res.count));
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
        this.onDone(sent.length);
        this.notBefore = 0;
        continue;
      }
      deps.record(sent.map((j) => row(j, 'failed')));
      const exhausted = sent.filter((j) => !res.retryable || j.attempts >= this.cfg.maxAttempts);
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
        this.queue.splice(this.queue.indexOf(j), 1);
        this.onDone(1);
      }
      this.notBefore =
        Date.now() +
        nextDelayMs(
          Math.max(1, head.attempts),
          { baseMs: this.cfg.backoffBaseMs, maxMs: this.cfg.backoffMaxMs, retryAfterMs: res.retryAfterMs },
          deps.random,
        );
    }
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

export class DeliveryEngine {
  readonly #workers = new Map<string, DestinationWorker>();
  #pending = 0;
  #capacityWaiters: Array<() => void> = [];
  #started = false;

  constructor(
    private readonly cfg: EngineConfig,
    private readonly deps: EngineDeps,
  ) {
    for (const d of deps.destinations.values())
      this.#workers.set(d.id, new DestinationWorker(d, cfg, deps, (n) => this.#done(n)));
  }

  #done(n: number): void {
    this.#pending -= n;
    this.deps.metrics.pending.set(this.#pending);
    if (this.#pending < this.cfg.maxPending) {
      const w = this.#capacityWaiters;
      this.#capacityWaiters = [];
      for (const r of w) r();
    }
  }

  get pending(): number {
    return this.#pending;
  }

  /** Jobs must already be durable (parked); they are appended in order to their destination's queue. */
  enqueue(jobs: readonly DeliveryJob[]): DeliveryJob[] {
    const unknown: DeliveryJob[] = [];
    for (const j of jobs) {
      const w = this.#workers.get(j.destinationId);
      if (!w) {
        unknown.push(j);
        continue;
      }
      w.queue.push(j);
      this.#pending++;
      w.waker.wake();
    }
    this.deps.metrics.pending.set(this.#pending);
    return unknown;
  }

  /** Resolves when fewer than maxPending jobs are held (backpressure for the consumer). */
  async waitForCapacity(): Promise<void> {
    if (this.#pending < this.cfg.maxPending) return;
    await new Promise<void>((r) => this.#capacityWaiters.push(r));
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const w of this.#workers.values()) w.loop = w.run();
  }

  /** Finishes the request in flight; queued jobs stay parked for the next start. */
  async stop(): Promise<void> {
    for (const w of this.#workers.values()) {
      w.stopping = true;
      w.waker.wake();
    }
    await Promise.all([...this.#workers.values()].map((w) => w.loop));
    for (const r of this.#capacityWaiters) r();
  }

  health(): { ok: boolean; details: Record<string, unknown> } {
    const queues: Record<string, number> = {};
    for (const [id, w] of this.#workers) queues[id] = w.queue.length;
    return { ok: this.#started, details: { pending: this.#pending, queues } };
  }
}
