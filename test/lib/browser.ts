import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { generateKey, hashKey } from '@mcp-audit/service-kit';
import { need, REPO_ROOT, waitFor } from './env.js';
import { brokers, env } from './pipeline.js';
import { listeningPort } from './proc.js';

/** Debian's chromium, installed by scripts/test.sh when missing; never a browser download. */
export const CHROMIUM = process.env.MCP_AUDIT_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = `${REPO_ROOT}.local/screenshots`;

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: run scripts/test.sh (it installs Debian's chromium) or apt-get install chromium`,
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export async function screenshot(page: Page, name: string, fullPage = false): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = `${SCREENSHOTS}/${name.replace(/[^A-Za-z0-9_.-]+/g, '-')}.png`;
  await page.screenshot({ path, fullPage });
  return path;
}

/**
 * What a page did wrong while a test drove it: CSP refusals, uncaught errors. A console page must
 * run under its strict policy without a single refusal.
 */
export function watchPage(page: Page): { csp: string[]; errors: string[] } {
  const seen = { csp: [] as string[], errors: [] as string[] };
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) seen.csp.push(m.text());
  });
  page.on('pageerror', (e) => seen.errors.push(e.message));
  return seen;
}

/** Runs one step of a browser test; on failure the page is saved under .local/screenshots first. */
export async function step<T>(page: Page, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const path = await screenshot(page, `failed-${name}`, true).catch(() => 'no screenshot');
    (err as Error).message += `\n  (screenshot: ${path}, url: ${page.url()})`;
    throw err;
  }
}

/** A keys file for the api with one key per entry; returns the plaintext keys by id. */
export function writeApiKeys(keys: Array<{ id: string; scopes: string[] }>): {
  file: string;
  keys: Record<string, string>;
} {
  const dir = mkdtempSync(join(tmpdir(), 'api-keys-'));
  const plain: Record<string, string> = {};
  const rows = keys.map((k) => {
    plain[k.id] = generateKey('mcpa');
    return {
      id: k.id,
      sha256: hashKey(plain[k.id]!),
      scopes: k.scopes,
      created_at: new Date().toISOString(),
    };
  });
  const file = join(dir, 'api-keys.json');
  writeFileSync(file, JSON.stringify(rows), { mode: 0o600 });
  return { file, keys: plain };
}

export interface ApiProcess {
  logFile: string;
  pid: number;
  isRunning(): boolean;
  stop(): Promise<number | null>;
}

// NOTE: test/lib/proc.ts's startService knows only the pipeline services; the api runs the same way.
function spawnApi(env: Record<string, string>, tag: string): ApiProcess {
  mkdirSync(`${REPO_ROOT}.local/test-logs`, { recursive: true });
  const logFile = `${REPO_ROOT}.local/test-logs/api-${tag}.log`;
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [`${REPO_ROOT}services/api/dist/src/main.js`], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  let running = true;
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      running = false;
      resolve(code);
    }),
  );
  return {
    logFile,
    pid: child.pid!,
    isRunning: () => running,
    stop: async () => {
      if (running) child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * The real api service (services/api/dist/src/main.js), serving the built console, on a port the OS
 * picks (port 0; the port it got is read from its log).
 */
export async function startApi(opts: {
  keysFile: string;
  alertsTopic: string;
  tag: string;
  extra?: Record<string, string>;
}): Promise<{ svc: ApiProcess; base: string }> {
  const svc = spawnApi(
    {
      MCP_AUDIT_KAFKA_BROKERS: brokers.join(','),
      MCP_AUDIT_CLICKHOUSE_URL: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
      MCP_AUDIT_CLICKHOUSE_API_USER: need(env, 'MCP_AUDIT_CLICKHOUSE_API_USER'),
      MCP_AUDIT_CLICKHOUSE_API_PASSWORD: need(env, 'MCP_AUDIT_CLICKHOUSE_API_PASSWORD'),
      MCP_AUDIT_CLICKHOUSE_API_READER_USER: need(env, 'MCP_AUDIT_CLICKHOUSE_API_READER_USER'),
      MCP_AUDIT_CLICKHOUSE_API_READER_PASSWORD: need(env, 'MCP_AUDIT_CLICKHOUSE_API_READER_PASSWORD'),
      MCP_AUDIT_API_KEYS_FILE: opts.keysFile,
      MCP_AUDIT_API_HOST: '127.0.0.1',
      MCP_AUDIT_API_PORT: '0',
      MCP_AUDIT_API_OPS_PORT: '0',
      MCP_AUDIT_ALERTS_TOPIC: opts.alertsTopic,
      MCP_AUDIT_API_CONSOLE_DIR: `${REPO_ROOT}services/api/dist/console`,
      MCP_AUDIT_LOG_LEVEL: 'info',
      ...opts.extra,
    },
    opts.tag,
  );
  const base = `http://127.0.0.1:${await listeningPort(svc, 'http', 60_000)}`;
  await waitFor(
    async () => {
      if (!svc.isRunning()) throw new Error(`the api exited; see ${svc.logFile}`);
      const r = await fetch(`${base}/api/v1/session`).catch(() => undefined);
      return r?.status === 401;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: `the api on ${base}` },
  );
  return { svc, base };
}
