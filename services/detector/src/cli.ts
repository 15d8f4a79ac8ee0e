#!/usr/bin/env node
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createClickHouse } from '@mcp-audit/clickhouse';
import { createKafka, createProducer, kafkaConfigFromEnv } from '@mcp-audit/kafka';
import { createLogger, parseConfig } from '@mcp-audit/service-kit';
import { z } from 'zod';
import { liveSink, type AlertSink } from './alert.lifecycle.js';
import { DETECTOR_TABLES } from './app.js';
import { createBaselineJob } from './baselines.job.js';
import { detectorEnvSchema } from './config.js';
import { loadDetectorConfig } from './config.js';
import { runReplay } from './replay.js';
import { readInventory } from './tool-inventory.js';

const USAGE = `usage: mcp-audit-detector <command> [options]

  baselines --as-of <iso>            compute (idempotently) the baseline version as of <iso> (floored to the hour)
  baselines --from <iso> --to <iso>  compute the daily versions (00:00 UTC) in the range (backfill)
  replay --from <iso> --to <iso>     re-run streaming + periodic detection over stored events
      [--out <file.jsonl>]           alert messages as JSON lines (default: stdout)
      [--write]                      also append to mcp_audit.alerts/alert_transitions and publish
                                     on the alerts topic (origin 'replay'); off by default
      [--no-periodic]                streaming detectors only
      [--client <id>]...             only these clients (streaming part)
  tools [--from <iso>] [--to <iso>]  the tool inventory: per server and tool name, the annotations its
                                     listings carried and its class (configured overrides applied),
                                     one JSON line each (default: the last 30 days)
  common: [--config <file.json>]     detector tuning (default: MCP_AUDIT_DETECTOR_CONFIG)

Credentials come from the environment (MCP_AUDIT_CLICKHOUSE_*, MCP_AUDIT_KAFKA_*); when unset, from
.local/secrets.env of the current directory.`;

function fail(msg: string): never {
  process.stderr.write(`${msg}\n\n${USAGE}\n`);
  process.exit(2);
}

function isoArg(name: string, v: string | undefined): number {
  if (!v) fail(`--${name} is required`);
  const t = Date.parse(v);
  if (!Number.isFinite(t)) fail(`--${name} must be an ISO-8601 time, got "${v}"`);
  return t;
}

function env(): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...process.env };
  if (!out.MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD && existsSync('.local/secrets.env')) {
    for (const line of readFileSync('.local/secrets.env', 'utf8').split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m && out[m[1]!] === undefined) out[m[1]!] = m[2]!;
    }
  }
  return out;
}

/** A progress bar on stderr (only when it is a terminal; otherwise a line every 10%). */
function progress(label: string) {
  const tty = process.stderr.isTTY;
  let lastPct = -1;
  return (done: number, total: number, extra = '') => {
    const pct = total === 0 ? 100 : Math.floor((done / total) * 100);
    if (tty) {
      const width = 30;
      const fill = Math.round((pct / 100) * width);
      process.stderr.write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct}% ${extra}   `);
      if (done >= total) process.stderr.write('\n');
    } else if (Math.floor(pct / 10) !== Math.floor(lastPct / 10) || done >= total) {
      process.stderr.write(`${label} ${pct}% ${extra}\n`);
    }
    lastPct = pct;
  };
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    'as-of': { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    out: { type: 'string' },
    write: { type: 'boolean', default: false },
    'no-periodic': { type: 'boolean', default: false },
    client: { type: 'string', multiple: true },
    config: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
const command = positionals[0];
if (values.help || !command) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(command || values.help ? 0 : 2);
}
if (command !== 'baselines' && command !== 'replay' && command !== 'tools')
  fail(`unknown command "${command}"`);

const e = parseConfig(detectorEnvSchema.extend({ MCP_AUDIT_LOG_LEVEL: z.string().default('warn') }), env());
const log = createLogger('detector-cli', { level: e.MCP_AUDIT_LOG_LEVEL });
const config = loadDetectorConfig(values.config ?? e.MCP_AUDIT_DETECTOR_CONFIG);
const common = {
  url: e.MCP_AUDIT_CLICKHOUSE_URL,
  database: e.MCP_AUDIT_CLICKHOUSE_DATABASE,
  application: 'mcp-audit-detector-cli',
};
const writer = createClickHouse({
  ...common,
  username: e.MCP_AUDIT_CLICKHOUSE_WRITER_USER,
  password: e.MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD,
  insertTables: DETECTOR_TABLES,
  requestTimeoutMs: 300_000,
});
const reader = createClickHouse({
  ...common,
  username: e.MCP_AUDIT_CLICKHOUSE_ANALYST_USER,
  password: e.MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD,
  insertTables: [],
  requestTimeoutMs: 300_000,
});

try {
  if (command === 'baselines') {
    const job = createBaselineJob({ reader, writer, config, log });
    if (values['as-of']) {
      const r = await job.computeAsOf(isoArg('as-of', values['as-of']));
      process.stdout.write(`${JSON.stringify({ ...r, asOf: new Date(r.asOf).toISOString() })}\n`);
    } else {
      const from = isoArg('from', values.from);
      const to = isoArg('to', values.to);
      if (to < from) fail('--to must not be before --from');
      const bar = progress('baselines');
      const rs = await job.computeRange(from, to, (d, t) => bar(d, t, `${d}/${t} days`));
      for (const r of rs)
        process.stdout.write(`${JSON.stringify({ ...r, asOf: new Date(r.asOf).toISOString() })}\n`);
    }
  } else if (command === 'tools') {
    const to = values.to ? isoArg('to', values.to) : Date.now();
    const from = values.from ? isoArg('from', values.from) : to - 30 * 86_400_000;
    if (to <= from) fail('--to must be after --from');
    for (const entry of await readInventory(reader, config.periodic.toolClasses, { from, to }))
      process.stdout.write(`${JSON.stringify(entry)}\n`);
  } else {
    const from = isoArg('from', values.from);
    const to = isoArg('to', values.to);
    if (to <= from) fail('--to must be after --from');
    const out = values.out ? createWriteStream(values.out) : process.stdout;
    const fileSink: AlertSink = {
      async write(o) {
        for (const m of o.messages) out.write(`${JSON.stringify(m)}\n`);
      },
    };
    let sink = fileSink;
    let disconnect = async () => {};
    if (values.write) {
      const producer = createProducer(createKafka(kafkaConfigFromEnv(e, 'mcp-audit-detector-replay'), log));
      await producer.connect();
      const live = liveSink({ writer, producer, topic: e.MCP_AUDIT_ALERTS_TOPIC });
      sink = { write: async (o) => void (await Promise.all([fileSink.write(o), live.write(o)])) };
      disconnect = () => producer.disconnect();
    }
    const bar = progress('replay');
    const r = await runReplay({
      reader,
      config,
      log,
      from,
      to,
      sink,
      periodic: !values['no-periodic'],
      ...(values.client ? { clientIds: values.client } : {}),
      onProgress: (p) => bar(p.done, p.total, `${p.events} events, ${p.messages} alert messages`),
    });
    await disconnect();
    if (out !== process.stdout)
      await new Promise<void>((res) => (out as ReturnType<typeof createWriteStream>).end(res));
    process.stderr.write(`${JSON.stringify(r)}\n`);
  }
} catch (err) {
  process.stderr.write(`${command} failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await Promise.all([writer.close(), reader.close()]);
}
