import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createClickHouse } from '@mcp-audit/clickhouse';
import { createLogger } from '@mcp-audit/service-kit';
import { createBaselineJob, type BaselineRunResult } from './baselines.job.js';
import type { DetectorConfig } from './config.js';

/**
 * The baseline job in a worker thread (issue 15): a run for 10,000 clients computes for ~30 s and
 * allocates ~1 GB over its course (per-chunk JSON and histories, 10,000 baselines kept for the
 * aggregates; a live set under 400 MB). In the detector's own thread that blocked the event loop for
 * seconds at a time (alerts waited) and left the heap at ~1.1 GB afterwards. In a worker, the stream
 * keeps its thread, the heap is capped (`resourceLimits`, `baseline.workerHeapMb`) and all of it is
 * given back when the worker exits.
 */
export interface BaselineWorkerOptions {
  url: string;
  database: string;
  writer: { username: string; password: string };
  reader: { username: string; password: string };
  /** The writer's insert allowlist (DETECTOR_TABLES). */
  insertTables: readonly string[];
  logLevel: string;
}

interface Job {
  kind: 'mcp-audit-baselines';
  asOf: number;
  opts: BaselineWorkerOptions;
  config: DetectorConfig;
}

type Reply = { ok: true; result: BaselineRunResult } | { ok: false; error: string };

/** A function that computes one version in a fresh worker (one at a time: the job never overlaps). */
export function baselinesInWorker(
  opts: BaselineWorkerOptions,
  config: DetectorConfig,
  heapMb: number,
): (asOf: number) => Promise<BaselineRunResult> {
  return (asOf) =>
    new Promise((resolve, reject) => {
      const data: Job = { kind: 'mcp-audit-baselines', asOf, opts, config };
      const worker = new Worker(new URL(import.meta.url), {
        workerData: data,
        resourceLimits: { maxOldGenerationSizeMb: heapMb },
      });
      let reply: Reply | undefined;
      worker.once('message', (m: Reply) => (reply = m));
      worker.once('error', (err) => (reply ??= { ok: false, error: err.message }));
      worker.once('exit', (code) => {
        if (reply?.ok) resolve(reply.result);
        else
          reject(
            new Error(
              reply?.error ??
                `baseline worker exited with code ${code} (heap limit ${heapMb} MB: baseline.workerHeapMb)`,
            ),
          );
      });
    });
}

async function runJob(job: Job): Promise<BaselineRunResult> {
  const { opts } = job;
  const log = createLogger('detector-baselines', { level: opts.logLevel });
  const common = { url: opts.url, database: opts.database, application: 'mcp-audit-detector-baselines' };
  const writer = createClickHouse({
    ...common,
    ...opts.writer,
    insertTables: opts.insertTables,
    requestTimeoutMs: 300_000,
  });
  const reader = createClickHouse({ ...common, ...opts.reader, insertTables: [], requestTimeoutMs: 300_000 });
  try {
    return await createBaselineJob({ reader, writer, config: job.config, log }).computeAsOf(job.asOf);
  } finally {
    await Promise.all([writer.close(), reader.close()]);
  }
}

const job = workerData as Job | undefined;
if (!isMainThread && job?.kind === 'mcp-audit-baselines') {
  runJob(job).then(
    (result) => parentPort?.postMessage({ ok: true, result } satisfies Reply),
    (err: unknown) => parentPort?.postMessage({ ok: false, error: (err as Error).message } satisfies Reply),
  );
}
