import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  exportBundle,
  type ExportDeps,
  type ExportProgress,
  type ExportSpec,
  type Manifest,
} from './bundle.js';

export interface ExportJob {
  job_id: string;
  status: 'queued' | 'running' | 'done' | 'failed';
  spec: Omit<ExportSpec, 'fromMs' | 'toMs'> & { from: string; to: string };
  created_at: string;
  finished_at?: string;
  progress: ExportProgress;
  error?: string;
  /** When done: the manifest's totals. */
  rows?: number;
  files?: number;
  complete_hours?: number;
}

export interface ExportJobs {
  start(spec: ExportSpec): ExportJob;
  get(jobId: string): ExportJob | undefined;
  /** The bundle directory of a finished job. */
  dirOf(jobId: string): string | undefined;
  list(): ExportJob[];
  stop(): Promise<void>;
}

/**
 * Export jobs of one process, one running at a time (an export is one ClickHouse query per hour),
 * each writing its bundle to `<dir>/<job_id>/`. Jobs live in memory: a restart forgets them (the
 * bundles stay on disk).
 */
export function createExportJobs(deps: Omit<ExportDeps, 'onProgress' | 'signal'>, dir: string): ExportJobs {
  const jobs = new Map<string, ExportJob>();
  const abort = new AbortController();
  let chain: Promise<unknown> = Promise.resolve();
  return {
    start(spec) {
      const job: ExportJob = {
        job_id: randomUUID(),
        status: 'queued',
        spec: {
          format: spec.format,
          filters: spec.filters,
          actor: spec.actor,
          from: new Date(spec.fromMs).toISOString(),
          to: new Date(spec.toMs).toISOString(),
        },
        created_at: new Date().toISOString(),
        progress: { rows: 0, bytes: 0, hoursDone: 0, hoursTotal: 0 },
      };
      jobs.set(job.job_id, job);
      chain = chain.then(async () => {
        job.status = 'running';
        try {
          mkdirSync(dir, { recursive: true });
          const m: Manifest = await exportBundle(
            { ...deps, signal: abort.signal, onProgress: (p) => (job.progress = p) },
            spec,
            join(dir, job.job_id),
          );
          job.status = 'done';
          job.rows = m.rows;
          job.files = m.files.length;
          job.complete_hours = m.complete_hours.length;
        } catch (err) {
          job.status = 'failed';
          job.error = (err as Error).message;
        }
        job.finished_at = new Date().toISOString();
      });
      return job;
    },
    get: (id) => jobs.get(id),
    dirOf: (id) => (jobs.get(id)?.status === 'done' ? join(dir, id) : undefined),
    list: () => [...jobs.values()],
    async stop() {
      abort.abort();
      await chain;
    },
  };
}
