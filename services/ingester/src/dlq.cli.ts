/**
 * Operator command for the events dead-letter topic (the ingester owns it):
 *   dlq.cli.js keygen --out <dir>          X25519 key pair: dlq-public.pem for the services,
 *                                          dlq-private.pem (0600) for whoever replays
 *   dlq.cli.js list [--code C] [--limit N] [--json]
 *                                          counts by code and reason, redacted previews, ids
 *   dlq.cli.js replay <partition:offset>... [--set path=json]... [--unset path]... [--patch f.json]
 *                                          [--dry-run] [--key-file f]
 *                                          opens the sealed originals, applies the fix-ups, checks
 *                                          them like the ingester and sends the valid ones back to
 *                                          the events topic (redacted, keyed like the collector)
 * Env: MCP_AUDIT_KAFKA_* (brokers, TLS, SASL), MCP_AUDIT_DLQ_TOPIC, MCP_AUDIT_EVENTS_TOPIC,
 * MCP_AUDIT_REDACTION_KEY (the services' key, so markers match), and for replay only
 * MCP_AUDIT_DLQ_PRIVATE_KEY_FILE. Exit codes: 0 done, 1 something was not replayed, 2 usage/config.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import {
  createKafka,
  createOpener,
  createProducer,
  generateDlqKeyPair,
  kafkaConfigFromEnv,
  kafkaEnvSchema,
  loadDlqPrivateKeys,
  TOPIC_EVENTS,
  TOPIC_EVENTS_DLQ,
  type Opener,
} from '@mcp-audit/kafka';
import { createEventRedactor } from '@mcp-audit/redaction';
import { createLogger, parseConfig } from '@mcp-audit/service-kit';
import {
  letterId,
  parseSet,
  parseUnset,
  prepareReplay,
  readDeadLetters,
  summarize,
  type Fixup,
} from './dlq.replay.js';

const USAGE = `usage:
  dlq.cli.js keygen --out <dir>
  dlq.cli.js list [--code <AUDIT_ERR_…>] [--limit <n>] [--json]
  dlq.cli.js replay <partition:offset>... [--set path=value]... [--unset path]... [--patch <merge-patch.json>] [--dry-run] [--key-file <pem>]
`;

const envSchema = kafkaEnvSchema.extend({
  MCP_AUDIT_DLQ_TOPIC: z.string().default(TOPIC_EVENTS_DLQ),
  MCP_AUDIT_EVENTS_TOPIC: z.string().default(TOPIC_EVENTS),
  MCP_AUDIT_REDACTION_KEY: z.string().min(16).optional(),
  MCP_AUDIT_DLQ_PRIVATE_KEY_FILE: z.string().optional(),
});

function die(msg: string, code = 2): never {
  process.stderr.write(`dlq: ${msg}\n`);
  process.exit(code);
}

const [cmd, ...rest] = process.argv.slice(2);
let args: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
const OPTIONS = {
  out: { type: 'string' },
  code: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  set: { type: 'string', multiple: true },
  unset: { type: 'string', multiple: true },
  patch: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'key-file': { type: 'string' },
} as const;
try {
  args = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true });
} catch (err) {
  die(`${(err as Error).message}\n${USAGE}`);
}
const opt = args.values;

if (cmd === 'keygen') {
  if (!opt.out) die(`keygen needs --out <dir>\n${USAGE}`);
  const k = generateDlqKeyPair();
  mkdirSync(opt.out, { recursive: true, mode: 0o700 });
  const priv = join(opt.out, 'dlq-private.pem');
  const pub = join(opt.out, 'dlq-public.pem');
  writeFileSync(priv, k.privatePem, { mode: 0o600, flag: 'wx' });
  writeFileSync(pub, k.publicPem, { mode: 0o644, flag: 'wx' });
  process.stdout.write(
    `key ${k.keyId}\n  ${pub}: give it to the collector and the ingester (MCP_AUDIT_DLQ_PUBLIC_KEY_FILE)\n  ${priv}: keep it with whoever replays (MCP_AUDIT_DLQ_PRIVATE_KEY_FILE), nowhere else\n`,
  );
  process.exit(0);
}
if (cmd !== 'list' && cmd !== 'replay') die(USAGE);

let env: z.infer<typeof envSchema>;
try {
  env = parseConfig(envSchema);
} catch (err) {
  die((err as Error).message);
}

// Refuse before touching Kafka: without the private key nothing can be replayed.
let opener: Opener | undefined;
if (cmd === 'replay') {
  const keyFile = opt['key-file'] ?? env.MCP_AUDIT_DLQ_PRIVATE_KEY_FILE;
  if (!keyFile) {
    die(
      'replay needs the dead-letter private key: set MCP_AUDIT_DLQ_PRIVATE_KEY_FILE or pass --key-file ' +
        '(the services hold only the public key; the originals are sealed to it)',
    );
  }
  try {
    opener = createOpener(loadDlqPrivateKeys(keyFile));
  } catch (err) {
    die(`cannot load the private key from ${keyFile}: ${(err as Error).message}`);
  }
  if (!env.MCP_AUDIT_REDACTION_KEY) {
    die(
      "replay needs MCP_AUDIT_REDACTION_KEY (the services' key): replayed events are redacted like the collector does",
    );
  }
  if (args.positionals.length === 0) die(`replay needs the ids of the letters (see dlq list)\n${USAGE}`);
  if (args.positionals.some((p) => !/^\d+:\d+$/.test(p))) die(`ids are <partition>:<offset>\n${USAGE}`);
}

// NOTE: without the services' key a legacy letter's markers just do not match theirs.
const redactor = createEventRedactor(
  env.MCP_AUDIT_REDACTION_KEY ? { fingerprintKey: env.MCP_AUDIT_REDACTION_KEY } : {},
);
const log = createLogger('dlq-cli', { level: 'warn' });
const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-dlq-cli'), log);

if (cmd === 'list') {
  const limit = opt.limit === undefined ? 20 : Number(opt.limit);
  if (!Number.isInteger(limit) || limit < 0) die('--limit wants a whole number');
  const letters = (await readDeadLetters(kafka, env.MCP_AUDIT_DLQ_TOPIC))
    .map((r) => summarize(r, redactor))
    .filter((s) => !opt.code || s.code === opt.code);
  if (opt.json) {
    for (const s of letters) process.stdout.write(`${JSON.stringify(s)}\n`);
    process.exit(0);
  }
  const count = (f: (s: (typeof letters)[number]) => string) => {
    const m = new Map<string, number>();
    for (const s of letters) m.set(f(s), (m.get(f(s)) ?? 0) + 1);
    return [...m].sort((a, b) => b[1] - a[1]);
  };
  const w = (s: string) => process.stdout.write(`${s}\n`);
  w(
    `${letters.length} dead letters on ${env.MCP_AUDIT_DLQ_TOPIC}${opt.code ? ` with code ${opt.code}` : ''}`,
  );
  w('\nby code:');
  for (const [c, n] of count((s) => s.code)) w(`  ${String(n).padStart(7)}  ${c}`);
  w('\nby reason (top 20):');
  for (const [r, n] of count((s) => s.reason.slice(0, 140)).slice(0, 20))
    w(`  ${String(n).padStart(7)}  ${r}`);
  const sealed = letters.filter((s) => s.keyId).length;
  const legacy = letters.filter((s) => s.legacy).length;
  w(
    `\nreplayable: ${sealed} sealed${legacy ? `, ${legacy} written before redaction (original in clear)` : ''}`,
  );
  w(`\nlatest ${Math.min(limit, letters.length)} (id  at  code  key  preview):`);
  for (const s of letters.slice(-limit)) {
    w(`  ${s.id}  ${s.at}  ${s.code}  ${s.keyId ?? (s.legacy ? 'legacy' : 'not-sealed')}`);
    w(`    reason: ${s.reason.slice(0, 200)}`);
    w(`    ${s.preview}`);
  }
  process.exit(0);
}

// replay
const fixups: Fixup[] = [];
try {
  if (opt.patch) fixups.push({ op: 'merge', patch: JSON.parse(readFileSync(opt.patch, 'utf8')) as unknown });
  for (const s of opt.set ?? []) fixups.push(parseSet(s));
  for (const u of opt.unset ?? []) fixups.push(parseUnset(u));
} catch (err) {
  die((err as Error).message);
}
const wanted = new Set(args.positionals);
const letters = (
  await readDeadLetters(kafka, env.MCP_AUDIT_DLQ_TOPIC, {
    enough: (seen) => [...wanted].every((id) => seen.some((r) => letterId(r) === id)),
  })
).filter((r) => wanted.has(letterId(r)));
const found = new Set(letters.map(letterId));
let failed = 0;
for (const id of wanted) {
  if (!found.has(id)) {
    process.stderr.write(`${id}: no such dead letter on ${env.MCP_AUDIT_DLQ_TOPIC}\n`);
    failed++;
  }
}
const outcomes = letters.map((r) => prepareReplay(r, fixups, { opener: opener!, redactor, now: Date.now() }));
const ready = outcomes.filter((o) => o.ok);
for (const o of outcomes) {
  if (!o.ok) {
    process.stderr.write(`${o.id}: not replayed: ${o.error}\n`);
    failed++;
  }
}
if (opt['dry-run']) {
  for (const o of ready) process.stdout.write(`${o.id}: would replay event ${o.eventId}: ${o.preview}\n`);
} else if (ready.length > 0) {
  const producer = createProducer(kafka);
  await producer.connect();
  try {
    await producer.send(
      env.MCP_AUDIT_EVENTS_TOPIC,
      ready.map((o) => o.message),
    );
  } finally {
    await producer.disconnect();
  }
  for (const o of ready) {
    process.stdout.write(`${o.id}: replayed event ${o.eventId} to ${env.MCP_AUDIT_EVENTS_TOPIC}\n`);
  }
}
process.exit(failed > 0 ? 1 : 0);
