import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createAuditEmitter, type AuditLogger } from '../src/index.js';
import { sdkLog } from '../src/logger.js';
import { MemorySink } from './memory-sink.js';

const SRC = new URL('../src/', import.meta.url); // dist/src
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  dependencies: Record<string, string>;
};

/** Every package an entry point loads statically (relative imports followed, dynamic ones not). */
function packagesOf(entry: string): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = readFileSync(new URL(file, SRC), 'utf8');
    for (const [, spec] of code.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)) {
      if (spec!.startsWith('.'))
        visit(new URL(spec!, new URL(file, SRC)).pathname.slice(SRC.pathname.length));
      else if (!spec!.startsWith('node:'))
        packages.add(
          spec!
            .split('/')
            .slice(0, spec!.startsWith('@') ? 2 : 1)
            .join('/'),
        );
    }
  };
  visit(entry);
  return packages;
}

describe('what a server author installs', () => {
  it('the main entry loads only the contract, redaction, zod and the MCP SDK', () => {
    assert.deepEqual([...packagesOf('index.js')].sort(), [
      '@mcp-audit/redaction',
      '@mcp-audit/schema',
      '@modelcontextprotocol/sdk',
      'zod',
    ]);
    assert.deepEqual(Object.keys(pkg.dependencies).sort(), [
      '@mcp-audit/redaction',
      '@mcp-audit/schema',
      'zod',
    ]);
  });

  it('the Kafka sink is its own entry, the only one that needs @mcp-audit/kafka', () => {
    assert.ok(packagesOf('kafka.js').has('@mcp-audit/kafka'));
    assert.ok(!packagesOf('index.js').has('@mcp-audit/kafka'));
  });
});

describe('the host logger', () => {
  it('needs only warn and error; bindings are merged when it has no child()', async () => {
    const lines: Array<[string, object, string]> = [];
    const logger: AuditLogger = {
      warn: (o, m) => lines.push(['warn', o, m]),
      error: (o, m) => lines.push(['error', o, m]),
    };
    const log = sdkLog(logger, { component: 'x' }).child({ source_id: 's' });
    log.info({ a: 1 }, 'dropped: no info()');
    log.warn({ a: 2 }, 'kept');
    assert.deepEqual(lines, [['warn', { component: 'x', source_id: 's', a: 2 }, 'kept']]);
    const quiet = sdkLog(logger, {}, 'fatal');
    quiet.error({}, 'below fatal');
    assert.equal(lines.length, 1);

    const em = createAuditEmitter({
      sink: new MemorySink(),
      source: { type: 'sdk', id: 'lean', version: '1' },
      logger,
    });
    em.emit({ kind: 'tool_call' } as never);
    assert.equal(em.stats().invalid, 1);
    assert.equal(lines[1]?.[2], 'invalid audit event not emitted');
    await em.close();
  });
});
