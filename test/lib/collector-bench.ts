import { CompressionTypes, type Kafka } from 'kafkajs';
import { eventKeyFor } from '@mcp-audit/schema';
import { ingesterEnv } from './pipeline.js';
import { portAnswering, startService } from './proc.js';
import { waitFor } from './env.js';
import { writeTokensFile } from './collector.js';

export interface CollectorBenchResult {
  collector: number;
  reference: number;
}

/**
 * The collector's events/s (HTTP in, NDJSON batches, `concurrency` requests in flight, acknowledged
 * once Kafka has them) next to a bare kafkajs producer sending the same events, as the same JSON
 * bytes under the same keys, in the same batches with the same concurrency and the producer
 * settings packages/kafka uses (idempotent, one request in flight, acks=-1, gzip): what the
 * collector's own work (HTTP, parsing, validation, redaction) costs on top of Kafka. Alternating
 * `rounds` times (collector, then reference), so a change in the machine's load hits both alike;
 * each figure is the total of its rounds.
 */
export async function collectorVsProducer(opts: {
  kafka: Kafka;
  topics: { events: string; dlq: string };
  events: Array<Record<string, unknown>>;
  sourceId: string;
  tag: string;
  batch?: number;
  concurrency?: number;
  rounds?: number;
  /** Node flags for the collector process (e.g. --cpu-prof --cpu-prof-dir=…). */
  nodeArgs?: string[] | undefined;
}): Promise<CollectorBenchResult> {
  const batch = opts.batch ?? 1_000;
  const concurrency = opts.concurrency ?? 4;
  const rounds = Math.max(1, opts.rounds ?? 1);
  const { file, tokens } = writeTokensFile([{ sourceId: opts.sourceId, scopes: ['ingest'] }]);
  const col = startService(
    'collector',
    {
      ...ingesterEnv(opts.topics, 'unused'),
      MCP_AUDIT_COLLECTOR_PORT: '0',
      MCP_AUDIT_COLLECTOR_TOKENS_FILE: file,
      MCP_AUDIT_COLLECTOR_RATE_LIMIT_PER_MINUTE: '100000',
      MCP_AUDIT_LOG_LEVEL: 'warn',
    },
    opts.tag,
    opts.nodeArgs,
  );
  const producer = opts.kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
  try {
    const port = await portAnswering(col.child.pid!, '/health');
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok, {
      timeoutMs: 60_000,
      what: 'collector health',
    });
    await producer.connect();
    const lines = opts.events.map((e) => JSON.stringify(e));
    const keys = opts.events.map((e) => eventKeyFor(String((e.client as { id?: string } | undefined)?.id)));
    const bodies: string[] = [];
    const batches: Array<Array<{ key: string; value: string }>> = [];
    for (let i = 0; i < lines.length; i += batch) {
      bodies.push(lines.slice(i, i + batch).join('\n'));
      batches.push(lines.slice(i, i + batch).map((value, j) => ({ key: keys[i + j]!, value })));
    }
    /** `concurrency` workers taking the next of `n` jobs; the seconds it took. */
    const timed = async (n: number, job: (i: number) => Promise<void>) => {
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < n) await job(next++);
        }),
      );
      return (performance.now() - t0) / 1000;
    };
    const token = tokens[0]!.token;
    const viaCollector = async (i: number) => {
      const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
        body: bodies[i]!,
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`collector answered ${res.status}: ${text.slice(0, 300)}`);
    };
    const viaProducer = async (i: number) => {
      await producer.send({
        topic: opts.topics.events,
        acks: -1,
        compression: CompressionTypes.GZIP,
        messages: batches[i]!,
      });
    };
    let colSecs = 0;
    let refSecs = 0;
    for (let r = 0; r < rounds; r++) {
      colSecs += await timed(bodies.length, viaCollector);
      refSecs += await timed(batches.length, viaProducer);
    }
    const n = lines.length * rounds;
    return { collector: n / colSecs, reference: n / refSecs };
  } finally {
    await producer.disconnect().catch(() => undefined);
    await col.stop();
  }
}
