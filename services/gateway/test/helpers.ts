import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createRedactor } from '@mcp-audit/redaction';
import { validateEvent } from '@mcp-audit/schema';
import { createLogger, createRegistry, generateKey, hashKey, type Logger } from '@mcp-audit/service-kit';
import type { EventDraft } from '../src/audit-events.js';
import { buildGateway } from '../src/app.js';
import { CLIENT_KEY_PREFIX, createClientKeyStore } from '../src/client-keys.js';
import { parseGatewayFile, type UpstreamConfig } from '../src/config.js';
import { createToolGuard, memoryGuardStore } from '../src/tool-guard.js';
import { createUpstreamConnector } from '../src/upstreams.js';

export const log = createLogger('gateway-test', { level: process.env.GATEWAY_TEST_LOG ?? 'silent' });

/** The compiled fixture server (dist/test/fixtures/changing-tool-server.js). */
export const FIXTURE = fileURLToPath(new URL('./fixtures/changing-tool-server.js', import.meta.url));

const redactor = createRedactor();

/**
 * Collects drafts and checks each one is a valid v1 event the way the SDK's emitter does (its
 * fields added, redacted, then validateEvent: schema, NUL bytes, lone surrogates), so a draft the
 * emitter would count as invalid instead of auditing fails the test here.
 */
export function recordingEmitter() {
  const events: EventDraft[] = [];
  /** Why drafts were refused: the gateway swallows the assertion (auditing never breaks forwarding). */
  const invalid: string[] = [];
  return {
    events,
    invalid,
    emit(draft: EventDraft) {
      const ts = draft.ts ?? new Date().toISOString();
      const full = {
        ...draft,
        schema_version: 1,
        event_id: randomUUID(),
        ts,
        source: { type: 'gateway', id: 'gw-test', version: '0.1.0' },
      };
      const r = validateEvent(redactor.redactEvent(full).event, { now: Date.parse(ts) });
      if (!r.ok) invalid.push(r.reason);
      assert.ok(r.ok, `invalid event draft: ${r.ok ? '' : r.reason} in ${JSON.stringify(draft)}`);
      events.push(draft);
    },
  };
}

export const fixtureUpstream = (name = 'fixture', env: Record<string, string> = {}): UpstreamConfig => ({
  name,
  transport: 'stdio',
  command: 'node',
  args: [FIXTURE],
  env,
});

export function testGateway(
  over: {
    upstreams?: UpstreamConfig[];
    guard?: boolean;
    rate?: { per_second: number; burst: number };
    limits?: {
      max_sessions?: number;
      session_idle_ms?: number;
      body_bytes?: number;
      resume_events?: number;
      resume_bytes?: number;
    };
    /** alice's own `rate_limit` (ops keeps the gateway's). */
    aliceRateLimit?: { per_second?: number; burst?: number };
    connect?: ReturnType<typeof createUpstreamConnector>;
    now?: () => number;
    log?: Logger;
    /** Extra fields of the gateway file (allowed_hosts, allowed_origins, ...). */
    file?: Record<string, unknown>;
    /** The address the gateway is bound to (default 127.0.0.1). */
    host?: string;
  } = {},
) {
  const user = generateKey(CLIENT_KEY_PREFIX);
  const admin = generateKey(CLIENT_KEY_PREFIX);
  const file = parseGatewayFile({
    gateway_id: 'gw-test',
    upstreams: over.upstreams ?? [fixtureUpstream()],
    clients: [
      {
        id: 'alice',
        user: 'alice@example.com',
        sha256: hashKey(user),
        scopes: ['mcp'],
        ...(over.aliceRateLimit ? { rate_limit: over.aliceRateLimit } : {}),
      },
      { id: 'ops', user: 'ops@example.com', sha256: hashKey(admin), scopes: ['mcp', 'admin'] },
    ],
    rate_limit: over.rate ?? { per_second: 1000, burst: 1000 },
    ...(over.limits ? { limits: over.limits } : {}),
    ...over.file,
  });
  const emitter = recordingEmitter();
  const guard = createToolGuard({ enabled: over.guard ?? true, store: memoryGuardStore() });
  let connects = 0;
  const real = over.connect ?? createUpstreamConnector({ log: over.log ?? log });
  const gw = buildGateway(
    { file, publicUrl: 'http://127.0.0.1:9473', ...(over.host !== undefined ? { host: over.host } : {}) },
    {
      keys: createClientKeyStore(file.clients),
      guard,
      emit: (d) => emitter.emit(d),
      connect: (u) => {
        connects += 1;
        return real(u);
      },
      log: over.log ?? log,
      registry: createRegistry('gateway-test', { defaultMetrics: false }),
      ...(over.now ? { now: over.now } : {}),
    },
  );
  return { gw, keys: { user, admin }, emitter, guard, connects: () => connects };
}

/** Poll until `check` returns a truthy value (no fixed sleeps). */
export async function until<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const initializeRequest = (id: number | string = 1) => ({
  jsonrpc: '2.0' as const,
  id,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
});

export const mcpHeaders = (key: string) => ({
  authorization: `Bearer ${key}`,
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
});
