// Issue 16 "Ship it", checked statically (no Docker engine on the project's machines, so the images
// were never built here): deploy/docker/Dockerfile and docker-compose.yml keep the rules of the
// images (multi-stage, supported Node LTS, non-root, no dev dependencies, read-only root filesystem,
// a health check per service) and of compose (pinned ClickHouse 25.8 and Kafka 3.9, no container as
// root, each service only its own secrets). The images' health check script runs for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../lib/env.js';

const DOCKERFILE = join(REPO_ROOT, 'deploy/docker/Dockerfile');
const SERVICES = readdirSync(join(REPO_ROOT, 'services')).sort();

interface Instruction {
  op: string;
  args: string;
  line: number;
}
interface Stage {
  name: string;
  from: string;
  body: Instruction[];
}

/** Dockerfile instructions (continuation lines joined, comments dropped), grouped by stage. */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const instructions: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!buf && (line === '' || line.startsWith('#'))) return;
    if (buf && line.startsWith('#')) return; // a comment inside a continued RUN
    if (!buf) start = i + 1;
    buf += (buf ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (line.endsWith('\\')) return;
    const m = /^(\w+)\s+([\s\S]*)$/.exec(buf);
    assert.ok(m, `Dockerfile line ${start}: not an instruction: ${buf}`);
    instructions.push({ op: m[1]!.toUpperCase(), args: m[2]!, line: start });
    buf = '';
  });
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      stages.push({ name: m[2] ?? String(stages.length), from: m[1]!, body: [] });
    } else if (stages.length === 0 && ins.op === 'ARG') {
      const [k, v] = ins.args.split('=');
      args.set(k!, v ?? '');
    } else stages.at(-1)?.body.push(ins);
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
const stage = (name: string) => {
  const s = dockerfile.stages.find((x) => x.name === name);
  assert.ok(s, `Dockerfile: stage ${name}`);
  return s;
};
/** A stage's instructions including those of the stages it is built FROM. */
const lineage = (name: string): Instruction[] => {
  const s = stage(name);
  const parent = dockerfile.stages.find((x) => x.name === s.from);
  return [...(parent ? lineage(parent.name) : []), ...s.body];
};
const lastUser = (name: string) =>
  lineage(name)
    .filter((i) => i.op === 'USER')
    .at(-1)?.args;

type Mount =
  | string
  | { type: string; source: string; target: string; read_only?: boolean; volume?: { subpath?: string } };
interface ComposeService {
  image?: string;
  user?: string;
  build?: { dockerfile?: string; target?: string; args?: Record<string, string> };
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  volumes?: Mount[];
  environment?: Record<string, string | number>;
  command?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
}
const compose = parseYaml(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const ours = Object.entries(compose.services).filter(([, s]) => s.build);
const mountsOf = (s: ComposeService) =>
  (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { ...v, readOnly: v.read_only === true };
    const [source, target, mode] = v.split(':');
    return {
      type: source!.startsWith('.') || source!.startsWith('/') ? 'bind' : 'volume',
      source: source!,
      target: target!,
      readOnly: mode === 'ro',
      volume: undefined,
    };
  });

test('Dockerfile: multi-stage on a supported Node.js LTS (22 or 24), never Node 20', () => {
  assert.ok(dockerfile.stages.length >= 3, 'build, dependencies and runtime stages');
  const image = dockerfile.args.get('NODE_IMAGE') ?? '';
  assert.match(image, /^node:(22|24)(\.\d+)*-bookworm-slim$/, `NODE_IMAGE ${image}`);
  for (const s of dockerfile.stages)
    assert.ok(
      s.from === '${NODE_IMAGE}' || dockerfile.stages.some((x) => x.name === s.from),
      `stage ${s.name} is built FROM the pinned Node image or another stage, not ${s.from}`,
    );
  assert.doesNotMatch(readFileSync(DOCKERFILE, 'utf8'), /node:20/);
});

test('Dockerfile: the runtime holds production dependencies only, of its own service', () => {
  const deps = stage('deps')
    .body.filter((i) => i.op === 'RUN')
    .map((i) => i.args)
    .join('\n');
  assert.match(deps, /npm ci --omit=dev --ignore-scripts --workspace "services\/\$SERVICE"/);
  // The SERVICE argument is checked against the real list of services.
  const allowed = /case "\$SERVICE" in ([\w|]+)\)/.exec(deps)?.[1]?.split('|').sort();
  assert.deepEqual(allowed, SERVICES);
  for (const name of ['runtime', 'tools']) {
    for (const i of stage(name).body.filter((x) => x.op === 'COPY')) {
      const from = /--from=(\S+)/.exec(i.args)?.[1];
      assert.notEqual(
        from,
        'build',
        `${name} (line ${i.line}) copies nothing from the build stage (dev dependencies, sources)`,
      );
    }
  }
  const build = stage('build')
    .body.map((i) => i.args)
    .join('\n');
  assert.match(build, /-path '\*\/dist\/test'/, 'compiled tests are dropped');
  assert.ok(
    build.includes('-name node_modules \\)'),
    'nested node_modules (dev dependencies) stay in the build stage',
  );
});

