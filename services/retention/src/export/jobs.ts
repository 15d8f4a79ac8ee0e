import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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

const STATUSES = new Set(['queued', 'running', 'done', 'failed']);
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Job status files, `<dir>/jobs/<job_id>.json`, rewritten (temp file + rename) at each change of
 * status. At start, jobs found queued or running were lost with the previous process: they are
 * reported failed (and their partial bundle removed), never unknown; finished jobs stay listed.
 */
function jobStore(dir: string) {
  const jobsDir = join(dir, 'jobs');
  return {
    save(job: ExportJob) {
      mkdirSync(jobsDir, { recursive: true });
      const tmp = join(jobsDir, `.${job.job_id}.tmp`);
      writeFileSync(tmp, `${JSON.stringify(job)}\n`);
      renameSync(tmp, join(jobsDir, `${job.job_id}.json`));
    },
    load(): ExportJob[] {
      if (!existsSync(jobsDir)) return [];
      const out: ExportJob[] = [];
      for (const f of readdirSync(jobsDir)) {
        const id = f.replace(/\.json$/, '');
        if (!JOB_ID.test(id) || !f.endsWith('.json')) continue;
        try {
          const job = JSON.parse(readFileSync(join(jobsDir, f), 'utf8')) as ExportJob;
          if (job.job_id === id && STATUSES.has(job.status)) out.push(job);
        } catch {
          // A torn or foreign file: not a job this store wrote (writes are atomic renames).
        }
      }
      return out.sort((a, b) => (a.created_at < b.created_at ? -1 : 1));
    },
  };
}

/**
 * Export jobs of one process, one running at a time, each writing its bundle to `<dir>/<job_id>/`.
 * Status is persisted (jobStore): after a restart, finished jobs are still listed and downloadable,
 * and a job the restart interrupted is `failed` ("lost"), not unknown. Progress is in memory only.
 */
export function createExportJobs(deps: Omit<ExportDeps, 'onProgress' | 'signal'>, dir: string): ExportJobs {
  const jobs = new Map<string, ExportJob>();
  const store = jobStore(dir);
  for (const job of store.load()) {
    if (job.status === 'queued' || job.status === 'running') {
      job.status = 'failed';
      job.error = 'lost: the api stopped or restarted before this export finished; start it again';
      job.finished_at = new Date().toISOString();
      rmSync(join(dir, job.job_id), { recursive: true, force: true });
      store.save(job);
    } else if (job.status === 'done' && !existsSync(join(dir, job.job_id, 'manifest.json'))) {
      job.status = 'failed';
      job.error = 'the finished bundle is no longer on disk';
      store.save(job);
    }
    jobs.set(job.job_id, job);
  }
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
      store.save(job);
      chain = chain.then(async () => {
        job.status = 'running';
        try {
          store.save(job);
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
        try {
          store.save(job);
        } catch (err) {
          job.error = `${job.error ?? ''} (status not persisted: ${(err as Error).message})`.trim();
        }
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
