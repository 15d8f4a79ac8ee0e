/**
 * node test/dist/bench/periodic.bench.js — the periodic detectors' `runRange` (what `cli replay` runs
 * after the streaming part) over a stored range of a scenario database, with every detector at its
 * default configuration. Prints the wall time, windows and findings per detector; asserts nothing
 * about speed (shared, noisy machine).
 *
 *   BENCH_DB        database holding `events` (default scn_scnsmall3, from `npm run scenario:run`)
 *   BENCH_FROM      range start, ISO (default 2026-11-14T00:00:00Z, that run's evaluation start)
 *   BENCH_HOURS     range length in hours (default 24)
 *   PERIODIC_MODULE the periodic module to time (default this checkout's compiled one), e.g. an
 *                   older build, for a before/after comparison on the same data
 *   BENCH_LIST_FINDINGS  1: print every raised key and window end after the figures; full: every
 *                   finding as JSON (diff two modules' outputs)
 */
import { pathToFileURL } from 'node:url';
import { createClickHouse } from '@mcp-audit/clickhouse';
import { createLogger } from '@mcp-audit/service-kit';
import type * as Periodic from '../../services/detector/src/periodic/index.js';
import { need, REPO_ROOT, stackEnv } from '../lib/index.js';

const env = { ...stackEnv(), ...process.env } as Record<string, string>;
const DB = process.env.BENCH_DB ?? 'scn_scnsmall3';
const FROM = Date.parse(process.env.BENCH_FROM ?? '2026-11-14T00:00:00Z');
const HOURS = Number(process.env.BENCH_HOURS ?? 24);
const MODULE = process.env.PERIODIC_MODULE ?? `${REPO_ROOT}services/detector/dist/src/periodic/index.js`;

const mod = (await import(pathToFileURL(MODULE).href)) as typeof Periodic;
const ch = createClickHouse({
  url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
  username: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER'),
  password: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
  database: DB,
  requestTimeoutMs: 600_000,
});
const log = createLogger('periodic-bench', { level: 'silent' });
const config = mod.PeriodicConfig.parse({});
const to = FROM + HOURS * 3_600_000;
const perDetector = new Map<string, { windows: number; findings: number }>();
const raised: string[] = [];
const runner = mod.createPeriodicRunner({
  detectors: mod.createPeriodicDetectors({ ch, config, log }),
  lifecycle: {
    async raise(f) {
      raised.push(
        process.env.BENCH_LIST_FINDINGS === 'full'
          ? JSON.stringify(f)
          : `${f.dedupKey}@${new Date(f.windowEnd).toISOString()}`,
      );
      const s = perDetector.get(f.detector) ?? { windows: 0, findings: 0 };
      s.findings += 1;
      perDetector.set(f.detector, s);
    },
    async resolve() {},
  },
  watermark: async () => to,
  lateMs: 0,
  log,
});
const started = process.hrtime.bigint();
const r = await runner.runRange(FROM, to, {
  onProgress: (_done, _total, slot) => {
    const s = perDetector.get(slot.detector) ?? { windows: 0, findings: 0 };
    s.windows += 1;
    perDetector.set(slot.detector, s);
  },
});
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(
  JSON.stringify({
    module: MODULE.replace(REPO_ROOT, ''),
    db: DB,
    from: new Date(FROM).toISOString(),
    hours: HOURS,
    seconds: Math.round(seconds * 10) / 10,
    ...r,
    perDetector: Object.fromEntries(perDetector),
  }),
);
if (process.env.BENCH_LIST_FINDINGS) for (const k of raised) console.log(k);
await ch.close();