test('Dockerfile: non-root, health check, writable only under /var/lib/mcp-audit', () => {
  assert.equal(lastUser('runtime'), 'node');
  assert.equal(lastUser('tools'), 'node');
  const runtime = stage('runtime').body;
  const hc = runtime.find((i) => i.op === 'HEALTHCHECK');
  assert.ok(hc, 'runtime: HEALTHCHECK');
  assert.match(hc.args, /CMD \["node", "\/app\/deploy\/docker\/healthcheck\.mjs"\]/);
  // Code is root's (read-only for node); only the data directory is chowned to the service's user.
  const chowns = runtime.filter((i) => /chown/.test(i.args)).map((i) => i.args);
  assert.equal(chowns.length, 1);
  assert.match(chowns[0]!, /chown -R node:node \/var\/lib\/mcp-audit$/);
  assert.ok(!runtime.some((i) => i.op === 'COPY' && /--chown/.test(i.args)), 'no code owned by node');
  const env = runtime
    .filter((i) => i.op === 'ENV')
    .map((i) => i.args)
    .join(' ');
  assert.match(env, /NODE_ENV=production/);
  const ignore = readFileSync(`${DOCKERFILE}.dockerignore`, 'utf8').split('\n');
  for (const p of ['**/node_modules', '.git', '.local', '.env', '**/*.key'])
    assert.ok(ignore.includes(p), `.dockerignore: ${p}`);
});

