/**
 * deploy/prometheus/mcp-audit.rules.yml: well-formed alerting rules, and every metric they reference is
 * one a service really registers: its name as written in the services' and packages' sources
 * (`name: '…'`, or a `${p}…` template with the file's `const p = '…'`), or one of the process metrics
 * service-kit's registry collects (read from a real registry, not a list). With promtool on PATH the
 * file is also checked (`promtool check rules`) and its unit tests run (`promtool test rules`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { createRegistry } from '@mcp-audit/service-kit';
import { REPO_ROOT } from '../lib/env.js';

const RULES = join(REPO_ROOT, 'deploy/prometheus/mcp-audit.rules.yml');
const RULE_TESTS = join(REPO_ROOT, 'deploy/prometheus/mcp-audit.rules.test.yml');

interface Rule {
  alert?: string;
  record?: string;
  expr?: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === 'test') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** Metric names registered in the sources of services/* and packages/*. */
function registeredInSources(): Set<string> {
  const names = new Set<string>();
  for (const root of ['services', 'packages']) {
    for (const file of sources(join(REPO_ROOT, root))) {
      const text = readFileSync(file, 'utf8');
      if (!/new (Counter|Gauge|Histogram|Summary)\b/.test(text)) continue;
      const prefix = /const p = '([a-z_]+)'/.exec(text)?.[1];
      for (const m of text.matchAll(/name: ['`]((?:\$\{p\})?[a-z0-9_]+)['`]/g)) {
        const n = m[1]!.replace('${p}', prefix ?? '${p}');
        if (n.startsWith('mcp_audit_')) names.add(n);
      }
    }
  }
  return names;
}

/** The default (process, nodejs) metrics every service's registry exports, from a real registry. */
async function defaultMetrics(): Promise<Set<string>> {
  const registry = createRegistry('rules-test');
  const json = await registry.getMetricsAsJSON();
  registry.clear();
  return new Set(json.map((m) => m.name));
}

const rules = (): Rule[] => {
  const doc = parseYaml(readFileSync(RULES, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> };
  assert.ok(Array.isArray(doc.groups) && doc.groups.length > 0, 'groups');
  return doc.groups.flatMap((g) => {
    assert.ok(g.name && Array.isArray(g.rules), `group ${g.name}`);
    return g.rules;
  });
};

test('every rule is an alert with an expression, a severity and a summary', () => {
  const all = rules();
  assert.ok(all.length >= 10);
  const names = new Set<string>();
  for (const r of all) {
    assert.ok(r.alert && /^McpAudit[A-Za-z]+$/.test(r.alert), `alert name: ${JSON.stringify(r)}`);
    assert.ok(!names.has(r.alert), `${r.alert} twice`);
    names.add(r.alert);
    assert.ok(r.expr && r.expr.trim().length > 0, `${r.alert}: expr`);
    assert.ok(['critical', 'high', 'warning'].includes(r.labels?.severity ?? ''), `${r.alert}: severity`);
    assert.ok(r.annotations?.summary, `${r.alert}: summary`);
    if (r.for) assert.match(r.for, /^\d+[smh]$/, `${r.alert}: for`);
  }
  // The issue's cases: nothing stored at a busy time, the ingester stalled or gone.
  for (const a of ['McpAuditNothingStored', 'McpAuditIngesterStalled', 'McpAuditIngesterDown'])
    assert.ok(names.has(a), a);
});

test('every metric the rules reference is registered by a service', async () => {
  const known = new Set([...registeredInSources(), ...(await defaultMetrics())]);
  // A sanity check of the scan itself: names from each kind of registration are found.
  for (const n of [
    'mcp_audit_ingester_written_total',
    'mcp_audit_detector_alerts_opened_total', // `${p}` template
    'mcp_audit_detector_watchdog_ingester_lag_messages',
    'mcp_audit_process_start_time_seconds', // service-kit default metrics
  ])
    assert.ok(known.has(n), `the scan finds ${n}`);
  const missing: string[] = [];
  for (const r of rules()) {
    const used = [...r.expr!.matchAll(/\b(mcp_audit_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
    assert.ok(used.length > 0, `${r.alert} references no mcp-audit metric`);
    for (const n of used) if (!known.has(n)) missing.push(`${r.alert}: ${n}`);
  }
  assert.deepEqual(missing, [], 'metrics no service registers');
});

test('promtool: the rules check and their unit tests pass', (t) => {
  const which = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (which.error) {
    t.skip('promtool is not on PATH (Debian: apt-get install prometheus)');
    return;
  }
  const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  const unit = spawnSync('promtool', ['test', 'rules', RULE_TESTS], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(unit.status, 0, unit.stdout + unit.stderr);
});