test('healthcheck.mjs: knows each service’s ops port default (as its config) and exits 0 only on a healthy /healthz', async () => {
  const script = readFileSync(join(REPO_ROOT, 'deploy/docker/healthcheck.mjs'), 'utf8');
  for (const svc of SERVICES) {
    const config = readFileSync(join(REPO_ROOT, `services/${svc}/src/config.ts`), 'utf8');
    const ops =
      /opsEnv\('(\w+)', (\d+)\)/.exec(config) ?? /MCP_AUDIT_(\w+_OPS)_PORT: envInt\((\d+),/.exec(config);
    assert.ok(ops, `${svc}: its ops port in config.ts`);
    const line = new RegExp(`${svc}: \\['MCP_AUDIT_${ops[1]}_PORT', ${ops[2]}\\]`);
    assert.match(script, line, `${svc}: MCP_AUDIT_${ops[1]}_PORT default ${ops[2]}`);
  }
  let status = 200;
  const server = createServer((req, res) => res.writeHead(req.url === '/healthz' ? status : 404).end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const run = (env: Record<string, string>) =>
    new Promise<number | null>((resolve) => {
      const p = spawn(process.execPath, [join(REPO_ROOT, 'deploy/docker/healthcheck.mjs')], {
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: 'ignore',
      });
      p.on('exit', resolve);
    });
  try {
    assert.equal(await run({ MCP_AUDIT_SERVICE: 'ingester', MCP_AUDIT_INGESTER_PORT: String(port) }), 0);
    assert.equal(await run({ MCP_AUDIT_SERVICE: 'api', MCP_AUDIT_API_OPS_PORT: String(port) }), 0);
    status = 503;
    assert.equal(await run({ MCP_AUDIT_SERVICE: 'ingester', MCP_AUDIT_INGESTER_PORT: String(port) }), 1);
    assert.equal(await run({ MCP_AUDIT_SERVICE: 'nope' }), 2);
  } finally {
    server.close();
  }
});

test('compose: ClickHouse 25.8 and Kafka 3.9 pinned; no container runs as root', () => {
  assert.equal(compose.services.clickhouse!.image, 'clickhouse/clickhouse-server:25.8');
  for (const name of ['kafka', 'kafka-tls'])
    assert.match(compose.services[name]!.image!, /^apache\/kafka:3\.9\.\d+$/);
  for (const [name, s] of Object.entries(compose.services)) {
    assert.ok(s.user, `${name}: a user is stated`);
    assert.doesNotMatch(String(s.user), /^(root|0)(:|$)/, `${name} runs as root`);
  }
  assert.deepEqual(
    mountsOf(compose.services.clickhouse!).find((m) =>
      m.target.startsWith('/etc/clickhouse-server/users.d/'),
    ),
    {
      type: 'bind',
      source: './deploy/clickhouse/docker/users.xml',
      target: '/etc/clickhouse-server/users.d/mcp-audit.xml',
      readOnly: true,
      volume: undefined,
    },
    'the least-privilege users (with their SQL grants) are applied',
  );
});

test('compose: every service of ours runs its own image, hardened, without the repository mounted', () => {
  const seen = new Set<string>();
  for (const [name, s] of ours) {
    assert.equal(s.build!.dockerfile, 'deploy/docker/Dockerfile', name);
    assert.equal(s.user, 'node', name);
    assert.equal(s.read_only, true, `${name}: read-only root filesystem`);
    assert.deepEqual(s.cap_drop, ['ALL'], name);
    assert.ok(s.security_opt?.includes('no-new-privileges:true'), name);
    for (const m of mountsOf(s)) {
      assert.equal(m.type, 'volume', `${name}: ${m.source} is a bind mount (the repository stays out)`);
      assert.match(
        m.target,
        /^\/(var\/lib\/mcp-audit|kafka-ca)(\/|$)/,
        `${name}: mounts only data and secrets`,
      );
    }
    const main = /^services\/([\w-]+)\/dist\/src\/(main|local-receiver)\.js$/.exec(s.command?.[1] ?? '');
    if (s.build!.target === 'tools') continue;
    assert.ok(main, `${name}: runs a service`);
    assert.equal(s.build!.args?.SERVICE, main[1], `${name}: its image is built for ${main[1]}`);
    assert.equal(s.image, `mcp-audit/${main[1]}:0.1.0`, name);
    seen.add(main[1]!);
  }
  assert.deepEqual([...seen].sort(), SERVICES, 'an image per service');
});

/** Secrets a service reads through another of its secret files (routes reference the webhook secret). */
const REFERENCED_BY: Record<string, string> = { 'notifier-webhook-secret': 'notifier-routes.json' };

test('compose: each service mounts only its own secrets, read-only; its paths are on its mounts', () => {
  for (const [name, s] of ours) {
    const env = Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)] as const);
    const mounts = mountsOf(s);
    const secretMounts = mounts.filter((m) => m.source === 'secrets');
    if (name === 'init') {
      assert.deepEqual(
        secretMounts.map((m) => m.target),
        ['/var/lib/mcp-audit/secrets'],
      );
      continue;
    }
    for (const m of secretMounts) {
      assert.ok(m.readOnly, `${name}: ${m.target} read-only`);
      assert.ok(m.volume?.subpath, `${name}: ${m.target} is one file or directory of the secrets volume`);
      assert.equal(m.target, `/var/lib/mcp-audit/secrets/${m.volume.subpath}`, name);
      const viaFile = REFERENCED_BY[m.volume.subpath];
      assert.ok(
        env.some(([, v]) => v === m.target) ||
          (viaFile && secretMounts.some((o) => o.volume?.subpath === viaFile)),
        `${name}: mounts ${m.volume.subpath} but no setting of it uses it (not its secret)`,
      );
    }
    for (const [k, v] of env) {
      if (!/_(FILE|DIR)$/.test(k)) continue;
      const on = mounts.find((m) => v === m.target || v.startsWith(`${m.target}/`));
      assert.ok(on, `${name}: ${k}=${v} is on none of its mounts`);
      if (/_(EXPORT_DIR|RECEIPTS_DIR)$/.test(k) || (name === 'retention' && k === 'MCP_AUDIT_LEDGER_DIR'))
        assert.ok(!on.readOnly, `${name}: ${k} must be writable`);
    }
  }
  const services = readFileSync(join(REPO_ROOT, 'scripts/services.sh'), 'utf8');
  assert.match(services, /routes="\$LOCAL\/notifier-routes.json" secret="\$LOCAL\/notifier-webhook-secret"/);
  assert.match(services, /"secret":\{"file":"%s"\}/, 'the routes file names the webhook secret by path');
  // The signing keys: each with its one owner.
  const holders = (file: string) =>
    ours.filter(([, s]) => mountsOf(s).some((m) => m.volume?.subpath === file)).map(([n]) => n);
  assert.deepEqual(holders('ledger-signing.key'), ['retention']);
  assert.deepEqual(holders('api-export-signing.key'), ['api']);
});
